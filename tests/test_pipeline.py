"""The one-command pipeline: resumption after a crash, no duplicates, consistency checks, plan, manifest.

The fast tests run every real stage (scenarios, role-play, judge, intents, stats, mix, evaluation, report) on
clca's scripted backend, injected through ``run_pipeline(load_backend=...)``; only training is replaced
(``replace={"train": ...}``) by a body that writes an adapter folder. One slow test runs ``clca run`` end to end
on the real embedded model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from clca.config import RunConfig, config_from_mapping
from clca.errors import ClcaError
from clca.llm.base import Backend, Chat, ScoreRequest
from clca.llm.testing import ScriptedBackend, stage_reply
from clca.manifest import RunManifest
from clca.pipeline import Stage, StageContext, plan, run_pipeline
from clca.rundir import RunDir

TEACHER, ACTOR, JUDGE, STUDENT = "scripted:auto", "hf:actor-model", "hf:judge-model", "hf:student-model"


class World:
    """The scripted models of a test run, and what happened to them."""

    def __init__(self) -> None:
        self.loaded: list[ScriptedBackend] = []
        self.crash_actor_after: int | None = None
        self.drop: set[str] = set()  # demonyms whose conversations the judge finds very confidently bad
        self.trained: list[Any] = []

    def _judge(self, chat: Chat) -> str:
        user = chat[-1]["content"]
        if any(f"{d} culture" in user or f"a {d} (" in user for d in self.drop) and "Quality:" in user:
            return "Quality: bad\nConfidence: very confident"
        return stage_reply(chat)

    def load(self, spec: str) -> Backend:
        def scores(r: ScoreRequest) -> list[float]:  # different per model (and adapter), deterministic
            h = hashlib.sha256((spec + json.dumps(r.messages)).encode()).digest()
            return [-1.0 - h[i % 32] / 64.0 for i in range(len(r.options))]

        reply = self._judge if spec == JUDGE else stage_reply
        crash = self.crash_actor_after if spec == ACTOR else None
        be = ScriptedBackend(
            reply, spec=spec, fingerprint=f"scripted:{spec}", score_fn=scores, crash_after=crash
        )
        self.loaded.append(be)
        return be

    def train(self, ctx: StageContext, stage: Stage) -> dict[str, int]:
        out = stage.outputs[0]
        assert (ctx.run.mix_dir(stage.meta["variant"]) / "mix_stats.json").exists()
        out.mkdir(parents=True, exist_ok=True)
        (out / "adapter_config.json").write_text("{}")
        self.trained.append(
            ctx.cfg.train.resolve(model=ctx.cfg.models.student, seed=stage.meta["train_seed"])
        )
        return {"steps": 1}

    def run(self, cfg: RunConfig, **kw: Any) -> Any:
        return run_pipeline(cfg, progress=False, load_backend=self.load, replace={"train": self.train}, **kw)


def _cfg(tmp_path: Path, *overrides: str) -> RunConfig:
    data = {
        "run_dir": str(tmp_path / "run"),
        "cultures": ["China", "Japan"],
        "models": {"teacher": TEACHER, "actor": ACTOR, "judge": JUDGE, "student": STUDENT},
        "scenarios": {"per_culture": 2},
        "simulate": {"samples": 2, "max_turns": 2},
        "train": {"preset": "cpu", "overrides": {"max_steps": 2}},
        "eval": {"questions": "Q1-Q3", "styles": ["plain", "cultural"], "bootstrap": 50},
        "mix": {"val_fraction": 0.0},
    }
    return config_from_mapping(data, overrides=list(overrides))


def test_resume_after_crash_skips_done_stages_without_duplicates(tmp_path: Path, data_dir: Path) -> None:
    world = World()
    world.crash_actor_after = 2  # the actor dies in the third role-play round
    cfg = _cfg(tmp_path)
    run = RunDir(cfg.run_dir)
    with pytest.raises(RuntimeError, match="simulated crash"):
        world.run(cfg)
    man = json.loads(run.manifest_file.read_text())
    assert man["stages"]["scenarios"]["status"] == "done"
    counts = man["stages"]["scenarios"]["counts"]
    assert counts["scenarios[China]"] == 2 and counts["scenarios[Japan]"] == 2 and counts["failed"] == 0
    assert counts["llm.calls"] == 8  # names + adaptation for 4 scenarios
    assert man["stages"]["simulate"]["status"] == "failed"
    assert "simulated crash" in man["stages"]["simulate"]["error"]
    assert man["stages"]["judge"]["status"] == "pending"
    ckpt = json.loads(run.checkpoint_file.read_text())
    assert len(ckpt["episodes"]) == 8 and all(len(e["episode"]["turns"]) == 2 for e in ckpt["episodes"])
    assert run.config_file.exists()

    world.crash_actor_after = None
    events: list[tuple[str, str]] = []
    res = world.run(cfg, on_stage=lambda n, e: events.append((n, e)))
    assert ("scenarios", "skip") in events
    adapt_prompts = [c for b in world.loaded[2:] for c in b.chats if "Scenario (JSON)" in c[-1]["content"]]
    assert adapt_prompts == []  # scenarios not rerun
    ids = [json.loads(x)["id"] for x in run.episodes_file.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 8
    assert all(len(e.turns) == 4 for e in run.episodes())  # resumed mid-conversation, 2 turns (pairs) each
    statuses = {s["stage"]: s["status"] for s in res.stages}
    assert set(statuses.values()) == {"done"}
    assert list(statuses)[:5] == ["scenarios", "simulate", "judge", "intents", "stats"]
    assert {"mix:China", "train:Japan", "eval:base", "eval:clca-china", "eval:clca-japan"} <= set(statuses)
    # every backend loaded was closed again; the adapted student carries its adapter dir
    assert all(b.closed for b in world.loaded)
    assert any(
        b.spec.startswith(STUDENT + "+adapter=") and b.spec.endswith("adapters/china") for b in world.loaded
    )
    assert world.trained[0].max_steps == 2 and world.trained[0].model == STUDENT
    # the real stages wrote their records; the evaluation wrote per-model records; the report compares them
    assert len(run.judgements()) == 8 and all(j.keep for j in run.judgements())
    assert len(run.intents()) == 8 * 4  # 3 utterances and the leave
    assert len((run.eval_dir("base") / "per_question.jsonl").read_text().splitlines()) == 2 * 2 * 3
    assert (
        len((run.eval_dir("clca-china") / "per_question.jsonl").read_text().splitlines()) == 2 * 2 * 3
    )  # both cultures
    assert res.report is not None and res.report.exists()
    html = res.report.read_text()
    assert "clca-japan" in html and "Inglehart" in html
    assert run.mix_dir("China").is_dir() and run.mix_dir("Japan").is_dir()

    man = json.loads(run.manifest_file.read_text())
    assert man["models"]["teacher"]["fingerprint"] == "scripted:scripted:auto"
    assert set(man["packages"]) >= {"clca", "torch", "transformers", "peft", "trl", "datasets"}
    assert any(k.endswith("wvs7/country_distributions.jsonl") for k in man["data_files"])
    assert all(len(v) == 64 for v in man["data_files"].values())
    assert man["seeds"] == {"seed": 0}
    assert man["stages"]["judge"]["counts"]["llm.calls"] == 8 * 3  # quality, alignment, meta
    assert man["stages"]["simulate"]["settings"]["prompt"] == "roleplay-v3"

    # a third run loads no model and only rebuilds the report
    n = len(world.loaded)
    world.run(cfg)
    assert len(world.loaded) == n


def test_forced_rerun_after_interrupted_simulate_moves_the_checkpoint_aside(
    tmp_path: Path, data_dir: Path
) -> None:
    """`--force-stage simulate` after an interrupted simulate with new settings works (the checkpoint, named by
    the RunDir for both the pipeline and role-play, is moved aside with the episodes)."""
    world = World()
    world.crash_actor_after = 1
    with pytest.raises(RuntimeError):
        world.run(_cfg(tmp_path), only=["scenarios", "simulate"])
    run = RunDir(_cfg(tmp_path).run_dir)
    assert run.checkpoint_file.exists()
    world.crash_actor_after = None
    changed = _cfg(tmp_path, "simulate.max_turns=1")
    with pytest.raises(ClcaError, match="max_turns"):
        world.run(changed, only=["scenarios", "simulate"])
    world.run(changed, only=["scenarios", "simulate"], force_stages=["simulate"])
    assert not run.checkpoint_file.exists()
    assert all(len(e.turns) == 2 for e in run.episodes()) and len(run.episodes()) == 8
    old = list((run.path / "superseded").glob(f"*/{RunDir.CHECKPOINT}"))
    assert len(old) == 1


def test_changed_settings_are_refused_then_forced(tmp_path: Path, data_dir: Path) -> None:
    world = World()
    world.run(_cfg(tmp_path), only=["scenarios", "simulate"])
    changed = _cfg(tmp_path, "simulate.samples=1")
    with pytest.raises(ClcaError) as ei:
        world.run(changed)
    msg = str(ei.value)
    assert "'simulate'" in msg and "samples" in msg and "--force-stage simulate" in msg
    # settings that are not inputs of a done stage may change freely (batch size, later stages)
    n = len(world.loaded)
    world.run(
        _cfg(tmp_path, "models.batch_size=3", "train.overrides.max_steps=1"), only=["scenarios", "simulate"]
    )
    assert len(world.loaded) == n

    world.run(changed, force_stages=["simulate"], only=["scenarios", "simulate"])
    run = RunDir(changed.run_dir)
    eps = run.episodes()
    assert len(eps) == 4 and all(e.sample == 0 for e in eps)  # only the new settings' episodes
    old = list((run.path / "superseded").glob("*/episodes.jsonl"))
    assert len(old) == 1 and len(old[0].read_text().splitlines()) == 8
    with pytest.raises(ClcaError, match="no such stage"):
        world.run(changed, force_stages=["simulat"])
    with pytest.raises(ClcaError, match=r"--only nope: no such stage.*scenarios, simulate"):
        world.run(changed, only=["nope"])


def test_plan_reads_only_config_and_manifest(tmp_path: Path, data_dir: Path) -> None:
    world = World()
    cfg = _cfg(tmp_path)
    rows = {r.stage: r for r in plan(cfg)}
    assert {r.action for r in rows.values()} == {"run"} and rows["simulate"].outputs == [
        "episodes.jsonl",
        "episodes.checkpoint.json",
    ]
    world.run(cfg, only=["scenarios", "simulate"])
    rows = {r.stage: r for r in plan(_cfg(tmp_path, "simulate.temperature=0.2"))}
    assert rows["scenarios"].action == "reuse" and rows["simulate"].action == "refused"
    assert rows["simulate"].changed == ["temperature"] and rows["judge"].action == "run"
    rows = {r.stage: r for r in plan(cfg, {"simulate"})}
    assert rows["simulate"].action == "rerun (forced)" and rows["scenarios"].action == "reuse"


def test_culture_without_kept_episodes_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    world = World()
    world.drop = {"Japanese"}
    cfg = _cfg(tmp_path)
    with pytest.raises(ClcaError) as ei:
        world.run(cfg)
    msg = str(ei.value)
    assert "'Japan'" in msg and "0 episodes kept" in msg and "judge.rule=none" in msg
    man = RunManifest(RunDir(cfg.run_dir).manifest_file).data
    assert man.stages["mix:China"].status == "done"
    assert man.stages["mix:Japan"].status == "failed"


def test_unknown_culture_and_uncovered_survey_fail_before_any_work(tmp_path: Path, data_dir: Path) -> None:
    world = World()
    with pytest.raises(ClcaError, match="unknown culture 'Atlantis'"):
        world.run(_cfg(tmp_path, "cultures=[Atlantis]"))
    with pytest.raises(ClcaError, match="no answers for Mexico"):
        world.run(_cfg(tmp_path, "cultures=[Mexico]"))
    assert world.loaded == []
    # aliases are resolved to the data bundle's names
    cfg = _cfg(tmp_path, "cultures=[UK]")
    world.run(cfg, only=["scenarios"])
    assert RunDir(cfg.run_dir).scenarios()[0].culture == "Great Britain"


def test_run_cli_reports_config_errors_and_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from clca.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"run_dir: {tmp_path / 'r'}\ncultures: [China]\nsimulate: {{samplez: 1}}\n")
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "simulate.samplez" in err and len(err.strip().splitlines()) == 1
    assert main(["run", str(cfg), "--set", "simulate=null"]) != 0
    capsys.readouterr()
    root = Path(__file__).resolve().parents[1]
    t0 = time.perf_counter()
    assert (
        main(
            [
                "run",
                str(root / "configs" / "demo.yaml"),
                "--plan",
                "--json",
                "--set",
                f"run_dir={tmp_path / 'd'}",
            ]
        )
        == 0
    )
    assert time.perf_counter() - t0 < 5
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["cultures"] == ["Great Britain", "China"]
    assert [s["action"] for s in out["stages"]] == ["run"] * len(out["stages"])
    assert not (tmp_path / "d").exists()  # the plan writes nothing
    # in a fresh process: the plan imports no torch/transformers (no model can be loaded)
    import subprocess
    import sys

    code = (
        "import sys; from clca.cli import main; "
        f"rc = main(['run', {str(root / 'configs' / 'demo.yaml')!r}, '--plan', '--json']); "
        "assert rc == 0 and 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]


FIX = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]
SCRIPTED = [
    f"models.{r}={s}"
    for r, s in (("teacher", TEACHER), ("actor", ACTOR), ("judge", JUDGE), ("student", STUDENT))
]


def test_demo_config_with_the_paper_protocol_on_fixture_respondents(tmp_path: Path, data_dir: Path) -> None:
    """The demo config with eval.protocol: paper, end to end on scripted models and the fixture respondents:
    persona prompts of the paper's Table 20, greedy parsed answers, individual-level accuracy."""
    from clca.config import load_config

    world = World()
    cfg = load_config(
        ROOT / "configs" / "demo.yaml",
        [
            f"run_dir={tmp_path / 'run'}",
            *SCRIPTED,
            "models.intents=scripted:auto",
            "eval.protocol=paper",
            f"eval.respondents={FIX / 'wvb'}",
            "eval.personas=2",
            "eval.questions=Q1-Q5",
        ],
    )
    assert cfg.eval.mode == "generate" and cfg.eval.styles == ["paper_persona", "paper_cultural"]
    res = world.run(cfg)
    assert {s["status"] for s in res.stages} == {"done"} and res.notes == []
    run = RunDir(cfg.run_dir)
    recs = run.eval_records()
    assert {r.style for r in recs} == {"paper_persona", "paper_cultural"} and {r.mode for r in recs} == {
        "generate"
    }
    persona = [
        r
        for r in recs
        if r.style == "paper_persona" and r.model_tag == "base" and r.country == "Great Britain"
    ]
    assert persona and all(len(r.prompts) == 2 for r in persona)
    system = persona[0].prompts[0].messages[0]["content"]
    assert system.startswith(
        "You are currently living in Great Britain and here is your basic demographic information:"
    )
    assert "Settlement: Capital city, Urban" in system or "Settlement: " in system
    assert persona[0].prompts[0].messages[1]["content"].endswith("ANSWER:")
    assert all(r.metrics["accuracy"] is not None for r in persona)
    # the survey side is counted over every respondent of the culture in the files, as the paper's code does
    from clca.data.wvb import load_respondents

    resp = {k.lower(): v for k, v in load_respondents(FIX / "wvb", countries=["Great Britain"]).items()}
    people = resp["great britain"]
    checked = 0
    for r in persona:
        counts = [sum(1 for p in people if p.answers.get(r.qid) == c) for c in r.codes]
        if sum(counts):
            assert r.human_dist == pytest.approx([c / sum(counts) for c in counts])
            checked += 1
    assert checked
    assert all(r.metrics["accuracy"] is None for r in recs if r.style == "paper_cultural")
    metrics = (run.eval_dir("base") / "metrics.json").read_text()
    assert '"paper_jsd"' in metrics and '"accuracy"' in metrics


