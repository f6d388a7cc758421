"""Evaluation through an OpenAI-compatible server that serves the base and the adapters by name (vLLM's
``--lora-modules <tag>=<dir>``): the same numbers as the local evaluation, and ``eval.server`` in a run sends each
adapter's evaluation to its served name. The server is tests/oai_server.py's, around a tiny Llama built here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from oai_server import OpenAIServer, ServedModels
from test_training_train import _tiny_llama_without_pad

from clca.evaluation import EvalConfig, evaluate
from clca.llm.registry import load_backend
from clca.llm.spec import served_spec

pytestmark = pytest.mark.slow  # a tiny model served over HTTP and run locally: ~40 s


def _adapter(base: Path, out: Path) -> Path:
    """A LoRA adapter of ``base`` with random (non-zero) B matrices: it changes the answers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(base)),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0.0, 0.5)
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("served")
    base = _tiny_llama_without_pad(root / "tiny")
    adapter = _adapter(base, root / "adapter")
    models = ServedModels("tiny-base", base, {"clca-china": adapter})
    server = OpenAIServer(models)
    yield base, adapter, models, server
    server.close()


def _eval(tmp_path: Path, spec: str, tag: str, **kw: Any) -> list[Any]:
    cfg = EvalConfig(
        out_dir=tmp_path / tag,
        model_tag=tag,
        countries=["China"],
        questions="Q1-Q4",
        bootstrap=20,
        batch_size=4,
        **kw,
    )
    backend = load_backend(spec, cache=False)
    try:
        return sorted(evaluate(backend, cfg).records, key=lambda r: r.id)
    finally:
        backend.close()


@pytest.mark.parametrize("who", ["base", "adapter"])
def test_served_model_gives_the_local_numbers(served: Any, tmp_path: Path, data_dir: Path, who: str) -> None:
    """Option log-probs within 1e-3 and greedy answers equal, for the base and for an adapter asked by name."""
    base, adapter, models, server = served
    local = f"hf:{base}" + (f"+adapter={adapter}" if who == "adapter" else "")
    remote = served_spec(
        f"openai:tiny-base@{server.url}+tokenizer=hf:{base}",
        "clca-china" if who == "adapter" else "tiny-base",
    )
    a = _eval(tmp_path / "local", local, "m", styles=["plain", "cultural"])
    b = _eval(tmp_path / "remote", remote, "m", styles=["plain", "cultural"])
    assert [r.id for r in a] == [r.id for r in b] and len(a) == 8
    for x, y in zip(a, b, strict=True):
        assert x.model_dist == pytest.approx(y.model_dist, abs=1e-3), x.id
    assert b[0].model_spec == remote
    # greedy generation (the paper's mode): the same answer texts
    gen = {"mode": "generate", "styles": ["plain"], "max_new_tokens": 6}
    ga = _eval(tmp_path / "local-gen", local, "g", **gen)
    gb = _eval(tmp_path / "remote-gen", remote, "g", **gen)
    assert [r.prompts[0].generations for r in ga] == [r.prompts[0].generations for r in gb]
    assert ("clca-china" in models.asked) == (who == "adapter")


def test_a_run_evaluates_its_adapters_through_the_server(served: Any, tmp_path: Path, data_dir: Path) -> None:
    """`eval.server` in a run: the base evaluation goes to the served base, each adapter's to its tag; the
    records name the served model."""
    from clca.config import config_from_mapping
    from clca.llm.testing import ScriptedBackend, stage_reply
    from clca.pipeline import Stage, StageContext, run_pipeline
    from clca.rundir import RunDir

    base, adapter, models, server = served
    cfg = config_from_mapping(
        {
            "run_dir": str(tmp_path / "run"),
            "cultures": ["China"],
            "models": {
                "teacher": "scripted:auto",
                "actor": "scripted:auto",
                "judge": "scripted:auto",
                "student": f"hf:{base}",
            },
            "scenarios": {"per_culture": 1},
            "simulate": {"samples": 1, "max_turns": 2},
            "eval": {
                "questions": "Q1-Q2",
                "styles": ["plain"],
                "bootstrap": 20,
                "server": f"openai:tiny-base@{server.url}+tokenizer=hf:{base}",
            },
        }
    )

    def train(ctx: StageContext, stage: Stage) -> dict[str, int]:  # the adapter the server already serves
        import shutil

        shutil.copytree(adapter, stage.outputs[0])
        return {"steps": 1}

    def load(spec: str) -> Any:
        return (
            load_backend(spec, cache=False)
            if spec.startswith("openai:")
            else ScriptedBackend(stage_reply, spec=spec)
        )

    run_pipeline(cfg, progress=False, load_backend=load, replace={"train": train})
    recs = RunDir(cfg.run_dir).eval_records()
    specs = {r.model_tag: r.model_spec for r in recs}
    assert specs["base"].startswith("openai:tiny-base@") and specs["clca-china"].startswith(
        "openai:clca-china@"
    )
    assert "clca-china" in models.asked
