"""Run a survey evaluation: render prompts, score or generate answers, compute and aggregate metrics.

``evaluate(backend, EvalConfig)`` appends one :class:`QuestionResult` per (model_tag, country, style,
question) to ``<out>/per_question.jsonl`` (skipping ids already there, so a rerun resumes), then rewrites
``<out>/metrics.json`` with aggregates over *every* record in the file (several models may share one out
directory, told apart by ``model_tag``) and, unless disabled, ``report.html`` with its PNGs.

Log-prob mode: one :class:`ScoreRequest` per prompt whose options are the answer codes ("1".."10"); the
backend gives log P(the reply gives code k) (:mod:`clca.llm.base`); the distribution is renormalised over the
options, and ``format_mass`` (the sum before renormalising) says how much of the model's behaviour it stands
for. ``check_sampling`` N also samples N answers per prompt at temperature 1 and compares their histogram with
the scored distribution (``calibration.jsonl``; see :func:`check_sampling`). Requests are ordered so
that prompts sharing a system message (same country and style) are adjacent, which lets a backend reuse the
shared prefix. Reasoning styles first generate the rationale greedily, then score the options after
"<rationale>\nAnswer: ". Persona mode averages the per-respondent distributions (a mixture).

Generation mode: ``samples`` answers per prompt (greedy when temperature is 0), parsed to a code; unparseable
answers form the "invalid" bucket (share ``invalid_share``), as in the CLCA paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clca.config import EvalSettings
from clca.data.goqa import load_goqa
from clca.data.survey import Survey, SurveyItem, resolve_countries
from clca.data.wvb import Respondent, load_respondents, sample_respondents
from clca.data.wvs import load_wvs7
from clca.errors import DataError
from clca.evaluation import metrics as M
from clca.evaluation.prompts import parse_answer, render_messages, split_reasoning
from clca.evaluation.records import PromptResult, QuestionResult, result_id
from clca.evaluation.styles import Style, resolve_styles
from clca.llm.base import LOG_ZERO, Backend, Chat, GenerationParams, ScoreRequest
from clca.runs import JsonlStore, write_json_atomic

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
    "invalid_share": "share of unparseable generated answers (0 in log-prob mode)",
    "format_mass": "log-prob mode: P(the reply gives one of the options) (sum over options of P(reply gives k), "
    "mean over prompts); the distribution is renormalised over the options, so it stands for this share of "
    "the model's replies",
    "uncovered_mass": "log-prob mode: probability mass the scoring route could not attribute (a server's "
    "top-k log-probs); 0 for the local backend",
    "spearman_expected": "Spearman correlation, across questions, of model vs human expected answer (positions 1..K)",
    "ci": f"95% percentile bootstrap over questions, {M.N_BOOTSTRAP} resamples, seed 0",
}


class EvalConfig(EvalSettings):
    """What to evaluate: the survey settings (:class:`clca.config.EvalSettings`) plus where, for which model
    (``model_tag``) and countries."""

    out_dir: Path
    model_tag: str = "model"
    countries: list[str] = Field(default_factory=lambda: ["Great Britain", "China", "Germany", "Japan"])
    persona_seed: int = 0
    batch_size: int = Field(default=16, ge=1, le=4096)
    seed: int = 0
    report: bool = True


@dataclass
class EvalResult:
    """The records of this config (new and resumed), the aggregates of the whole out dir, output paths."""

    records: list[QuestionResult]
    metrics: dict[str, Any]
    out_dir: Path
    n_new: int = 0
    n_skipped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def per_question_path(self) -> Path:
        return self.out_dir / "per_question.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.json"


def load_survey(spec: str) -> Survey:
    """``wvs7`` (the data bundle), or a path: ``.jsonl`` in the bundle's WVS format, else GlobalOpinionQA CSV."""
    if spec.strip().lower() in ("wvs7", "wvs", "wvs-7"):
        return load_wvs7()
    p = Path(spec).expanduser()
    if not p.exists():
        raise DataError(
            f"survey {spec!r} is neither 'wvs7' nor an existing file.",
            fix="pass --survey wvs7 or a CSV path.",
        )
    return load_wvs7(p) if p.suffix == ".jsonl" else load_goqa(p)


@dataclass
class _Unit:
    """One (country, style, question) still to evaluate."""

    country: str
    style: Style
    item: SurveyItem
    human: list[float]
    prompts: list[tuple[Chat, Respondent | None]]