def test_paper_protocol_without_respondents_stops_or_falls_back(tmp_path: Path, data_dir: Path) -> None:
    world = World()
    paper = ["eval.protocol=paper", "eval.styles=[paper_persona, paper_cultural]"]
    cfg = _cfg(tmp_path, *paper)
    with pytest.raises(
        ClcaError,
        match=r"need WorldValuesBench respondent files.*eval.respondents is not set.*fallback_to_logprob",
    ):
        world.run(cfg)
    assert world.loaded == [] and not RunDir(cfg.run_dir).manifest_file.exists()
    res = world.run(_cfg(tmp_path, *paper, "eval.fallback_to_logprob=true"), only=["eval"])
    assert res.notes and "logprob protocol" in res.notes[0]
    recs = RunDir(cfg.run_dir).eval_records()
    assert {r.mode for r in recs} == {"logprob"} and {r.style for r in recs} == {"plain", "cultural"}
    with pytest.raises(ClcaError, match="no respondent of Japan"):
        world.run(_cfg(tmp_path / "b", *paper, f"eval.respondents={FIX / 'wvb'}"))


@pytest.mark.slow
def test_clca_run_end_to_end_on_the_embedded_model(tmp_path: Path) -> None:
    """`clca run` on a tiny config with the real embedded SmolLM2 (every role), a few training steps, and the
    no-culture control (volume matched with the student's tokenizer, evaluated like the culture's adapter).

    SmolLM2-135M often fails the role-play format after the opening line, so the mix uses person 1's side
    only (person 2's side and intents may legitimately be empty at this size); the stages still all run.
    """
    from clca.cli import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        f"""
run_dir: {tmp_path / "run"}
cache: {tmp_path / "cache.sqlite"}
cultures: [Japan]
controls: [no_culture]
models: {{teacher: embedded:smollm2-135m, actor: embedded:smollm2-135m, student: embedded:smollm2-135m, batch_size: 4}}
scenarios: {{source: seeds, per_culture: 2}}
simulate: {{samples: 1, max_turns: 1, max_new_tokens: 40}}
judge: {{rule: none, max_new_tokens: 48, max_retries: 0}}
intents: {{max_new_tokens: 32, max_retries: 0}}
mix: {{val_fraction: 0.0, ratio_dialogue_p2: 0.0, ratio_intent: 0.0}}
train: {{preset: cpu, overrides: {{max_steps: 2, max_length: 256, per_device_batch_size: 2, grad_accum: 1}}}}
eval: {{questions: Q1-Q3, styles: [plain, cultural], bootstrap: 50}}
""",
        encoding="utf-8",
    )
    rc = main(["run", str(cfg), "--no-progress"])
    run = RunDir(tmp_path / "run")
    man = json.loads(run.manifest_file.read_text())
    failed = {k: v["error"] for k, v in man["stages"].items() if v["status"] != "done"}
    assert rc == 0, failed
    assert not failed
    assert (run.adapter_dir("Japan") / "adapter_config.json").exists()
    assert len((run.eval_dir("clca-japan") / "per_question.jsonl").read_text().splitlines()) == 2 * 3
    assert len((run.eval_dir("control-no-culture") / "per_question.jsonl").read_text().splitlines()) == 2 * 3
    control = json.loads((run.mix_dir("generic") / "mix_stats.json").read_text())
    japan = json.loads((run.mix_dir("Japan") / "mix_stats.json").read_text())
    assert control["token_unit"] == "student tokenizer"
    assert control["train_examples"] == japan["train_examples"]
    target = man["stages"]["mix:no-culture"]["counts"]["target_tokens"]
    # one or two one-reply examples cannot always be matched within 5%: then the stats and the report say so
    assert control["volume_matched"] == (abs(control["train_tokens"] - target) <= 0.05 * target)
    html = (run.report_dir / "index.html").read_text()
    assert ("matched within 5%" in html) == control["volume_matched"]
    card = (run.adapter_dir("generic") / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    ba = json.loads((run.report_dir / "before_after.json").read_text())
    assert [v["culture"] for v in ba["verdicts"]] == ["Japan", "Japan"]
    assert ba["verdicts"][0]["specific"].startswith("n/a")  # one culture: specificity needs two
    html = (run.report_dir / "index.html").read_text()
    assert "clca-japan" in html and "Inglehart" in html
    # a rerun skips everything (all done) and still succeeds
    assert main(["run", str(cfg), "--no-progress"]) == 0


def test_controls_and_seeds(tmp_path: Path, data_dir: Path) -> None:
    """``controls: [no_culture]`` and ``train.seeds``: a volume-matched no-culture control, one adapter per seed,
    every adapter evaluated on every culture, and the verdicts in the report."""
    world = World()
    cfg = _cfg(tmp_path, "controls=[no_culture]", "train.seeds=[0,1]")
    res = world.run(cfg)
    run = RunDir(cfg.run_dir)
    names = [s["stage"] for s in res.stages]
    assert names.index("mix:no-culture") > max(names.index("mix:China"), names.index("mix:Japan"))
    for v in ("China", "Japan", "no-culture"):
        assert {f"train:{v}@s0", f"train:{v}@s1"} <= set(names)
    tags = ["clca-china-s0", "clca-china-s1", "clca-japan-s0", "clca-japan-s1"]
    tags += ["control-no-culture-s0", "control-no-culture-s1"]
    for tag in tags:
        recs = (run.eval_dir(tag) / "per_question.jsonl").read_text().splitlines()
        assert {json.loads(r)["country"] for r in recs} == {"China", "Japan"}  # the cross-culture matrix
    assert sorted(t.seed for t in world.trained) == [0, 0, 0, 1, 1, 1]
    assert (run.adapter_dir("generic", None, 1) / "adapter_config.json").exists()

    # the control's data: unadapted seeds, no culture in any prompt
    generic = [s for s in run.scenarios() if s.culture == "generic"]
    assert len(generic) == 2 and all(s.id.startswith("generic-") for s in generic)
    eps = [e for e in run.episodes() if e.culture == "generic"]
    assert len(eps) == 4
    chats = [c for b in world.loaded for c in b.chats]
    names_g = {ch.name for s in generic for ch in s.characters}
    control_chats = [c for c in chats if any(n in c[0]["content"] for n in names_g)]
    assert control_chats
    for c in control_chats:
        text = json.dumps(c)
        assert "Chinese" not in text and "Japanese" not in text and "culture dimensions" not in text
    assert any("the social norms of its setting" in json.dumps(c) for c in control_chats)

    # volume matched: examples and tokens within 5% of the cultures' (mean) mix
    stats = {
        v: json.loads((run.mix_dir(v) / "mix_stats.json").read_text()) for v in ("China", "Japan", "generic")
    }
    man = json.loads(run.manifest_file.read_text())
    counts = man["stages"]["mix:no-culture"]["counts"]
    ex = [stats[c]["train_examples"] for c in ("China", "Japan")]
    assert counts["target_examples"] == round(sum(ex) / 2)
    assert stats["generic"]["train_examples"] == counts["target_examples"]
    assert abs(stats["generic"]["train_tokens"] - counts["target_tokens"]) <= 0.05 * counts["target_tokens"]
    assert stats["generic"]["token_unit"].startswith("approx")  # the scripted student has no tokenizer
    assert stats["generic"]["volume_matched"] is True

    # the report: verdicts (headline), the matrix with the control row
    ba = json.loads((run.report_dir / "before_after.json").read_text())
    assert ba["families"] == {"China": [0, 1], "Japan": [0, 1], "generic": [0, 1]}
    assert {(v["culture"], v["style"]) for v in ba["verdicts"]} == {
        (c, s) for c in ("China", "Japan") for s in ("plain", "cultural")
    }
    for v in ba["verdicts"]:
        assert v["improved_over_base"] in ("yes", "no", "not shown")
        assert v["beyond_control"] in ("yes", "no", "not shown")
    rows = ba["matrix"]["plain"]["kl"]
    assert [r["trained_on"] for r in rows] == ["China", "Japan", "generic"]
    assert all(set(r["cells"]) == {"China", "Japan"} for r in rows)
    assert ba["reproduction"]["comparable"] is False
    html = res.report.read_text()
    assert html.index("Verdicts") < html.index("Cross-culture matrix") < html.index("Before / after")
    assert "no-culture control" in html and "Not comparable" in html and "matched within 5%" in html
