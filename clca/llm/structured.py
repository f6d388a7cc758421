"""Structured LLM output in one place: generate, parse into a type, re-ask the failures, count them.

:func:`generate_structured` sends a batch of chats, parses every reply with a function that raises
``ValueError`` for an unusable one, and re-asks only the failures, as one batch per round, up to
``max_retries`` times. Every re-ask uses a **new seed** (``seed + attempt``), and a greedy request is re-asked
with sampling (``retry_temperature``), so a call cache or a deterministic server can give a different answer;
``retry_chat`` may also rewrite the chat (a repair turn quoting the problem). Scenarios, the judge and intents
use it, and report :class:`StructuredStats` the same way.

:func:`answer_format` and :func:`parse_labelled` derive a prompt's answer format and its parser from a pydantic
model (Sotopia's typed-output idea): each field is one ``Title: <choice|choice>`` line; a reply is read as
JSON (structured-output servers) or as those lines, tolerant of markdown, case and extra words.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Backend, Chat, GenerationParams

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: temperature of a re-ask when the first request was greedy (a new seed changes nothing under greedy)
RETRY_TEMPERATURE = 0.7


@dataclass
class Structured(Generic[T]):
    """The outcome of one structured request: the parsed value (or ``None``), every raw reply, the seeds
    used, and the last parse error."""

    value: T | None = None
    raws: list[str] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)
    error: str | None = None

    @property
    def attempts(self) -> int:
        return len(self.raws)


class StructuredStats(BaseModel):
    """Counts of structured requests (a stage's summary and the manifest report them)."""

    requests: int = 0  # structured requests made
    calls: int = 0  # model calls, retries included
    retries: int = 0  # re-asks after an unusable reply
    failures: int = 0  # requests still unusable after every retry

    def add(self, other: StructuredStats) -> None:
        for k in type(self).model_fields:
            setattr(self, k, getattr(self, k) + getattr(other, k))


def generate_structured(
    backend: Backend,
    chats: Sequence[Chat],
    parse: Callable[[int, str], T],
    params: GenerationParams,
    *,
    max_retries: int,
    seeds: Sequence[int] | None = None,
    retry_chat: Callable[[int, Chat, str, ValueError], Chat] | None = None,
    stats: StructuredStats | None = None,
    retry_temperature: float = RETRY_TEMPERATURE,
) -> list[Structured[T]]:
    """Generate one reply per chat and parse it with ``parse(index, reply)``; re-ask failures (see module doc).

    ``seeds``: the seed of each chat's first attempt (``None``: the request carries no per-item seed, as
    plain calls do); attempt ``k`` uses ``seed + k`` (``params.seed + k`` without seeds).
    """
    out: list[Structured[T]] = [Structured() for _ in chats]
    current = list(chats)
    pending = list(range(len(chats)))
    st = stats if stats is not None else StructuredStats()
    st.requests += len(chats)
    for attempt in range(max_retries + 1):
        if not pending:
            break
        if attempt == 0:
            p = params
            item_seeds: list[int] | None = [seeds[i] for i in pending] if seeds is not None else None
        else:
            p = params.model_copy(update={"temperature": params.temperature or retry_temperature})
            base = [seeds[i] if seeds is not None else params.seed for i in pending]
            item_seeds = [b + attempt for b in base]
            st.retries += len(pending)
        replies = backend.generate([current[i] for i in pending], p, seeds=item_seeds)
        st.calls += len(pending)
        still: list[int] = []
        for n, (i, reply) in enumerate(zip(pending, replies, strict=True)):
            res = out[i]
            res.raws.append(reply)
            res.seeds.append(item_seeds[n] if item_seeds is not None else None)
            try:
                res.value = parse(i, reply)
                res.error = None
            except ValueError as exc:
                res.error = str(exc) or type(exc).__name__
                if retry_chat is not None:
                    current[i] = retry_chat(i, current[i], reply, exc)
                still.append(i)
        pending = still
    st.failures += len(pending)
    return out


# ------------------------------------------------------------------------------------- typed answers


def _choices(annotation: Any) -> tuple[str, ...] | None:
    """The string choices of a ``Literal`` field (through ``Optional``), else None."""
    if get_origin(annotation) in (typing.Union,) or type(annotation).__name__ == "UnionType":
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is typing.Literal:
        return tuple(str(a) for a in get_args(annotation))
    return None


def _title(name: str, f: Any) -> str:
    return str(f.title or name.replace("_", " ").capitalize())


def _aliases(name: str, f: Any) -> list[str]:
    extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
    return [_title(name, f), name.replace("_", " "), *[str(a) for a in extra.get("aliases", [])]]


def answer_format(model: type[BaseModel]) -> str:
    """The answer format of ``model``: one ``Title: <a|b>`` (choices) or ``Title: <description>`` line per
    field, in the model's order."""
    lines = []
    for name, f in model.model_fields.items():
        choices = _choices(f.annotation)
        what = "|".join(choices) if choices else (f.description or name.replace("_", " "))
        lines.append(f"{_title(name, f)}: <{what}>")
    return "\n".join(lines)


def answer_schema(model: type[BaseModel]) -> dict[str, object]:
    """A JSON schema for structured-output servers: the model's fields, all required."""
    schema = model.model_json_schema()
    schema["required"] = list(model.model_fields)
    return schema


_LINE = r"(?im)^[\s>*#_\-\d.)]*(?:\*\*)?\s*{key}\s*(?:\*\*)?\s*(?:\([^)\n]*\))?\s*[:=\-–]\s*(?P<rest>.*)$"


def _after_label(text: str, keys: Sequence[str]) -> str | None:
    best: tuple[int, str] | None = None
    for key in keys:
        m = re.search(_LINE.format(key=re.escape(key).replace(r"\ ", r"[\s_-]*")), text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), m.group("rest").strip())
    return None if best is None else best[1]


