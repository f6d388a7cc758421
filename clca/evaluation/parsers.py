"""Reading an option code from a generated answer: two parsers (``eval.parser``), both run on every answer.

* ``paper``: the CLCA paper's released parser (``parse_answer`` / ``deep_parsing`` / ``final_check`` and the
  multilingual ``ANS2NUM`` table of ``CLCA/llm_roleplay/evaluation/wvs_evaluation.py`` in UKPLab/arxiv2025-clca,
  commit af5b765, lines 14, 145-194, 258-313 and 398-399), transcribed rule for rule so that the paper's metrics can
  be recomputed exactly. It is strict: "2. Not very important" is unparseable.
* ``clca``: clca's own parser. It never reads an echoed scale ("on a scale of 1 to 4"), a scale anchor ("1
  meaning ...") or a question number ("Q12") as the answer, maps option words to their codes, and calls a
  reply that names two different options ambiguous (docs/evaluation.md, "Answer parsers").

Both return a code of the question or ``None`` (the safeguard / "invalid" bucket).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

Parser = Literal["paper", "clca"]
PARSERS: tuple[Parser, ...] = ("paper", "clca")


def default_parser(protocol: str) -> Parser:
    """The parser a protocol uses unless ``eval.parser`` says otherwise: the paper's under its protocol."""
    return "paper" if protocol == "paper" else "clca"


def other_parser(parser: Parser) -> Parser:
    """The parser that is not ``parser`` (each answer is read by both; records keep the other's reading)."""
    return "clca" if parser == "paper" else "paper"


# --------------------------------------------------------------------------------------------------------------
# The released parser (wvs_evaluation.py, af5b765)

#: ``ANS2NUM`` (lines 145-194): answers in words, in the five prompt languages, to option codes; a list value
#: stands for "the scale's maximum" (``deep_parsing`` returns ``max_scale`` for it).
ANS2NUM: dict[str, int | list[int]] = {
    "好": 1,
    "坏": 3,
    "良い": 1,
    "悪い": 3,
    "good": 1,
    "bad": 3,
    "gut": 1,
    "schlecht": 3,
    "bueno": 1,
    "malo": 3,
    "yes": 1,
    "no": 2,
    "no 2": 2,
    "是": 1,
    "1 是": 1,
    "1 ja": 1,
    "1 sí": 1,
    "否": 2,
    "はい": 1,
    "いいえ": 2,
    "ja": 1,
    "nein": 2,
    "si": 1,
    "非常不同意": [4, 5],
    "very不同意": [4, 5],
    "反对": 4,
    "非常同意": 1,
    "強く賛成": 1,
    "強烈に賛成": 1,
    "強く反対": [4, 5],
    "stimme überhaupt nicht zu": [4, 5],
    "totalmente en desacuerdo": [4, 5],
    "en desacuerdo": 4,
    "stimme voll zu": 1,
    "totalmente de acuerdo": 1,
    "de acuerdo": 2,
    "sehr wichtig": 1,
    "überhaupt nicht wichtig": 4,
    "非常に重要": 1,
    "全く重要ではない": 4,
    "非常重要": 1,
    "非常非常重要": 1,
    "非常 important": 1,
    "很重要": 2,
    "一点也不重要": 4,
    "非常不重要": 4,
    "muy importante": 1,
    "nada importante": 4,
}

#: ``JP_PAT`` (line 14): a digit followed by an echoed Chinese/Japanese scale ("3 在1到4…", "2 から…")
JP_PAT = re.compile(r"([0-9])\s(在1到|1表示|1 は|から).*")
#: phrases ``deep_parsing`` deletes (line 260)
DEEP_PHRASES = ("。", "**", "la respuesta es", "宗教", "ich bi", "die antwort ist")


def _released_int(text: str) -> int | None:
    """``int(float(text))`` as the released code does; ``None`` where it raises (e.g. "三", "½", "²": numeric for
    ``str.isnumeric`` but not for ``float``; the released evaluation stops with a ValueError there)."""
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return None


def deep_parsing(answer: str, min_scale: int, max_scale: int) -> int | str:
    """``deep_parsing`` (lines 258-277): the text after the last colon, ``DEEP_PHRASES`` deleted, the part before
    "(", stripped; a bare number (in range, else -1), else ``ANS2NUM`` (a list value: ``max_scale``), else the
    text itself (for :func:`final_check`); an empty text is -1."""
    ans = re.split(r"[:：]", answer)[-1]
    for phrase in DEEP_PHRASES:
        ans = ans.replace(phrase, "")
    ans = ans.split("(")[0].strip()
    if ans.isnumeric():
        idx = _released_int(ans)
        if idx is None:
            return -1
        idx = max(idx, 0)
        return idx if min_scale <= idx <= max_scale else -1
    hit = ANS2NUM.get(ans)
    if hit is None:
        return ans if ans else -1
    return max_scale if isinstance(hit, list) else hit


