"""Model spec strings: parsing them, and the local folder behind an ``embedded:`` or ``hf:`` spec.

No model is loaded here (see :mod:`clca.llm.registry`); :mod:`clca.llm.openai_backend` and the registry both
import this module, so neither imports the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clca.errors import ModelError
from clca.llm.embedded import ensure_embedded, get_embedded

KNOWN_FORMS = (
    "embedded:smollm2-135m, embedded:qwen2.5-coder-0.5b, hf:<model id or local path>, "
    "<embedded or hf spec>+adapter=<adapter dir>, openai:<model>@<base_url>, scripted:auto (no model, tests)"
)
ADAPTER_SEP = "+adapter="
TOKENIZER_SEP = "+tokenizer="


@dataclass(frozen=True)
class ParsedSpec:
    """A spec split into its parts."""

    kind: str  # embedded | hf | openai | scripted
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
    if kind == "scripted":
        if rest != "auto":
            raise ModelError(
                f"cannot resolve model spec {spec!r}.", fix="the only scripted model is scripted:auto."
            )
        return ParsedSpec("scripted", rest)
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


def api_key_env() -> str:
    """The environment variable holding the OpenAI-compatible key (``CLCA_OPENAI_KEY_ENV`` or OPENAI_API_KEY)."""
    return os.environ.get("CLCA_OPENAI_KEY_ENV") or "OPENAI_API_KEY"


def api_key() -> str | None:
    """The API key from :func:`api_key_env`; None if unset."""
    return os.environ.get(api_key_env()) or None
