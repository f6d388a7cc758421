"""The before/after analysis of a run (the numbers behind the run report; the page itself is
:mod:`clca.report.pipeline_report`, which only renders).

:func:`before_after` computes, from the run's evaluation records, the controls (:func:`clca.report.controls.analyse`:
the cross-culture matrix, specificity, Δ vs the no-culture control, verdicts) and the Table-2-style rows: per
culture and on average, the base student under each prompting style and the culture's own adapter (mean over
its training seeds) under the same styles, with the change and its seed-aware CI; for the cultures also evaluated
in another language (``eval.languages``: styles ``<style>@<lang>``), the same cells per culture and language
(``languages``) and their average over languages. :func:`analyse_run` adds the reproduction view and writes
``report/before_after.json`` (:class:`~clca.records.BeforeAfter`).
:func:`culture_map_placements` places the models on the Inglehart–Welzel map.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from clca.evaluation import metrics as M
from clca.evaluation.styles import split_name, translated_name
from clca.records import Analysis, BeforeAfter, Estimate, QuestionResult, TableRow
from clca.report.controls import Cube, Term, analyse, crossed_bootstrap, parse_tag
from clca.report.culture_map import CultureMap, Placement
from clca.report.reproduction import reproduction
from clca.rundir import RunDir

#: the metrics of the before/after tables (KL and the paper code's KL variant) and of the extra table
TABLE_METRICS = ("kl", "clca_kl")
EXTRA_METRICS = ("jsd", "emd", "majority_match", "format_mass")


def _metric(r: QuestionResult, name: str) -> float | None:
    v = r.metrics.get(name)
    return None if v is None else float(v)


def _index(records: Sequence[QuestionResult]) -> dict[tuple[str, str, str], dict[str, QuestionResult]]:
    idx: dict[tuple[str, str, str], dict[str, QuestionResult]] = defaultdict(dict)
    for r in records:
        idx[(r.model_tag, r.country, r.style)][r.qid] = r
    return idx


def own_tags(records: Sequence[QuestionResult]) -> dict[str, list[str]]:
    """culture -> the model tags of its own adapters (one per training seed; the control excluded)."""
    cultures = {r.country for r in records}
    out: dict[str, list[str]] = defaultdict(list)
    for tag in sorted({r.model_tag for r in records}):
        a = parse_tag(tag, cultures)
        if a is not None and not a.is_control:
            out[a.trained_on].append(tag)
    return dict(out)


def _mean(recs: dict[str, QuestionResult], metric: str) -> float | None:
    vals = [v for v in (_metric(r, metric) for r in recs.values()) if v is not None]
    return float(np.mean(vals)) if vals else None


def before_after(
    records: Sequence[QuestionResult], styles: Sequence[str], *, n_resamples: int = M.N_BOOTSTRAP
) -> BeforeAfter:
    """The numbers of the report (also written to ``report/before_after.json``).

    ``rows`` (one per culture) and ``average``: the Table-2-style cells (``base|<style>|<metric>``; ``adapted``
    = the culture's own adapter, mean over its training seeds) and ``change`` (adapted − base with the
    seed-aware CI of :mod:`clca.report.controls`). ``matrix``, ``verdicts``, ``adapters``, ``families``: the
    controls (:func:`clca.report.controls.analyse`).
    """
    idx = _index(records)
    tags = own_tags(records)
    cultures = sorted({r.country for r in records if r.model_tag == "base"} | set(tags))
    present = list(dict.fromkeys(k for r in records for k in r.metrics))
    cell_metrics = [m for m in (*TABLE_METRICS, *EXTRA_METRICS, "accuracy", "paper_jsd") if m in present]
    an = analyse(records, styles, metrics=(*TABLE_METRICS, *EXTRA_METRICS), n_resamples=n_resamples)
    cube = Cube(records)
    translated = [s for s in styles if split_name(s)[1]]
    styles = [s for s in styles if not split_name(s)[1]]  # the Table-2 rows: English prompts
    rows: list[TableRow] = []
    for c in cultures:
        row = TableRow(culture=c, adapted_tags=tags.get(c, []))
        for style in styles:
            base = idx.get(("base", c, style), {})
            for metric in cell_metrics:
                row.cells[f"base|{style}|{metric}"] = _mean(base, metric)
                per_seed = [_mean(idx.get((t, c, style), {}), metric) for t in tags.get(c, [])]
                seeds = [v for v in per_seed if v is not None]
                row.cells[f"adapted|{style}|{metric}"] = float(np.mean(seeds)) if seeds else None
            for metric in (*TABLE_METRICS, *EXTRA_METRICS):
                own = next((m for m in an.matrix[style][metric] if m.trained_on == c), None)
                row.change[f"{style}|{metric}"] = own.cells[c] if own else Estimate()
        rows.append(row)
    avg = TableRow(culture="Average")
    if rows:
        for key in rows[0].cells:
            vals = [v for r in rows if (v := r.cells.get(key)) is not None]
            avg.cells[key] = float(np.mean(vals)) if vals else None
        adapted = [c for c in cultures if c in tags]
        for style in styles:
            for metric in (*TABLE_METRICS, *EXTRA_METRICS):
                terms = [
                    t
                    for c in adapted
                    for t in (
                        Term(1 / len(adapted), cube.rows(tags[c], c, style, metric), c),
                        Term(-1 / len(adapted), cube.rows(["base"], c, style, metric), "base"),
                    )
                ]
                avg.change[f"{style}|{metric}"] = (
                    crossed_bootstrap(terms, n_resamples=n_resamples) if terms else Estimate()
                )
    languages = _language_rows(records, translated, an, cube, idx, tags, cell_metrics, n_resamples)
    return BeforeAfter(
        **{**dict(an), "cultures": cultures}, styles=list(styles), rows=rows, average=avg, languages=languages
    )


def _language_rows(
    records: Sequence[QuestionResult],
    translated: Sequence[str],
    an: Analysis,
    cube: Cube,
    idx: dict[tuple[str, str, str], dict[str, QuestionResult]],
    tags: dict[str, list[str]],
    cell_metrics: Sequence[str],
    n_resamples: int,
) -> list[TableRow]:
    """The multilingual rows: per culture and language its cells under each translated style, keyed by the
    English style (``base|paper_persona|kl`` from ``paper_persona@zh``), then their ``Average`` over the
    (culture, language) pairs (language ``all``; its change a crossed bootstrap over all of them)."""
    pairs = sorted({(r.country, split_name(r.style)[1]) for r in records if r.style in translated})
    out: list[TableRow] = []
    for c, lang in pairs:
        row = TableRow(culture=c, language=lang, adapted_tags=tags.get(c, []))
        for style in (s for s in translated if split_name(s)[1] == lang):
            base_name = split_name(style)[0]
            if not idx.get(("base", c, style)) and not any(idx.get((t, c, style)) for t in tags.get(c, [])):
                continue
            for metric in cell_metrics:
                row.cells[f"base|{base_name}|{metric}"] = _mean(idx.get(("base", c, style), {}), metric)
                per_seed = [_mean(idx.get((t, c, style), {}), metric) for t in tags.get(c, [])]
                seeds = [v for v in per_seed if v is not None]
                row.cells[f"adapted|{base_name}|{metric}"] = float(np.mean(seeds)) if seeds else None
            for metric in (*TABLE_METRICS, *EXTRA_METRICS):
                own = next((m for m in an.matrix[style][metric] if m.trained_on == c), None)
                row.change[f"{base_name}|{metric}"] = own.cells.get(c, Estimate()) if own else Estimate()
        out.append(row)
    if not out:
        return out
    avg = TableRow(culture="Average", language="all")
    for key in dict.fromkeys(k for r in out for k in r.cells):
        vals = [v for r in out if (v := r.cells.get(key)) is not None]
        avg.cells[key] = float(np.mean(vals)) if vals else None
    for base_name in dict.fromkeys(split_name(s)[0] for s in translated):
        adapted = [
            (c, translated_name(base_name, lang))
            for c, lang in pairs
            if translated_name(base_name, lang) in translated and c in tags
        ]
        for metric in (*TABLE_METRICS, *EXTRA_METRICS):
            terms = [
                t
                for c, style in adapted
                for t in (
                    Term(1 / len(adapted), cube.rows(tags[c], c, style, metric), c),
                    Term(-1 / len(adapted), cube.rows(["base"], c, style, metric), "base"),
                )
            ]
            avg.change[f"{base_name}|{metric}"] = (
                crossed_bootstrap(terms, n_resamples=n_resamples) if terms else Estimate()
            )
    return [*out, avg]


def culture_map_placements(cmap: CultureMap, records: Sequence[QuestionResult]) -> list[Placement]:
    """Place base (each style, per culture) and adapted models (each style, own culture) on the map."""
    tags = own_tags(records)
    groups: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(dict)
    for r in records:
        groups[(r.model_tag, r.country, r.style)][r.qid] = list(r.model_dist)
    out: list[Placement] = []
    for (tag, country, style), dists in sorted(groups.items()):
        if tag == "base":
            model = "base"
        elif tag in tags.get(country, []):
            model = "adapted"
        else:
            continue
        if not any(q in dists for q in cmap.qids):
            continue
        out.append(Placement(f"{tag} · {style}", country, cmap.place(dists), model, style))
    return out


def analyse_run(run: RunDir) -> tuple[list[QuestionResult], BeforeAfter | None]:
    """The run's evaluation records and their :class:`~clca.records.BeforeAfter` with the reproduction view,
    written to ``report/before_after.json`` (``None`` and nothing written when there are no records)."""
    records = run.eval_records()
    if not records:
        return records, None
    styles = list(dict.fromkeys(r.style for r in records))
    ba = before_after(records, styles)
    parsers = {getattr(r, "parser", "") for r in records if r.mode == "generate"}  # who read each answer
    ba.reproduction = reproduction(run.resolved_config(), ba, {r.qid for r in records}, parsers)
    run.report_dir.mkdir(parents=True, exist_ok=True)
    run.write_before_after(ba)
    return records, ba