def final_check(answer: str, min_scale: int, max_scale: int) -> int | str:
    """``final_check`` (lines 280-289): ``JP_PAT`` at the start gives its digit (in range, else -1); otherwise
    the text unchanged (unparseable)."""
    match = JP_PAT.match(answer)
    if match:
        idx = int(match.group(1))
        return idx if min_scale <= idx <= max_scale else -1
    return answer


def released_parse(answer: str, min_scale: int, max_scale: int) -> int:
    """The value the released ``parse_answer`` (lines 292-313) returns and counts: the option, -1 for the
    safeguard bucket, or an ``ANS2NUM`` value outside the scale (counted at ``stats[value]``: the safeguard
    bucket when it is ``max_scale + 1``; the released code stops with an IndexError beyond that).

    The text after the last "ANSWER:", "assistant" and every "." deleted, stripped, its first line, "I think the
    answer is" deleted: a bare in-range integer is the answer; anything else goes through :func:`deep_parsing`
    (lower-cased) and :func:`final_check`. Where the released code raises, this returns -1."""
    raw = answer.split("ANSWER:")[-1].replace("assistant", "").replace(".", "").strip().split("\n")[0]
    raw = raw.replace("I think the answer is", "").strip()
    if raw.isnumeric():
        idx = _released_int(raw)
        if idx is None:
            return -1
        idx = max(idx, 0)
        if min_scale <= idx <= max_scale:
            return idx
    parsed = deep_parsing(raw.lower(), min_scale, max_scale)
    if isinstance(parsed, str):
        parsed = final_check(parsed, min_scale, max_scale)
    return -1 if isinstance(parsed, str) else parsed


def parse_paper(text: str, codes: Sequence[int], *, question: str = "") -> int | None:
    """The paper's parser on one answer: the question's text deleted from it first (as the released evaluation
    loop does), then :func:`released_parse` on the scale ``min(codes)..max(codes)``; -1 and values that are not
    codes of the question are ``None`` (the safeguard bucket, where the released code counts them too)."""
    if not codes:
        return None
    answer = text.replace(question, "") if question else text
    value = released_parse(answer, min(codes), max(codes))
    return value if value in codes else None


# --------------------------------------------------------------------------------------------------------------
# clca's parser

_DIGITS = re.compile(r"[0-9]+")
_TAG = re.compile(r"answer\s*(?:is\s*)?[:=\-]?\s*[*\"'(\[]*\s*$", re.IGNORECASE)
_RANGE_WORD = r"(?:\s*[-–—~〜]\s*|\s+(?:to|through|thru|bis|a|al)\s+|\s*(?:から|到|至)\s*)"
_RANGE_LEFT = re.compile(r"(?:[0-9]" + _RANGE_WORD + r"|(?:between|zwischen|entre)\s+)$", re.IGNORECASE)
_RANGE_RIGHT = re.compile(r"^" + _RANGE_WORD + r"[0-9]", re.IGNORECASE)
_BETWEEN_AND = re.compile(r"(?:between|zwischen|entre)\s+[0-9]+\s+(?:and|und|y)\s+$", re.IGNORECASE)
_SCALE_LEFT = re.compile(r"(?:scale\s+of|out\s+of|/)\s*$", re.IGNORECASE)
_QREF_LEFT = re.compile(r"(?:\bq|\bquestions?|\bitems?)\s*(?:#|no\.?|number)?\s*$", re.IGNORECASE)
_ANCHOR_RIGHT = re.compile(
    r"^\s*(?:=\s*)?(?:(?:meaning|means|mean|stands\s+for|represents|indicates|bedeutet|significa)\b|は|表示|代表)",
    re.IGNORECASE,
)
_ANCHOR_LEFT = re.compile(r"\b(?:where|with|while)\s+$", re.IGNORECASE)
_ANCHOR_LEFT_RIGHT = re.compile(r"^\s*(?:is|being|=)", re.IGNORECASE)
_QUOTED_ANCHOR = re.compile(r"([0-9]+)\s+meaning\s+['\"‘“]([^'\"’”]+)['\"’”]")


def _numbers(text: str) -> list[tuple[int, bool]]:
    """Every integer of ``text`` that may be an answer, in order, with whether an answer tag ("Answer: ",
    "answer is") comes right before it. Left out: decimals ("3.5"), digits glued to Latin letters ("Q12",
    "1st"), negative numbers, both ends of a range ("1 to 4", "1-4", "between 1 and 4", "1から4"), the size in
    "scale of 4", "out of 4", "3/4", scale anchors ("1 meaning ...", "where 1 is ...", "1 は", "1表示"),
    question references ("question 3", "Q 12")."""
    out: list[tuple[int, bool]] = []
    for m in _DIGITS.finditer(text):
        s, e = m.start(), m.end()
        before, after = text[:s], text[e:]
        prev, nxt = before[-1:], after[:1]
        if (prev == "." and before[-2:-1].isdigit()) or (nxt == "." and after[1:2].isdigit()):
            continue  # decimal
        if (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()):
            continue  # Q12, 1st, 90s
        if prev in ("-", "−") and not before[-2:-1].isdigit():
            continue  # a negative number (a survey's "don't know" code), not an option
        if _RANGE_LEFT.search(before[-16:]) or _RANGE_RIGHT.search(after[:16]) or _BETWEEN_AND.search(before):
            continue
        if _SCALE_LEFT.search(before[-16:]) or _QREF_LEFT.search(before[-16:]):
            continue
        if _ANCHOR_RIGHT.search(after[:24]) or (
            _ANCHOR_LEFT.search(before[-8:]) and _ANCHOR_LEFT_RIGHT.search(after[:8])
        ):
            continue
        out.append((int(m.group()), bool(_TAG.search(before[-24:]))))
    return out


