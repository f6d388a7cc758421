"""One adapter trained by several processes (`accelerate launch`, DDP over gloo on CPU), against one process.

The two-process run and the one-process run see the same global batch: the mix has 4 examples, the two
processes take 2 each (per-device batch 2) and the single process takes all 4 (per-device batch 4), so every
step covers the whole mix in both. The loss is the token mean over the global batch in both: each process
divides its token-summed loss by the tokens of *all* processes (``num_items_in_batch`` is gathered, as
``average_tokens_across_devices`` asks) and multiplies by the number of processes, and DDP averages the
gradients. So the two runs compute the same gradients up to float32 summation order.

Tolerance: per-step losses and gradient norms (relative) within 1e-5, adapter weights within 1e-4 (max abs).
The runs differ only in the order of float32 sums (two partial sums added by gloo vs one sum): measured 1e-6 on
the losses, 8e-8 on the gradient norms and 7e-7 on the weights after 4 steps. The bounds sit well below what a
real difference shows: with each process training on its own half (the fault this test caught in clca's sparse
LM-head loss, which ran the backbone outside the DDP wrapper, so the gradients were never all-reduced) the
step-2 loss moved by 2e-4, the step-4 loss by 2e-3 and the weights by 4e-2. Adam's first step moves every
weight by about lr x sign(gradient) = 1e-2, so the 1e-4 bound also catches one gradient whose sign differs.

Runs on CPU (2 processes, 1 thread each); a slow test (process starts and model loads, ~1 minute).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from test_training_mix import make_run_dir
from test_training_train import _tiny_llama_without_pad

from clca.training.config import MixConfig
from clca.training.mix import build_mix
from clca.training.train import PROCESSES_ENV, accelerate_command

STEPS = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random Llama and a run directory with a 4-example dialogue mix."""
    root = tmp_path_factory.mktemp("accelerate")
    base = _tiny_llama_without_pad(root / "tiny")
    run = make_run_dir(root / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=4, ablation="dialogue_only"))
    assert mix.train_examples == 4
    return {"root": root, "base": base, "run": run.path}


def _train_args(world: dict[str, Path], out: Path, batch: int) -> list[str]:
    return [
        "train", "--run", str(world["run"]), "--culture", "China", "--ablation", "dialogue_only",
        "--model", f"hf:{world['base']}", "--preset", "cpu", "--out", str(out), "--max-steps", str(STEPS),
        "--per-device-batch-size", str(batch), "--grad-accum", "1", "--learning-rate", "1e-2",
        "--warmup-ratio", "0", "--logging-steps", "1", "--max-length", "1024", "--no-save-checkpoints",
        "--no-eval-each-epoch", "--no-build-mix", "--no-progress", "--seed", "0",
    ]  # fmt: skip


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **env}
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=540, check=False)


