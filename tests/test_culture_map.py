"""The Inglehart–Welzel map fit on the real data bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clca.report.culture_map import Placement, expected_position, fit_culture_map, plot_culture_map


def test_expected_position() -> None:
    assert expected_position([1, 0, 0, 0]) == 0.0
    assert expected_position([0, 0, 0, 1]) == 1.0
    assert expected_position([0.5, 0, 0.5]) == pytest.approx(0.5)
    assert expected_position([1, 1]) == pytest.approx(0.5)  # unnormalised input is normalised
    with pytest.raises(ValueError):
        expected_position([1.0])


def test_fit_beats_the_mean_baseline(data_dir: Path) -> None:
    paper_q = [f"Q{i}" for i in range(1, 46) if i != 42]
    cmap = fit_culture_map(paper_q)
    assert len(cmap.countries) == 46
    assert cmap.qids == paper_q
    assert np.isfinite(cmap.cv_error) and np.isfinite(cmap.baseline_error)
    assert cmap.cv_error < 0.75 * cmap.baseline_error  # measured: 0.54 vs 1.29 map units
    # held-out predictions really are out of sample: not identical to the official points
    assert np.all(np.linalg.norm(cmap.cv_predictions - cmap.official, axis=1) > 0)


def test_a_country_placed_by_its_own_answers_lands_near_its_point(data_dir: Path) -> None:
    cmap = fit_culture_map()
    rows = [json.loads(line) for line in (data_dir / "wvs7/country_distributions.jsonl").open()]
    for country in ("Japan", "Iraq"):
        dists = {r["qid"]: r["probs"] for r in rows if r["country"] == country}
        x, y = cmap.place(dists)
        official = cmap.official[cmap.countries.index(country)]
        assert np.hypot(x - official[0], y - official[1]) < cmap.baseline_error
    # Japan (secular) and Iraq (traditional) keep their order on the traditional/secular axis
    jp = cmap.place({r["qid"]: r["probs"] for r in rows if r["country"] == "Japan"})
    iq = cmap.place({r["qid"]: r["probs"] for r in rows if r["country"] == "Iraq"})
    assert jp[0] > iq[0]


def test_few_questions_is_worse_but_works(data_dir: Path) -> None:
    small = fit_culture_map(["Q1", "Q2", "Q3"])
    full = fit_culture_map()
    assert small.cv_error > full.cv_error


def test_plot(tmp_path: Path, data_dir: Path) -> None:
    cmap = fit_culture_map(["Q1", "Q2", "Q3", "Q4", "Q5"])
    ps = [
        Placement("base · plain", "China", (0.1, -0.2), "base", "plain"),
        Placement("clca-china · plain", "China", (0.5, -0.4), "adapted", "plain"),
    ]
    out = plot_culture_map(cmap, ps, tmp_path / "m.png")
    assert out.stat().st_size > 10_000
    js = cmap.to_json()
    countries = js["countries"]
    assert (
        isinstance(countries, list)
        and len(countries) == 46
        and js["cv_mean_euclidean_error"] == cmap.cv_error
    )


def test_extrapolated_placements_are_clipped_for_drawing(data_dir: Path) -> None:
    cmap = fit_culture_map(["Q1", "Q2", "Q3"])
    (lo0, hi0), (lo1, hi1) = cmap.bounds()
    assert lo0 < float(cmap.official[:, 0].min()) and hi1 > float(cmap.official[:, 1].max())
    assert cmap.clip((0.0, 0.0)) == (0.0, 0.0)
    assert cmap.clip((99.0, -99.0)) == (hi0, lo1)


def test_the_method_names_the_edition(data_dir: Path) -> None:
    cmap = fit_culture_map(["Q1", "Q2", "Q3"])
    assert cmap.edition == "wvsa-2022"  # the shared bundle holds the official 2022 points
    js = cmap.to_json()
    assert js["edition"] == "wvsa-2022"
    assert "Inglehart-Welzel coordinates of the bundle's wvsa-2022 edition (official 2022 points)" in str(
        js["method"]
    )