def respondent_distribution(respondents: Sequence[Respondent], item: SurveyItem) -> list[float] | None:
    """The answer shares of ``item`` over ``respondents`` (valid answers only), or None when nobody answered."""
    counts = [sum(1 for r in respondents if r.answers.get(item.qid) == code) for code in item.codes]
    total = sum(counts)
    return [c / total for c in counts] if total else None


def _batches(units: list[_Unit], batch_size: int) -> list[list[_Unit]]:
    out: list[list[_Unit]] = []
    cur: list[_Unit] = []
    n = 0
    for u in units:
        if cur and n + len(u.prompts) > batch_size:
            out.append(cur)
            cur, n = [], 0
        cur.append(u)
        n += len(u.prompts)
    if cur:
        out.append(cur)
    return out


def _model_answer(dist: Sequence[float]) -> int:
    return max(range(len(dist)), key=lambda i: dist[i])


def _finish(
    unit: _Unit, cfg: EvalConfig, backend: Backend, survey: Survey, prompts: list[PromptResult]
) -> QuestionResult:
    item = unit.item
    k = item.k
    if cfg.mode == "logprob":
        dist = [sum(p.distribution[i] for p in prompts) / len(prompts) for i in range(k)]
        invalid = 0.0
    else:
        counts = [0] * k
        n_inv = 0
        total = 0
        for p in prompts:
            for code in p.parsed:
                total += 1
                if code is None:
                    n_inv += 1
                else:
                    counts[item.codes.index(code)] += 1
        dist = [c / total for c in counts]
        invalid = n_inv / total
    mets = M.question_metrics(unit.human, dist, ordinal=item.ordinal, invalid_share=invalid)
    # the paper's individual-level accuracy: a persona's answer equals that respondent's own answer; a missing
    # true answer and an unparseable answer count as wrong
    indiv: list[float] = []
    for p in prompts:
        if p.persona_id is None:
            continue
        truth = p.respondent_answer if p.respondent_answer in item.codes else None
        if cfg.mode == "logprob":
            indiv.append(float(truth is not None and item.codes[_model_answer(p.distribution)] == truth))
        else:
            indiv.extend(float(truth is not None and c == truth) for c in p.parsed)
    mets["accuracy"] = sum(indiv) / len(indiv) if indiv else None
    if cfg.mode == "logprob":
        mets["format_mass"] = sum(p.format_mass or 0.0 for p in prompts) / len(prompts)
        mets["uncovered_mass"] = sum(p.uncovered for p in prompts) / len(prompts)
    return QuestionResult(
        id=result_id(cfg.model_tag, unit.country, unit.style.name, item.qid),
        model_tag=cfg.model_tag,
        model_spec=getattr(backend, "spec", ""),
        model_fingerprint=backend.fingerprint,
        survey=survey.name,
        country=unit.country,
        style=unit.style.name,
        qid=item.qid,
        question=item.text,
        options=item.options,
        codes=item.codes,
        ordinal=item.ordinal,
        mode=cfg.mode,
        prompts=prompts,
        model_dist=dist,
        invalid_share=invalid,
        human_dist=unit.human,
        metrics=mets,
    )


