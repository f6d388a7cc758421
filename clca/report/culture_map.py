"""Place language models on the Inglehart–Welzel cultural map.

The bundle's map points (:attr:`DataBundle.inglehart_welzel <clca.data.layout.DataBundle.inglehart_welzel>`,
in the edition :func:`clca.data.editions.inglehart_welzel_edition` names: the official 2022 points or the IVS
wave-7 points) give each country two coordinates: traditional (< 0) vs secular-rational (> 0) values, and
survival (< 0) vs self-expression (> 0) values. The map scores come from factor analysis of ten WVS items,
most of which lie outside the block the CLCA evaluation asks (Q1–Q45). To put a *model* on the same map we
therefore learn a map from the answers we do have:

1. **Features.** For each of the 46 countries in ``wvs7/country_distributions.jsonl`` and each evaluated
   question, the expected answer position ``sum_k p_k * k / (K - 1)`` (option index ``k = 0..K-1``), i.e.
   the mean answer scaled to [0, 1]. A question a country did not ask is filled with the mean over the
   other countries.
2. **Map.** A ridge regression (features centred, intercept unpenalised) from these features to the two
   map coordinates (``CultureMap.official``: the points of the bundle's edition). The ridge strength is
   chosen by closed-form leave-one-out error on the countries.
3. **Honest error.** A nested leave-one-out cross-validation (the strength is re-chosen without the
   held-out country) gives the mean Euclidean error of a held-out country's predicted position, reported
   next to the error of predicting the mean of the other countries (the trivial baseline).
4. **Models.** A model's answer distributions for the same questions (from the evaluation's
   ``per_question.jsonl``) go through the same features and the same fitted map.

The map is linear and fitted on the WVS countries that have map points (46 with the official 2022 points,
43 with the IVS edition, which lacks Iraq, Macao and Tajikistan), so treat a model's position as a summary of its answers in map
units, with the cross-validated error as its resolution.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clca.data.editions import inglehart_welzel_edition
from clca.data.layout import DataBundle
from clca.data.wvs import read_wvs_rows
from clca.errors import DataError

ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-3, 3, 19))


def expected_position(probs: Sequence[float]) -> float:
    """Mean answer position of a distribution over ``K`` ordered options, scaled to [0, 1]."""
    p = np.asarray(probs, dtype=float)
    total = p.sum()
    if p.size < 2 or total <= 0 or not np.isfinite(total):
        raise ValueError(f"need a distribution over at least 2 options with positive mass, got {list(probs)}")
    p = p / total
    return float(np.dot(p, np.arange(p.size)) / (p.size - 1))


#: the map edition in a few words, for the method sentence and the figure's title
EDITION_LABELS: dict[str, str] = {
    "wvsa-2022": "official 2022 points",
    "ivs-wave7": "IVS wave-7 points, latest year 2017-2023",
    "user": "user-supplied points",
    "unknown": "points of unknown edition",
}


def edition_label(edition: str) -> str:
    """``"ivs-wave7"`` -> ``"IVS wave-7 points, latest year 2017-2023"`` (the id itself when unknown)."""
    return EDITION_LABELS.get(edition, edition)


def _load_iw() -> dict[str, tuple[float, float]]:
    path = DataBundle.current().inglehart_welzel
    out: dict[str, tuple[float, float]] = {}
    with path.open(encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), 2):
            try:
                out[row["iso3"]] = (float(row["trad_sec"]), float(row["surv_self"]))
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    f"{path}, line {i}: needs numeric iso3,trad_sec,surv_self columns.",
                    fix="restore the file from the clca data bundle.",
                ) from None
    return out


@functools.lru_cache(maxsize=4)
def _country_positions(path: str, _mtime: float) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Expected answer position per country and question (cached per file version)."""
    by_country: dict[str, dict[str, float]] = {}
    iso_of: dict[str, str] = {}
    for r in read_wvs_rows(path):
        iso_of[r.country] = r.iso3
        by_country.setdefault(r.country, {})[r.qid] = expected_position(r.probs)
    return by_country, iso_of


