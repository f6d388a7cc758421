"""The CLI as a user meets it: shared options with the run config's names and defaults, the seed reaching every
stage's records, boolean options both ways, help and defaults on every generated option, exit codes (2 bad
input, 3 a server failed during the work, 130 Ctrl-C), precedence of --set / --data-dir / CLCA_DATA_DIR / the
config file, --json / --plan / --only, and the paper config planning with every problem listed."""

from __future__ import annotations

import inspect
import json
import socket
from pathlib import Path

import pytest
import typer
from typer.main import get_command

import clca.cli  # noqa: F401  (registers the commands)
from clca import settings
from clca.cli import main
from clca.cli_app import STATE, app
from clca.config import ModelsConfig, RunConfig, load_config
from clca.errors import EXIT_SERVICE, ServiceError
from clca.options import CommonOptions
from clca.records import Intent, Judgement
from clca.rundir import RunDir
from clca.runs import JsonlStore

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures"
STAGES = ("scenarios", "simulate", "judge", "intents", "stats", "mix", "train", "eval")


def _command(name: str) -> typer.models.CommandInfo:
    return next(c for c in app.registered_commands if c.name == name)


def _params(name: str) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(_command(name).callback).parameters)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- shared options


def test_every_stage_command_takes_the_shared_options_with_the_run_configs_defaults() -> None:
    """--model defaults to the stage's role in `models:`, --batch-size to models.batch_size, --seed to the run's
    seed; --data-dir and --progress/--no-progress everywhere; the call cache where a model is called."""
    role = {"scenarios": "teacher", "simulate": "actor", "judge": "teacher", "intents": "teacher"}
    models = ModelsConfig()
    for name in STAGES:
        params = _params(name)
        assert "data_dir" in params, name
        if name != "stats":
            assert "seed" in params and params["seed"].default == RunConfig.model_fields["seed"].default, name
        if name in role:
            assert params["model"].default == getattr(models, role[name]), name
            assert params["batch_size"].default == models.batch_size, name
            assert {"cache", "no_cache", "progress"} <= set(params), name
    assert _params("train")["model"].default == models.student
    assert _params("eval")["model"].default == models.student


def test_generated_options_have_help_defaults_and_both_boolean_forms() -> None:
    """Every option of every command has a help text; booleans are --x/--no-x pairs; the train overrides say
    their default per preset."""
    group = get_command(app)
    for name in STAGES:
        cmd = group.commands[name]  # type: ignore[attr-defined]
        for p in cmd.params:
            if p.name in ("help",):
                continue
            assert p.help, f"clca {name} {p.opts}: no help"
            if (
                getattr(p, "is_bool_flag", False)
                and not p.opts[0].startswith("--no-")
                and p.name != "no_report"
            ):
                assert p.secondary_opts, f"clca {name} {p.opts}: no --no- form"
    train = group.commands["train"]  # type: ignore[attr-defined]
    by = {p.name: p for p in train.params}
    assert "--no-load-in-4bit" in by["load_in_4bit"].secondary_opts
    assert "cpu False" in by["load_in_4bit"].help and "paper True" in by["load_in_4bit"].help
    assert "cpu 8" in by["lora_r"].help and "paper 4" in by["lora_r"].help


