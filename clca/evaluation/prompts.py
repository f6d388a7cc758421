"""Render a survey question in a prompt style as chat messages, and parse free-text answers.

The model is always asked for an option *number* (the WVS answer code); in log-prob mode the backend gives
P(the reply gives that number) (:mod:`clca.llm.base`), so "1" and "10" are distinct.
"""

from __future__ import annotations

import re

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


_ANSWER_RE = re.compile(r"answer\s*(?:is|:)?\s*[:\-]?\s*\**\s*\(?(\d+)", re.IGNORECASE)
_INT_RE = re.compile(r"(?<![\d.])(\d+)(?![\d.]\d)")


def _norm_words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def option_by_words(text: str, codes: list[int], options: list[str]) -> int | None:
    """The option whose label the reply names in words ("Strongly disagree."), or None. The longest label found
    as a whole phrase wins ("not very important" over "very important"); two different labels of that length
    are ambiguous (None). clca's counterpart of the paper code's word-to-option table (``ANS2NUM``)."""
    said = f" {_norm_words(text)} "
    found = [(len(lab), code) for code, opt in zip(codes, options, strict=False) if (lab := _norm_words(opt))
             and f" {lab} " in said]  # fmt: skip
    if not found:
        return None
    longest = max(n for n, _ in found)
    best = {code for n, code in found if n == longest}
    return best.pop() if len(best) == 1 else None


def parse_answer(
    text: str, codes: list[int], *, reasoning: bool = False, options: list[str] | None = None
) -> int | None:
    """The option code a free-text answer names, or None (the "invalid" bucket).

    With ``reasoning`` the last "Answer: N" wins (the rationale may mention other numbers); otherwise the
    first integer of the reply is taken, like the CLCA paper's integer parsing. A number that is not an
    option code counts as invalid. A reply with no number at all is matched against the option labels in
    ``options`` (:func:`option_by_words`), as the paper's code maps answers given in words.
    """
    valid = set(codes)
    tagged = _ANSWER_RE.findall(text)
    if tagged:
        cand = int(tagged[-1] if reasoning else tagged[0])
        return cand if cand in valid else None
    if reasoning:
        last = text.strip().splitlines()[-1] if text.strip() else ""
        nums = _INT_RE.findall(last)
        if nums:
            return int(nums[-1]) if int(nums[-1]) in valid else None
        return option_by_words(last, codes, options) if options else None
    nums = _INT_RE.findall(text)
    if not nums:
        return option_by_words(text, codes, options) if options else None
    cand = int(nums[0])
    return cand if cand in valid else None


def split_reasoning(text: str) -> str:
    """The rationale part of a generated reasoning answer (text before the last "Answer"), trimmed."""
    idx = text.lower().rfind("answer")
    return (text[:idx] if idx >= 0 else text).rstrip()
