"""Fan-out of a run's units as separate jobs (`clca run --executor local:N`), per-unit locks, adoption checks,
the manifest written by several processes, lock files where flock is unavailable.

The executor tests run real subprocesses through submitit's local executor: the generation stages on clca's
scripted model, training and evaluation on a tiny randomly initialised Llama built here (no hub)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_training_train import _tiny_llama_without_pad

from clca.cli import main
from clca.config import load_config
from clca.errors import ClcaError, DataError
from clca.executor import plan_units
from clca.locks import FORCE_FILES_ENV, hold
from clca.manifest import RunManifest
from clca.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
GENERATION = ["scenarios", "simulate", "judge", "intents", "stats"]


def _config(tmp_path: Path, student: str, *, cultures: list[str], seeds: list[int], control: bool) -> Path:
    data = {
        "run_dir": str(tmp_path / "run"),
        "cache": str(
            tmp_path / "llm_cache.sqlite"
        ),  # each run pays its own calls (the kill test needs them slow)
        "cultures": cultures,
        "controls": ["no_culture"] if control else [],
        "models": {
            "teacher": "scripted:auto",
            "actor": "scripted:auto",
            "judge": "scripted:auto",
            "intents": "scripted:auto",
            "student": student,
        },
        "scenarios": {"per_culture": 2},
        "simulate": {"samples": 2, "max_turns": 2},
        "judge": {"rule": "none"},
        "mix": {"val_fraction": 0.0},
        "train": {
            "preset": "cpu",
            "overrides": {
                "max_steps": 2,
                "per_device_batch_size": 2,
                "grad_accum": 1,
                "max_length": 2048,
                "eval_each_epoch": False,
                "save_checkpoints": False,
                "logging_steps": 1,
            },
            "seeds": seeds,
        },
        "eval": {"questions": "Q1-Q3", "styles": ["plain"], "bootstrap": 50},
    }
    path = tmp_path / "run.yaml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_units_of_the_demo_config() -> None:
    """The demo's plan as units: generation as one, a mix per culture and the control (the control's after the
    cultures'), a training per adapter after its mix, an evaluation per adapter after its training, eval:base
    free, the report after everything; each with its kind's resources."""
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    units = {u.name: u for u in plan_units(cfg)}
    assert units["generate"].stages == GENERATION and units["generate"].deps == []
    assert units["mix:China"].deps == ["generate"]
    assert set(units["mix:no-culture"].deps) == {"generate", "mix:Great Britain", "mix:China"}
    assert units["train:China@s1"].deps == ["mix:China"] and units["train:China@s1"].resources.gpus == 1
    assert units["eval:clca-china-s1"].deps == ["train:China@s1"]
    assert units["eval:base"].deps == []
    assert len(units["report"].deps) == len(units) - 1
    assert sum(u.kind == "train" for u in units.values()) == 6
    assert sum(u.kind == "eval" for u in units.values()) == 7


def test_plan_shows_the_units(capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path) -> None:
    assert (
        main(["run", str(ROOT / "configs" / "demo.yaml"), "--plan", "--json", "--set", f"run_dir={tmp_path}"])
        == 0
    )
    units = json.loads(capsys.readouterr().out)["units"]
    assert units[0]["name"] == "generate" and units[-1]["name"] == "report"
    assert {"gpus", "cpus", "mem_gb", "time_min", "partition"} <= set(units[0]["resources"])
    assert main(["run", str(ROOT / "configs" / "demo.yaml"), "--executor", "ray"]) == 2
    assert "local:N or slurm" in capsys.readouterr().err


def test_manifest_written_by_two_processes_keeps_both(tmp_path: Path) -> None:
    """Two units save the manifest in turn from stale copies: neither loses the other's stage record."""
    path = tmp_path / "manifest.json"
    a, b = RunManifest(path), RunManifest(path)
    with a.running("train:China", "x"):
        pass
    with b.running("train:Japan", "y"):
        pass
    data = json.loads(path.read_text())
    assert (
        data["stages"]["train:China"]["status"] == "done"
        and data["stages"]["train:Japan"]["status"] == "done"
    )


