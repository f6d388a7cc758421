"""The before/after report of a pipeline run: ``run_dir/report/index.html`` plus PNG files.

Sections:

1. **Verdicts** (the headline), per culture and prompting style: improved over the base student? beyond the
   no-culture control? specific to its culture? Each "yes" only when its 95% CI excludes 0 on the better side
   (:mod:`clca.report.controls`; CIs are a crossed bootstrap over training seeds and questions).
2. **Reproduction**: the paper's published numbers next to the run's when the run's protocol matches the paper's
   in every condition its numbers depend on (student, training preset, judge rule, actor and teacher, scenario
   source, evaluation protocol and parser, cultures, questions, mix), else every mismatch by name; the table of
   protocol checks either way (:mod:`clca.report.reproduction`).
3. **Cross-culture matrix**: Δ KL (adapter − base) of every adapter (each culture's and the control) on every
   culture, with CIs, the spread between seeds, specificity and adapter − control; a heatmap per style.
4. **Before/after table** (like Table 2 of the CLCA paper): per culture and on average, the base student under
   each prompting style and the culture's own adapter (mean over seeds) under the same styles, with KL and the
   paper code's KL variant (``clca_kl``) and the change with its CI; JSD / EMD / majority match / format mass.
5. Per-question changes of KL, the Inglehart–Welzel cultural map (:mod:`clca.report.culture_map`), data
   statistics (``stats.json``), example conversations with intents and judge verdicts, the manifest's stages.

Everything from data or models is HTML-escaped; figures are embedded as base64 (the page opens offline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clca.records import BeforeAfter, Estimate, QuestionResult, Reproduction
from clca.report.before_after import (
    EXTRA_METRICS,
    _index,
    _metric,
    analyse_run,
    culture_map_placements,
    own_tags,
)
from clca.report.controls import BETTER, PRIMARY
from clca.report.culture_map import edition_label, fit_culture_map, plot_culture_map
from clca.report.figures import esc, html_page, html_table, img_tag
from clca.rundir import RunDir, slug
from clca.runs import write_json_atomic

N_EXAMPLES = 2  # example conversations per culture


def _fmt(v: float | None, digits: int = 4) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _fmt_change(ch: Estimate | None) -> str:
    if ch is None or ch.mean is None:
        return "–"
    ci = ch.ci
    return f"{ch.mean:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")


def _table2_html(ba: BeforeAfter, metric: str) -> str:
    header = ["culture"]
    for style in ba.styles:
        header += [f"base · {style}", f"CLCA · {style}", f"Δ {style} [95% CI]"]
    rows = []
    for row in [*ba.rows, ba.average]:
        cells: list[object] = [row.culture]
        for style in ba.styles:
            cells += [
                _fmt(row.cell("base", style, metric)),
                _fmt(row.cell("adapted", style, metric)),
                _fmt_change(row.change.get(f"{style}|{metric}")),
            ]
        rows.append(cells)
    return html_table(header, rows)


def _extra_html(ba: BeforeAfter) -> str:
    header = [
        "culture", "model", "style", "JSD", "EMD", "majority match", "format mass",
        "Δ JSD", "Δ EMD", "Δ majority match", "Δ format mass",
    ]  # fmt: skip
    rows: list[list[object]] = []
    for row in [*ba.rows, ba.average]:
        for style in ba.styles:
            for model in ("base", "adapted"):
                cells: list[object] = [row.culture, "base" if model == "base" else "CLCA", style]
                cells += [_fmt(row.cell(model, style, m)) for m in EXTRA_METRICS]
                if model == "adapted":
                    cells += [_fmt_change(row.change.get(f"{style}|{m}")) for m in EXTRA_METRICS]
                else:
                    cells += [""] * len(EXTRA_METRICS)
                rows.append(cells)
    return html_table(header, rows)


def _languages_html(ba: BeforeAfter) -> str:
    """The multilingual table: per culture and language (and their average), base and CLCA under each
    translated style on KL, the paper code's KL and, with persona prompts, accuracy."""
    styles = list(dict.fromkeys(k.split("|")[1] for r in ba.languages for k in r.cells))
    metrics = [
        m
        for m in ("kl", "clca_kl", "accuracy")
        if any(f"base|{s}|{m}" in r.cells for r in ba.languages for s in styles)
    ]
    names = {"kl": "KL", "clca_kl": "paper KL", "accuracy": "accuracy"}
    header = ["culture", "language", "style"]
    for m in metrics:
        header += [f"base {names[m]}", f"CLCA {names[m]}"] + (
            [f"Δ {names[m]} [95% CI]"] if m != "accuracy" else []
        )
    rows: list[list[object]] = []
    for row in ba.languages:
        for style in styles:
            if f"base|{style}|kl" not in row.cells:
                continue
            cells: list[object] = [row.culture, row.language or "", style]
            for m in metrics:
                cells += [_fmt(row.cell("base", style, m)), _fmt(row.cell("adapted", style, m))]
                if m != "accuracy":
                    cells.append(_fmt_change(row.change.get(f"{style}|{m}")))
            rows.append(cells)
    return html_table(header, rows)


