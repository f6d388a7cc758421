"""Outputs that travel: portable adapters (hub id as the base), model and dataset cards, `clca export`,
`clca merge`; the exported folders load from disk with plain PEFT and `datasets`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_training_mix import make_run_dir
from test_training_train import _tiny_llama_without_pad

from clca.cli import main
from clca.training.config import MixConfig
from clca.training.mix import build_mix
from clca.training.presets import preset
from clca.training.train import train_adapter


def _front(text: str) -> dict[str, object]:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])  # type: ignore[no-any-return]


def _tiny_cfg(base: Path, **kw: object) -> object:
    return preset(
        "cpu", model=f"hf:{base}", max_steps=2, per_device_batch_size=2, grad_accum=1, max_length=1024,
        learning_rate=5e-3, save_checkpoints=False, eval_each_epoch=False, **kw,
    )  # fmt: skip


def assert_same_logits(model: object, tok: object, spec: str, atol: float) -> None:
    """``model`` gives the logits clca's local backend gives for ``spec`` on a short text."""
    from clca.llm.registry import load_backend

    ids = tok("Hello Wei, shall we talk?", return_tensors="pt").input_ids  # type: ignore[operator]
    be = load_backend(spec, cache=False)
    with torch.inference_mode():
        ours = be.model(input_ids=ids).logits  # type: ignore[attr-defined]
        torch.testing.assert_close(model(input_ids=ids).logits, ours, atol=atol, rtol=0)  # type: ignore[operator]
    be.close()