def _run_batch(batch: list[_Unit], cfg: EvalConfig, backend: Backend) -> list[list[PromptResult]]:
    """Score or generate every prompt of the batch in (at most) two backend calls."""
    flat = [(u, chat, resp) for u in batch for chat, resp in u.prompts]
    prefixes = ["" for _ in flat]
    rationales: list[list[str]] = [[] for _ in flat]
    reasoning_idx = [i for i, (u, _, _) in enumerate(flat) if u.style.reasoning]
    if cfg.mode == "logprob" and reasoning_idx:
        max_tok = max(flat[i][0].style.max_reasoning_tokens for i in reasoning_idx)
        texts = backend.generate(
            [flat[i][1] for i in reasoning_idx],
            GenerationParams(max_new_tokens=max_tok, temperature=0.0, seed=cfg.seed),
        )
        for i, t in zip(reasoning_idx, texts, strict=True):
            rationales[i] = [t]
            prefixes[i] = (split_reasoning(t) + "\nAnswer: ").lstrip()
    results: list[PromptResult] = []
    if cfg.mode == "logprob":
        reqs = [
            ScoreRequest(messages=chat, options=[str(c) for c in u.item.codes], answer_prefix=prefixes[i])
            for i, (u, chat, _) in enumerate(flat)
        ]
        scored = backend.score(reqs)
        for i, ((u, chat, resp), res) in enumerate(zip(flat, scored, strict=True)):
            results.append(
                PromptResult(
                    messages=[{"role": m["role"], "content": m["content"]} for m in chat],
                    persona_id=resp.id if resp else None,
                    answer_prefix=prefixes[i],
                    option_logprobs=[float(x) if math.isfinite(x) else LOG_ZERO for x in res.logprobs],
                    format_mass=res.format_mass,
                    uncovered=res.uncovered,
                    distribution=M.softmax_logprobs(res.logprobs),
                    generations=rationales[i],
                    respondent_answer=resp.answers.get(u.item.qid) if resp else None,
                )
            )
    else:
        any_reasoning = any(u.style.reasoning for u, _, _ in flat)
        max_tok = cfg.max_new_tokens + (
            max(u.style.max_reasoning_tokens for u, _, _ in flat) if any_reasoning else 0
        )
        chats = [chat for _, chat, _ in flat for _s in range(cfg.samples)]
        seeds = [cfg.seed + s for _ in flat for s in range(cfg.samples)]
        texts = backend.generate(
            chats,
            GenerationParams(max_new_tokens=max_tok, temperature=cfg.temperature, seed=cfg.seed),
            seeds=seeds,
        )
        for i, (u, chat, resp) in enumerate(flat):
            gens = texts[i * cfg.samples : (i + 1) * cfg.samples]
            parsed = [
                parse_answer(t, u.item.codes, reasoning=u.style.reasoning, options=u.item.options)
                for t in gens
            ]
            valid = [c for c in parsed if c is not None]
            dist = [sum(1 for c in valid if c == code) / len(gens) for code in u.item.codes]
            results.append(
                PromptResult(
                    messages=[{"role": m["role"], "content": m["content"]} for m in chat],
                    persona_id=resp.id if resp else None,
                    distribution=dist,
                    generations=gens,
                    parsed=parsed,
                    respondent_answer=resp.answers.get(u.item.qid) if resp else None,
                )
            )
    out: list[list[PromptResult]] = []
    pos = 0
    for u in batch:
        out.append(results[pos : pos + len(u.prompts)])
        pos += len(u.prompts)
    return out


ProgressFn = Callable[[int, int], None]


def evaluate(backend: Backend, config: EvalConfig, progress: ProgressFn | None = None) -> EvalResult:
    """Evaluate ``backend`` on the survey per ``config``; resumable (see module docstring).

    ``progress(done, total)`` is called after each batch with counts of (country, style, question) units.
    """
    cfg = config
    survey = load_survey(cfg.survey)
    countries = resolve_countries(cfg.countries, survey.countries(), survey=survey.name)
    items = survey.select(cfg.questions)
    styles = resolve_styles(cfg.styles, [str(p) for p in cfg.style_files])
    notes = list(survey.notes)
    personas: dict[str, list[Respondent]] = {}
    survey_from: dict[str, list[Respondent]] = {}
    if any(s.needs_persona for s in styles):
        if not cfg.respondents:
            raise DataError(
                "the persona style needs respondent-level data.",
                fix="pass --respondents <WorldValuesBench dir with full_value_qa.tsv and full_demographic_qa.tsv>.",
            )
        by_country = load_respondents(cfg.respondents, countries=countries)
        lower = {k.lower(): v for k, v in by_country.items()}
        personas = {
            c: sample_respondents(lower[c.lower()], cfg.personas, cfg.persona_seed) for c in countries
        }
        if (
            cfg.protocol == "paper"
        ):  # the paper's code counts the survey side over every respondent in the files
            survey_from = {c: lower[c.lower()] for c in countries}
            notes += [
                f"protocol paper: survey distributions of {c} counted over its {len(r)} respondents in the "
                "WorldValuesBench files, as the paper's code does"
                for c, r in survey_from.items()
            ]
    store: JsonlStore[QuestionResult] = JsonlStore(cfg.out_dir / "per_question.jsonl", QuestionResult)
    done = store.ids()
    units: list[_Unit] = []
    wanted_ids: list[str] = []
    for country in countries:
        for style in styles:
            for item in items:
                human = item.human.get(country)
                if country in survey_from:
                    human = respondent_distribution(survey_from[country], item) or human
                if human is None:
                    notes.append(f"{item.qid}: no human distribution for {country}; skipped")
                    continue
                rid = result_id(cfg.model_tag, country, style.name, item.qid)
                wanted_ids.append(rid)
                if rid in done:
                    continue
                prompts: list[tuple[Chat, Respondent | None]]
                if style.needs_persona:
                    prompts = [(render_messages(style, item, country, r), r) for r in personas[country]]
                else:
                    prompts = [(render_messages(style, item, country), None)]
                units.append(_Unit(country, style, item, human, prompts))
    n_skipped = len(wanted_ids) - len(units)
    total = len(units)
    if progress:
        progress(0, total)
    n_done = 0
    for batch in _batches(units, cfg.batch_size):
        prompt_results = _run_batch(batch, cfg, backend)
        store.extend(
            _finish(u, cfg, backend, survey, pr) for u, pr in zip(batch, prompt_results, strict=True)
        )
        n_done += len(batch)
        if progress:
            progress(n_done, total)
    all_records = store.all()
    wanted = set(wanted_ids)
    records = [r for r in all_records if r.id in wanted]
    if cfg.check_sampling and cfg.mode == "logprob":
        check_sampling(backend, records, cfg)
    metrics = write_metrics(
        cfg.out_dir, all_records, {cfg.model_tag: cfg.model_dump(mode="json")}, notes, cfg.bootstrap
    )
    if cfg.report:
        from clca.report.eval_report import write_eval_report

        write_eval_report(cfg.out_dir)
    return EvalResult(
        records=records, metrics=metrics, out_dir=cfg.out_dir, n_new=total, n_skipped=n_skipped, notes=notes
    )