def _norm_words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _word_labels(codes: Sequence[int], options: Sequence[str] | None, question: str) -> dict[str, set[int]]:
    """Normalised label -> codes: the option labels and the anchors the question names ("1 meaning 'Yes'")."""
    labels: dict[str, set[int]] = {}
    for code, opt in zip(codes, options or [], strict=False):
        if lab := _norm_words(opt):
            labels.setdefault(lab, set()).add(code)
    for num, word in _QUOTED_ANCHOR.findall(question):
        if int(num) in codes and (lab := _norm_words(word)):
            labels.setdefault(lab, set()).add(int(num))
    return labels


def option_by_words(
    text: str, codes: Sequence[int], options: Sequence[str] | None, question: str = ""
) -> int | None:
    """The option a reply names in words, or None: the question's option labels and scale anchors ("1 meaning
    'Yes'"), case and punctuation ignored. A label of two or more words counts wherever it stands as a whole
    phrase, the longest first, and the text it covers is not read again ("not very important" is not also "very
    important"); a one-word label ("Agree", "Yes") only when it is the whole reply. Labels of two different
    codes: ambiguous (None). clca's counterpart of the paper code's ``ANS2NUM``."""
    said = _norm_words(text)
    if not said:
        return None
    labels = _word_labels(codes, options, question)
    named: set[int] = set()
    padded = f" {said} "
    for lab in sorted(labels, key=len, reverse=True):
        if " " not in lab:
            if said == lab:
                named |= labels[lab]
            continue
        if f" {lab} " in padded:
            named |= labels[lab]
            padded = padded.replace(f" {lab} ", " \x00 ")
    return named.pop() if len(named) == 1 else None


def parse_clca(
    text: str,
    codes: Sequence[int],
    *,
    reasoning: bool = False,
    options: Sequence[str] | None = None,
    question: str = "",
) -> int | None:
    """clca's parser (docs/evaluation.md, "Answer parsers"). Full-width forms are folded (NFKC) and a verbatim
    copy of the question deleted; then, among the integers :func:`_numbers` keeps:

    1. a number right after an answer tag ("Answer: 3", "answer is **3**") is the answer (the first tag; the
       last in a reasoning reply); not an option code: None;
    2. otherwise (a reasoning reply: its last line only) the numbers that are option codes: one value, or all
       the same value, is the answer; two different values are ambiguous (None: "2 or 3", an echoed option
       list); in a reasoning reply the last one wins (the conclusion comes last);
    3. a reply with no number left at all is read for option words (:func:`option_by_words`).
    """
    valid = set(codes)
    norm = unicodedata.normalize("NFKC", text)
    if question:
        norm = norm.replace(unicodedata.normalize("NFKC", question), " ")
    nums = _numbers(norm)
    tagged = [n for n, tag in nums if tag]
    if tagged:
        cand = tagged[-1] if reasoning else tagged[0]
        return cand if cand in valid else None
    scope = norm
    if reasoning:
        lines = [ln for ln in norm.strip().splitlines() if ln.strip()]
        scope = lines[-1] if lines else ""
        nums = _numbers(scope)
    if nums:
        found = [n for n, _ in nums if n in valid]
        if not found:
            return None
        if reasoning:
            return found[-1]
        return found[0] if len(set(found)) == 1 else None
    return option_by_words(scope, codes, options, question)


def parse_answer(
    text: str,
    codes: Sequence[int],
    *,
    parser: Parser = "clca",
    reasoning: bool = False,
    options: Sequence[str] | None = None,
    question: str = "",
) -> int | None:
    """The option code ``parser`` reads from one generated answer, or None (the safeguard bucket). ``question``
    (the question's text) is deleted from the answer first; the paper's parser ignores ``reasoning`` and
    ``options`` (it has neither)."""
    if parser == "paper":
        return parse_paper(text, codes, question=question)
    return parse_clca(text, codes, reasoning=reasoning, options=options, question=question)


def split_reasoning(text: str) -> str:
    """The rationale part of a generated reasoning answer (text before the last "Answer"), trimmed."""
    idx = text.lower().rfind("answer")
    return (text[:idx] if idx >= 0 else text).rstrip()
