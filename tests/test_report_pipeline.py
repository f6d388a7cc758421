"""The before/after report on a hand-built run directory (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clca.cli import main
from clca.evaluation.metrics import question_metrics
from clca.manifest import RunManifest
from clca.records import (
    Character,
    Episode,
    Estimate,
    Intent,
    Judgement,
    MixStats,
    QuestionResult,
    Turn,
    result_id,
)
from clca.report.before_after import before_after
from clca.report.pipeline_report import build_report
from clca.rundir import RunDir
from clca.runs import JsonlStore
from clca.stats import compute_stats

QIDS = ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"]
EVIL = "<script>alert('x')</script>"


def _human(data_dir: Path, country: str) -> dict[str, tuple[list[str], list[float]]]:
    out = {}
    for line in (data_dir / "wvs7/country_distributions.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        if r["country"] == country and r["qid"] in QIDS:
            out[r["qid"]] = (r["options"], r["probs"])
    return out


def _record(
    tag: str, country: str, style: str, qid: str, opts: list[str], human: list[float], model: list[float]
) -> QuestionResult:
    return QuestionResult(
        id=result_id(tag, country, style, qid),
        model_tag=tag,
        model_spec="scripted",
        survey="wvs7",
        country=country,
        style=style,
        qid=qid,
        question=f"question {qid}",
        options=opts,
        codes=list(range(1, len(opts) + 1)),
        ordinal=True,
        mode="logprob",
        prompts=[],
        model_dist=model,
        human_dist=human,
        metrics=question_metrics(human, model, ordinal=True),
    )


def _mix(h: list[float], w: float) -> list[float]:
    k = len(h)
    return [w * x + (1 - w) / k for x in h]


@pytest.fixture()
def run_dir(tmp_path: Path, data_dir: Path) -> Path:
    """Base = uniform (plain) / 30% human (cultural); adapted = 70% human: adaptation lowers KL everywhere."""
    run = tmp_path / "run"
    for country, tag in (("China", "clca-china"), ("Japan", "clca-japan")):
        human = _human(data_dir, country)
        base_recs, ad_recs = [], []
        for qid, (opts, h) in human.items():
            base_recs.append(_record("base", country, "plain", qid, opts, h, _mix(h, 0.0)))
            base_recs.append(_record("base", country, "cultural", qid, opts, h, _mix(h, 0.3)))
            ad_recs.append(_record(tag, country, "plain", qid, opts, h, _mix(h, 0.7)))
            ad_recs.append(_record(tag, country, "cultural", qid, opts, h, _mix(h, 0.7)))
        JsonlStore(run / "eval/base/per_question.jsonl", QuestionResult).extend(base_recs)
        JsonlStore(run / f"eval/{tag}/per_question.jsonl", QuestionResult).extend(ad_recs)
    ep = Episode(
        id="sc1#s0",
        scenario_id="sc1",
        culture="China",
        sample=0,
        seed=0,
        model="scripted",
        turns=[
            Turn(speaker=0, name="Li Wei", action="speak", text=f"Hello {EVIL}"),
            Turn(speaker=1, name="Wang <b>Fang</b>", action="leave", text="Bye"),
        ],
        stop_reason="leave",
    )
    JsonlStore(run / "episodes.jsonl", Episode).append(ep)
    JsonlStore(run / "judgements.jsonl", Judgement).append(
        Judgement(
            id=ep.id,
            episode_id=ep.id,
            culture="China",
            model="j",
            quality="good",
            quality_confidence="confident",
            meta="good",
            meta_confidence="very confident",
            keep=True,
        )
    )
    JsonlStore(run / "intents.jsonl", Intent).append(
        Intent(
            id=f"{ep.id}:0",
            episode_id=ep.id,
            culture="China",
            turn_index=0,
            speaker=0,
            name="Li Wei",
            intent=f"greet politely {EVIL}",
            cultural=True,
        )
    )
    compute_stats(RunDir(run))
    m = RunManifest(RunDir(run).manifest_file)
    with m.running("scenarios", "abc") as rec:
        rec.counts["scenarios[China]"] = 1
    _ = Character  # records used above share this module
    return run


def test_before_after_numbers(run_dir: Path) -> None:
    recs = RunDir(run_dir).eval_records()
    assert len(recs) == 2 * 2 * 2 * len(QIDS)
    ba = before_after(recs, ["plain", "cultural"])
    assert ba.cultures == ["China", "Japan"]
    china = ba.rows[0]
    base = [r for r in recs if r.model_tag == "base" and r.country == "China" and r.style == "plain"]
    ad = {r.qid: r for r in recs if r.model_tag == "clca-china" and r.style == "plain"}
    want_base = float(np.mean([r.metrics["kl"] for r in base]))
    assert china.cell("base", "plain", "kl") == pytest.approx(want_base)
    diffs = [ad[r.qid].metrics["kl"] - r.metrics["kl"] for r in base]  # type: ignore[operator]
    ch = china.change["plain|kl"]
    assert ch.mean == pytest.approx(float(np.mean(diffs)))
    assert ch.n == len(QIDS) and ch.ci is not None
    lo, hi = ch.ci
    assert lo <= ch.mean <= hi < 0  # adaptation lowered KL on every question
    avg = ba.average
    assert avg.cell("base", "plain", "kl") == pytest.approx(
        np.mean([r.cell("base", "plain", "kl") for r in ba.rows])
    )
    # the average change: the mean of the cultures' changes, questions resampled jointly across cultures
    assert avg.change["plain|kl"].n == len(QIDS)
    assert avg.change["plain|kl"].mean == pytest.approx(np.mean([r.change["plain|kl"].mean for r in ba.rows]))
    # the fixture evaluates each adapter on its own culture only: the matrix has those cells, the rest empty
    row = next(r for r in ba.matrix["plain"]["kl"] if r.trained_on == "China")
    assert row.cells["China"].mean == pytest.approx(ch.mean)
    assert row.cells["Japan"].mean is None
    assert {v.culture for v in ba.verdicts} == {"China", "Japan"}
    # accuracy change is reported too (may be 0: the mixtures keep the argmax)
    assert "plain|majority_match" in china.change


def test_change_only_uses_common_questions(run_dir: Path) -> None:
    recs = [r for r in RunDir(run_dir).eval_records() if not (r.model_tag == "clca-china" and r.qid == "Q1")]
    ba = before_after(recs, ["plain", "cultural"], n_resamples=200)
    china, japan = ba.row("China"), ba.row("Japan")
    assert china is not None and japan is not None
    assert china.change["plain|kl"].n == len(QIDS) - 1
    assert japan.change["plain|kl"].n == len(QIDS)
    none = before_after([r for r in recs if r.model_tag == "base"], ["plain"], n_resamples=200)
    assert none.rows[0].change["plain|kl"] == Estimate()
    assert none.verdicts == []


def test_report_page(run_dir: Path) -> None:
    page = build_report(RunDir(run_dir))
    html = page.read_text(encoding="utf-8")
    assert EVIL not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "Wang &lt;b&gt;Fang&lt;/b&gt;" in html
    assert "<script" not in html.lower()
    for needle in (
        "Before / after",
        "paper code",
        "Inglehart",
        "leave-one-out",
        "Example conversations",
        "greet politely",
        "kept",
        "turns (pairs)",
        "clca-china",
        "Average",
    ):
        assert needle in html, needle
    out = run_dir / "report"
    assert (out / "culture_map.png").stat().st_size > 10_000
    assert (out / "per_question_change.png").stat().st_size > 5_000
    cm = json.loads((out / "culture_map.json").read_text())
    assert cm["cv_mean_euclidean_error"] < cm["baseline_mean_euclidean_error"]
    kinds = {(p["culture"], p["model"], p["style"]) for p in cm["placements"]}
    assert ("China", "adapted", "cultural") in kinds and ("Japan", "base", "plain") in kinds
    assert json.loads((out / "before_after.json").read_text())["cultures"] == ["China", "Japan"]


def test_report_cli(run_dir: Path, tmp_path: Path) -> None:
    assert main(["report", "--run", str(run_dir)]) == 0
    assert (run_dir / "report/index.html").exists()
    assert main(["report", "--run", str(tmp_path / "missing")]) == 2


def test_report_on_an_empty_run(tmp_path: Path) -> None:
    page = build_report(RunDir(tmp_path))
    assert "No evaluation records yet" in page.read_text()


def test_control_volume_note_reads_the_runs_ablation(tmp_path: Path) -> None:
    """The note reads the control's mix of the run's ablation (``mix/no-culture--<ablation>``) and says whether
    its tokens came within the mix's tolerance of the target."""
    from clca.records import GENERIC
    from clca.report.pipeline_report import _control_volume_note

    run = RunDir(tmp_path / "run")
    stats = MixStats(
        path=run.mix_dir(GENERIC, "no-intents"),
        culture=GENERIC,
        train_examples=8,
        target_examples=8,
        train_tokens=1100,
        target_tokens=1000,
        volume_matched=False,
        token_unit="student tokenizer",
        validation_examples=0,
        train_by_task={},
        validation_by_task={},
        available_by_task={},
        episodes_total=4,
        episodes_used=4,
        episodes_train=4,
        episodes_validation=0,
        excluded={},
        config={},
        seed=0,
    )
    run.mix(GENERIC, "no-intents").write_stats(stats)
    assert _control_volume_note(run, None) == ""  # no control mix without the ablation
    note = _control_volume_note(run, "no-intents")
    assert "+10%, not within 5%" in note and "<b>" in note
    run.mix(GENERIC, "no-intents").write_stats(stats.model_copy(update={"volume_matched": True}))
    assert "matched within 5%." in _control_volume_note(run, "no-intents")
