"""Text renderings shared by every stage: a character's card, a relationship, an utterance, a transcript.

One function each, used by role-play, judge, intents and the training mix alike.

Privacy rule: :func:`public_card` never reads a character's ``goal`` or ``secret``; only
:func:`private_card` does, and only the character's own agent (and the judge, which sees the whole
scenario as in the CLCA paper) is ever shown it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from clca.records import Character, Relationship, Turn

_RELATION_PHRASE: dict[str, str] = {
    "stranger": "{a} and {b} are strangers.",
    "know by name": "{a} and {b} know each other by name.",
    "acquaintance": "{a} and {b} are acquaintances.",
    "friend": "{a} and {b} are friends.",
    "romantic relationship": "{a} and {b} are in a romantic relationship.",
    "family member": "{a} and {b} are family members.",
}


def relationship_phrase(relationship: Relationship, a: str, b: str) -> str:
    """ "Li Wei and Zhang Min are friends." ("" when the relationship is not given)."""
    return _RELATION_PHRASE[relationship].format(a=a, b=b) if relationship else ""


def public_card(c: Character) -> str:
    """A character's public information, one ``Field: value`` line each (never the goal or the secret)."""
    lines = [f"Name: {c.name}"]
    if c.age is not None:
        lines.append(f"Age: {c.age}")
    if c.gender:
        lines.append(f"Gender: {c.gender}" + (f" ({c.pronoun})" if c.pronoun else ""))
    if c.occupation:
        lines.append(f"Occupation: {c.occupation}")
    if c.background:
        lines.append(f"Background: {c.background}")
    if c.personality:
        lines.append(f"Personality and values: {c.personality}")
    return "\n".join(lines)


def private_card(c: Character) -> str:
    """A character's private information: the social goal and the secret."""
    return f"Social goal: {c.goal or 'Unknown'}\nSecret: {c.secret or 'None'}"


def utterance(turn: Turn) -> str | None:
    """The content of one turn: the words; ``[non-verbal] ...``; ``[leaves the conversation] ...``; ``None``
    for a turn in which the character did nothing."""
    text = turn.text.strip()
    if turn.action == "speak":
        return text or None
    if turn.action == "non-verbal":
        return f"[non-verbal] {text}" if text else None
    if turn.action == "leave":
        return "[leaves the conversation]" + (f" {text}" if text else "")
    return None


NO_HISTORY = "This is the beginning of the interaction, no history available."


def transcript(
    turns: Sequence[Turn], *, style: Literal["lines", "sotopia", "pairs"] = "lines", upto: int | None = None
) -> str:
    """A conversation as text, up to and including ``turns[upto]`` (all turns by default).

    ``lines``: ``Name: content`` per turn that carries something (see :func:`utterance`), as the paper's
    intent prompt shows a dialogue. ``pairs``: the paper's judge format, one block per turn (a pair of
    utterances): ``Turn: n`` (from 1), ``Person 1: ...``, ``Person 2: ...``. ``sotopia``: the role-play history in Sotopia's wording, one
    numbered line per turn (``Turn #0: Name said: "..."``, ``... [non-verbal] ...``, ``... did nothing``,
    ``... left the conversation``), or :data:`NO_HISTORY` for an empty history.
    """
    shown = list(turns if upto is None else turns[: upto + 1])
    if style == "lines":
        return "\n".join(f"{t.name}: {u}" for t in shown if (u := utterance(t)) is not None)
    if style == "pairs":
        blocks: list[list[str]] = []
        for t in shown:
            if t.speaker == 0 or not blocks:
                blocks.append([])
            if (u := utterance(t)) is not None:
                blocks[-1].append(f"Person {t.speaker + 1}: {u}")
        return "\n".join(
            f"Turn: {k}\n" + "\n".join(lines) for k, lines in enumerate((b for b in blocks if b), start=1)
        )
    if not shown:
        return NO_HISTORY
    out = []
    for k, t in enumerate(shown):
        if t.action == "speak":
            out.append(f'Turn #{k}: {t.name} said: "{t.text}"')
        elif t.action == "non-verbal":
            out.append(f"Turn #{k}: {t.name} [non-verbal] {t.text}")
        elif t.action == "leave":
            out.append(f"Turn #{k}: {t.name} left the conversation" + (f': "{t.text}"' if t.text else ""))
        else:
            out.append(f"Turn #{k}: {t.name} did nothing")
    return "\n".join(out)
