"""Controls that make a before/after claim evidence: cross-culture matrix, no-culture control, seeds, verdicts.

A run evaluates every adapter (one per culture and training seed, plus the no-culture control per seed; see
:meth:`clca.rundir.RunDir.model_tag`) on every culture of the run. From the per-question metrics this module
computes, per prompting style and metric:

* the **matrix** of Δ = adapter − base per (culture the adapter was trained on, culture evaluated), the mean
  over training seeds of the mean over questions, with its 95% CI, the per-seed means and their spread;
* the **specificity** of a culture's adapter: its Δ on its own culture minus its mean Δ on the other cultures;
* Δ **adapter − no-culture control** on the adapter's own culture;
* a **verdict** per culture and style on the primary metric (KL): improved over base? beyond the no-culture
  control? specific to its culture? Each answer is "yes" only when its 95% CI lies on the better side of 0,
  "no" when it lies on the worse side, and "not shown" otherwise.

**Intervals.** A two-way (crossed) percentile bootstrap over training seeds and questions
(:func:`crossed_bootstrap`): each resample draws the questions with replacement (the same draw for every term,
so differences stay paired by question) and, independently per trained model family, the training seeds with
replacement; the statistic is recomputed on the resampled grid. With one seed it is the paired bootstrap over
questions; when seeds disagree, the seed draw widens the interval. The base model has no training seed.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from clca.evaluation import metrics as M
from clca.evaluation.styles import split_name
from clca.records import (
    GENERIC,
    AdapterRef,
    Analysis,
    CellEstimate,
    Estimate,
    MatrixRow,
    QuestionResult,
    Verdict,
)
from clca.rundir import CONTROL, RunDir

#: +1 when higher is better, -1 when lower is better
BETTER = {
    "kl": -1,
    "jsd": -1,
    "emd": -1,
    "clca_kl": -1,
    "paper_jsd": -1,
    "majority_match": 1,
    "accuracy": 1,
}
PRIMARY = "kl"
MATRIX_METRICS = ("kl", "jsd", "emd", "majority_match")
METHOD = (
    "95% CIs: two-way (crossed) percentile bootstrap over training seeds and questions, "
    f"{M.N_BOOTSTRAP} resamples: questions are drawn with replacement (one draw shared by every model, so "
    "differences stay paired by question) and each trained model family's seeds are drawn with replacement "
    "independently; with one seed this is the paired bootstrap over questions. A verdict is 'yes' only when "
    "the CI lies entirely on the better side of 0, 'no' when entirely on the worse side, else 'not shown'."
)


@dataclass(frozen=True)
class Adapter:
    """One evaluated adapter: its model tag, the culture it was trained on (``generic`` = the no-culture
    control) and its training seed (``None`` when the run trained one seed)."""

    tag: str
    trained_on: str
    seed: int | None

    @property
    def is_control(self) -> bool:
        return self.trained_on == GENERIC


def parse_tag(tag: str, cultures: Iterable[str]) -> Adapter | None:
    """The :class:`Adapter` behind a model tag (``clca-china-s1``, ``control-no-culture``; see
    :meth:`clca.rundir.RunDir.parse_model_tag`); ``None`` for the base model and for tags of other tools."""
    parsed = RunDir.parse_model_tag(tag, cultures)
    return None if parsed is None else Adapter(tag, *parsed)


def label(trained_on: str) -> str:
    """How an adapter family is named in the report."""
    return f"{CONTROL} control" if trained_on == GENERIC else f"CLCA {trained_on}"


# ----------------------------------------------------------------------------------------------------------
# The crossed bootstrap
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Term:
    """``coef`` × (mean over seeds of the mean over questions of ``rows``); ``rows``: seeds × questions (NaN =
    missing). Terms of one ``group`` are the same trained models and share their seed draw."""

    coef: float
    rows: np.ndarray
    group: str


def _row_means(rows: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(rows, axis=-1))


def crossed_bootstrap(
    terms: Sequence[Term], *, n_resamples: int = M.N_BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> Estimate:
    """Σ coef × term with a crossed seeds × questions percentile bootstrap CI (see the module docstring).

    Only questions every term has (in at least one seed) count. Returns ``mean``, ``ci`` ([lo, hi], ``None``
    with fewer than 2 questions and 1 seed per term), ``n`` (questions) and ``seeds`` (the most seeds of a term).
    """
    if not terms:
        return Estimate()
    cols = np.all([np.any(~np.isnan(t.rows), axis=0) for t in terms], axis=0)
    q = int(cols.sum())
    rows = [t.rows[:, cols] for t in terms]
    rows = [r[~np.all(np.isnan(r), axis=1)] for r in rows]
    if q == 0 or any(r.shape[0] == 0 for r in rows):
        return Estimate()
    point = float(sum(t.coef * float(np.mean(_row_means(r))) for t, r in zip(terms, rows, strict=True)))
    most = max(r.shape[0] for r in rows)
    if q < 2 and most < 2:
        return Estimate(mean=point, ci=None, n=q, seeds=most)
    rng = np.random.default_rng(seed)
    qi = rng.integers(0, q, size=(n_resamples, q))
    draws: dict[tuple[str, int], np.ndarray] = {}
    stats = np.zeros(n_resamples)
    for t, r in zip(terms, rows, strict=True):
        s = r.shape[0]
        key = (t.group, s)
        if key not in draws:
            draws[key] = rng.integers(0, s, size=(n_resamples, s))
        per_seed = _row_means(r[:, qi]).T  # (resamples, seeds): each seed's mean over the drawn questions
        picked = np.take_along_axis(per_seed, draws[key], axis=1)
        stats += t.coef * _row_means(picked)
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(stats, [alpha, 1.0 - alpha])
    return Estimate(mean=point, ci=[float(lo), float(hi)], n=q, seeds=most)


def verdict(result: Estimate | None, better: int) -> str:
    """ "yes" (CI on the better side of 0), "no" (on the worse side), "not shown", or "n/a" (no estimate)."""
    if result is None or result.mean is None:
        return "n/a"
    ci = result.ci
    if not ci:
        return "not shown"
    lo, hi = sorted((better * ci[0], better * ci[1]))
    if lo > 0:
        return "yes"
    if hi < 0:
        return "no"
    return "not shown"


# ----------------------------------------------------------------------------------------------------------
# The analysis of a run's records
# ----------------------------------------------------------------------------------------------------------


def _qid_key(q: str) -> tuple[int, str]:
    digits = "".join(ch for ch in q if ch.isdigit())
    return (int(digits) if digits else 0, q)


class Cube:
    """Per-question metric values of a run's records: (tag, country, style, metric) -> {qid: value}."""

    def __init__(self, records: Sequence[QuestionResult]) -> None:
        self.values: dict[tuple[str, str, str, str], dict[str, float]] = defaultdict(dict)
        for r in records:
            for name, v in r.metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
                    self.values[(r.model_tag, r.country, r.style, name)][r.qid] = float(v)
        self.qids = sorted({r.qid for r in records}, key=_qid_key)

    def rows(self, tags: Sequence[str], country: str, style: str, metric: str) -> np.ndarray:
        """seeds (tags) × questions, NaN where missing."""
        out = np.full((len(tags), len(self.qids)), np.nan)
        for i, tag in enumerate(tags):
            vals = self.values.get((tag, country, style, metric), {})
            for j, q in enumerate(self.qids):
                if q in vals:
                    out[i, j] = vals[q]
        return out