def _ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights (p, d) and intercept (d,) with centred features; dual form (n is small)."""
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    gram = xc @ xc.T
    w = xc.T @ np.linalg.solve(gram + alpha * np.eye(len(x)), yc)
    return w, ym - xm @ w


def _loo_scores(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[float]:
    """Mean Euclidean closed-form leave-one-out error of ridge (unpenalised intercept) for each alpha.

    One eigendecomposition of the centred Gram matrix serves every alpha: the hat matrix is
    ``V diag(s / (s + alpha)) V^T + 1/n`` and the LOO residual is ``(y - y_hat) / (1 - h_ii)``.
    """
    n = len(x)
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    s, v = np.linalg.eigh(xc @ xc.T)
    s = np.clip(s, 0.0, None)
    vty = v.T @ yc
    out = []
    for a in alphas:
        shrink = s / (s + a)
        fitted = v @ (shrink[:, None] * vty)
        h = (v**2) @ shrink + 1.0 / n
        resid = (yc - fitted) / (1.0 - h)[:, None]
        out.append(float(np.mean(np.linalg.norm(resid, axis=1))))
    return out


def _best_alpha(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> float:
    scores = _loo_scores(x, y, alphas)
    return float(alphas[int(np.argmin(scores))])


@dataclass
class CultureMap:
    """A fitted linear map from expected-answer features to Inglehart–Welzel coordinates."""

    qids: list[str]
    countries: list[str]
    iso3: list[str]
    official: np.ndarray  # (n, 2) map points of the countries (the bundle's edition)
    features: np.ndarray  # (n, q)
    fill: np.ndarray  # (q,) per-question mean used for missing answers
    weights: np.ndarray  # (q, 2)
    intercept: np.ndarray  # (2,)
    alpha: float
    cv_error: float  # nested leave-one-out mean Euclidean error of a held-out country
    baseline_error: float  # leave-one-out error of predicting the other countries' mean
    cv_predictions: np.ndarray = field(repr=False)  # (n, 2) held-out predictions
    #: the edition of the map points (:func:`clca.data.editions.inglehart_welzel_edition`), e.g. "ivs-wave7"
    edition: str = "unknown"

    def features_for(self, dists: Mapping[str, Sequence[float]]) -> np.ndarray:
        """Feature vector of one answerer (``qid -> distribution``); missing questions take the country mean."""
        vec = self.fill.copy()
        for j, q in enumerate(self.qids):
            if q in dists:
                vec[j] = expected_position(dists[q])
        return vec

    def place(self, dists: Mapping[str, Sequence[float]]) -> tuple[float, float]:
        """Map position (trad_sec, surv_self) of a model given its answer distributions per question."""
        known = [q for q in self.qids if q in dists]
        if not known:
            raise DataError(
                "none of the map's questions has a model distribution, so the model cannot be placed.",
                fix=f"evaluate the model on some of {', '.join(self.qids[:5])}...",
            )
        xy = self.features_for(dists) @ self.weights + self.intercept
        return float(xy[0]), float(xy[1])

    def bounds(self, margin: float = 0.5) -> tuple[tuple[float, float], tuple[float, float]]:
        """The countries' range on each axis, widened by ``margin`` map units (the drawn map area)."""
        lo, hi = self.official.min(axis=0) - margin, self.official.max(axis=0) + margin
        return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))

    def clip(self, xy: tuple[float, float]) -> tuple[float, float]:
        """``xy`` moved onto the border of :meth:`bounds` when it lies outside (an extrapolated placement)."""
        (lo0, hi0), (lo1, hi1) = self.bounds()
        return (min(max(xy[0], lo0), hi0), min(max(xy[1], lo1), hi1))

    def to_json(self) -> dict[str, object]:
        return {
            "method": "ridge regression from expected answer positions (scaled to [0,1]) to the "
            f"Inglehart-Welzel coordinates of the bundle's {self.edition} edition ({edition_label(self.edition)}); "
            "strength by leave-one-out; error by nested leave-one-out",
            "edition": self.edition,
            "questions": self.qids,
            "alpha": self.alpha,
            "cv_mean_euclidean_error": self.cv_error,
            "baseline_mean_euclidean_error": self.baseline_error,
            "countries": [
                {
                    "country": c,
                    "iso3": i,
                    "official": [float(v) for v in o],
                    "cv_predicted": [float(v) for v in p],
                }
                for c, i, o, p in zip(
                    self.countries, self.iso3, self.official, self.cv_predictions, strict=True
                )
            ],
        }


def fit_culture_map(
    qids: Sequence[str] | None = None,
    *,
    alphas: Sequence[float] = ALPHAS,
) -> CultureMap:
    """Fit the map on the WVS countries for the given questions (default: Q1–Q45 that the bundle has)."""
    iw = _load_iw()
    edition = inglehart_welzel_edition().id
    path = DataBundle.current().wvs_distributions
    by_country, iso_of = _country_positions(str(path), path.stat().st_mtime)
    asked = {q for d in by_country.values() for q in d}
    if qids is None:
        qids = [f"Q{i}" for i in range(1, 46)]
    wanted = [q for q in dict.fromkeys(qids) if q in asked]
    if len(wanted) < 2:
        raise DataError(
            f"the culture map needs at least 2 WVS questions, got {list(qids)[:10]}.",
            fix="evaluate on more questions (e.g. Q1-Q45).",
        )
    countries = sorted(c for c in by_country if iso_of[c] in iw)
    if len(countries) < 5:
        raise DataError(
            f"only {len(countries)} WVS countries have map points in {DataBundle.INGLEHART_WELZEL}.",
            fix=f"restore the data bundle's {DataBundle.INGLEHART_WELZEL}.",
        )
    feats = np.full((len(countries), len(wanted)), np.nan)
    for i, c in enumerate(countries):
        for j, q in enumerate(wanted):
            feats[i, j] = by_country[c].get(q, np.nan)
    fill = np.nanmean(feats, axis=0)
    feats = np.where(np.isnan(feats), fill[None, :], feats)
    y = np.array([iw[iso_of[c]] for c in countries])
    n = len(countries)

    preds = np.zeros_like(y)
    base = np.zeros_like(y)
    for i in range(n):
        keep = np.arange(n) != i
        a = _best_alpha(feats[keep], y[keep], alphas)
        w, b = _ridge_fit(feats[keep], y[keep], a)
        preds[i] = feats[i] @ w + b
        base[i] = y[keep].mean(axis=0)
    alpha = _best_alpha(feats, y, alphas)
    w, b = _ridge_fit(feats, y, alpha)
    return CultureMap(
        qids=wanted,
        countries=countries,
        iso3=[iso_of[c] for c in countries],
        official=y,
        features=feats,
        fill=fill,
        weights=w,
        intercept=b,
        alpha=alpha,
        cv_error=float(np.mean(np.linalg.norm(preds - y, axis=1))),
        baseline_error=float(np.mean(np.linalg.norm(base - y, axis=1))),
        cv_predictions=preds,
        edition=edition,
    )


