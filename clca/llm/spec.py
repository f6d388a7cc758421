"""Model spec strings: parsing them, and the local folder behind an ``embedded:`` or ``hf:`` spec.

No model is loaded here (see :mod:`clca.llm.registry`); :mod:`clca.llm.openai_backend` and the registry both
import this module, so neither imports the other.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clca.errors import ModelError
from clca.llm.embedded import ensure_embedded, get_embedded

KNOWN_FORMS = (
    "embedded:smollm2-135m, embedded:qwen2.5-coder-0.5b, hf:<model id or local path>, "
    "<embedded or hf spec>+adapter=<adapter dir>, <embedded or hf spec>+quant=bf16|auto, "
    "openai:<model>@<base_url>, scripted:auto (no model, tests)"
)
ADAPTER_SEP = "+adapter="
TOKENIZER_SEP = "+tokenizer="
QUANT_SEP = "+quant="
#: weight formats a local model may generate with (scoring always uses the model's own weights)
GEN_FORMATS = ("bf16",)
#: what ``+quant=`` may say: a format, or ``auto`` (bf16 where the CPU or GPU computes bf16 natively, else the
#: model's own dtype; decided when the model is loaded, :func:`clca.llm.hardware.resolve_gen_quant`)
GEN_QUANTS = (*GEN_FORMATS, "auto")


def check_gen_quant(quant: str, where: str, allowed: tuple[str, ...] = GEN_QUANTS) -> str:
    """``quant`` when it is one of ``allowed`` (default: what a spec's ``+quant=`` may say), else a one-line
    :class:`ModelError`."""
    if quant not in allowed:
        raise ModelError(
            f"{where} asks for generation weights {quant!r}.",
            fix=f"use +quant={' or +quant='.join(allowed)}, or leave it out (the model's own dtype).",
        )
    return quant


@dataclass(frozen=True)
class ParsedSpec:
    """A spec split into its parts."""

    kind: str  # embedded | hf | openai | scripted
    name: str  # embedded name, hf id/path, or openai model
    adapter: str | None = None
    base_url: str | None = None
    tokenizer: str | None = None  # openai: local tokenizer (HF id/path or embedded spec) for echo scoring
    base_urls: tuple[str, ...] = ()  # openai: every replica's base URL (base_url is the first)
    options: tuple[tuple[str, float], ...] = ()  # openai: transport settings from the URL's query
    quant: str | None = None  # embedded/hf: generation weights (``+quant=bf16`` or ``auto``); None: as loaded
    key_env: str | None = None  # openai: the environment variable holding this spec's key (``?key_env=NAME``)
    insecure_key: bool = False  # openai: the key may go over plain http to a non-loopback host


def parse_spec(spec: str) -> ParsedSpec:
    """Split a spec string; unknown forms raise a one-line :class:`ModelError` listing the known ones."""
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ModelError(f"cannot resolve model spec {spec!r}.", fix=f"use one of: {KNOWN_FORMS}.")
    if kind == "openai":
        return _parse_openai(spec, rest)
    if kind == "scripted":
        if rest != "auto":
            raise ModelError(
                f"cannot resolve model spec {spec!r}.", fix="the only scripted model is scripted:auto."
            )
        return ParsedSpec("scripted", rest)
    if kind not in ("embedded", "hf"):
        raise ModelError(f"cannot resolve model spec {spec!r}.", fix=f"use one of: {KNOWN_FORMS}.")
    quant: str | None = None
    if QUANT_SEP in rest:  # +quant=<format>, before or after +adapter=
        head, _, tail = rest.partition(QUANT_SEP)
        quant, plus, after = tail.partition("+")
        rest = head + (plus + after if plus else "")
        check_gen_quant(quant, f"model spec {spec!r}")
    name, asep, adapter = rest.partition(ADAPTER_SEP)
    if asep and not adapter:
        raise ModelError(f"model spec {spec!r} has an empty adapter path.", fix="write ...+adapter=<dir>.")
    if kind == "embedded":
        get_embedded(name)
    return ParsedSpec(kind, name, adapter=adapter or None, quant=quant)


def served_spec(server: str, name: str) -> str:
    """The spec of model ``name`` on the OpenAI-compatible ``server`` spec (same URLs and options): how an
    adapter served by name (vLLM ``--lora-modules <name>=<dir>``) or a merged model served under a name is
    reached."""
    parsed = parse_spec(server)
    if parsed.kind != "openai":
        raise ModelError(
            f"{server!r} is not an OpenAI-compatible server spec.",
            fix="write openai:<served model>@<base_url>.",
        )
    _, _, tail = server.strip().partition(":")[2].partition("@")
    return f"openai:{name}@{tail}"


#: transport settings an openai spec may carry in its URL query, with their types
OPENAI_OPTIONS: dict[str, type] = {
    "timeout": float,
    "max_retries": int,
    "backoff": float,
    "max_backoff": float,
    "budget": float,
    "max_in_flight": int,
    "top_logprobs": int,
}
#: credential settings an openai spec may carry in its URL query (the variable's name, never the key itself)
KEY_OPTIONS = ("key_env", "insecure_key")
_CREDENTIAL_KEYS = {"key", "api_key", "apikey", "token", "access_token", "password", "secret"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _parse_openai(spec: str, rest: str) -> ParsedSpec:
    """``openai:<model>@<url>[,<url>...][?opt=v&...][+tokenizer=<spec>]`` (see :mod:`clca.llm.registry`)."""
    from urllib.parse import parse_qsl, urlsplit

    rest, _, tokenizer = rest.partition(TOKENIZER_SEP)
    at = min((i for i in (rest.find("@http://"), rest.find("@https://")) if i > 0), default=-1)
    usage = "write openai:<model>@<base_url>, e.g. openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1."
    if at < 0:
        head = spec.partition("?")[0]  # a query may hold what should not be echoed
        shown = head if "@" not in head.split("//", 1)[-1] else "openai:..."
        raise ModelError(f"cannot resolve model spec {shown!r}.", fix=usage)
    model, urls_part = rest[:at], rest[at + 1 :]
    urls_part, _, query = urls_part.partition("?")
    urls = [u.strip().rstrip("/") for u in urls_part.split(",") if u.strip()]
    shown = f"openai:{model}@{','.join(urls)}"  # errors about settings echo no query value but their own
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(urlsplit(u).username or urlsplit(u).password for u in urls) or any(
        k.lower() in _CREDENTIAL_KEYS for k, _ in pairs
    ):
        raise ModelError(
            f"the model spec for {model!r} carries a credential in its URL; clca never stores keys.",
            fix="remove it from the spec, put the key in an environment variable and name that variable "
            "in the spec: ?key_env=NAME.",
        )
    for u in urls:
        parts = urlsplit(u)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ModelError(f"cannot resolve model spec {shown!r}: {u!r} is not an http(s) URL.", fix=usage)
    options: list[tuple[str, float]] = []
    key_env: str | None = None
    insecure_key = False
    for k, v in pairs:
        if k == "key_env":
            key_env = _check_key_env(model, v)
            continue
        if k == "insecure_key":
            if v.lower() not in _BOOL:
                raise ModelError(
                    f"model spec {shown!r}: insecure_key={v!r} is not 1 or 0.", fix="write insecure_key=1."
                )
            insecure_key = _BOOL[v.lower()]
            continue
        if k not in OPENAI_OPTIONS:
            raise ModelError(
                f"model spec {shown!r}: unknown setting {k!r}.",
                fix=f"use {', '.join((*OPENAI_OPTIONS, *KEY_OPTIONS))}.",
            )
        try:
            val = OPENAI_OPTIONS[k](v)
        except ValueError:
            raise ModelError(
                f"model spec {shown!r}: {k}={v!r} is not a number.", fix=f"give {k} a number."
            ) from None
        if val < 0 or (k in ("timeout", "max_in_flight", "top_logprobs", "budget") and val <= 0):
            raise ModelError(
                f"model spec {shown!r}: {k}={v} is out of range.", fix=f"give {k} a positive value."
            )
        options.append((k, val))
    check_key_transport(model, urls, key_env, insecure_key)
    return ParsedSpec(
        "openai",
        model,
        base_url=urls[0],
        tokenizer=tokenizer or None,
        base_urls=tuple(urls),
        options=tuple(options),
        key_env=key_env,
        insecure_key=insecure_key,
    )


def _hf_cache_snapshot(model_id: str) -> Path | None:
    """The local HF cache snapshot of ``model_id`` (no network), or None."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        return None


def _hf_download(model_id: str) -> tuple[Path | None, str]:
    """Download ``model_id`` from the Hugging Face hub (model and tokenizer files); (path, "") or (None, why).
    Nothing is tried when ``HF_HUB_OFFLINE`` is set."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return None, "HF_HUB_OFFLINE is set"
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
        return Path(snapshot_download(model_id, allow_patterns=patterns)), ""
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        return None, f"{type(exc).__name__}: {lines[0] if lines else ''}"[:200]


def portable_base_id(spec: str) -> str:
    """The base model as another machine names it: the Hugging Face id of an embedded model
    (``embedded:smollm2-135m`` -> ``HuggingFaceTB/SmolLM2-135M-Instruct``), an ``hf:`` id as given, and a local
    folder's path (no id is known for it)."""
    p = parse_spec(spec.split(ADAPTER_SEP, 1)[0])
    if p.kind == "embedded":
        from clca.llm.embedded import get_embedded

        return get_embedded(p.name).hub_id or p.name
    if p.kind == "hf":
        return p.name
    raise ModelError(
        f"spec {spec!r} is a server model, not a local one.", fix="use an embedded: or hf: spec."
    )


def resolve_local_model(spec: str) -> Path:
    """The local HF folder (model + tokenizer) behind an ``embedded:`` or ``hf:`` spec (adapter ignored).

    Embedded models are pulled/converted if needed. ``hf:`` ids come from the local HF cache, or are downloaded
    from the hub when missing (not with ``HF_HUB_OFFLINE``); a failure raises a one-line :class:`ModelError`.
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
        got, why = _hf_download(p.name)
        if got is not None and (got / "config.json").exists():
            return got
        raise ModelError(
            f"model {p.name!r} is neither a local folder nor in the local Hugging Face cache, and downloading it "
            f"from the hub failed ({why or 'no config.json'}).",
            fix="check the id and the network (HF_TOKEN for gated models), or download it elsewhere "
            "(`hf download <id>`) and give the local path.",
        )
    raise ModelError(
        f"spec {spec!r} is a server model, not a local one.", fix="use an embedded: or hf: spec."
    )


# ------------------------------------------------------------------------------------------ keys per endpoint
#: the one host the default key (``OPENAI_API_KEY``) is sent to, over https only
OPENAI_HOST = "api.openai.com"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
#: the variable that once named the key of every openai spec; now refused with a pointer to ``?key_env=``
LEGACY_KEY_ENV = "CLCA_OPENAI_KEY_ENV"


def _check_key_env(model: str, name: str) -> str:
    """``name`` when it is an environment variable's name; a value that is not (a pasted key?) is refused
    without echoing it."""
    looks_like_key = len(name) >= 20 and not name.isupper() and any(c.isdigit() for c in name)
    if not _ENV_NAME.fullmatch(name) or looks_like_key:
        raise ModelError(
            f"the model spec for {model!r}: key_env must name an environment variable (letters, digits and _), "
            "not hold the key itself.",
            fix="export the key in a variable and name it: ?key_env=MY_SERVER_KEY.",
        )
    return name


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine (127.0.0.0/8, ::1, localhost): a key sent there stays here."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_openai(url: str) -> bool:
    """Whether ``url`` is OpenAI's own API over https (the only place the default key goes)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "https" and (parts.hostname or "").rstrip(".").lower() == OPENAI_HOST


def check_key_transport(model: str, urls: Sequence[str], key_env: str | None, insecure_key: bool) -> None:
    """Refuse (one line, no network) a spec that would send its key over plain http to another machine,
    unless it says ``insecure_key=1``; ``insecure_key`` without ``key_env`` means nothing and is refused too."""
    from urllib.parse import urlsplit

    if insecure_key and not key_env:
        raise ModelError(
            f"the model spec for {model!r} says insecure_key=1 but names no key (key_env=NAME).",
            fix="add ?key_env=NAME, or drop insecure_key.",
        )
    if not key_env or insecure_key:
        return
    for u in urls:
        if urlsplit(u).scheme == "http" and not is_loopback(u):
            raise ModelError(
                f"the model spec for {model!r} would send ${key_env} in clear text over plain http to {u}.",
                fix="use https, or (on a network you trust) add &insecure_key=1 to the spec.",
            )


def endpoint_keys(
    model: str, urls: Sequence[str], key_env: str | None = None, insecure_key: bool = False
) -> dict[str, str | None]:
    """The key each replica of an openai spec gets (None: no ``Authorization`` header).

    With ``key_env``: that variable's value, for every replica (it must be set; plain http only to loopback
    unless ``insecure_key``). Without: ``OPENAI_API_KEY`` for https://api.openai.com and nothing for any other
    server. Errors name variables, never values.
    """
    if os.environ.get(LEGACY_KEY_ENV):
        raise ModelError(
            f"{LEGACY_KEY_ENV} is set, but clca no longer reads it: each openai spec names the variable "
            "holding its own key.",
            fix=f"add ?key_env=<NAME> to the spec that needs the key (openai:<model>@<url>?key_env=<NAME>) and "
            f"unset {LEGACY_KEY_ENV}.",
        )
    check_key_transport(model, urls, key_env, insecure_key)
    if key_env:
        key = (os.environ.get(key_env) or "").strip()
        if not key:
            raise ModelError(
                f"the model spec for {model!r} takes its key from ${key_env}, which is not set.",
                fix=f"export {key_env}=<key>, or drop key_env from the spec if the server needs no key.",
            )
        return dict.fromkeys(urls, key)
    default = (os.environ.get(DEFAULT_KEY_ENV) or "").strip() or None
    return {u: default if is_openai(u) else None for u in urls}


def key_fix(url: str, key_env: str | None) -> str:
    """What to do when replica ``url`` answers 401/403 (names variables, never values)."""
    if key_env:
        return f"check the key in ${key_env} (the spec's key_env) for {url}."
    if is_openai(url):
        return f"set the key in ${DEFAULT_KEY_ENV}."
    return (
        f"clca sends ${DEFAULT_KEY_ENV} only to https://{OPENAI_HOST}; name the variable holding this "
        "server's key in the spec: ?key_env=NAME."
    )