def _with_seed_stats(res: Estimate, delta_rows: np.ndarray) -> CellEstimate:
    """``res`` with each seed's mean Δ and their standard deviation (a matrix cell)."""
    means = [float(x) for x in _row_means(delta_rows) if x == x]
    sd = float(np.std(means, ddof=1)) if len(means) > 1 else None
    return CellEstimate(**res.model_dump(), per_seed=means, seed_sd=sd)


def analyse(
    records: Sequence[QuestionResult],
    styles: Sequence[str],
    *,
    metrics: Sequence[str] = MATRIX_METRICS,
    n_resamples: int = M.N_BOOTSTRAP,
    seed: int = 0,
) -> Analysis:
    """The matrix, specificity, control comparison and verdicts of a run's evaluation records.

    Returns the :class:`~clca.records.Analysis`: ``cultures`` (evaluated), ``adapters`` (tag, trained_on,
    seed), ``families`` (trained_on -> seeds), ``matrix[style][metric]`` (one :class:`~clca.records.MatrixRow`
    per adapter family: cells per evaluated culture with the seeds' spread, specificity, Δ vs the control),
    ``verdicts`` (per culture and style, on :data:`PRIMARY`) and ``method``.
    """
    cube = Cube(records)
    cultures = sorted({r.country for r in records})
    adapters = sorted(
        (a for a in (parse_tag(t, cultures) for t in {r.model_tag for r in records}) if a is not None),
        key=lambda a: (a.is_control, a.trained_on, a.seed if a.seed is not None else -1),
    )
    families: dict[str, list[Adapter]] = defaultdict(list)
    for a in adapters:
        families[a.trained_on].append(a)
    control = families.get(GENERIC)
    boot = {"n_resamples": n_resamples, "seed": seed}

    def fam_rows(on: str, country: str, style: str, metric: str) -> np.ndarray:
        return cube.rows([a.tag for a in families[on]], country, style, metric)

    # a style in another language (paper_persona@zh) was asked for the cultures of that language only
    evaluated = {
        style: sorted({r.country for r in records if r.style == style}) if split_name(style)[1] else cultures
        for style in styles
    }
    matrix: dict[str, dict[str, list[MatrixRow]]] = {}
    for style in styles:
        matrix[style] = {}
        in_style = evaluated[style]
        for metric in metrics:
            table: list[MatrixRow] = []
            for on in families:
                row = MatrixRow(trained_on=on, label=label(on), cells={})
                for c in in_style:
                    a_rows, b_rows = fam_rows(on, c, style, metric), cube.rows(["base"], c, style, metric)
                    res = crossed_bootstrap([Term(1, a_rows, on), Term(-1, b_rows, "base")], **boot)
                    row.cells[c] = _with_seed_stats(res, a_rows - b_rows)
                others = [c for c in in_style if c != on]
                if on != GENERIC and on in in_style and others:
                    terms = [
                        Term(1, fam_rows(on, on, style, metric), on),
                        Term(-1, cube.rows(["base"], on, style, metric), "base"),
                    ]
                    for c in others:
                        terms += [
                            Term(-1 / len(others), fam_rows(on, c, style, metric), on),
                            Term(1 / len(others), cube.rows(["base"], c, style, metric), "base"),
                        ]
                    row.specificity = crossed_bootstrap(terms, **boot)
                if on != GENERIC and on in in_style and control:
                    row.vs_control = crossed_bootstrap(
                        [
                            Term(1, fam_rows(on, on, style, metric), on),
                            Term(-1, fam_rows(GENERIC, on, style, metric), GENERIC),
                        ],
                        **boot,
                    )
                table.append(row)
            matrix[style][metric] = table

    verdicts: list[Verdict] = []
    for style in styles:
        rows = {r.trained_on: r for r in matrix[style].get(PRIMARY, [])}
        for c in evaluated[style]:
            if c not in rows:
                continue
            verdicts.append(_verdict(c, style, rows[c], control is not None, len(evaluated[style])))
    return Analysis(
        cultures=cultures,
        primary_metric=PRIMARY,
        adapters=[AdapterRef(tag=a.tag, trained_on=a.trained_on, seed=a.seed) for a in adapters],
        families={on: [a.seed for a in fam] for on, fam in families.items()},
        matrix=matrix,
        verdicts=verdicts,
        method=METHOD,
    )