def _log(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_processes_train_the_same_adapter_as_one(world: dict[str, Path]) -> None:
    """`accelerate launch` with 2 processes (the pipeline's command): only rank 0 writes and prints, the loss
    goes down, the adapter loads, and it equals a one-process run with the same global batch (tolerances in the
    module doc)."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from clca.llm.registry import load_backend

    two, one = world["root"] / "two", world["root"] / "one"
    cmd = accelerate_command(2, cuda=False)
    assert "--multi_gpu" in cmd and "--cpu" not in cmd  # --cpu would start one process
    proc = _run([*cmd, "-m", "clca", *_train_args(world, two, 2)], **{PROCESSES_ENV: "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = _run([sys.executable, "-m", "clca", *_train_args(world, one, 4)])
    assert single.returncode == 0, single.stderr[-3000:]

    # only rank 0 writes and prints: the same files as the single process, one result, one log line per step
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert (two / "train_result.json").is_file() and (two / "README.md").is_file()
    assert not (two / "checkpoints").exists()
    assert proc.stdout.count("Adapter for China") == 1 and proc.stdout.count("use it as:") == 1
    assert proc.stderr.count("Loading weights") <= single.stderr.count("Loading weights")  # no replica bars
    log2, log1 = _log(two), _log(one)
    assert {r["processes"] for r in log2} == {2} and {r["processes"] for r in log1} == {1}
    assert [r["step"] for r in log2 if "loss" in r] == list(range(1, STEPS + 1))
    assert len(log2) == len(log1)  # no duplicate lines from rank 1
    res2 = json.loads((two / "train_result.json").read_text())
    res1 = json.loads((one / "train_result.json").read_text())
    assert res2["steps"] == res1["steps"] == STEPS
    assert res2["train_tokens"] == res1["train_tokens"]  # rank 0 counts the tokens of both processes

    # the loss goes down, and both runs compute the same steps
    losses2 = [r["loss"] for r in log2 if "loss" in r]
    losses1 = [r["loss"] for r in log1 if "loss" in r]
    assert losses2[-1] < losses2[0], losses2
    assert max(abs(a - b) for a, b in zip(losses2, losses1, strict=True)) < 1e-5, (losses2, losses1)
    norms2 = [r["grad_norm"] for r in log2 if "grad_norm" in r]
    norms1 = [r["grad_norm"] for r in log1 if "grad_norm" in r]
    assert max(abs(a - b) / b for a, b in zip(norms2, norms1, strict=True)) < 1e-5, (norms2, norms1)
    w2, w1 = (
        load_file(str(two / "adapter_model.safetensors")),
        load_file(str(one / "adapter_model.safetensors")),
    )
    assert set(w2) == set(w1)
    diff = max(float((w2[k] - w1[k]).abs().max()) for k in w1)
    assert diff <= 1e-4, diff
    assert max(float(w.abs().max()) for k, w in w2.items() if "lora_B" in k) > 1e-3  # it did train

    # the adapter loads: clca's local backend and plain PEFT give the same logits
    be = load_backend(f"hf:{world['base']}+adapter={two}", cache=False)
    plain = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(world["base"]), dtype=torch.float32), str(two)
    ).eval()
    ids = be.tokenizer("Hello Wei, shall we talk?", return_tensors="pt").input_ids  # type: ignore[attr-defined]
    with torch.inference_mode():
        torch.testing.assert_close(be.model(input_ids=ids).logits, plain(input_ids=ids).logits)  # type: ignore[attr-defined]
    be.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_launch_with_fewer_processes_stops(world: dict[str, Path]) -> None:
    """`accelerate launch --cpu --num_processes 2` starts one process: told to expect 2, `clca train` stops in
    one line instead of training alone."""
    out = world["root"] / "cpu-flag"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2"]
    proc = _run([*cmd, "-m", "clca", *_train_args(world, out, 2)], **{PROCESSES_ENV: "2"})
    assert proc.returncode != 0
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert err and "launched for 2 processes but runs in 1" in err[0], proc.stderr[-2000:]
    assert not (out / "train_result.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pipeline_trains_through_the_accelerate_launcher(
    world: dict[str, Path], tmp_path: Path, data_dir: Path
) -> None:
    """`train.launcher: accelerate, num_processes: 2`: `clca run` (scripted generation stages, the tiny student)
    trains the adapter in 2 processes and the manifest records the train stage done."""
    from test_pipeline import ACTOR, JUDGE, TEACHER, World

    from clca.config import config_from_mapping
    from clca.pipeline import run_pipeline
    from clca.rundir import RunDir

    student = f"hf:{world['base']}"
    cfg = config_from_mapping(
        {
            "run_dir": str(tmp_path / "run"),
            "cultures": ["China"],
            "models": {"teacher": TEACHER, "actor": ACTOR, "judge": JUDGE, "student": student},
            "scenarios": {"per_culture": 2},
            "simulate": {"samples": 1, "max_turns": 2},
            "train": {
                "preset": "cpu",
                "launcher": "accelerate",
                "num_processes": 2,
                "overrides": {
                    "max_steps": 2,
                    "per_device_batch_size": 1,
                    "grad_accum": 1,
                    "max_length": 1024,
                    "save_checkpoints": False,
                },
            },
            "eval": {"questions": "Q1-Q2", "styles": ["plain"], "bootstrap": 20},
            "mix": {"val_fraction": 0.0},
        }
    )
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the launched processes inherit it: 2 processes x 1 thread
    try:
        run_pipeline(cfg, progress=False, load_backend=World().load)
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    run = RunDir(cfg.run_dir)
    man = json.loads(run.manifest_file.read_text())
    stage = man["stages"]["train:China"]
    assert stage["status"] == "done" and stage["counts"]["steps"] == 2, stage
    res = json.loads((run.adapter_dir("China") / "train_result.json").read_text())
    assert res["steps"] == 2 and res["base_model"] == student
    log = [
        json.loads(line) for line in (run.adapter_dir("China") / "train_log.jsonl").read_text().splitlines()
    ]
    assert log and {r["processes"] for r in log} == {2}  # trained by two processes, not one


def test_launch_command_starts_several_processes_without_cuda(tmp_path: Path) -> None:
    """One process: `--cpu` off CUDA; several: accelerate's torchrun launcher on a free port (a config file names
    its own rendezvous), never `--cpu`, which would start one."""
    one = accelerate_command(1, cuda=False)
    assert one[1:] == ["-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu"]
    assert "--cpu" not in accelerate_command(1, cuda=True)
    two = accelerate_command(2, cuda=False)
    assert two[3:8] == ["--num_processes", "2", "--multi_gpu", "--num_machines", "1"]
    assert two[8] == "--main_process_port" and int(two[9]) > 0 and "--cpu" not in two
    conf = accelerate_command(4, tmp_path / "multi_gpu.yaml", cuda=True)
    assert conf[3:] == [
        "--num_processes",
        "4",
        "--config_file",
        str(tmp_path / "multi_gpu.yaml"),
        "--multi_gpu",
    ]


def test_the_launched_command_trains_the_model_the_recipe_resolves_to(tmp_path: Path) -> None:
    """``train.overrides.model`` wins over ``models.student`` in-process (``TrainSection.resolve``); the command
    the accelerate launcher runs must train that same model, with the overrides passed as options."""
    from clca.config import load_config
    from clca.pipeline import train_command

    cfg = load_config(
        "configs/demo.yaml",
        [
            f"run_dir={tmp_path}",
            "train.overrides.model=embedded:qwen2.5-coder-0.5b",
            "train.overrides.max_steps=3",
        ],
    )
    args = train_command(cfg, "China", 1, tmp_path / "a")
    assert args[args.index("--model") + 1] == cfg.train.resolve(model=cfg.models.student, seed=1).model
    assert args[args.index("--model") + 1] == "embedded:qwen2.5-coder-0.5b"
    assert args[args.index("--max-steps") + 1] == "3" and args[args.index("--seed") + 1] == "1"
