"""Render a survey question in a prompt style as chat messages.

The model is always asked for an option *number* (the WVS answer code); in log-prob mode the backend gives
P(the reply gives that number) (:mod:`clca.llm.base`), so "1" and "10" are distinct. Reading a generated
answer is :mod:`clca.evaluation.parsers` (two parsers, the paper's and clca's).
"""

from __future__ import annotations

from clca.data.survey import SurveyItem
from clca.data.wvb import PERSONA_FIELDS, PERSONA_LABELS, Respondent
from clca.evaluation.styles import Style
from clca.llm.base import Message


def render_options(item: SurveyItem) -> str:
    """One line per option: ``<code>. <label>``."""
    return "\n".join(f"{c}. {lab}" for c, lab in zip(item.codes, item.options, strict=True))


def render_persona(respondent: Respondent) -> str:
    """The respondent's demographics, one ``Attribute: value`` line each (the CLCA paper's attributes)."""
    return "\n".join(f"{PERSONA_LABELS.get(k, k)}: {v}" for k, v in respondent.demographics.items())


def render_messages(
    style: Style, item: SurveyItem, country: str, respondent: Respondent | None = None
) -> list[Message]:
    """The chat for one (style, question, country[, respondent]): optional system message, then the user turn."""
    fields = {
        "country": country,
        "question": item.text,
        "options": render_options(item),
        "answer_instruction": style.answer_instruction,
        "persona": render_persona(respondent) if respondent is not None else "",
        **{
            k: (respondent.demographics.get(k, "unknown") if respondent is not None else "")
            for k in PERSONA_FIELDS
        },
    }
    msgs: list[Message] = []
    if style.system:
        msgs.append({"role": "system", "content": style.system.format(**fields)})
    msgs.append({"role": "user", "content": style.user.format(**fields)})
    return msgs