def earliest_choice(
    text: str | None, choices: Sequence[str], synonyms: dict[str, str] | None = None
) -> str | None:
    """The choice mentioned first in ``text`` (longer names win at the same place: "not aligned" over
    "aligned"); ``synonyms`` map other words onto a choice."""
    if text is None:
        return None
    low = text.lower()
    words = {c.lower(): c for c in choices} | {k.lower(): v for k, v in (synonyms or {}).items()}
    best: tuple[int, int, str] | None = None
    for w, c in words.items():
        m = re.search(rf"(?<![\w]){re.escape(w)}(?![\w])", low)
        if m and (best is None or (m.start(), -len(w)) < (best[0], best[1])):
            best = (m.start(), -len(w), c)
    return None if best is None else best[2]


def parse_labelled(
    text: str,
    model: type[M],
    *,
    normalisers: Mapping[str, Callable[[str], str | None]] | None = None,
    synonyms: dict[str, dict[str, str]] | None = None,
) -> M:
    """Read a reply into ``model``: JSON first, else the ``Title: value`` lines of :func:`answer_format`.

    ``normalisers[field]`` maps free wording onto the field's value (e.g. confidences; without a line of its
    own, the whole reply is read); ``Literal`` fields
    otherwise take the earliest choice named (``synonyms[field]`` adds words). ``ValueError`` names the
    fields that could not be read.
    """
    normalisers = normalisers or {}
    synonyms = synonyms or {}
    raw: dict[str, str | None] = {name: None for name in model.model_fields}
    try:
        obj = extract_json(text)
    except JsonTextError:
        obj = None
    if obj is not None:
        flat = {re.sub(r"[^a-z]", "", str(k).lower()): v for k, v in obj.items()}
        for name, f in model.model_fields.items():
            for key in _aliases(name, f):
                v = flat.get(re.sub(r"[^a-z]", "", key.lower()))
                if v is not None:
                    raw[name] = str(v)
                    break
    for name, f in model.model_fields.items():
        if raw[name] is None:
            raw[name] = _after_label(text, _aliases(name, f))
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, f in model.model_fields.items():
        rest = raw[name]
        choices = _choices(f.annotation)
        if name in normalisers:
            # no own line: the value may sit on another field's line ("Quality: good (very confident)")
            val: Any = normalisers[name](rest if rest is not None else text)
        elif choices is not None:
            # "<good|bad>" copied from the answer format is no answer
            echo = rest is not None and "|" in rest and sum(c.lower() in rest.lower() for c in choices) > 1
            val = None if echo else earliest_choice(rest, choices, synonyms.get(name))
        else:
            val = rest.strip() if rest else None
        if val is None and f.is_required():
            missing.append(_title(name, f).lower())
        elif val is not None:
            values[name] = val
    if missing:
        raise ValueError(f"could not read {', '.join(missing)}")
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}") from None
