"""Outputs that travel: ``clca export`` and ``clca merge``.

* **Export.** :func:`export_run` writes, for a run directory, one folder per adapter
  (``adapters/<run>--<variant>``: PEFT files, tokenizer files when saved, ``train_result.json``, the model card
  with the report's numbers) and one per training mix (``datasets/<run>--<variant>--<content sha256[:8]>``:
  Parquet splits under ``data/``, ``mix_stats.json``, a dataset card with a ``configs`` block), named so that
  exports of different runs never collide (``datasets`` caches a local folder by its name alone), that
  ``hf upload`` / ``push_to_hub`` accept as they are and that load from disk with ``PeftModel.from_pretrained``
  / ``datasets.load_dataset(folder)``. Adapters are portable (their base named by hub id) and carry cards
  (:mod:`clca.training.cards`).
* **Merge.** :func:`merge_adapter` folds an adapter into its base and saves a full model folder (for servers
  that cannot serve the adapter, e.g. vLLM with the paper preset's trained embeddings and LM head).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path

from clca.errors import DataError
from clca.records import BeforeAfter
from clca.rundir import AdapterDir, MixDir, RunDir, slug
from clca.training.cards import AdapterEval, adapter_card, adapter_facts, dataset_card, make_portable

ADAPTER_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "train_result.json",
    "train_log.jsonl",
)


def _eval_rows(report: BeforeAfter | None, trained_on: str, seed: int | None) -> list[AdapterEval]:
    """The Δ KL rows of an adapter from ``before_after.json``: its family's cells (mean over the training seeds,
    with the CI) and ``this_seed``, this adapter's own Δ."""
    if report is None:
        return []
    seeds = report.families.get(trained_on, [])
    pos = seeds.index(seed) if seed in seeds else (0 if len(seeds) == 1 else None)
    rows = []
    for style, metrics in report.matrix.items():
        for metric, table in metrics.items():
            if metric != "kl":
                continue
            for r in table:
                if r.trained_on != trained_on:
                    continue
                for culture, cell in r.cells.items():
                    own = cell.per_seed[pos] if pos is not None and pos < len(cell.per_seed) else None
                    rows.append(
                        AdapterEval(
                            culture=culture,
                            style=style,
                            metric=metric,
                            this_seed=own,
                            mean=cell.mean,
                            ci=cell.ci,
                        )
                    )
    return rows


def export_run(run_path: Path, out: Path) -> dict[str, list[Path]]:
    """Write ``out/adapters/<name>/`` and ``out/datasets/<name>/`` for every adapter and mix of a run."""
    from datasets import disable_progress_bars, load_from_disk

    if not run_path.is_dir():
        raise DataError(f"run directory {run_path} does not exist.", fix="give --run a clca run directory.")
    disable_progress_bars()
    run = RunDir(run_path)
    report = run.before_after()
    name = slug(run_path.resolve().name)
    written: dict[str, list[Path]] = {"adapters": [], "datasets": []}
    for src in run.adapters():
        dst = AdapterDir(out / "adapters" / f"{name}--{src.path.name}")
        dst.path.mkdir(parents=True, exist_ok=True)
        for f in ADAPTER_FILES:
            if (src.path / f).exists():
                shutil.copy2(src.path / f, dst.path / f)
        res, mix = adapter_facts(dst.path)
        if res is not None and res.base_model:  # adapters trained before bases were named by hub id
            with contextlib.suppress(Exception):  # a server or scripted base: keep what PEFT wrote
                make_portable(dst.path, res.base_model)
        seed = res.config.get("seed") if res is not None else None
        evals = _eval_rows(report, mix.culture if mix is not None else "", seed)
        dst.card_file.write_text(adapter_card(dst.path, evals), encoding="utf-8")
        written["adapters"].append(dst.path)
    for mix_dir in run.mixes():
        dd = load_from_disk(str(mix_dir.path))
        staging = out / "datasets" / f".{name}--{mix_dir.path.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "data").mkdir(parents=True)
        for split in dd:
            dd[split].to_parquet(str(staging / "data" / f"{split}-00000-of-00001.parquet"))
        # `datasets` caches a local folder under its name alone (not its path or content): a name that says
        # the run, the mix and its content keeps two exports from ever reading each other's cached rows
        digest = hashlib.sha256()
        for part in sorted((staging / "data").iterdir()):
            digest.update(part.name.encode() + part.read_bytes())
        dst_path = out / "datasets" / f"{name}--{mix_dir.path.name}--{digest.hexdigest()[:8]}"
        shutil.rmtree(dst_path, ignore_errors=True)
        staging.rename(dst_path)
        stats = mix_dir.stats()
        if stats is not None:
            MixDir(dst_path).write_stats(stats)
        (dst_path / "README.md").write_text(
            dataset_card(mix_dir.path.name, stats, list(dd)), encoding="utf-8"
        )
        written["datasets"].append(dst_path)
    return written


def merge_adapter(adapter_dir: Path, out: Path, base_spec: str | None = None) -> Path:
    """Fold a LoRA adapter into its base and save a full model folder (model + tokenizer) at ``out``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clca.llm.spec import resolve_local_model

    folder = AdapterDir(adapter_dir)
    if not folder.config_file.exists():
        raise DataError(
            f"{adapter_dir} holds no adapter_config.json.", fix="give --adapter an adapter folder."
        )
    res = folder.result()
    spec = base_spec or (res.base_model if res is not None else None)
    if spec is None:
        raise DataError(
            f"{adapter_dir} does not say its base model (no train_result.json).",
            fix="pass --base with the base's spec (embedded:..., hf:...).",
        )
    base_path = resolve_local_model(spec)
    model = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32)
    tok_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else base_path
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    if len(tok) > int(model.get_input_embeddings().weight.shape[0]):  # type: ignore[index]
        model.resize_token_embeddings(len(tok))
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