_VERDICT_CLASS = {"yes": "yes", "no": "no", "not shown": "ns"}


def _verdict_cell(v: str) -> str:
    return f"<td class='v-{_VERDICT_CLASS.get(v, 'na')}'>{esc(v)}</td>"


def _verdicts_html(ba: BeforeAfter) -> str:
    """The headline: per culture and style, the three questions a before/after claim must answer."""
    verdicts = ba.verdicts
    if not verdicts:
        return "<p class='note'>No adapted model was evaluated yet, so there is no verdict.</p>"
    head = [
        "culture",
        "prompt style",
        "improved over base?",
        "beyond the no-culture control?",
        "specific to its culture?",
    ]
    body = "".join(
        f"<tr><td>{esc(v.culture)}</td><td>{esc(v.style)}</td>"
        + _verdict_cell(v.improved_over_base)
        + _verdict_cell(v.beyond_control)
        + _verdict_cell(v.specific)
        + "</tr>"
        for v in verdicts
    )
    table = (
        "<table class='verdicts'><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{body}</tbody></table>"
    )
    sentences = "".join(f"<li>{esc(v.sentence)}</li>" for v in verdicts)
    return table + f"<ul class='note'>{sentences}</ul><p class='note'>{esc(ba.method)}</p>"


def _matrix_html(ba: BeforeAfter, style: str, metric: str) -> str:
    rows_in = ba.matrix.get(style, {}).get(metric, [])
    if not rows_in:
        return ""
    cultures = ba.cultures
    head = ["adapter (seeds)", *[f"on {c}" for c in cultures], "specificity (own − others)", "own − control"]
    out = []
    for r in rows_in:
        fam = ba.families.get(r.trained_on, [])
        name = f"{r.label} ({len(fam)} seed{'s' if len(fam) != 1 else ''})"
        cells = [f"<td>{esc(name)}</td>"]
        for c in cultures:
            cell = r.cells.get(c)
            txt = _fmt_change(cell)
            if cell is not None and cell.seed_sd is not None:
                txt += f" · seed sd {cell.seed_sd:.4f}"
            own = c == r.trained_on
            cells.append(f"<td{' class=own' if own else ''}>{esc(txt)}</td>")
        cells.append(f"<td>{esc(_fmt_change(r.specificity)) if r.specificity is not None else '–'}</td>")
        cells.append(f"<td>{esc(_fmt_change(r.vs_control)) if r.vs_control is not None else '–'}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<table class='matrix'><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(out)}</tbody></table>"
    )


