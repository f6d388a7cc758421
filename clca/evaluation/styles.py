"""Prompt styles are data: YAML files shipped in ``clca/evaluation/styles/`` plus any the user supplies.

A style file holds ``name``, ``description``, ``system`` (template or null), ``user`` (template),
``answer_instruction``, ``reasoning`` (generate a rationale before the answer), ``needs_persona``
(one prompt per sampled respondent) and two optional overrides of the evaluation's settings for this style:
``personas`` (how many respondents to sample, instead of ``eval.personas``) and ``parser`` (``paper`` or
``clca``, instead of ``eval.parser``). Templates may use ``{country}``, ``{question}``, ``{options}``,
``{answer_instruction}``, ``{persona}`` (all demographics, one line each) and the single persona attributes
of the CLCA paper's prompt (``{settlement}``, ``{region}``, ``{gender}``, ``{age}``, ``{born}``,
``{marital_status}``, ``{household}``, ``{education}``, ``{profession}``, ``{employed}``, ``{classes}``); any
other placeholder is an error naming the file.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clca.data.wvb import PERSONA_FIELDS
from clca.errors import DataError

STYLES_DIR = Path(__file__).parent / "styles"
#: ``<style>@<language>``: a style translated into a language (``paper_persona@zh``), in records and reports
LANGUAGE_SEP = "@"
PLACEHOLDERS = frozenset({"country", "question", "options", "answer_instruction", "persona", *PERSONA_FIELDS})


class Style(BaseModel):
    """A prompt style (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    system: str | None = None
    user: str = "{question}\n\n{options}\n\n{answer_instruction}"
    answer_instruction: str = "Answer with the number of one option only."
    reasoning: bool = False
    needs_persona: bool = False
    max_reasoning_tokens: int = 160
    personas: int | None = Field(
        default=None, ge=1, description="respondents sampled for this style (None: eval.personas)"
    )
    parser: Literal["paper", "clca"] | None = Field(
        default=None, description="the parser of this style's generated answers (None: eval.parser)"
    )
    source: str = ""


def translated_name(style: str, language: str) -> str:
    """The name of ``style`` translated into ``language``: ``paper_persona@zh``."""
    return f"{style}{LANGUAGE_SEP}{language}"


def split_name(name: str) -> tuple[str, str]:
    """``paper_persona@zh`` -> (``paper_persona``, ``zh``); an English style's language is ``""``."""
    base, _, language = name.partition(LANGUAGE_SEP)
    return base, language


def placeholders(template: str) -> set[str]:
    """The ``{field}`` names of a template (``ValueError`` for a malformed one)."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def load_style_file(path: str | Path) -> Style:
    """Read and validate one style YAML file."""
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"style file {p} does not exist.",
            fix="pass --style-files the path of a style YAML file (comma-separated for several).",
        )
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise DataError(
            f"{p}{where}: not valid YAML.", fix="fix the YAML syntax of the style file."
        ) from None
    if not isinstance(data, dict):
        raise DataError(
            f"{p}: a style file must be a YAML mapping.", fix="see clca/evaluation/styles/cultural.yaml."
        )
    try:
        style = Style.model_validate({**data, "source": str(p)})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise DataError(
            f"{p}: field {loc}: {err['msg']}.", fix="see clca/evaluation/styles/cultural.yaml."
        ) from None
    if LANGUAGE_SEP in style.name:
        raise DataError(
            f"{p}: style name {style.name!r} contains {LANGUAGE_SEP!r}, which names translated styles.",
            fix="rename the style (paper_persona@zh is paper_persona translated into zh).",
        )
    for field in ("system", "user", "answer_instruction"):
        tmpl = getattr(style, field)
        if tmpl is None:
            continue
        try:
            bad = placeholders(tmpl) - PLACEHOLDERS
        except ValueError:
            raise DataError(
                f"{p}: {field} is not a valid template.", fix="escape literal braces as {{ }}."
            ) from None
        if bad:
            raise DataError(
                f"{p}: {field} uses unknown placeholder(s) {', '.join(sorted(bad))}.",
                fix=f"use only {', '.join(sorted(PLACEHOLDERS))} (escape literal braces as {{{{ }}}}).",
            )
    return style


def builtin_styles() -> dict[str, Style]:
    """The shipped styles by name (plain, cultural, persona, anthropological)."""
    return {s.name: s for s in (load_style_file(p) for p in sorted(STYLES_DIR.glob("*.yaml")))}


def resolve_styles(names: list[str] | str, style_files: Sequence[str | Path] | None = None) -> list[Style]:
    """Styles by name from the built-ins plus user files (a user file overrides a built-in of the same name)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    known = builtin_styles()
    for f in style_files or []:
        s = load_style_file(f)
        known[s.name] = s
    out: list[Style] = []
    for n in names:
        if n not in known:
            raise DataError(
                f"unknown prompt style {n!r} (known: {', '.join(sorted(known))}).",
                fix="choose one of the known styles or add yours with --style-files my_style.yaml.",
            )
        out.append(known[n])
    if not out:
        raise DataError("no prompt style given.", fix="pass --styles plain,cultural.")
    return out
