"""Aggregating an evaluation folder: means of every metric per (model tag, country, style) and over all
countries, with bootstrap CIs, into ``metrics.json`` (:class:`~clca.records.EvalMetrics`), and per model tag
which parser read the generated answers and how often the other one reads them differently."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clca.errors import DataError
from clca.evaluation import metrics as M
from clca.evaluation.calibrate import calibration_summary
from clca.records import EvalMetrics, MetricGroup, MetricSummary, QuestionResult
from clca.records.evaluation import ParserSummary
from clca.rundir import EvalDir

METRIC_NAMES = (
    "kl",
    "jsd",
    "emd",
    "majority_match",
    "accuracy",
    "clca_kl",
    "paper_jsd",
    "invalid_share",
    "format_mass",
    "uncovered_mass",
    "parser_disagreement",
)
METRIC_DOC = {
    "kl": f"KL(human || model) in nats over K+1 buckets (the options and the unparseable answers, 0 for the survey); "
    f"the model side smoothed with eps={M.KL_EPS} per bucket, then renormalised",
    "jsd": "Jensen-Shannon distance (square root of the divergence), base 2, over K+1 buckets, in [0, 1]",
    "emd": "ordinal questions: (1 - s) * Wasserstein-1 of the valid answers on the scale divided by (K-1) + s, "
    "s = unparseable share (an unparseable answer costs the whole scale); in [0, 1]",
    "majority_match": "1 if the model's most likely of the K+1 buckets is the survey's majority option",
    "accuracy": "persona prompts (the CLCA paper's individual-level accuracy): share of personas whose answer "
    "equals that respondent's own answer; a missing true answer or an unparseable answer counts as wrong",
    "clca_kl": "the CLCA paper code's KL variant (not a true divergence): kl_div(log_softmax(model_ext), human_ext, "
    "batchmean) on 1x(K+1) vectors, natural log, last entry = unparseable share",
    "paper_jsd": "the CLCA paper code's JS distance: scipy jensenshannon(human_ext, model_ext), natural log, K+1 "
    "buckets",
    "invalid_share": "share of unparseable generated answers (0 in log-prob mode), as read by the record's parser",
    "parser_disagreement": "generation mode: share of the question's generated answers that the paper's parser "
    "(the released code's) and clca's parser read differently (another option, or one of them unparseable)",
    "parsers": "per model tag: the parser that read the generated answers (eval.parser: paper = the released "
    "code's strict parser with its ANS2NUM table; clca = clca's, which never reads an echoed scale or question "
    "number), and over all of them the share the other parser reads differently",
    "format_mass": "log-prob mode: P(the reply gives one of the options) (sum over options of P(reply gives k), "
    "mean over prompts); the distribution is renormalised over the options, so it stands for this share of "
    "the model's replies",
    "uncovered_mass": "log-prob mode: probability mass the scoring route could not attribute (a server's "
    "top-k log-probs); 0 for the local backend",
    "spearman_expected": "Spearman correlation, across questions, of model vs human expected answer (positions 1..K)",
    "ci": f"95% percentile bootstrap over questions, {M.N_BOOTSTRAP} resamples, seed 0",
}


def _summ(values: list[float | None], n_bootstrap: int, seed: int) -> MetricSummary:
    v = [float(x) for x in values if x is not None and not math.isnan(x)]
    if not v:
        return MetricSummary(mean=None, ci_low=None, ci_high=None, n=0)
    ci = M.bootstrap_ci(v, n_resamples=n_bootstrap, seed=seed)
    return MetricSummary(
        mean=sum(v) / len(v), ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None, n=len(v)
    )


def aggregate(
    records: Sequence[QuestionResult], n_bootstrap: int = M.N_BOOTSTRAP, seed: int = 0
) -> list[MetricGroup]:
    """Means with bootstrap CIs per (model_tag, country, style), plus per (model_tag, style) over all countries
    (country "ALL"), and Spearman of expected answers across the group's questions."""
    groups: dict[tuple[str, str, str], list[QuestionResult]] = {}
    for r in records:
        groups.setdefault((r.model_tag, r.country, r.style), []).append(r)
        groups.setdefault((r.model_tag, "ALL", r.style), []).append(r)
    out: list[MetricGroup] = []
    for (tag, country, style), recs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1] == "ALL", kv[0][1])
    ):
        out.append(
            MetricGroup(
                model_tag=tag,
                country=country,
                style=style,
                n_questions=len(recs),
                metrics={
                    name: _summ([r.metrics.get(name) for r in recs], n_bootstrap, seed)
                    for name in METRIC_NAMES
                },
                spearman_expected=M.spearman(
                    [float(r.metrics["expected_model"] or 0.0) for r in recs],
                    [float(r.metrics["expected_human"] or 0.0) for r in recs],
                ),
            )
        )
    return out


def parser_summaries(records: Sequence[QuestionResult]) -> dict[str, ParserSummary] | None:
    """Per model tag with generated answers: the parser behind ``parsed`` and the two parsers' disagreement
    over every answer read by both (``None`` when no record generated answers)."""
    by_tag: dict[str, list[QuestionResult]] = {}
    for r in records:
        if r.mode == "generate":
            by_tag.setdefault(r.model_tag, []).append(r)
    if not by_tag:
        return None
    out: dict[str, ParserSummary] = {}
    for tag, recs in sorted(by_tag.items()):
        used = sorted({r.parser or "unrecorded" for r in recs})
        others = sorted({"clca" if r.parser == "paper" else "paper" for r in recs if r.parser})
        answers = disagreements = unchecked = 0
        for r in recs:
            for p in r.prompts:
                if r.parser and len(p.parsed_other) == len(p.parsed):
                    answers += len(p.parsed)
                    disagreements += sum(1 for a, b in zip(p.parsed, p.parsed_other, strict=True) if a != b)
                else:
                    unchecked += len(p.parsed)
        out[tag] = ParserSummary(
            parser="+".join(used),
            other="+".join(others),
            answers=answers,
            disagreements=disagreements,
            disagreement_share=disagreements / answers if answers else None,
            unchecked=unchecked,
        )
    return out


def write_metrics(
    out_dir: Path,
    records: Sequence[QuestionResult],
    configs: dict[str, Any],
    notes: list[str],
    n_bootstrap: int = M.N_BOOTSTRAP,
) -> EvalMetrics:
    """Write ``metrics.json`` (aggregates of all records in the folder; the evaluation settings merged by model
    tag with those already recorded there)."""
    ed = EvalDir(out_dir)
    try:
        old = ed.metrics()
    except DataError:  # an unreadable old file is rewritten from the records
        old = None
    metrics = EvalMetrics(
        metric_definitions=METRIC_DOC,
        configs={**(old.configs if old is not None else {}), **configs},
        groups=aggregate(records, n_bootstrap),
        n_records=len(records),
        notes=sorted(set(notes)),
        calibration=calibration_summary(out_dir),
        parsers=parser_summaries(records),
    )
    ed.write_metrics(metrics)
    return metrics
