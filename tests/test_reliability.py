"""Reliability: every bad input is one line (exit 2) and leaves the run directory as it was; kill -9 at random
points of each stage resumes to the same bytes; a fault-injecting server loses no record; one writer per run.

No model: clca's scripted backend (``scripted:auto``) and a scripted OpenAI-compatible server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from oai_server import OpenAIServer
from stage_helpers import make_run

from clca.cli import main
from clca.llm.testing import DELAY_ENV, stage_reply
from clca.records import Judgement
from clca.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures"


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the sha256 of its bytes (and its mode)."""
    if not folder.exists():
        return {}
    if folder.is_file():
        return {str(folder): hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Path]:
    """A judged run directory, a run config, a plain file and odd files the bad inputs point at."""
    run = make_run(tmp_path)
    run.judgement_store().extend(
        [Judgement(id=e.id, episode_id=e.id, culture=e.culture, model="m", keep=True) for e in run.episodes()]
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"run_dir: {run.path}\ncultures: [China]\nmodels: {{teacher: scripted:auto}}\n", encoding="utf-8"
    )
    plain_file = tmp_path / "a-file"
    plain_file.write_text("x")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("run_dir: x\ncultures: [China\n")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("run_dir: r\ncultures: [Z\xfcrich]\n".encode("latin-1"))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("run_dir: r\ncultures: [China]\nsimulate: {sampels: 1}\n")
    nojudge = tmp_path / "nojudge"
    make_run(nojudge)
    return {
        "run": run.path,
        "cfg": cfg,
        "file": plain_file,
        "bad_yaml": bad_yaml,
        "latin1": latin1,
        "unknown": unknown,
        "nojudge": nojudge / "run",
        "tmp": tmp_path,
    }