def matrix_figure(ba: BeforeAfter, style: str, metric: str, path: Path) -> Path | None:
    """Heatmap of the Δ matrix (rows: adapters, columns: evaluated cultures; blue = better than base)."""
    rows_in = ba.matrix.get(style, {}).get(metric, [])
    if not rows_in:
        return None
    from clca.report.figures import heatmap

    vals = [
        [cell.mean if (cell := r.cells.get(c)) is not None else None for c in ba.cultures] for r in rows_in
    ]
    flat = [abs(v) for row in vals for v in row if v is not None]
    lim = max(flat) if flat and max(flat) > 0 else 1.0
    return heatmap(
        path,
        vals,
        [r.label for r in rows_in],
        [f"on {c}" for c in ba.cultures],
        f"Δ {metric.upper() if metric in ('kl', 'jsd', 'emd') else metric} (adapter − base), {style} prompts; "
        "blue = better than base",
        cmap="RdBu_r" if BETTER.get(metric, -1) < 0 else "RdBu",
        vmin=-lim,
        vmax=lim,
    )


def _checks_html(rep: Reproduction) -> str:
    """The protocol checks as a table (condition, the paper's value, the run's, verdict); empty for older files."""
    label = {"match": "matches", "caveat": "caveat", "mismatch": "MISMATCH"}
    rows = [
        [c.name, c.paper, c.run, label[c.verdict] + (f": {c.note}" if c.note else "")] for c in rep.checks
    ]
    return html_table(["condition", "the paper", "this run", "verdict"], rows) if rows else ""


def _reproduction_html(rep: Reproduction | None) -> str:
    if rep is None or not rep.comparable:
        if rep is not None and rep.mismatches:
            n = len(rep.mismatches)
            return (
                f"<p class='note'>Not comparable with the paper's published numbers: the run differs from the "
                f"paper's protocol in {n} condition{'s' if n > 1 else ''} its numbers depend on: "
                f"<b>{esc(', '.join(rep.mismatches))}</b>.</p>"
                + "<ul class='note'>"
                + "".join(f"<li>{esc(w)}</li>" for w in rep.why)
                + "</ul>"
                + _checks_html(rep)
            )
        reasons = "; ".join(rep.why if rep is not None else []) or "unknown"
        return f"<p class='note'>Not comparable with the paper's published numbers: {esc(reasons)}.</p>"
    rows = [
        [r.table, r.metric, r.culture, r.run_base, r.paper_base, r.base_diff, r.run_clca, r.paper_clca,
         r.clca_diff]
        for r in rep.rows
    ]  # fmt: skip
    caveats = "".join(f"<li>{esc(c)}</li>" for c in rep.caveats or [])
    protocol = (
        "the protocol matches the paper's in every condition its numbers depend on (the table below)"
        if rep.checks
        else "the protocol is the paper's"
    )
    return (
        f"<p class='note'>The student is the paper's {esc(rep.model)} and {protocol}; its published numbers "
        "(Liu et al. 2025, Tables 2, 4, 5, 6 and 15) next to this run's.</p>"
        + html_table(
            [
                "table",
                "metric",
                "culture",
                "run base",
                "paper base",
                "run − paper",
                "run CLCA",
                "paper CLCA",
                "run − paper",
            ],
            rows,
        )
        + (f"<p class='note'>Differences that remain:</p><ul class='note'>{caveats}</ul>" if caveats else "")
        + _checks_html(rep)
    )


