"""The controls of a before/after claim on constructed evaluation records: the cross-culture matrix, the
seed-aware bootstrap, the verdict logic and the reproduction view."""

from __future__ import annotations

import numpy as np
import pytest

from clca.records import GENERIC, BeforeAfter, QuestionResult, TableRow, Verdict, result_id
from clca.report.before_after import before_after
from clca.report.controls import Adapter, Term, analyse, crossed_bootstrap, parse_tag, verdict
from clca.report.reproduction import paper_student, reproduction

QIDS = [f"Q{i}" for i in range(1, 21)]
CULTURES = ["China", "Germany"]


def rec(tag: str, country: str, qid: str, kl: float, style: str = "plain") -> QuestionResult:
    return QuestionResult(
        id=result_id(tag, country, style, qid),
        model_tag=tag,
        model_spec="constructed",
        survey="wvs7",
        country=country,
        style=style,
        qid=qid,
        question=qid,
        options=["a", "b"],
        codes=[1, 2],
        ordinal=False,
        mode="logprob",
        prompts=[],
        model_dist=[0.5, 0.5],
        human_dist=[0.5, 0.5],
        metrics={"kl": kl, "jsd": kl / 2, "emd": kl / 3, "majority_match": 1.0},
    )


def noise(seed: int, n: int = len(QIDS), scale: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n)


def build(
    gain: dict[tuple[str, str, int], float], seeds: list[int], *, control: bool = True
) -> list[QuestionResult]:
    """Base KL 0.5 (+ question noise) on every culture; adapter (trained_on, seed) on culture c: base + gain
    [(trained_on, c, seed)] (default 0) + its own small noise. ``trained_on`` GENERIC = the control."""
    out: list[QuestionResult] = []
    base = {c: 0.5 + noise(i, scale=0.05) for i, c in enumerate(CULTURES)}
    for c in CULTURES:
        out += [rec("base", c, q, float(base[c][j])) for j, q in enumerate(QIDS)]
    fams = [*CULTURES, *([GENERIC] if control else [])]
    multi = len(seeds) > 1
    for f in fams:
        for s in seeds:
            if f == GENERIC:
                tag = "control-no-culture" + (f"-s{s}" if multi else "")
            else:
                tag = f"clca-{f.lower()}" + (f"-s{s}" if multi else "")
            for ci, c in enumerate(CULTURES):
                eps = noise(100 + 10 * s + ci + 7 * fams.index(f))
                g = gain.get((f, c, s), 0.0)
                out += [rec(tag, c, q, float(base[c][j] + g + eps[j])) for j, q in enumerate(QIDS)]
    return out


def verdicts(records: list[QuestionResult]) -> dict[str, Verdict]:
    return {v.culture: v for v in analyse(records, ["plain"], n_resamples=400).verdicts}


def test_parse_tag() -> None:
    assert parse_tag("clca-great-britain-s1", ["Great Britain"]) == Adapter(
        "clca-great-britain-s1", "Great Britain", 1
    )
    assert parse_tag("clca-china", ["China"]) == Adapter("clca-china", "China", None)
    assert parse_tag("control-no-culture-s2", ["China"]) == Adapter("control-no-culture-s2", GENERIC, 2)
    assert parse_tag("base", ["China"]) is None
    assert parse_tag("clca-atlantis", ["China"]) is None


def test_crossed_bootstrap_one_seed_is_the_question_bootstrap() -> None:
    d = np.array([[0.1, 0.3, -0.2, 0.4]])
    res = crossed_bootstrap([Term(1, d, "a")], n_resamples=2000)
    assert res.mean == pytest.approx(0.15)
    assert res.n == 4 and res.seeds == 1
    assert res.ci is not None
    lo, hi = res.ci
    assert -0.2 <= lo < 0.15 < hi <= 0.4
    # a base term with one row subtracts exactly
    res2 = crossed_bootstrap([Term(1, d + 1.0, "a"), Term(-1, np.ones((1, 4)), "base")], n_resamples=2000)
    assert res2.mean == pytest.approx(0.15)
    assert res2.ci == pytest.approx(res.ci)
    # questions a term lacks are left out for every term; too little data gives no CI
    gap = np.array([[0.1, np.nan, 0.5, 0.2]])
    assert crossed_bootstrap([Term(1, d, "a"), Term(-1, gap, "b")]).n == 3
    assert crossed_bootstrap([Term(1, np.array([[0.2]]), "a")]).ci is None


def test_seed_aware_ci_widens_when_seeds_disagree() -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(0.0, 0.02, 30)
    agree = np.vstack([q - 0.05, q - 0.05])
    disagree = np.vstack([q - 0.15, q + 0.05])  # same mean (-0.05), seeds 0.2 apart
    a = crossed_bootstrap([Term(1, agree, "a")])
    b = crossed_bootstrap([Term(1, disagree, "a")])
    assert a.mean == pytest.approx(b.mean)
    width = lambda r: r.ci[1] - r.ci[0]  # noqa: E731
    assert width(b) > 3 * width(a)
    assert verdict(a, -1) == "yes" and verdict(b, -1) == "not shown"


def test_matrix_has_a_cell_per_adapter_and_culture() -> None:
    an = analyse(build({}, [0, 1]), ["plain"], n_resamples=200)
    rows = an.matrix["plain"]["kl"]
    assert [r.trained_on for r in rows] == ["China", "Germany", GENERIC]
    for r in rows:
        assert set(r.cells) == set(CULTURES)
        for cell in r.cells.values():
            assert cell.mean is not None and cell.ci is not None and len(cell.ci) == 2 and cell.n == len(QIDS)
            assert cell.seeds == 2 and len(cell.per_seed) == 2 and cell.seed_sd is not None
        dumped = r.model_dump(mode="json")  # absent, not null, in before_after.json
        assert ("specificity" in dumped) == (r.trained_on != GENERIC)
        assert ("vs_control" in dumped) == (r.trained_on != GENERIC)
    assert an.families == {"China": [0, 1], "Germany": [0, 1], GENERIC: [0, 1]}