def fmt_ci(res: Estimate | None) -> str:
    """``+0.1234 [+0.0100, +0.2000]`` (``no estimate`` / ``(no CI)`` where they are missing)."""
    if res is None or res.mean is None:
        return "no estimate"
    ci = res.ci
    return f"{res.mean:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else " (no CI)")


def _verdict(culture: str, style: str, row: MatrixRow, has_control: bool, n_cultures: int) -> Verdict:
    better = BETTER[PRIMARY]
    own = row.cells.get(culture) or CellEstimate(per_seed=[], seed_sd=None)
    improved = verdict(own, better)
    beyond = verdict(row.vs_control, better) if has_control else "n/a (no no-culture control in this run)"
    specific = verdict(row.specificity, better) if n_cultures > 1 else "n/a (needs at least two cultures)"
    metric = "KL" if PRIMARY == "kl" else PRIMARY
    sentence = (
        f"{culture}, {style} prompts: improved over the base model: {improved} "
        f"(Δ {metric} {fmt_ci(own)}); beyond the no-culture control: {beyond}"
        + (f" ({fmt_ci(row.vs_control)})" if has_control else "")
        + f"; specific to {culture}: {specific}"
        + (f" (own − others {fmt_ci(row.specificity)})" if n_cultures > 1 else "")
        + "."
    )
    return Verdict(
        culture=culture,
        style=style,
        metric=PRIMARY,
        improved_over_base=improved,
        beyond_control=beyond,
        specific=specific,
        change=own,
        vs_control=row.vs_control,
        specificity=row.specificity,
        sentence=sentence,
    )