def per_question_figure(records: Sequence[QuestionResult], styles: Sequence[str], path: Path) -> Path | None:
    """Bars of KL(adapted) − KL(base) per question, one panel per culture, one bar colour per style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = _index(records)
    tags = own_tags(records)
    cultures = sorted(tags)
    if not cultures:
        return None
    fig, axes = plt.subplots(len(cultures), 1, figsize=(11, 2.6 * len(cultures)), squeeze=False)
    for ax, c in zip(axes[:, 0], cultures, strict=True):
        # the styles asked for this culture (a translated style only for the cultures of its language)
        asked = [s for s in styles if ("base", c, s) in idx or any((t, c, s) in idx for t in tags[c])]
        width = 0.8 / max(1, len(asked))
        qids: list[str] = []
        for si, style in enumerate(asked):
            base = idx.get(("base", c, style), {})
            seeds = [idx.get((t, c, style), {}) for t in tags[c]]
            common = sorted(set(base).intersection(*seeds), key=lambda q: (len(q), q))
            qids = qids or common
            diffs = [
                float(np.mean([(_metric(a[q], "kl") or 0.0) for a in seeds]))
                - (_metric(base[q], "kl") or 0.0)
                if q in common
                else 0.0
                for q in qids
            ]
            ax.bar(np.arange(len(qids)) + si * width, diffs, width=width, label=style)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(np.arange(len(qids)) + 0.4 - width / 2)
        ax.set_xticklabels(qids, rotation=90, fontsize=7)
        ax.set_ylabel("Δ KL (adapted − base)", fontsize=8)
        ax.set_title(f"{c}: per-question change of KL (below 0 = closer to the survey)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _stats_html(run: RunDir) -> str:
    """The data statistics (``stats.json``) as one row per culture plus the total."""
    from clca.errors import DataError
    from clca.stats import TABLE_COLUMNS

    try:
        st = run.stats()
    except DataError as exc:
        return f"<p class='note'>{esc(str(exc))}</p>"
    if st is None:
        return "<p class='note'>No stats.json in this run directory.</p>"
    rows: list[list[object]] = [
        [name, *(getattr(c, key) for key, _ in TABLE_COLUMNS)]
        for name, c in [*st.cultures.items(), ("total", st.total)]
    ]
    leak = (
        f"WVS-wording overlap check: {len(st.leakage.flagged_episodes)} episode(s) flagged."
        if st.leakage.checked
        else "WVS-wording overlap check: not run."
    )
    return html_table(["culture", *(h for _, h in TABLE_COLUMNS)], rows) + f"<p class='note'>{esc(leak)}</p>"


def _examples_html(run: RunDir, cultures: Sequence[str], n: int = N_EXAMPLES) -> str:
    episodes = run.episodes()
    if not episodes:
        return "<p class='note'>No episodes in this run directory.</p>"
    judgements = {j.episode_id: j for j in run.judgements()}
    intents = run.intents_by_episode()
    parts: list[str] = []
    for c in sorted(set(cultures) | {e.culture for e in episodes}):
        mine = [e for e in episodes if e.culture == c]
        mine.sort(key=lambda e: (not (judgements.get(e.id) and judgements[e.id].keep), e.id))
        for ep in mine[:n]:
            j = judgements.get(ep.id)
            verdict = (
                "not judged"
                if j is None
                else f"{'kept' if j.keep else 'dropped'} — quality {j.quality} ({j.quality_confidence}), "
                f"alignment {j.alignment} ({j.alignment_confidence}), meta {j.meta} ({j.meta_confidence})"
                + (f", error: {j.error}" if j.error else "")
            )
            lines = []
            for ti, t in enumerate(ep.turns):
                lab = intents.get(ep.id, {}).get(ti)
                intent = ""
                if lab is not None and lab.intent:
                    intent = f"<div class='note'>intent{' (cultural)' if lab.cultural else ''}: {esc(lab.intent)}</div>"
                lines.append(f"<li><b>{esc(t.name)}</b> [{esc(t.action)}]: {esc(t.text)}{intent}</li>")
            parts.append(
                f"<h3>{esc(c)} — {esc(ep.id)}</h3><p class='note'>stop: {esc(ep.stop_reason)}; judge: "
                f"{esc(verdict)}</p><ol start='0'>{''.join(lines)}</ol>"
            )
    return "".join(parts)


def _manifest_html(run: RunDir) -> str:
    manifest = run.manifest()
    if manifest is None:
        return "<p class='note'>No manifest.json.</p>"
    rows = [
        [k, v.status, v.duration_s, json.dumps(v.counts), v.error or ""] for k, v in manifest.stages.items()
    ]
    models = [[role, m.get("spec"), m.get("fingerprint")] for role, m in manifest.models.items()]
    pk = ", ".join(f"{k} {v}" for k, v in manifest.packages.items())
    return (
        html_table(["stage", "status", "seconds", "counts", "error"], rows)
        + html_table(["role", "spec", "fingerprint"], models)
        + f"<p class='note'>Python {esc(manifest.python)}; {esc(pk)}</p>"
    )


def build_report(run: RunDir, *, seed: int = 0) -> Path:
    """Write the run's ``report/index.html`` (+ PNGs, ``before_after.json``, ``culture_map.json``)."""
    out = run.report_dir
    out.mkdir(parents=True, exist_ok=True)
    records, ba = analyse_run(run)
    styles = list(dict.fromkeys(r.style for r in records))
    body: list[str] = []
    body.append(
        f"<p class='note'>Run directory: {esc(run.path)}. Lower KL/JSD/EMD is better, higher accuracy is "
        "better. Δ = adapted − base on the same questions and prompting style (adapted: the mean over the "
        "adapter's training seeds); 95% CIs are a crossed bootstrap over training seeds and questions (see "
        "docs/evaluation.md).</p>"
    )
    if ba is None:
        body.append("<p class='note'>No evaluation records yet (eval/*/per_question.jsonl).</p>")
    else:
        resolved = run.resolved_config()
        body.append("<h2>Verdicts: did cultural learning do this?</h2>" + _verdicts_html(ba))
        body.append(
            "<h2>Reproduction: the paper's published numbers</h2>" + _reproduction_html(ba.reproduction)
        )
        body.append(
            f"<h2>Cross-culture matrix: Δ {esc(PRIMARY.upper())} of every adapter on every culture</h2>"
            "<p class='note'>Rows: the adapters (each culture's, and the no-culture control trained on the same "
            "volume of culture-free data); columns: the culture evaluated; cells: adapter − base [95% CI] (mean "
            "over seeds, with the spread between seeds); the own-culture cell is outlined. Specificity: the gain on "
            "its own culture minus its mean gain on the others.</p>"
        )
        body.append(_control_volume_note(run, ((resolved or {}).get("mix") or {}).get("ablation")))
        for style in styles:
            body.append(f"<h3>{esc(style)} prompts</h3>" + _matrix_html(ba, style, PRIMARY))
            png = matrix_figure(ba, style, PRIMARY, out / f"matrix_{slug(style)}.png")
            if png is not None:
                body.append(img_tag(png, f"cross-culture matrix, {style} prompts"))
        body.append("<h2>Before / after: KL(human ‖ model)</h2>")
        body.append(_table2_html(ba, "kl"))
        body.append(
            "<h2>Before / after: the CLCA paper code's KL variant</h2><p class='note'>"
            + esc(
                "kl_div(log_softmax(model_ext), human_ext) on K+1 vectors, as in the paper's released code: "
                "not a true divergence (an exact match scores > 0); shown to compare with the paper's Table 2."
            )
            + "</p>"
        )
        body.append(_table2_html(ba, "clca_kl"))
        body.append(
            "<h2>Jensen–Shannon distance, EMD, majority match and format mass</h2><p class='note'>Format mass: "
            "the probability that the model's reply gives one of the options at all (log-prob mode); the "
            "distributions above are renormalised over the options, so they stand for this share of its replies.</p>"
        )
        body.append(_extra_html(ba))
        if ba.languages:
            body.append(
                "<h2>Multilingual evaluation: each culture in its own language</h2><p class='note'>"
                + esc(
                    "The cultures of eval.languages were also asked in their language with the same adapters "
                    "(trained on English conversations), as in the CLCA paper's §6.4 (Fig. 4): the prompt styles "
                    "<style>@<language> (paper_persona with the paper's released templates, the rest and the "
                    "questions translated by `clca translate`; reviewed entries win), answers read from the "
                    "translated options. Average: the mean over the cultures' languages (Δ with a crossed "
                    "bootstrap over all of them). The English rows above stay the English evaluation; the "
                    "verdicts and the cross-culture matrices list the translated styles separately."
                )
                + "</p>"
                + _languages_html(ba)
            )
        fig = per_question_figure(records, styles, out / "per_question_change.png")
        if fig is not None:
            body.append("<h2>Per-question changes</h2>" + img_tag(fig, "per-question change of KL"))
        body.append(_culture_map_section(records, out, seed))
    cultures = sorted({r.country for r in records})
    body.append("<h2>Data statistics</h2>" + _stats_html(run))
    body.append("<h2>Example conversations</h2>" + _examples_html(run, cultures))
    body.append("<h2>Run</h2>" + _manifest_html(run))
    page = out / "index.html"
    page.write_text(html_page("CLCA run report", "".join(body)), encoding="utf-8")
    return page


