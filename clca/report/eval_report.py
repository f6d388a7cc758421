"""The evaluation report: ``report.html`` plus PNG figures, built from an eval out directory alone.

Contents: the metrics table (per model, style, country, with bootstrap CIs), per-country bar charts of model
vs human distributions for a few selected questions (the ones with the largest spread of JSD across styles),
a question × country heatmap of JSD per (model, style), and an example rendered prompt per style. All model
and survey text is HTML-escaped; images are embedded as base64 and also written as PNG files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from clca.errors import DataError
from clca.records import MetricSummary, QuestionResult
from clca.report.figures import bar_chart_model_vs_human, esc, heatmap, html_page, html_table, img_tag
from clca.rundir import EvalDir

N_SELECTED = 3


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "x"


def _fmt_ci(m: MetricSummary | None) -> str:
    if m is None or m.mean is None:
        return "–"
    if m.ci_low is None or m.ci_high is None:
        return f"{m.mean:.4f}"
    return f"{m.mean:.4f} [{m.ci_low:.3f}, {m.ci_high:.3f}]"


def select_questions(records: list[QuestionResult], n: int = N_SELECTED) -> list[str]:
    """Question ids to chart: highest mean JSD over all records (where the models are furthest off)."""
    by_q: dict[str, list[float]] = {}
    for r in records:
        v = r.metrics.get("jsd")
        if v is not None:
            by_q.setdefault(r.qid, []).append(v)
    ranked = sorted(by_q, key=lambda q: -sum(by_q[q]) / len(by_q[q]))
    return ranked[:n]


def write_eval_report(out_dir: str | Path, *, title: str = "clca survey evaluation") -> Path:
    """Write ``report.html`` and ``fig_*.png`` in ``out_dir`` (an :class:`~clca.rundir.EvalDir`) from its
    per_question.jsonl and metrics.json."""
    folder = EvalDir(out_dir)
    out = folder.path
    records = folder.records()
    if not records:
        raise DataError(
            f"{folder.per_question_file} holds no result.",
            fix="run `clca eval` with --out pointing here first.",
        )
    metrics = folder.metrics()
    for old in out.glob("fig_*.png"):
        old.unlink()
    parts: list[str] = []
    # metrics table
    rows = []
    for g in metrics.groups if metrics is not None else []:
        m = g.metrics
        rows.append(
            [
                g.model_tag,
                g.style,
                g.country,
                g.n_questions,
                _fmt_ci(m.get("kl")),
                _fmt_ci(m.get("jsd")),
                _fmt_ci(m.get("emd")),
                _fmt_ci(m.get("majority_match")),
                _fmt_ci(m.get("clca_kl")),
                _fmt_ci(m.get("format_mass")),
                g.spearman_expected,
            ]
        )
    parts.append("<h2>Metrics</h2>")
    parts.append(
        '<p class="note">Means over questions with 95% bootstrap confidence intervals. '
        + esc("; ".join(f"{k}: {v}" for k, v in (metrics.metric_definitions if metrics else {}).items()))
        + "</p>"
    )
    parts.append(
        html_table(
            [
                "model",
                "style",
                "country",
                "n",
                "KL(h‖m)",
                "JSD",
                "EMD",
                "majority match",
                "clca_kl (paper code)",
                "format mass",
                "Spearman E[ans]",
            ],
            rows,
        )
    )
    calib = metrics.calibration if metrics is not None else None
    if calib:
        parts.append(
            "<h2>Calibration check</h2><p class='note'>Answers sampled at temperature 1 and parsed as in generate "
            "mode, compared with the scored distribution: the JS distance between the sampled histogram and the "
            "scored distribution, next to the distance expected from sampling noise alone (a histogram of as many "
            "draws from the scored distribution itself).</p>"
        )
        parts.append(
            html_table(
                [
                    "model",
                    "questions",
                    "JSD sampled vs scored",
                    "JSD from sampling noise",
                    "unparseable share",
                ],
                [
                    [
                        tag,
                        c.questions,
                        c.mean_jsd_sampled_vs_scored,
                        c.mean_jsd_sampling_noise,
                        c.mean_unparseable_share,
                    ]
                    for tag, c in calib.items()
                ],
            )
        )
    # bar charts
    selected = select_questions(records)
    countries = sorted({r.country for r in records})
    tags = sorted({r.model_tag for r in records})
    idx = {(r.model_tag, r.country, r.style, r.qid): r for r in records}
    parts.append("<h2>Model vs human, selected questions</h2>")
    for qid in selected:
        any_r = next(r for r in records if r.qid == qid)
        parts.append(f"<h3>{esc(qid)}: {esc(any_r.question)}</h3>")
        for country in countries:
            recs = [r for r in records if r.qid == qid and r.country == country]
            if not recs:
                continue
            series: dict[str, list[float]] = {"human": recs[0].human_dist}
            for r in sorted(recs, key=lambda r: (r.model_tag, r.style)):
                name = r.style if len(tags) == 1 else f"{r.model_tag}/{r.style}"
                series[name] = r.model_dist
            png = bar_chart_model_vs_human(
                out / f"fig_bar_{_slug(qid)}_{_slug(country)}.png",
                any_r.options,
                series,
                f"{qid} — {country}",
            )
            parts.append(img_tag(png, f"{qid} {country}"))
    # heatmaps
    parts.append("<h2>JSD per question and country</h2>")
    styles = sorted({r.style for r in records})
    qids = list(dict.fromkeys(r.qid for r in records))
    for tag in tags:
        for style in styles:
            mat = [
                [
                    (idx[(tag, c, style, q)].metrics.get("jsd") if (tag, c, style, q) in idx else None)
                    for c in countries
                ]
                for q in qids
            ]
            if all(v is None for row in mat for v in row):
                continue
            png = heatmap(
                out / f"fig_heatmap_jsd_{_slug(tag)}_{_slug(style)}.png",
                mat,
                qids,
                countries,
                f"JSD (lower is better) — {tag} / {style}",
            )
            parts.append(f"<h3>{esc(tag)} / {esc(style)}</h3>" + img_tag(png, f"JSD heatmap {tag} {style}"))
    # example prompts
    parts.append("<h2>Example prompts</h2>")
    seen: set[tuple[str, str]] = set()
    for r in records:
        if (r.model_tag, r.style) in seen or not r.prompts:
            continue
        seen.add((r.model_tag, r.style))
        msgs = "\n\n".join(f"[{m['role']}] {m['content']}" for m in r.prompts[0].messages)
        gen = r.prompts[0].generations[0] if r.prompts[0].generations else ""
        parts.append(
            f"<h3>{esc(r.model_tag)} / {esc(r.style)} / {esc(r.country)} / {esc(r.qid)}</h3><pre>{esc(msgs)}</pre>"
        )
        if gen:
            parts.append(f"<p>Model output:</p><pre>{esc(gen)}</pre>")
    if metrics is not None and metrics.notes:
        parts.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in metrics.notes[:50]) + "</ul>"
        )
    if metrics is not None and metrics.configs:
        parts.append("<h2>Configuration</h2><pre>" + esc(json.dumps(metrics.configs, indent=2)) + "</pre>")
    path = folder.report_file
    path.write_text(html_page(title, "\n".join(parts)), encoding="utf-8")
    return path
