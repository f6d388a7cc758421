"""The role-play prompt (``roleplay-v3``): what each agent is told at its turn.

Each agent's prompt holds, in this order (what both agents are told first, so that prefix caches share it):

* the setting, the relationship (:func:`clca.render.relationship_phrase`) and the culture profile in words
  ("Both participants are {demonym}. You are a member of the {demonym} culture..." followed by the
  Hofstede and Inglehart–Welzel description from :func:`clca.culture.get_profile`), as in the CLCA system
  prompt; BOTH characters' public cards (:func:`clca.render.public_card`); the answer format;
* ITS OWN name, social goal and secret only (the other character's goal is "Unknown"; its secret is never
  shown);
* the conversation history in Sotopia's wording (:func:`clca.render.transcript`, ``sotopia`` style).

``roleplay-v3`` differs from ``roleplay-v2`` only in the relationship line, which now reads as a sentence for
every Sotopia relationship ("Li Wei and Zhang Min know each other by name.") instead of the raw label.
"""

from __future__ import annotations

from collections.abc import Sequence

from clca.llm.base import Chat
from clca.records import Scenario, Turn
from clca.render import public_card, relationship_phrase, transcript

PROMPT_VERSION = "roleplay-v3"

ANSWER_FORMAT = (
    "Each turn, the acting person chooses one action type: none, non-verbal, speak, leave.\n"
    "Choose leave as soon as you have achieved your social goal, or there is a clear outcome for it "
    "(success or failure).\n"
    "OUTPUT is what you say if you speak, the physical act if non-verbal, a closing sentence if you leave, "
    "and NONE if none.\n"
    "Reply with exactly two lines in this format, for example:\n"
    "ACTION: speak\n"
    "OUTPUT: Good evening! It is nice to see you."
)


def culture_words(culture: str) -> str:
    """The culture block of the system prompt for ``culture`` ("" for culture-neutral seed scenarios)."""
    if not culture or culture.lower() == "generic":
        return ""
    from clca.culture import get_profile

    profile = get_profile(culture)
    demonym = profile.demonym
    return (
        f"Both participants are {demonym}. You are a member of the {demonym} culture, "
        f"and you think, speak and act in line with its culture dimensions:\n{profile.describe()}"
    )


def build_messages(scenario: Scenario, speaker: int, turns: Sequence[Turn], culture_text: str) -> Chat:
    """The chat (system + user message) asking agent ``speaker`` (0 or 1) for its next act.

    The system message carries the context: first what both agents are told, then the agent's OWN identity,
    goal and secret; the user message carries the history and the request. The shared part is word for word
    the same for both agents and all samples of a scenario, and an agent's prompt at its next turn extends this
    one (only the history grows), so a prefix-caching backend (clca's local engine, vLLM) reuses it.
    """
    me = scenario.characters[speaker]
    other = scenario.characters[1 - speaker]
    p1, p2 = scenario.characters[0].name, scenario.characters[1].name
    parts = [
        "Here is the context of this interaction:",
        f"Scenario: {scenario.setting}",
        f"Participants: {p1} and {p2}",
    ]
    if scenario.relationship:
        parts.append(relationship_phrase(scenario.relationship, p1, p2))
    if culture_text:
        parts.append(culture_text)
    parts += [f"Information about {c.name}:\n{public_card(c)}" for c in scenario.characters]
    parts.append(ANSWER_FORMAT)
    parts += [
        f"You are {me.name}.",
        f"Your social goal: {me.goal or 'Unknown'}",
        f"Your secret (private, only you know it): {me.secret or 'None'}",
        f"{other.name}'s goal: Unknown",
        f"Imagine you are {me.name}. Your task is to act and speak like {me.name}"
        + (", a member of this culture," if culture_text else "")
        + f" with {me.name}'s social goal in mind.",
    ]
    user = (
        f"Conversation history:\n{transcript(turns, style='sotopia')}\n\n"
        f"You are at Turn #{len(turns)}. You are {me.name}; it is your turn. Reply as {me.name}, in English:"
    )
    return [{"role": "system", "content": "\n\n".join(parts)}, {"role": "user", "content": user}]