def test_verdict_specific_gain() -> None:
    """China's adapter lowers KL on China only; the control changes nothing."""
    gain = {("China", "China", s): -0.1 for s in (0, 1)}
    v = verdicts(build(gain, [0, 1]))["China"]
    assert (v.improved_over_base, v.beyond_control, v.specific) == ("yes", "yes", "yes")
    assert "China, plain prompts: improved over the base model: yes" in str(v.sentence)
    g = verdicts(build(gain, [0, 1]))["Germany"]
    assert g.improved_over_base == "not shown" and g.specific == "not shown"


def test_verdict_general_gain_is_not_cultural() -> None:
    """Any fine-tuning lowers KL everywhere by the same amount: improved, but neither beyond the control
    nor specific."""
    gain = {(f, c, s): -0.1 for f in (*CULTURES, GENERIC) for c in CULTURES for s in (0, 1)}
    v = verdicts(build(gain, [0, 1]))["China"]
    assert v.improved_over_base == "yes"
    assert v.beyond_control == "not shown"
    assert v.specific == "not shown"


def test_verdict_gain_inside_seed_noise() -> None:
    """Seed 0 lowers KL a lot, seed 1 raises it: with one seed it would look like a gain; with both, not shown."""
    gain = {("China", "China", 0): -0.2, ("China", "China", 1): 0.15}
    v = verdicts(build(gain, [0, 1]))["China"]
    assert v.improved_over_base == "not shown"
    one = verdicts(build({("China", "China", 0): -0.2}, [0]))["China"]
    assert one.improved_over_base == "yes"


def test_verdict_worse_and_without_control() -> None:
    v = verdicts(build({("China", "China", 0): 0.2}, [0], control=False))["China"]
    assert v.improved_over_base == "no"
    assert v.beyond_control.startswith("n/a")  # type: ignore[union-attr]


def test_before_after_uses_the_seed_mean_of_the_own_adapter() -> None:
    gain = {("China", "China", 0): -0.1, ("China", "China", 1): -0.3}
    recs = build(gain, [0, 1])
    ba = before_after(recs, ["plain"], n_resamples=200)
    china = ba.row("China")
    assert china is not None and china.adapted_tags == ["clca-china-s0", "clca-china-s1"]
    base = np.mean([r.metrics["kl"] for r in recs if r.model_tag == "base" and r.country == "China"])
    assert china.change["plain|kl"].mean == pytest.approx(-0.2, abs=0.01)
    assert china.cell("adapted", "plain", "kl") == pytest.approx(base - 0.2, abs=0.01)
    # the file round-trips through its model; the average row has no adapted_tags key
    doc = ba.model_dump(mode="json")
    assert "adapted_tags" not in doc["average"] and BeforeAfter.model_validate(doc) == ba


def test_reproduction_view() -> None:
    assert paper_student("hf:Qwen/Qwen2.5-0.5B-Instruct") == "Qwen2.5 0.5B"
    assert paper_student("openai:meta-llama/Llama-3.1-8B-Instruct@http://h:8000/v1") == "Llama3.1 8B"
    assert paper_student("hf:/models/Qwen2.5-0.5B-Instruct+adapter=/a") == "Qwen2.5 0.5B"
    assert paper_student("embedded:smollm2-135m") is None
    ba = BeforeAfter(
        cultures=["China"],
        primary_metric="kl",
        adapters=[],
        families={},
        matrix={},
        verdicts=[],
        method="",
        styles=["paper_persona", "paper_cultural"],
        rows=[
            TableRow(
                culture="China",
                cells={
                    "base|paper_persona|clca_kl": 0.60,
                    "adapted|paper_persona|clca_kl": 0.55,
                    "base|paper_cultural|clca_kl": 0.58,
                },
            )
        ],
        average=TableRow(culture="Average"),
    )
    qids = {f"Q{i}" for i in range(1, 42)} | {"Q43", "Q44", "Q45"}
    cfg = {
        "models": {
            "student": "hf:Qwen/Qwen2.5-0.5B-Instruct",
            "teacher": "openai:gpt-4o@https://api.openai.com/v1",
            "actor": "hf:Qwen/Qwen2.5-72B-Instruct",  # not the paper's actor, but of its size: a caveat
        },
        "train": {"preset": "paper"},
        "judge": {"rule": "paper"},
        "scenarios": {"source": "both", "per_culture": 200},
        "eval": {"protocol": "paper", "parser": "paper", "personas": 1000},
        "mix": {},
    }
    rep = reproduction(cfg, ba, qids)
    assert rep.comparable and rep.model == "Qwen2.5 0.5B"
    kl = next(r for r in rep.rows if r.metric == "KL-D (persona)")
    assert kl.paper_base == 0.6381 and kl.paper_clca == 0.6130
    assert kl.base_diff == pytest.approx(0.60 - 0.6381) and kl.clca_diff == pytest.approx(0.55 - 0.6130)
    assert any(c.startswith("models.actor:") for c in rep.caveats or [])
    assert not any(r.table == "Table 5" for r in rep.rows)  # averages need all five cultures
    demo = {**cfg, "models": {"student": "embedded:smollm2-135m"}, "eval": {"protocol": "logprob"}}
    rep = reproduction(demo, ba, set(QIDS))
    assert not rep.comparable
    assert any("not one of the paper's students" in w for w in rep.why)
    assert any("protocol" in w for w in rep.why) and any("44" in w for w in rep.why)