CALIBRATION_FILE = "calibration.jsonl"
NOISE_DRAWS = 400


class CalibrationRecord(BaseModel):
    """The sampling check of one question (``id`` as its :class:`QuestionResult`)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    model_tag: str
    samples: int  # answers sampled (temperature 1), over all prompts of the question
    valid: int  # of which parsed to an option
    unparseable_share: float
    sampled: list[float]  # histogram of the valid sampled answers, over the options
    scored: list[float]  # the scored distribution (the record's model_dist)
    jsd: float | None  # JS distance (base 2) between the sampled histogram and the scored distribution
    jsd_noise: float | None  # expected JS distance of a histogram of `valid` draws from `scored` itself


def noise_jsd(dist: Sequence[float], n: int, *, draws: int = NOISE_DRAWS, seed: int = 0) -> float:
    """Mean JS distance between ``dist`` and the histogram of ``n`` draws from it (sampling noise alone)."""
    import numpy as np

    p = np.asarray(dist, dtype=np.float64)
    p = p / p.sum()
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, p, size=draws)
    return float(np.mean([M.js_distance(c / n, p) for c in counts]))


def check_sampling(
    backend: Backend, records: Sequence[QuestionResult], cfg: EvalConfig
) -> list[CalibrationRecord]:
    """The calibration check (``check_sampling`` answers per prompt, temperature 1, parsed as generate mode
    does) for the records not yet checked; appended to ``calibration.jsonl``."""
    store: JsonlStore[CalibrationRecord] = JsonlStore(cfg.out_dir / CALIBRATION_FILE, CalibrationRecord)
    done = store.ids()
    todo = [r for r in records if r.id not in done]
    n = cfg.check_sampling
    by_style = {s.name: s for s in resolve_styles(cfg.styles, [str(p) for p in cfg.style_files])}
    out: list[CalibrationRecord] = []
    for start in range(0, len(todo), max(1, cfg.batch_size)):
        chunk = todo[start : start + cfg.batch_size]
        chats: list[Chat] = []
        for r in chunk:
            for pr in r.prompts:
                chats += [pr.messages] * n  # type: ignore[list-item]
        extra = max(
            (by_style[r.style].max_reasoning_tokens for r in chunk if by_style[r.style].reasoning), default=0
        )
        params = GenerationParams(max_new_tokens=cfg.max_new_tokens + extra, temperature=1.0, seed=cfg.seed)
        seeds = [cfg.seed + k for _ in range(len(chats) // n) for k in range(n)]
        texts = backend.generate(chats, params, seeds=seeds)
        pos = 0
        recs: list[CalibrationRecord] = []
        for r in chunk:
            m = len(r.prompts) * n
            parsed = [
                parse_answer(t, r.codes, reasoning=by_style[r.style].reasoning, options=r.options)
                for t in texts[pos : pos + m]
            ]
            pos += m
            valid = [c for c in parsed if c is not None]
            hist = [sum(1 for c in valid if c == code) / len(valid) if valid else 0.0 for code in r.codes]
            scored = list(r.model_dist)
            recs.append(
                CalibrationRecord(
                    id=r.id,
                    model_tag=r.model_tag,
                    samples=m,
                    valid=len(valid),
                    unparseable_share=1.0 - len(valid) / m,
                    sampled=hist,
                    scored=scored,
                    jsd=M.js_distance(hist, scored) if valid else None,
                    jsd_noise=noise_jsd(scored, len(valid), seed=cfg.seed) if valid else None,
                )
            )
        store.extend(recs)
        out += recs
    return out


def calibration_summary(out_dir: Path) -> dict[str, Any] | None:
    """Means of the calibration check per model tag (``None`` when it was not run)."""
    path = out_dir / CALIBRATION_FILE
    if not path.exists():
        return None
    by_tag: dict[str, list[CalibrationRecord]] = {}
    for r in JsonlStore(path, CalibrationRecord).read():
        by_tag.setdefault(r.model_tag, []).append(r)
    out: dict[str, Any] = {}
    for tag, recs in by_tag.items():
        ok = [r for r in recs if r.jsd is not None and r.jsd_noise is not None]
        out[tag] = {
            "questions": len(recs),
            "mean_jsd_sampled_vs_scored": sum(r.jsd or 0.0 for r in ok) / len(ok) if ok else None,
            "mean_jsd_sampling_noise": sum(r.jsd_noise or 0.0 for r in ok) / len(ok) if ok else None,
            "mean_unparseable_share": sum(r.unparseable_share for r in recs) / len(recs),
        }
    return out


def _summ(values: list[float | None], n_bootstrap: int, seed: int) -> dict[str, float | int | None]:
    v = [float(x) for x in values if x is not None and not math.isnan(x)]
    if not v:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    ci = M.bootstrap_ci(v, n_resamples=n_bootstrap, seed=seed)
    return {
        "mean": sum(v) / len(v),
        "ci_low": ci[0] if ci else None,
        "ci_high": ci[1] if ci else None,
        "n": len(v),
    }


def aggregate(
    records: Sequence[QuestionResult], n_bootstrap: int = M.N_BOOTSTRAP, seed: int = 0
) -> list[dict[str, Any]]:
    """Means with bootstrap CIs per (model_tag, country, style), plus per (model_tag, style) over all countries
    (country "ALL"), and Spearman of expected answers across the group's questions."""
    groups: dict[tuple[str, str, str], list[QuestionResult]] = {}
    for r in records:
        groups.setdefault((r.model_tag, r.country, r.style), []).append(r)
        groups.setdefault((r.model_tag, "ALL", r.style), []).append(r)
    out: list[dict[str, Any]] = []
    for (tag, country, style), recs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1] == "ALL", kv[0][1])
    ):
        row: dict[str, Any] = {"model_tag": tag, "country": country, "style": style, "n_questions": len(recs)}
        row["metrics"] = {
            name: _summ([r.metrics.get(name) for r in recs], n_bootstrap, seed) for name in METRIC_NAMES
        }
        row["spearman_expected"] = M.spearman(
            [float(r.metrics["expected_model"] or 0.0) for r in recs],
            [float(r.metrics["expected_human"] or 0.0) for r in recs],
        )
        out.append(row)
    return out


def write_metrics(
    out_dir: Path,
    records: Sequence[QuestionResult],
    configs: dict[str, Any],
    notes: list[str],
    n_bootstrap: int = M.N_BOOTSTRAP,
) -> dict[str, Any]:
    """Write ``metrics.json`` (aggregates of all records in the dir; configs merged by model_tag)."""
    import json

    path = out_dir / "metrics.json"
    old_configs: dict[str, Any] = {}
    if path.exists():
        try:
            old_configs = dict(json.loads(path.read_text(encoding="utf-8")).get("configs", {}))
        except (json.JSONDecodeError, AttributeError):
            old_configs = {}
    doc = {
        "metric_definitions": METRIC_DOC,
        "configs": {**old_configs, **configs},
        "groups": aggregate(records, n_bootstrap),
        "n_records": len(records),
        "notes": sorted(set(notes)),
    }
    calib = calibration_summary(out_dir)
    if calib is not None:
        doc["calibration"] = calib
    write_json_atomic(path, doc)
    return doc
