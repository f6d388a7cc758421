"""The names step of the adaptation: ask for two new names of the culture, check them, rename the seed.

Small models asked to adapt a whole scenario copy the source names back, so (``names_first``, the default)
the teacher is first asked only for two names; placeholders such as "John Doe", unusable strings and the
source names are rejected (:func:`parse_names`), and the seed is renamed in code (:func:`rename`) before the
adaptation prompt shows it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from clca.culture import CultureProfile
from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Chat
from clca.records import Character, Scenario


def source_names(s: Scenario) -> list[str]:
    """First and last names of the seed's characters (words of at least 3 letters)."""
    names: list[str] = []
    for c in s.characters:
        for part in (c.first_name, c.last_name):
            for w in re.findall(r"[^\W\d_][\w'-]*", part):
                if len(w) >= 3 and w not in names:
                    names.append(w)
    return names


#: "John Doe"-style names small models produce when asked for a typical name
PLACEHOLDER_NAMES = {
    "john doe", "jane doe", "john smith", "jane smith", "max mustermann", "erika mustermann", "zhang san",
    "li si", "wang wu", "taro yamada", "hanako yamada", "yamada taro", "yamada hanako", "juan perez",
    "juan pérez", "fulano de tal", "joe bloggs", "mario rossi", "ivan ivanov", "jan kowalski",
    "张 三", "李 四", "王 五", "山田 太郎", "山田 花子",
}  # fmt: skip
_PLACEHOLDER_KEYS = {n.replace(" ", "") for n in PLACEHOLDER_NAMES}


class _NamePair(BaseModel):
    model_config = ConfigDict(extra="ignore")
    first_name: str
    last_name: str


class _Names(BaseModel):
    """The JSON schema of the names step."""

    model_config = ConfigDict(extra="ignore")
    person1: _NamePair
    person2: _NamePair


def names_chat(seed: Scenario, profile: CultureProfile) -> Chat:
    """Step 1 of the names-first adaptation: ask only for two new names (small models manage this)."""

    def who(c: Character) -> str:
        age = f"{c.age}-year-old " if c.age is not None else ""
        return f"a {age}{c.gender.lower()} {c.occupation.lower()}".replace("  ", " ")

    c1, c2 = seed.characters
    user = (
        f"Person 1 is {who(c1)} and person 2 is {who(c2)}, both living in {profile.country}.\n"
        f"Invent a realistic full name for each, typical of {profile.demonym} people (diverse, not famous), "
        "written in Latin letters (romanised if the culture uses another script).\n"
        'Reply with only this JSON object, filled in: {"person1": {"first_name": "", "last_name": ""}, '
        '"person2": {"first_name": "", "last_name": ""}}'
    )
    return [
        {"role": "system", "content": f"You are an expert in {profile.demonym} culture."},
        {"role": "user", "content": user},
    ]


def _read_names(raw: str) -> _Names:
    try:
        return _Names.model_validate(extract_json(raw))
    except (JsonTextError, ValidationError) as exc:
        raise ValueError(f"no names JSON ({str(exc).splitlines()[0]})") from None


def _check_name_pairs(pairs: Sequence[tuple[str, str]], banned: set[str]) -> None:
    """``ValueError`` for a placeholder, unusable or banned name, or two identical names."""
    for first, last in pairs:
        if f"{first}{last}".replace(" ", "").lower() in _PLACEHOLDER_KEYS:
            raise ValueError(f"{first} {last!s} is a placeholder name")
        for part in (first, last):
            if not re.fullmatch(r"[^\W\d_](?:[^\W\d_]|['. -])*", part) or len(part) > 40:
                raise ValueError(f"unusable name {part!r}")
            if any(w.lower() in banned for w in re.findall(r"[^\W\d_][\w'-]*", part)):
                raise ValueError(f"the original name {part!r} was kept")
    if len(pairs) == 2 and pairs[0] == pairs[1]:
        raise ValueError("both people got the same name")


def parse_names(raw: str, seed: Scenario) -> list[tuple[str, str]]:
    """The two (first, last) names of a names-step reply; ``ValueError`` with a one-line reason if unusable."""
    obj = _read_names(raw)
    pairs = [(p.first_name.strip(), p.last_name.strip()) for p in (obj.person1, obj.person2)]
    _check_name_pairs(pairs, {n.lower() for n in source_names(seed)})
    return pairs


def _names_in(raw: str) -> str:
    """The full names of a names-step reply, for a retry prompt ("" if unreadable)."""
    try:
        obj = _read_names(raw)
    except ValueError:
        return ""
    return ", ".join(f"{p.first_name} {p.last_name}".strip() for p in (obj.person1, obj.person2))


def rename(seed: Scenario, names: Sequence[tuple[str, str]]) -> Scenario:
    """The seed with its characters' names replaced everywhere (full names first, then first and last names)."""
    subs: list[tuple[str, str]] = []
    for c, (first, last) in zip(seed.characters, names, strict=True):
        subs.append((f"{c.first_name} {c.last_name}".strip(), f"{first} {last}"))
    for c, (first, last) in zip(seed.characters, names, strict=True):
        subs += [(c.first_name, first), (c.last_name, last)]
    subs = [(a, b) for a, b in subs if a.strip()]

    def swap(text: str) -> str:
        for old, new in subs:
            text = re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", new.replace("\\", "\\\\"), text)
        return text

    chars = []
    for c, (first, last) in zip(seed.characters, names, strict=True):
        fields: dict[str, Any] = {k: swap(v) if isinstance(v, str) else v for k, v in c.model_dump().items()}
        chars.append(Character(**{**fields, "first_name": first, "last_name": last}))
    return seed.model_copy(update={"setting": swap(seed.setting), "characters": chars})