# (argv with {placeholders}, a substring of the one-line error)
BAD: list[tuple[str, str]] = [
    # clca run
    ("run {tmp}/nope.yaml", "does not exist"),
    ("run {latin1}", "not UTF-8"),
    ("run {unknown}", "simulate.sampels"),
    ("run {bad_yaml}", "not valid YAML"),
    ("run {cfg} --only nope", "--only nope: no such stage"),
    ("run {cfg} --force-stage nope", "no such stage"),
    ("run {cfg} --set simulate.samples=0", "simulate.samples"),
    ("run {cfg} --set judge.rule=bogus", "judge.rule"),
    ("run {cfg} --set judge.rule={{drop_quality_bd:[confident]}}", "drop_quality_bd"),
    ("run {cfg} --set eval.styles=[nope]", "unknown prompt style"),
    ("run {cfg} --set models.teacher=foo:bar", "models.teacher"),
    ("run {cfg} --set train.preset=gpu", "train.preset"),
    ("run {cfg} --set train.overrides.lora_alph=3", "lora_alph"),
    ("run {cfg} --set mix.ablation=nope", "mix.ablation"),
    ("run {cfg} --set mix.ratio_intnt=1", "ratio_intnt"),
    ("run {cfg} --set cultures=[Narnia]", "unknown culture"),
    ("run {cfg} --set eval.questions=''", "eval.questions"),
    ("run {cfg} --set eval.questions=Q999", "Q999"),
    ("run {cfg} --set run_dir={file}", "is a file"),
    ("run {cfg} --set data_dir={tmp}/nodata", "data directory"),
    ("run {cfg} --set simulate.temperature=9", "simulate.temperature"),
    ("run {cfg} --set eval.protocol=paper --set eval.styles=[paper_persona]", "respondent files"),
    ("run {cfg} --set cultures=[Mexico]", "no answers for Mexico"),
    ("run {cfg} --set scenarios.per_culture=1000000000", "scenarios.per_culture"),
    # clca scenarios
    ("scenarios --run {tmp}/r2 --cultures Narnia", "unknown culture"),
    ("scenarios --run {tmp}/r2 --cultures ,", "--cultures is empty"),
    ("scenarios --run {tmp}/r2 --per-culture 0", "--per-culture"),
    ("scenarios --run {tmp}/r2 --batch-size -3", "--batch-size"),
    ("scenarios --run {tmp}/r2 --max-new-tokens 0", "--max-new-tokens"),
    ("scenarios --run {tmp}/r2 --temperature 5", "--temperature"),
    ("scenarios --run {tmp}/r2 --source nope", "--source"),
    ("scenarios --run {tmp}/r2 --norm-share 2", "--norm-share"),
    ("scenarios --run {tmp}/r2 --model nonsense", "cannot resolve model spec"),
    ("scenarios --run {file} --model scripted:auto", "is a file"),
    # clca simulate
    ("simulate --run {tmp}/missing", "scenarios.jsonl does not exist"),
    ("simulate --run {run} --samples 1000000000", "--samples"),
    ("simulate --run {run} --samples 0", "--samples"),
    ("simulate --run {run} --batch-size -3", "--batch-size"),
    ("simulate --run {run} --culture Narnia", "unknown culture"),
    ("simulate --run {run} --culture Germany", "no scenario of Germany"),
    ("simulate --run {run} --limit -1", "--limit"),
    ("simulate --run {run} --max-turns 0", "--max-turns"),
    ("simulate --run {run} --max-new-tokens 0", "--max-new-tokens"),
    ("simulate --run {run} --temperature -1", "--temperature"),
    ("simulate --run {run} --max-consecutive-failures 0", "--max-consecutive-failures"),
    ("simulate --run {run} --model openai:m@http://user:sk-SECRET@127.0.0.1:9/v1", "credential"),
    # clca judge / intents / stats
    ("judge --run {tmp}/missing --model scripted:auto", "episodes.jsonl does not exist"),
    ("judge --run {run} --rule bogus", "--rule"),
    ("judge --run {run} --batch-size 0", "--batch-size"),
    ("judge --run {run} --max-new-tokens 3", "--max-new-tokens"),
    ("judge --run {run} --max-retries -1", "--max-retries"),
    ("intents --run {nojudge} --model scripted:auto", "judgements.jsonl does not exist"),
    ("intents --run {run} --max-new-tokens 0", "--max-new-tokens"),
    ("stats --run {tmp}/missing", "does not exist"),
    # clca mix / train
    ("mix --run {run} --culture Narnia", "unknown culture"),
    ("mix --run {run} --culture China --ablation bogus", "--ablation"),
    ("mix --run {run} --culture China --val-fraction 1.5", "--val-fraction"),
    ("mix --run {run} --culture China --ratio-intent -1", "--ratio-intent"),
    ("mix --run {run} --culture China --max-examples 0", "--max-examples"),
    ("mix --run {nojudge} --culture China", "judgements.jsonl is missing"),
    ("train --run {run} --culture China --preset gpu", "--preset"),
    ("train --run {run} --culture China --lora-r 0", "--lora-r"),
    ("train --run {run} --culture China --learning-rate -1", "--learning-rate"),
    ("train --run {run} --culture Narnia", "unknown culture"),
    ("train --run {run} --culture China --ablation bogus", "--ablation"),
    # clca eval
    ("eval --out {tmp}/ev --countries Narnia", "Narnia"),
    ("eval --out {tmp}/ev --questions ''", "--questions"),
    ("eval --out {tmp}/ev --questions Q999", "Q999"),
    ("eval --out {tmp}/ev --styles nope", "unknown prompt style"),
    ("eval --out {tmp}/ev --mode vibes", "--mode"),
    ("eval --out {tmp}/ev --batch-size 0", "--batch-size"),
    ("eval --out {tmp}/ev --samples 0", "--samples"),
    ("eval --out {tmp}/ev --personas 0", "--personas"),
    ("eval --out {tmp}/ev --temperature 3", "--temperature"),
    ("eval --out {tmp}/ev --survey {tmp}/missing.csv", "neither 'wvs7' nor an existing file"),
    ("eval --out {file}", "is a file"),
    ("eval --out {tmp}/ev --model openai:m@http://127.0.0.1:9/v1?api_key=sk-SECRET", "credential"),
    ("eval --out {tmp}/ev --model openai:m@http://127.0.0.1:9/v1?timeout=-1", "timeout"),
    ("eval --out {tmp}/ev --model openai:m@http://127.0.0.1:9/v1?speed=9", "unknown setting"),
    ("eval --out {tmp}/ev --protocol paper --questions Q1 --model scripted:auto", "respondent"),
    # clca report / models / data
    ("report --run {tmp}/missing", "does not exist"),
    ("models pull nope", "nope"),
    ("--data-dir {tmp}/nodata data countries", "--data-dir"),
    ("data questions --questions Q999", "Q999"),
]


