"""Pull a JSON object out of free model text, forgiving the usual mistakes of small models.

Models wrap JSON in code fences, put prose before or after it, leave trailing commas, use Python
literals (``True``/``None``) or typographic quotes. :func:`extract_json` finds the first balanced ``{...}``
object (strings and escapes respected), tries it as-is, then with light repairs, and raises
:class:`JsonTextError` with a short reason that a repair prompt can quote back to the model.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


class JsonTextError(ValueError):
    """No usable JSON object in a model's reply (the message says why, in one line)."""


def _balanced_objects(text: str) -> list[str]:
    """Every top-level ``{...}`` span in ``text``, in order (a trailing unclosed one is returned too)."""
    out: list[str] = []
    depth = 0
    start = -1
    in_str = False
    esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    if depth > 0 and start >= 0:
        out.append(text[start:])
    return out


def _repairs(candidate: str) -> list[str]:
    """The candidate and progressively repaired variants of it."""
    fixed = (
        candidate.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    )
    fixed = re.sub(r"^\s*//.*$", "", fixed, flags=re.M)  # whole-line comments
    fixed = re.sub(r",\s*([}\]])", r"\1", fixed)  # trailing commas
    py = re.sub(r"\bTrue\b", "true", fixed)
    py = re.sub(r"\bFalse\b", "false", py)
    py = re.sub(r"\bNone\b", "null", py)
    return [candidate, fixed, py]


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (code fences and surrounding prose allowed).

    Raises :class:`JsonTextError` when there is no object, it is cut off, or it does not parse.
    """
    if not text or not text.strip():
        raise JsonTextError("the reply is empty")
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    last_err = "no JSON object ({...}) found in the reply"
    for src in sources:
        for cand in _balanced_objects(src):
            if not cand.rstrip().endswith("}"):
                last_err = "the JSON object is cut off before its closing brace (reply too long?)"
                continue
            for variant in _repairs(cand):
                try:
                    obj = json.loads(variant)
                except json.JSONDecodeError as exc:
                    last_err = f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                    continue
                if isinstance(obj, dict):
                    return obj
                last_err = "the JSON value is not an object"
    raise JsonTextError(last_err)