@pytest.mark.parametrize("files", [False, True], ids=["flock", "lock-files"])
def test_unit_locks_side_by_side_and_the_whole_run_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: bool
) -> None:
    """Units hold the run's lock shared and their own exclusively: two units run side by side, a second writer of
    one unit and a whole-run writer are refused in one line naming the holder; with flock or with lock files."""
    if files:
        monkeypatch.setenv(FORCE_FILES_ENV, "1")
    run = RunDir(tmp_path / "run")
    code = (
        "import sys, time; from clca.rundir import RunDir; r = RunDir(sys.argv[1]);\n"
        "with r.unit_lock(sys.argv[2], 'test unit'):\n    print('held', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(run.path), "train:China"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with run.unit_lock("train:Japan", "another unit"):
            pass  # another unit: fine
        with (
            pytest.raises(DataError, match=r"unit train:China .* in use by PID \d+ on .*\(test unit\)"),
            run.unit_lock("train:China", "me"),
        ):
            pass
        with pytest.raises(DataError, match=r"run directory .* is in use"), run.lock("clca run"):
            pass
    finally:
        proc.kill()
        proc.wait()
    with run.lock("clca run"):  # the holder died: its lock is free again (kernel, or a stale lock file)
        pass


def test_stale_lock_file_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lock file whose holder is gone (a dead PID on this host, or a heartbeat older than the limit) is taken
    over with a note; a live one refuses."""
    import socket

    monkeypatch.setenv(FORCE_FILES_ENV, "1")
    lock = tmp_path / ".lock"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock.with_name(".lock.x").write_text(
        json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "what": "old"})
    )
    with hold(lock, "new", fix="wait."):
        assert json.loads(lock.with_name(".lock.x").read_text())["what"] == "new"
    assert "taking over the stale lock" in capsys.readouterr().err
    far = lock.with_name(".lock.x")
    far.write_text(json.dumps({"host": "another-node", "pid": 1, "what": "remote"}))
    with (
        pytest.raises(DataError, match=r"in use by PID 1 on another-node \(remote\)"),
        hold(lock, "new", fix="wait."),
    ):
        pass
    old = time.time() - 3600
    os.utime(far, (old, old))  # its heartbeat stopped an hour ago
    with hold(lock, "new", fix="wait."):
        pass


def test_a_finished_adapter_with_other_settings_is_not_adopted(tmp_path: Path) -> None:
    from clca.records import TrainResult
    from clca.rundir import AdapterDir
    from clca.training.presets import preset
    from clca.training.train import train_adapter

    out = tmp_path / "adapter"
    cfg = preset("cpu", max_steps=3)
    AdapterDir(out).path.mkdir()
    AdapterDir(out).write_result(
        TrainResult(
            adapter_dir=out, base_model=cfg.model, base_model_path="x", dataset_dir=str(tmp_path / "mix"),
            train_examples=1, validation_examples=0, steps=3, epochs=1.0, train_loss=None, first_loss=None,
            last_loss=None, eval_loss=None, train_runtime_s=1.0, train_tokens=1, tokens_per_s=1.0, peak_rss_mb=1.0,
            peak_gpu_mb=None, device="cpu", dtype="float32", config=cfg.model_dump(mode="json"), versions={},
        )
    )  # fmt: skip
    assert train_adapter(tmp_path / "mix", out, cfg).skipped  # the same settings: reused
    with pytest.raises(ClcaError, match=r"trained with other settings \(max_steps: 3 there, 4 now\)"):
        train_adapter(tmp_path / "mix", out, preset("cpu", max_steps=4))


# ------------------------------------------------------------------------------------- the executor, for real


@pytest.mark.slow
def test_fan_out_equals_the_sequential_run(tmp_path: Path, data_dir: Path) -> None:
    """The demo's shape (2 cultures, the control, 2 seeds) on a tiny student: after the generation stages, the
    train and eval units run as 2 local jobs at a time; the report's numbers equal those of the same run done
    in one process, byte for byte (same torch thread settings: OMP_NUM_THREADS=2 in both)."""
    import shutil

    student = f"hf:{_tiny_llama_without_pad(tmp_path / 'tiny')}"
    seq_cfg = _config(tmp_path / "seq", student, cultures=["China", "Japan"], seeds=[0, 1], control=True)
    assert main(["run", str(seq_cfg), "--only", ",".join(GENERATION), "--no-progress"]) == 0
    fan_cfg = _config(tmp_path / "fan", student, cultures=["China", "Japan"], seeds=[0, 1], control=True)
    shutil.copytree(tmp_path / "seq" / "run", tmp_path / "fan" / "run")
    assert main(["run", str(seq_cfg), "--no-progress"]) == 0
    assert main(["run", str(fan_cfg), "--executor", "local:2"]) == 0
    seq = (tmp_path / "seq" / "run" / "report" / "before_after.json").read_bytes()
    fan = (tmp_path / "fan" / "run" / "report" / "before_after.json").read_bytes()
    assert json.loads(fan)["adapters"] and fan == seq
    man = json.loads((tmp_path / "fan" / "run" / "manifest.json").read_text())
    assert {s["status"] for s in man["stages"].values()} == {"done"}
    assert len(man["stages"]) == 5 + 3 + 6 + 7 + 1
    assert len(list((tmp_path / "fan" / "run" / "jobs").glob("*_log.err"))) == 3 + 6 + 7 + 1


@pytest.mark.slow
def test_a_killed_worker_resumes_without_duplicates(tmp_path: Path, data_dir: Path) -> None:
    """A job killed in the middle of its unit (the generate unit, during role-play): the driver reports the unit
    and exits 3; the same command again finishes it, and the episodes equal an uninterrupted run's, byte for
    byte, with no episode twice."""
    student = f"hf:{_tiny_llama_without_pad(tmp_path / 'tiny')}"
    ref_cfg = _config(tmp_path / "ref", student, cultures=["China"], seeds=[0], control=False)
    assert main(["run", str(ref_cfg), "--only", ",".join(GENERATION), "--no-progress"]) == 0
    cfg = _config(tmp_path / "kill", student, cultures=["China"], seeds=[0], control=False)
    run = RunDir(tmp_path / "kill" / "run")
    env = {**os.environ, "CLCA_SCRIPTED_DELAY_S": "0.4"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "clca", "run", str(cfg), "--executor", "local:2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not run.checkpoint_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert run.checkpoint_file.exists(), "the role-play never started"
    holder = run.unit_lock_file("generate").read_text()  # "PID <n> on <host> (clca run, unit generate)"
    os.kill(int(holder.split()[1]), signal.SIGKILL)  # the generate unit's process, in the middle of role-play
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 3 and "unit generate failed" in err
    assert RunManifest(run.manifest_file).data.stages["simulate"].status == "running"
    env["CLCA_SCRIPTED_DELAY_S"] = "0"
    again = subprocess.run([sys.executable, "-m", "clca", "run", str(cfg), "--executor", "local:2"], env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    ids = [json.loads(line)["id"] for line in run.episodes_file.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 4
    ref = RunDir(tmp_path / "ref" / "run")
    for name in ("scenarios.jsonl", "episodes.jsonl", "judgements.jsonl", "intents.jsonl"):
        assert (run.path / name).read_bytes() == (ref.path / name).read_bytes(), name