@pytest.mark.parametrize(
    ("argv", "needle"), BAD, ids=[f"{i:02d}-{a.split()[0]}" for i, (a, _) in enumerate(BAD)]
)
def test_bad_input_is_one_line_and_changes_nothing(
    argv: str, needle: str, world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(**{k: str(v) for k, v in world.items()}) for a in argv.split(" ")]
    args = ["" if a == "''" else a for a in args]
    before = snapshot(world["tmp"])
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert "SECRET" not in err  # a key in a spec is never echoed
    assert snapshot(world["tmp"]) == before  # nothing written, nothing lost


def test_bad_data_dir_names_its_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLCA_DATA_DIR", str(tmp_path / "nowhere"))
    assert main(["data", "countries"]) == 2
    err = capsys.readouterr().err
    assert "CLCA_DATA_DIR environment variable" in err and "--data-dir option" not in err


def test_count_of_bad_inputs() -> None:
    assert len(BAD) >= 60


# ------------------------------------------------------------------------------------- kill -9 and resume


def _clca(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = "import sys; from clca.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


STAGES: dict[str, list[str]] = {
    "scenarios": ["scenarios", "--cultures", "China,Japan", "--per-culture", "3", "--batch-size", "2"],
    "simulate": ["simulate", "--samples", "2", "--max-turns", "3", "--batch-size", "4"],
    "judge": ["judge", "--batch-size", "2"],
    "intents": ["intents", "--batch-size", "3"],
}


def _stage_args(stage: str, run: Path) -> list[str]:
    return [*STAGES[stage], "--run", str(run), "--model", "scripted:auto", "--no-cache", "--no-progress"]


def _prepare(run: Path, upto: str, env: dict[str, str]) -> None:
    for stage in STAGES:
        if stage == upto:
            return
        proc = _clca(_stage_args(stage, run), env)
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""


@pytest.mark.parametrize("stage", list(STAGES))
def test_kill_9_at_random_points_resumes_to_the_same_bytes(
    stage: str, tmp_path: Path, data_dir: Path
) -> None:
    import shutil

    env = {**os.environ, DELAY_ENV: "0.05"}
    base = tmp_path / "base"
    base.mkdir()
    _prepare(base, stage, env)
    before = snapshot(base)
    ref = tmp_path / "ref"
    shutil.copytree(base, ref)
    proc = _clca(_stage_args(stage, ref), env)
    t0 = time.monotonic()
    assert proc.wait(timeout=300) == 0
    full_s = time.monotonic() - t0
    expected = {k: v for k, v in snapshot(ref).items() if k != ".lock"}
    assert expected != before
    rng = random.Random(stage)
    killed = 0
    for k in range(2):
        run = tmp_path / f"killed{k}"
        shutil.copytree(base, run)
        for _ in range(2):  # up to two kills at random moments, then a run to the end
            p = _clca(_stage_args(stage, run), env)
            time.sleep(rng.uniform(0.2, max(0.3, 0.9 * full_s)))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed += 1
            p.wait(timeout=60)
        final = _clca(_stage_args(stage, run), env)
        assert final.wait(timeout=300) == 0, final.stderr.read() if final.stderr else ""
        got = {k2: v for k2, v in snapshot(run).items() if k2 != ".lock"}  # the lock file is emptied on exit
        assert got == expected, (stage, k)
    assert killed >= 1  # the kills did land mid-stage


# ------------------------------------------------------------------------------------- one writer


def test_two_writers_on_one_run_directory(tmp_path: Path, data_dir: Path) -> None:
    env = {**os.environ, DELAY_ENV: "0.2"}
    run = tmp_path / "run"
    _prepare(run, "simulate", env)
    first = _clca(_stage_args("simulate", run), env)
    time.sleep(1.5)
    second = subprocess.run(
        [sys.executable, "-c", "import sys; from clca.cli import main; sys.exit(main(sys.argv[1:]))",
         *_stage_args("simulate", run)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2
    assert (
        f"in use by PID {first.pid} on " in second.stderr
        and "(clca simulate)" in second.stderr
        and len(second.stderr.strip().splitlines()) == 1
    )
    assert first.wait(timeout=300) == 0
    rd = RunDir(run)
    ids = [e.id for e in rd.episode_store().all()]
    assert len(ids) == len(set(ids)) == 2 * 6  # 6 scenarios x 2 samples, nothing written twice
    # a stale lock of a dead process is taken over
    dead = _clca(_stage_args("judge", run), env)
    time.sleep(1.0)
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    ok = _clca(_stage_args("judge", run), {**os.environ})
    assert ok.wait(timeout=120) == 0


# ------------------------------------------------------------------------------------- faulty server


@pytest.fixture()
def faulty() -> Iterator[OpenAIServer]:
    def answer(path: str, body: dict[str, object]) -> dict[str, object]:
        messages = body["messages"]
        assert isinstance(messages, list)
        text = stage_reply(messages)  # type: ignore[arg-type]
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}

    s = OpenAIServer(answer, hang_s=1.5)
    yield s
    s.close()


def test_a_faulty_server_loses_no_record(faulty: OpenAIServer, tmp_path: Path, data_dir: Path) -> None:
    """500, 429 with Retry-After, a hang past the timeout, bad JSON, empty choices, a missing message and a
    reset connection, spread over a role-play run: every episode is written once, every retry is counted."""
    from clca.llm.registry import load_backend
    from clca.roleplay import simulate
    from clca.roleplay.config import SimulateConfig

    faults = ["500", "429", "hang", "badjson", "empty", "nofield", "reset", "503"]
    faulty.script = [x for f in faults * 2 for x in (f, "ok")]
    run = make_run(tmp_path)
    rd = RunDir(tmp_path / "sim")
    rd.scenario_store().extend(run.scenarios())
    be = load_backend(
        f"openai:m@{faulty.url}?timeout=0.5&max_retries=4&backoff=0.01&max_in_flight=4", cache=False
    )
    summary = simulate(be, rd, SimulateConfig(samples=3, max_turns=2), progress=False)
    used = be.usage()
    be.close()
    eps = rd.episode_store().all()
    assert len(eps) == len({e.id for e in eps}) == 6 == summary.finished
    assert all(e.stop_reason in ("leave", "max_turns") for e in eps)
    retries = {k: v for k, v in used.items() if k.startswith("http.retries.")}
    assert sum(retries.values()) == len(faults) * 2 and used.get("http.failures", 0) == 0
    assert {
        "http.retries.timeout",
        "http.retries.malformed",
        "http.retries.http_5xx",
        "http.retries.http_429",
    } <= set(retries)
    assert "http.retries.connection" in retries


def test_finished_answers_of_a_failing_batch_are_cached(faulty: OpenAIServer, tmp_path: Path) -> None:
    from clca.errors import ModelError
    from clca.llm.base import GenerationParams
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend

    cache = CallCache(tmp_path / "c.sqlite")
    be = load_backend(f"openai:m@{faulty.url}?max_retries=0&max_in_flight=1", cache=cache)
    faulty.script = ["ok", "500", "ok"]
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    with pytest.raises(ModelError, match="HTTP 500"):
        be.generate(chats, GenerationParams())  # type: ignore[arg-type]
    n = len(faulty.requests)
    assert be.generate(chats, GenerationParams()) == ["OK"] * 3  # type: ignore[arg-type]
    assert len(faulty.requests) == n + 1  # only the failed one was asked again
    be.close()