def test_paper_preset_can_turn_4bit_off_and_the_seed_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    """`clca train --preset paper --no-load-in-4bit --seed 5` reaches train_adapter as such (the paper preset
    can be tried on a CPU)."""
    from test_training_mix import make_run_dir

    import clca.training.train as train_mod

    make_run_dir(tmp_path)
    got = {}

    def fake_train(mix_dir: Path, out: Path, cfg: object, *, progress: bool = True) -> object:
        got["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(train_mod, "train_adapter", fake_train)
    with pytest.raises(SystemExit):
        main(["train", "--run", str(tmp_path), "--culture", "China", "--preset", "paper", "--no-load-in-4bit",
              "--seed", "5", "--no-progress"])  # fmt: skip
    cfg = got["cfg"]
    assert cfg.load_in_4bit is False and cfg.seed == 5 and cfg.lora_alpha == 0.1  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ the seed reaches the records


def test_the_seed_reaches_every_stages_records(tmp_path: Path, data_dir: Path) -> None:
    """With --seed 7 each stage's records carry what the seed made: the scenario seeds picked, the episodes'
    seeds, the judge's and labeller's request seeds (the scripted model says them back), the mix's seed."""
    run = tmp_path / "run"
    common = ["--run", str(run), "--model", "scripted:auto", "--seed", "7", "--no-progress", "--no-cache"]
    assert main(["scenarios", *common, "--cultures", "China", "--per-culture", "1"]) == 0
    assert main(["simulate", *common, "--samples", "1", "--max-turns", "2"]) == 0
    assert main(["judge", *common]) == 0
    assert main(["intents", *common]) == 0
    assert main(["mix", "--run", str(run), "--culture", "China", "--seed", "7", "--val-fraction", "0"]) == 0
    rd = RunDir(run)
    (ep,) = rd.episodes()
    assert ep.seed == 7000
    assert all("(seed 7)" in j.critique for j in JsonlStore(rd.judgements_file, Judgement).read())
    assert all("(seed 7)" in (i.intent or "") for i in JsonlStore(rd.intents_file, Intent).read())
    stats = rd.mix("China").stats()
    assert stats is not None and stats.seed == 7
    # the scenario seeds are drawn with the seed: another seed picks another one
    seven = {s.seed_id for s in rd.scenarios()}
    other = tmp_path / "other"
    assert main(["scenarios", "--run", str(other), "--model", "scripted:auto", "--seed", "0", "--no-progress",
                 "--no-cache", "--cultures", "China", "--per-culture", "1"]) == 0  # fmt: skip
    assert {s.seed_id for s in RunDir(other).scenarios()} != seven


def test_eval_records_its_seed(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "ev"
    assert main(["eval", "--model", "scripted:auto", "--seed", "3", "--countries", "China", "--questions", "Q1",
                 "--styles", "plain", "--out", str(out), "--no-report", "--no-progress", "--no-cache"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["configs"]["scripted:auto"]["seed"] == 3


# ------------------------------------------------------------------------------------------------ exit codes


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """2 for bad input, 3 when a server fails during the work (the input was fine), 130 on Ctrl-C with the
    resume hint."""
    assert main(["simulate", "--run", str(tmp_path / "none")]) == 2
    assert "clca scenarios" in capsys.readouterr().err

    @app.command("_interrupt-for-test", hidden=True)
    def _interrupt() -> None:
        raise KeyboardInterrupt

    assert main(["_interrupt-for-test"]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err

    @app.command("_service-for-test", hidden=True)
    def _service() -> None:
        raise ServiceError("server http://x failed after 3 attempts (timed out).", fix="start the server.")

    assert main(["_service-for-test"]) == EXIT_SERVICE == 3
    # a real one: the judge's server refuses connections (a closed port on loopback)
    run = tmp_path / "run"
    assert main(["scenarios", "--run", str(run), "--model", "scripted:auto", "--cultures", "China",
                 "--per-culture", "1", "--no-progress"]) == 0  # fmt: skip
    assert main(["simulate", "--run", str(run), "--model", "scripted:auto", "--samples", "1", "--max-turns", "1",
                 "--no-progress"]) == 0  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    spec = f"openai:m@http://127.0.0.1:{port}/v1?max_retries=0&timeout=5"
    capsys.readouterr()
    assert main(["judge", "--run", str(run), "--model", spec, "--no-cache", "--no-progress"]) == 3
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "failed after 1 attempts" in errors[0]


# ---------------------------------------------------------------------------------------------- clca run


def _write_config(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(
        f"run_dir: {tmp_path / 'run'}\ncultures: [China]\nmodels: {{teacher: scripted:auto, actor: scripted:auto, "
        f"judge: scripted:auto, student: scripted:auto}}\n{extra}",
        encoding="utf-8",
    )
    return p


def test_json_needs_plan_and_plan_honours_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    cfg = _write_config(tmp_path)
    assert main(["run", str(cfg), "--json"]) == 2
    assert "--plan" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing ran
    assert main(["run", str(cfg), "--plan", "--json", "--only", "scenarios,judge"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in doc["stages"]] == ["scenarios", "judge"] and doc["problems"] == []
    assert main(["run", str(cfg), "--plan", "--json", "--only", "scenarios", "--only", "eval"]) == 0
    assert next(s["stage"] for s in json.loads(capsys.readouterr().out)["stages"]) == "scenarios"
    assert main(["run", str(cfg), "--plan", "--only", "no-such-stage"]) == 2


def test_set_mistakes_name_the_set_option(tmp_path: Path) -> None:
    from clca.errors import ClcaError

    cfg = _write_config(tmp_path)
    with pytest.raises(ClcaError, match=r"^--set train\.overrides\.lr: "):
        load_config(cfg, ["train.overrides.lr=0.1"])
    with pytest.raises(ClcaError, match=r"^--set simulate\.samples: "):
        load_config(cfg, ["simulate.samples=-1"])
    bad = _write_config(tmp_path, "simulate: {samples: -1}\n")
    with pytest.raises(ClcaError, match=rf"^{bad}: key 'simulate.samples'"):
        load_config(bad)


def test_precedence_set_beats_option_beats_environment_beats_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    def resolved(*args: str) -> str:
        capsys.readouterr()
        assert main([*args]) == 0
        return str(json.loads(capsys.readouterr().out)["config"]["data_dir"])

    cfg = _write_config(tmp_path, f"data_dir: {data_dir}\n")
    copies = {}
    for name in ("env", "opt", "set"):
        copies[name] = tmp_path / name
        copies[name].symlink_to(data_dir, target_is_directory=True)
    try:
        assert resolved("run", str(cfg), "--plan", "--json") == str(data_dir)  # the config file
        monkeypatch.setenv(settings.DATA_ENV, str(copies["env"]))
        assert resolved("run", str(cfg), "--plan", "--json") == str(copies["env"])  # env beats the file
        assert resolved("--data-dir", str(copies["opt"]), "run", str(cfg), "--plan", "--json") == str(
            copies["opt"]
        )
        assert resolved(
            "--data-dir",
            str(copies["opt"]),
            "run",
            str(cfg),
            "--plan",
            "--json",
            "--set",
            f"data_dir={copies['set']}",
        ) == str(copies["set"])
    finally:
        settings.set_data_dir(None)
        STATE["data_dir_from_env"] = False


# -------------------------------------------------------------------------------------------- the paper config


def test_paper_config_plans_as_shipped_with_every_problem_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """configs/paper.yaml as shipped: --plan exits 2 and lists what the user must supply (respondent files; with
    them every culture, Mexico too, has a human side); with (invented) respondent files it plans and exits 0."""
    paper = ROOT / "configs" / "paper.yaml"
    run = f"run_dir={tmp_path / 'run'}"
    assert main(["run", str(paper), "--plan", "--set", run]) == 2
    out = capsys.readouterr().out
    assert "The run cannot start" in out and "eval.respondents" in out
    assert main(["run", str(paper), "--plan", "--json", "--set", run]) == 2
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert all(p["what"] and p["fix"] for p in problems)
    # both at once: the respondent files are missing, and without them Mexico has no human side at all
    assert "eval.respondents is not set" in problems[0]["what"] and "Mexico" in problems[1]["what"]
    assert len(problems) == 2
    # respondent files of the five paper cultures but Japan: one problem per missing culture, nothing hidden
    assert (
        main(
            ["run", str(paper), "--plan", "--json", "--set", run, "--set", f"eval.respondents={FIX / 'wvb'}"]
        )
        == 2
    )
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [p["what"] for p in problems] == [f"no respondent of Japan in {FIX / 'wvb'} (eval.respondents)."]
    ok = [
        *("--set", run, "--set", f"eval.respondents={FIX / 'wvb'}"),
        "--set",
        "cultures=[Great Britain,China,Germany,Mexico]",
    ]
    assert main(["run", str(paper), "--plan", "--json", *ok]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["problems"] == [] and "Mexico" in doc["config"]["cultures"]


def test_mexico_is_evaluated_on_respondent_files(tmp_path: Path, data_dir: Path) -> None:
    """Mexico has no row in the bundled WVS distributions; under the paper protocol its human side comes from
    the respondent files, so its evaluation runs."""
    from clca.evaluation import EvalConfig, evaluate
    from clca.llm.testing import ScriptedBackend

    cfg = EvalConfig(
        protocol="paper",
        respondents=FIX / "wvb",
        personas=2,
        questions="Q1-Q3",
        countries=["Mexico", "China"],
        out_dir=tmp_path / "ev",
        model_tag="m",
    )
    res = evaluate(ScriptedBackend("1"), cfg)
    mexico = [r for r in res.records if r.country == "Mexico"]
    assert {r.style for r in mexico} == {"paper_persona", "paper_cultural"} and len(mexico) == 6
    persona = [r for r in mexico if r.style == "paper_persona"]
    assert all(len(r.prompts) == 2 and r.metrics["accuracy"] is not None for r in persona)
    assert any("Mexico counted over its 2 respondents" in n for n in res.notes)


def test_common_options_model_is_what_every_command_reads() -> None:
    """One typed model behind the shared options: its fields are the options' names."""
    for name in STAGES:
        names = set(_params(name))
        shared = names & set(CommonOptions.model_fields)
        assert shared, name
