"""The survey model shared by every loader, plus question-range and country resolution.

A :class:`Survey` is a set of multiple-choice questions (:class:`SurveyItem`) with, per country, the share of
human respondents choosing each option. Options carry integer codes (WVS answer codes, or 1..K for surveys
without codes); the model is asked for the code, so the codes are also the strings scored by the backend.
"""

from __future__ import annotations

import difflib
import re

from pydantic import BaseModel, ConfigDict, Field

from clca.errors import DataError


class SurveyItem(BaseModel):
    """One multiple-choice question with the human answer distribution per country."""

    model_config = ConfigDict(extra="forbid")
    qid: str
    text: str
    short_label: str = ""
    options: list[str]
    codes: list[int]
    ordinal: bool = True
    human: dict[str, list[float]] = Field(default_factory=dict)  # country -> shares, same order as options

    @property
    def k(self) -> int:
        return len(self.options)


class Survey(BaseModel):
    """A named collection of survey items, in the survey's own order."""

    model_config = ConfigDict(extra="forbid")
    name: str
    source: str
    items: dict[str, SurveyItem]
    notes: list[str] = Field(default_factory=list)  # e.g. questions skipped for lack of wording

    def countries(self) -> list[str]:
        """All countries with at least one distribution, sorted."""
        seen: set[str] = set()
        for it in self.items.values():
            seen.update(it.human)
        return sorted(seen)

    def question_ids(self) -> list[str]:
        return list(self.items)

    def select(self, spec: str | None) -> list[SurveyItem]:
        """Items selected by ``spec`` ("Q1-Q45", "Q1-Q41,Q43-Q45", "Q7,Q10"); None/"all" = every item."""
        return [self.items[q] for q in parse_question_spec(spec, self.question_ids(), survey=self.name)]


_ID_RE = re.compile(r"^([A-Za-z_]*)(\d+)$")


def _split_id(qid: str) -> tuple[str, int] | None:
    m = _ID_RE.match(qid.strip())
    return (m.group(1).upper(), int(m.group(2))) if m else None


def parse_question_spec(spec: str | None, available: list[str], *, survey: str = "the survey") -> list[str]:
    """Expand a question selection into ids present in ``available`` (order of ``spec``, no duplicates).

    A range ``Q1-Q45`` takes every available id with the same prefix and a number in [1, 45]; ids inside a
    range that the survey lacks (e.g. Q42 without wording) are silently left out, but an explicitly named id,
    or a range that matches nothing, is a :class:`DataError`.
    """
    if spec is None or spec.strip().lower() in ("", "all"):
        return list(available)
    index = {a.upper(): a for a in available}
    parsed = {a: _split_id(a) for a in available}
    out: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "-" in part:
            lo_s, hi_s = (s.strip() for s in part.split("-", 1))
            lo, hi = _split_id(lo_s), _split_id(hi_s)
            if lo is None or hi is None or (hi[0] and hi[0] != lo[0]) or hi[1] < lo[1]:
                raise DataError(
                    f"question range {part!r} is not of the form Q1-Q45.",
                    fix="write ranges as <prefix><n>-<prefix><m> with n <= m, e.g. Q1-Q41,Q43-Q45.",
                )
            hits = [a for a, p in parsed.items() if p and p[0] == lo[0] and lo[1] <= p[1] <= hi[1]]
            if not hits:
                raise DataError(
                    f"question range {part!r} matches no question of {survey}.",
                    fix="run `clca data questions` to list the question ids.",
                )
            out.extend(hits)
        else:
            if part.upper() not in index:
                close = difflib.get_close_matches(part.upper(), list(index), n=3)
                hint = f" (close: {', '.join(index[c] for c in close)})" if close else ""
                raise DataError(
                    f"question id {part!r} is not in {survey}{hint}.",
                    fix="run `clca data questions` to list the question ids.",
                )
            out.append(index[part.upper()])
    return list(dict.fromkeys(out))


def resolve_countries(
    names: list[str] | str, available: list[str], *, survey: str = "the survey"
) -> list[str]:
    """Match user country names to the survey's spelling (case-insensitive); unknown names raise DataError."""
    if isinstance(names, str):
        names = [n for n in (s.strip() for s in names.split(",")) if n]
    index = {a.lower(): a for a in available}
    out: list[str] = []
    for n in names:
        key = n.strip().lower()
        if key in index:
            out.append(index[key])
            continue
        close = difflib.get_close_matches(n.strip(), available, n=3, cutoff=0.5)
        close += [a for a in available if key and key in a.lower() and a not in close]
        hint = f" Did you mean: {', '.join(close[:3])}?" if close else ""
        raise DataError(
            f"country {n!r} is not in {survey}.{hint}",
            fix="run `clca data countries` to list the available countries.",
        )
    if not out:
        raise DataError("no country given.", fix='pass --countries "Great Britain,China".')
    return list(dict.fromkeys(out))
