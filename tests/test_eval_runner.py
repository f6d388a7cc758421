"""The evaluation runner with a scripted Backend (canned answers): records, resume, modes, personas, CLI errors."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from clca.cli import main
from clca.evaluation import EvalConfig, evaluate
from clca.evaluation import metrics as M
from clca.llm.testing import ScriptedBackend
from clca.records import QuestionResult
from clca.report.eval_report import write_eval_report
from clca.runs import JsonlStore

FIX = Path(__file__).parent / "fixtures"


def Scripted(texts: Sequence[str] = ("2",)) -> ScriptedBackend:
    """Prefers option "2" in scoring; generation cycles through canned texts."""
    counter = itertools.count()
    return ScriptedBackend(
        lambda chat: texts[next(counter) % len(texts)],
        spec="scripted:test",
        fingerprint="scripted-v1",
        score_fn=lambda r: [-abs(int(o) - 2) - 1.0 for o in r.options],
    )


def _cfg(tmp_path: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {
        "out_dir": tmp_path / "ev",
        "model_tag": "m1",
        "countries": ["China", "Germany"],
        "questions": "Q1,Q7,Q45",
        "styles": ["plain", "cultural"],
        "batch_size": 5,
    }
    base.update(kw)
    return EvalConfig.model_validate(base)


def test_logprob_records_metrics_and_resume(tmp_path: Path, data_dir: Path) -> None:
    be = Scripted()
    res = evaluate(be, _cfg(tmp_path))
    assert res.n_new == 12 and len(res.records) == 12
    assert sum(len(c) for c in be.score_calls) == 12 and all(len(c) <= 5 for c in be.score_calls)
    rec = next(r for r in res.records if r.id == "m1|China|cultural|Q1")
    assert rec.prompts[0].messages[0]["content"].startswith("You are an average human being born in China")
    assert rec.prompts[0].option_logprobs == [-2.0, -1.0, -2.0, -3.0]
    assert rec.model_dist == pytest.approx(M.softmax_logprobs([-2.0, -1.0, -2.0, -3.0]))
    # every number is recomputable from the record alone
    assert rec.metrics["jsd"] == pytest.approx(M.js_distance(rec.human_dist, rec.model_dist))
    assert rec.metrics["kl"] == pytest.approx(M.kl_divergence(rec.human_dist, rec.model_dist))
    assert rec.metrics["clca_kl"] == pytest.approx(M.clca_kl(rec.human_dist, rec.model_dist))
    q7 = next(r for r in res.records if r.qid == "Q7")
    assert q7.codes == [1, 2]
    # shared prefix order: prompts with the same system message are adjacent in the flattened requests
    systems = [
        r.messages[0]["content"] if r.messages[0]["role"] == "system" else ""
        for c in be.score_calls
        for r in c
    ]
    changes = sum(1 for a, b in itertools.pairwise(systems) if a != b)
    assert changes == 3  # China/plain, China/cultural, Germany/plain, Germany/cultural
    doc = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    groups = {(g["model_tag"], g["country"], g["style"]): g for g in doc["groups"]}
    g = groups[("m1", "China", "plain")]
    jsds = [
        float(r.metrics["jsd"] or 0.0) for r in res.records if r.country == "China" and r.style == "plain"
    ]
    assert g["metrics"]["jsd"]["mean"] == pytest.approx(sum(jsds) / 3)
    assert g["metrics"]["jsd"]["ci_low"] <= g["metrics"]["jsd"]["mean"] <= g["metrics"]["jsd"]["ci_high"]
    assert groups[("m1", "ALL", "plain")]["n_questions"] == 6
    assert "clca_kl" in doc["metric_definitions"] and doc["configs"]["m1"]["questions"] == "Q1,Q7,Q45"
    # resume: nothing is recomputed
    be2 = Scripted()
    res2 = evaluate(be2, _cfg(tmp_path))
    assert be2.score_calls == [] and res2.n_new == 0 and res2.n_skipped == 12 and len(res2.records) == 12
    # extending the selection computes only the new questions
    be3 = Scripted()
    res3 = evaluate(be3, _cfg(tmp_path, questions="Q1-Q2,Q7,Q45"))
    assert res3.n_new == 4 and sum(len(c) for c in be3.score_calls) == 4
    # a second model in the same out dir
    evaluate(Scripted(), _cfg(tmp_path, model_tag="m2"))
    doc = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(doc["configs"]) == {"m1", "m2"} and {g["model_tag"] for g in doc["groups"]} == {"m1", "m2"}
    assert len(JsonlStore(tmp_path / "ev" / "per_question.jsonl", QuestionResult).all()) == 28


def test_generation_mode_invalid_bucket(tmp_path: Path, data_dir: Path) -> None:
    be = Scripted(["2", "I cannot answer that", "3", "2"])
    res = evaluate(
        be, _cfg(tmp_path, mode="generate", samples=4, styles=["plain"], countries=["Japan"], questions="Q1")
    )
    (rec,) = res.records
    assert rec.prompts[0].parsed == [2, None, 3, 2]
    assert rec.model_dist == pytest.approx([0.0, 0.5, 0.25, 0.0]) and rec.invalid_share == pytest.approx(0.25)
    assert rec.metrics["clca_kl"] == pytest.approx(M.clca_kl(rec.human_dist, rec.model_dist, 0.25))
    # the unparseable answer stays in the distribution as a fifth bucket (0 on the survey side)
    assert rec.metrics["jsd"] == pytest.approx(M.js_distance([*rec.human_dist, 0.0], [0, 0.5, 0.25, 0, 0.25]))


def test_generation_mode_reads_with_both_parsers(tmp_path: Path, data_dir: Path) -> None:
    """Every generated answer is read by both parsers: the configured one scores it (``parsed``), the other's
    reading is kept (``parsed_other``), and metrics.json says which parser scored and how often they differ."""
    texts = ["2. Rather important", "On a scale of 1 to 4, I would say 3", "4", "Yes"]
    kw: dict[str, object] = {"mode": "generate", "samples": 4, "styles": ["plain"], "countries": ["Japan"]}
    res = evaluate(Scripted(texts), _cfg(tmp_path, questions="Q1", **kw))
    (rec,) = res.records
    assert rec.parser == "clca"
    assert rec.prompts[0].parsed == [2, 3, 4, None] and rec.prompts[0].parsed_other == [None, None, 4, 1]
    assert rec.invalid_share == pytest.approx(0.25) and rec.metrics["parser_disagreement"] == pytest.approx(
        0.75
    )
    doc = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert doc["parsers"]["m1"] == {
        "parser": "clca",
        "other": "paper",
        "answers": 4,
        "disagreements": 3,
        "disagreement_share": 0.75,
        "unchecked": 0,
    }
    assert doc["configs"]["m1"]["parser"] == "clca" and "parser_disagreement" in doc["metric_definitions"]
    res = evaluate(Scripted(texts), _cfg(tmp_path, questions="Q1", model_tag="m2", parser="paper", **kw))
    (rec,) = res.records
    assert rec.parser == "paper" and rec.prompts[0].parsed == [None, None, 4, 1]
    assert rec.invalid_share == pytest.approx(0.5)
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["parsers"]["m2"]["parser"] == "paper"
    # log-prob records carry no parser and no reading
    res = evaluate(Scripted(), _cfg(tmp_path, questions="Q1", model_tag="m3", styles=["plain"]))
    assert res.records[0].parser == "" and "parser_disagreement" not in res.records[0].metrics
    assert "m3" not in json.loads((tmp_path / "ev" / "metrics.json").read_text())["parsers"]


def test_persona_mode_with_respondent_fixture(tmp_path: Path, data_dir: Path) -> None:
    be = Scripted()
    res = evaluate(
        be, _cfg(tmp_path, styles=["persona"], respondents=str(FIX / "wvb"), personas=2, questions="Q1,Q45")
    )
    rec = next(r for r in res.records if r.id == "m1|China|persona|Q1")
    assert len(rec.prompts) == 2 and {p.persona_id for p in rec.prompts} == {"156070001", "156070002"}
    system = next(p for p in rec.prompts if p.persona_id == "156070001").messages[0]["content"]
    assert (
        "Settlement: Capital city" in system
        and "Urban or rural: Urban" in system
        and "Age: 25-34 years" in system
    )
    # model always says 2; respondents answered Q1 with 1 and 2
    assert rec.metrics["accuracy"] == pytest.approx(0.5)
    with pytest.raises(Exception, match="--respondents"):
        evaluate(be, _cfg(tmp_path, styles=["persona"], model_tag="x"))


def test_reasoning_style_generates_then_scores(tmp_path: Path, data_dir: Path) -> None:
    be = Scripted(["People there value family highly.\nAnswer: 1"])
    res = evaluate(be, _cfg(tmp_path, styles=["anthropological"], countries=["Japan"], questions="Q1"))
    (rec,) = res.records
    assert len(be.calls) == 1
    (req,) = be.score_calls[0]
    assert req.answer_prefix == "People there value family highly.\nAnswer: "
    assert rec.prompts[0].generations == ["People there value family highly.\nAnswer: 1"]


def test_goqa_survey_and_report_escapes(tmp_path: Path, data_dir: Path) -> None:
    cfg = _cfg(
        tmp_path,
        survey=str(FIX / "goqa_3rows.csv"),
        countries=["Britain", "Japan"],
        questions="all",
    )
    res = evaluate(Scripted(), cfg)
    write_eval_report(cfg.out_dir)
    assert {r.qid for r in res.records} == {"Q1", "Q2", "Q3"}
    assert all(r.metrics["emd"] is None for r in res.records)
    assert any("no human distribution for Japan" in n for n in res.notes)
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "&lt;b&gt;good&lt;/b&gt;" in html and "<b>good" not in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "data:image/png;base64," in html
    assert list((tmp_path / "ev").glob("fig_heatmap_jsd_*.png")) and list(
        (tmp_path / "ev").glob("fig_bar_*.png")
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--countries", "Atlantis"], "country 'Atlantis'"),
        (["--questions", "Q999"], "question id 'Q999'"),
        (["--styles", "plain,fancy"], "unknown prompt style 'fancy'"),
        (["--model", "nonsense"], "cannot resolve model spec"),
        (["--survey", "FIXTURE_BAD"], "line 2"),
        (["--mode", "vibes"], "'--mode': 'vibes' is not one of"),
    ],
)
def test_cli_bad_input_one_line(
    args: list[str], needle: str, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('question,selections,options,source\n"q","{oops","[\'a\', \'b\']",GAS\n')
    args = [str(bad) if a == "FIXTURE_BAD" else a for a in args]
    if "--questions" not in args:
        args = ["--questions", "Q1", *args]
    code = main(["eval", "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "Fix:" in err


def test_cli_data_listing(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    assert main(["data", "countries"]) == 0
    out = capsys.readouterr().out
    assert "Great Britain" in out and "46 countries" in out
    assert main(["data", "questions", "--questions", "Q1-Q2"]) == 0
    out = capsys.readouterr().out
    assert "Important in life: Family" in out and "Q3 " not in out


def test_check_sampling_compares_samples_with_the_scored_distribution(tmp_path: Path, data_dir: Path) -> None:
    """--check-sampling N: N answers per prompt at temperature 1, parsed like generate mode; their histogram
    against the scored distribution, next to the JSD expected from sampling noise alone."""
    import json

    texts = ["2", "2", "3", "no idea"]
    be = Scripted(texts)
    res = evaluate(
        be, _cfg(tmp_path, styles=["plain"], countries=["Japan"], questions="Q1", check_sampling=4)
    )
    (rec,) = res.records
    gen = [c for c in be.calls if c.params.temperature == 1.0]
    assert len(gen) == 1 and len(gen[0].chats) == 4 and gen[0].seeds == [0, 1, 2, 3]
    cal = [json.loads(x) for x in (tmp_path / "ev" / "calibration.jsonl").read_text().splitlines()]
    assert len(cal) == 1 and cal[0]["id"] == rec.id
    assert cal[0]["samples"] == 4 and cal[0]["valid"] == 3 and cal[0]["unparseable_share"] == 0.25
    assert cal[0]["sampled"] == pytest.approx([0, 2 / 3, 1 / 3, 0])
    assert cal[0]["jsd"] == pytest.approx(M.js_distance([0, 2 / 3, 1 / 3, 0], rec.model_dist))
    # the noise reference: histograms of 3 draws from the scored distribution itself
    assert 0 < cal[0]["jsd_noise"] < 1
    assert res.metrics.calibration is not None
    assert res.metrics.calibration["m1"].mean_unparseable_share == 0.25
    # resumable: a second run samples nothing new
    be2 = Scripted(texts)
    evaluate(be2, _cfg(tmp_path, styles=["plain"], countries=["Japan"], questions="Q1", check_sampling=4))
    assert be2.calls == []


def test_noise_jsd_shrinks_with_more_samples() -> None:
    from clca.evaluation.calibrate import noise_jsd

    dist = [0.5, 0.3, 0.2]
    assert noise_jsd(dist, 1000) < noise_jsd(dist, 50) < noise_jsd(dist, 5)
    assert noise_jsd(dist, 64, seed=1) == noise_jsd(dist, 64, seed=1)