def _control_volume_note(run: RunDir, ablation: str | None) -> str:
    """How the no-culture control's training volume compares with its target (a warning when not within the
    mix's tolerance)."""
    from clca.errors import DataError
    from clca.records import GENERIC
    from clca.training.mix import VOLUME_TOLERANCE

    within = f"within {VOLUME_TOLERANCE:.0%}"
    try:
        st = run.mix(GENERIC, ablation).stats()
    except DataError:
        return ""
    if st is None or not st.target_tokens:
        return ""
    tokens, target = st.train_tokens, st.target_tokens
    text = (
        f"No-culture control's training split: {st.train_examples} examples (target "
        f"{st.target_examples}), {tokens} tokens (target {target}, {st.token_unit}): "
    )
    if st.volume_matched:
        return f"<p class='note'>{esc(text + f'matched {within}.')}</p>"
    return (
        f"<p class='note'><b>{esc(text)}{esc(f'{(tokens / target - 1) * 100:+.0f}%')}, not {within}: its pool of "
        "conversations could not be matched, so part of a difference from it may be the volume.</b></p>"
    )


def _culture_map_section(records: Sequence[QuestionResult], out: Path, seed: int) -> str:
    qids = list(dict.fromkeys(r.qid for r in records))
    cmap = fit_culture_map(qids)
    placements = culture_map_placements(cmap, records)
    png = plot_culture_map(cmap, placements, out / "culture_map.png")
    official = dict(zip(cmap.countries, (tuple(map(float, xy)) for xy in cmap.official), strict=True))
    rows: list[list[object]] = []
    for p in placements:
        own = official.get(p.culture)
        dist = None if own is None else float(np.hypot(p.xy[0] - own[0], p.xy[1] - own[1]))
        inside = "yes" if cmap.clip(p.xy) == p.xy else "no (extrapolated; drawn at the border)"
        rows.append([p.culture, p.label, p.xy[0], p.xy[1], dist, inside])
    data = cmap.to_json()
    data["placements"] = [
        {"culture": p.culture, "label": p.label, "model": p.model, "style": p.style, "xy": list(p.xy)}
        for p in placements
    ]
    write_json_atomic(out / RunDir.CULTURE_MAP, data)
    method = (
        f"Method: each country's expected answer position (scaled to [0,1]) on the {len(cmap.qids)} evaluated "
        f"questions is mapped to its Inglehart–Welzel coordinates ({edition_label(cmap.edition)}, the data "
        "bundle's edition) by ridge regression "
        f"(strength {cmap.alpha:.3g} chosen by leave-one-out) fitted on {len(cmap.countries)} WVS countries. "
        f"Nested leave-one-out error of a held-out country: {cmap.cv_error:.3f} map units "
        f"(predict-the-mean baseline: {cmap.baseline_error:.3f}). Models are placed by applying the same map "
        "to their own answer distributions; distances below that error are not meaningful. A model whose "
        "answers are more extreme than any country's lies outside the countries' range: the linear map "
        "extrapolates there, and the figure draws it at the border."
    )
    return (
        "<h2>Inglehart–Welzel cultural map</h2>"
        + img_tag(png, "Inglehart-Welzel cultural map with models")
        + f"<p class='note'>{esc(method)}</p>"
        + html_table(
            [
                "culture",
                "model · style",
                "traditional/secular",
                "survival/self-expression",
                "distance to the culture's official point",
                "within the countries' range",
            ],
            rows,
        )
    )