@dataclass
class Placement:
    """One evaluated model (under one prompting style, for one culture) placed on the map."""

    label: str  # e.g. "base · plain", "clca-china · cultural"
    culture: str  # the culture it was evaluated for
    xy: tuple[float, float]  # (trad_sec, surv_self)
    model: str  # "base" or "adapted"
    style: str  # prompting style, e.g. "plain", "cultural"


_MARKERS = {("base", 0): "o", ("base", 1): "s", ("adapted", 0): "*", ("adapted", 1): "P"}


def _marker(model: str, style_index: int) -> str:
    return _MARKERS.get((model, min(style_index, 1)), "^" if model == "base" else "X")


def plot_culture_map(cmap: CultureMap, placements: Sequence[Placement], path: Path) -> Path:
    """Draw the countries at their official points and each placement, with arrows base → adapted per style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(9, 7))
    ax.scatter(cmap.official[:, 1], cmap.official[:, 0], s=14, c="#bbbbbb", zorder=1)
    evaluated = {p.culture for p in placements}
    for c, (ts, ss) in zip(cmap.countries, cmap.official, strict=True):
        strong = c in evaluated
        ax.annotate(
            c,
            (ss, ts),
            fontsize=8 if strong else 6,
            color="black" if strong else "#777777",
            fontweight="bold" if strong else "normal",
            xytext=(2, 2),
            textcoords="offset points",
        )
    cultures = sorted(evaluated)
    styles = list(dict.fromkeys(p.style for p in placements))
    palette = plt.get_cmap("tab10")
    for ci, culture in enumerate(cultures):
        color = palette(ci % 10)
        mine = [p for p in placements if p.culture == culture]
        for p in mine:
            shown = cmap.clip(p.xy)
            if shown != p.xy:
                ax.annotate(
                    f"off map ({p.xy[0]:.1f}, {p.xy[1]:.1f})",
                    (shown[1], shown[0]),
                    fontsize=6,
                    color=color,
                    xytext=(4, -8),
                    textcoords="offset points",
                )
            ax.scatter(
                shown[1],
                shown[0],
                marker=_marker(p.model, styles.index(p.style)),
                s=110 if p.model == "adapted" else 70,
                color=color,
                edgecolors="black",
                zorder=3,
            )
        for s in (p for p in mine if p.model == "base"):
            for e in (p for p in mine if p.model == "adapted" and p.style == s.style):
                a, b = cmap.clip(s.xy), cmap.clip(e.xy)
                ax.annotate(
                    "",
                    xy=(b[1], b[0]),
                    xytext=(a[1], a[0]),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2, "alpha": 0.8},
                    zorder=2,
                )
    handles: list[Line2D] = []
    labels: list[str] = []
    for model in ("base", "adapted"):
        for si, style in enumerate(styles):
            handles.append(
                Line2D(
                    [], [], marker=_marker(model, si), linestyle="", markerfacecolor="#cccccc", color="black"
                )
            )
            labels.append(f"{'base model' if model == 'base' else 'adapted (CLCA)'}, {style} prompt")
    handles += [Line2D([], [], marker="o", linestyle="", color=palette(i % 10)) for i in range(len(cultures))]
    labels += [f"evaluated for {c}" for c in cultures]
    ax.legend(handles, labels, fontsize=7, loc="lower right")
    (lo0, hi0), (lo1, hi1) = cmap.bounds()
    ax.set_xlim(lo1 - 0.1, hi1 + 0.1)
    ax.set_ylim(lo0 - 0.1, hi0 + 0.1)
    ax.axhline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.axvline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.set_xlabel("survival (−) ↔ self-expression (+) values")
    ax.set_ylabel("traditional (−) ↔ secular-rational (+) values")
    ax.set_title(
        f"Inglehart–Welzel map ({edition_label(cmap.edition)}); models placed by a ridge map on "
        f"{len(cmap.qids)} questions\n"
        f"leave-one-out error {cmap.cv_error:.2f} map units (predict-the-mean baseline {cmap.baseline_error:.2f})",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