@pytest.fixture()
def trained(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A run directory with one China mix and one adapter trained on a tiny local Llama (hf: path)."""
    base = _tiny_llama_without_pad(tmp_path / "tiny")
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.3, max_examples=6))
    adapter = run.adapter_dir("China")
    train_adapter(mix.path, adapter, _tiny_cfg(base), progress=False)  # type: ignore[arg-type]
    return run.path, base, adapter


def test_adapter_folder_has_a_card_and_a_portable_base(trained: tuple[Path, Path, Path]) -> None:
    _run, base, adapter = trained
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(base)  # a local folder has no hub id: its path stays
    card = (adapter / "README.md").read_text()
    meta = _front(card)
    assert meta["base_model"] == str(base) and meta["library_name"] == "peft"
    assert meta["clca"]["culture"] == "China" and meta["clca"]["train_examples"] > 0  # type: ignore[index]
    assert "CC-BY-SA-4.0" in card and "World Values Survey" in card
    res = json.loads((adapter / "train_result.json").read_text())
    assert res["base_model_id"] == str(base)


def test_export_folders_load_from_disk(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from datasets import load_dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run, base, adapter = trained
    out = tmp_path / "export"
    assert main(["export", "--run", str(run), "--to", str(out)]) == 0
    exported = out / "adapters" / f"{run.name}--china"
    assert (exported / "adapter_model.safetensors").exists() and (exported / "README.md").exists()
    assert not (exported / "checkpoints").exists()
    # plain PEFT on the base's local copy gives clca's logits
    plain = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32), str(exported)
    ).eval()
    assert_same_logits(plain, AutoTokenizer.from_pretrained(str(base)), f"hf:{base}+adapter={adapter}", 1e-5)
    # the dataset folder: Parquet splits + a card whose configs block `load_dataset` follows
    (ds_dir,) = (out / "datasets").glob(f"{run.name}--china--*")
    meta = _front((ds_dir / "README.md").read_text())
    assert meta["license"] == "cc-by-sa-4.0"
    loaded = load_dataset(str(ds_dir))
    stats = json.loads((run / "mix" / "china" / "mix_stats.json").read_text())
    assert (
        len(loaded["train"]) == stats["train_examples"]
        and len(loaded["validation"]) == stats["validation_examples"]
    )
    assert loaded["train"][0]["messages"][0]["role"] == "system"


def test_merge_gives_the_adapted_logits(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, base, adapter = trained
    merged = tmp_path / "merged"
    assert main(["merge", "--adapter", str(adapter), "--to", str(merged)]) == 0
    model = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32).eval()
    assert_same_logits(
        model, AutoTokenizer.from_pretrained(str(merged)), f"hf:{base}+adapter={adapter}", 1e-4
    )
    assert main(["merge", "--adapter", str(tmp_path), "--to", str(tmp_path / "x")]) == 2


@pytest.mark.slow
def test_embedded_adapter_loads_by_hub_id_in_a_fresh_process(tmp_path: Path) -> None:
    """An adapter of the embedded SmolLM2 names HuggingFaceTB/SmolLM2-135M-Instruct as its base; on a machine
    whose Hugging Face cache holds that model (here: the local copy placed in a fresh cache, offline),
    `AutoPeftModelForCausalLM.from_pretrained(adapter)` loads it and gives the same logits as clca."""
    from clca.llm.registry import load_backend
    from clca.llm.spec import resolve_local_model

    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=2, ablation="dialogue_only"))
    adapter = tmp_path / "adapter"
    cfg = preset("cpu", max_steps=1, per_device_batch_size=1, grad_accum=1, max_length=512,
                 save_checkpoints=False, eval_each_epoch=False, learning_rate=5e-3)  # fmt: skip
    torch.set_num_threads(1)
    train_adapter(mix.path, adapter, cfg, progress=False)
    hub_id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == hub_id
    assert _front((adapter / "README.md").read_text())["base_model"] == hub_id

    local = resolve_local_model("embedded:smollm2-135m")
    cache = tmp_path / "hf-cache"
    snap = cache / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots" / "0"
    snap.mkdir(parents=True)
    for f in local.iterdir():
        (snap / f.name).symlink_to(f)
    (cache / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "refs").mkdir()
    (cache / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "refs" / "main").write_text("0")
    text = "Hello, how are you?"
    script = (
        "import json, sys, torch\n"
        "from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n"
        f"m = AutoPeftModelForCausalLM.from_pretrained({str(adapter)!r}, dtype=torch.float32).eval()\n"
        f"t = AutoTokenizer.from_pretrained({hub_id!r})\n"
        f"ids = t({text!r}, return_tensors='pt').input_ids\n"
        "with torch.inference_mode(): print(json.dumps(m(input_ids=ids).logits[0, -1, :50].tolist()))\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    theirs = torch.tensor(json.loads(out.stdout.strip().splitlines()[-1]))
    be = load_backend(f"embedded:smollm2-135m+adapter={adapter}", cache=False)
    tok = be.tokenizer  # type: ignore[attr-defined]
    ids = tok(text, return_tensors="pt").input_ids
    with torch.inference_mode():
        ours = be.model(input_ids=ids).logits[0, -1, :50]  # type: ignore[attr-defined]
    be.close()
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)


def test_exports_of_two_runs_never_read_each_others_rows(tmp_path: Path) -> None:
    """`datasets` caches a local folder by its name: two runs' exports of the same culture with different rows
    load as their own rows (the names carry the run and the content)."""
    from datasets import load_dataset

    counts = {}
    for name, val in (("demo", 0.2), ("other", 0.5)):
        run = make_run_dir(tmp_path / "a" / name)
        build_mix(run, "China", MixConfig(val_fraction=val), seed=1)
        assert main(["export", "--run", str(run.path), "--to", str(tmp_path / "out")]) == 0
        counts[name] = run.mix("China").stats()
    again = make_run_dir(tmp_path / "b" / "demo")  # a second run of the same name with other rows
    build_mix(again, "China", MixConfig(val_fraction=0.5), seed=1)
    assert main(["export", "--run", str(again.path), "--to", str(tmp_path / "out2")]) == 0
    folders = sorted((tmp_path / "out" / "datasets").iterdir()) + sorted(
        (tmp_path / "out2" / "datasets").iterdir()
    )
    assert len({f.name for f in folders}) == 3
    for folder, want in zip(folders, [counts["demo"], counts["other"], counts["other"]], strict=True):
        loaded = load_dataset(str(folder))
        assert want is not None and len(loaded["train"]) == want.train_examples
