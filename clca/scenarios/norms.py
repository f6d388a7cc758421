"""Norm-based scenarios (the paper's second source): a NEW scenario in the culture around one social norm.

The norms are Sotopia-π's inspirational prompts (:func:`clca.data.sotopia.load_norms`: Social Chemistry rows
first, then NormBank); the reply has the adaptation's schema plus the relationship, and gets the same checks
(every field filled, no placeholder or duplicate names). The norm's id and text are kept as provenance
(``Scenario.norm_id``, ``Scenario.norm``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import field_validator

from clca.culture import CultureProfile
from clca.data.sotopia import Norm
from clca.llm.base import Chat
from clca.records import RELATIONSHIPS, Relationship, normalise_relationship
from clca.scenarios.adapt import _FIELDS, AdaptedScenario, _expert, _parse_object, _validate_fields
from clca.scenarios.ids import scenario_id
from clca.scenarios.names import _check_name_pairs

NORM_PROMPT_VERSION = "norm-v1"  # a new scenario around a social norm


class NormScenario(AdaptedScenario):
    """The JSON schema of a new scenario written around a norm."""

    relationship: Relationship = ""

    @field_validator("relationship", mode="before")
    @classmethod
    def _relationship(cls, v: object) -> Relationship:
        return normalise_relationship(v)


_NORM_SOURCES = {
    "social_chem": "Social Chemistry 101",
    "normbank": "NormBank",
    "social_iqa": "Social IQa",
}


def norm_chat(norm: Norm, profile: CultureProfile) -> Chat:
    """The prompt asking for a new scenario set in the culture around ``norm``."""
    where = _NORM_SOURCES.get(norm.source, "a collection of social situations")
    user = (
        f"Write a new social scenario set in {profile.country}, around this social norm or situation "
        f"(from {where}):\n"
        f'Social norm or situation: "{norm.text}"\n\n'
        f"Culture profile: {profile.describe()}\n\n"
        f"The scenario is an interaction between two people living in {profile.country} that is believable in "
        f"{profile.demonym} culture and in which the norm or situation matters. Give both people realistic "
        f"{profile.demonym} first and last names (diverse, not famous; in Latin letters), an age, gender, "
        "pronoun, occupation, a public background, a personality, a private social goal and a secret. The goals "
        "and secrets should play a key role in inciting or resolving a conflict between them, in a way that "
        f"fits {profile.demonym} social expectations. Their relationship is one of: {', '.join(RELATIONSHIPS)}.\n\n"
        'Reply with only one JSON object with the keys "setting", "relationship" and "characters" (two objects '
        f"with {_FIELDS}), every field filled."
    )
    return [{"role": "system", "content": _expert(profile)}, {"role": "user", "content": user}]


def norm_repair_chat(chat: Chat, raw: str, error: str) -> Chat:
    """The follow-up turn asking the model to fix an unusable norm-based scenario."""
    return [
        *chat,
        {"role": "assistant", "content": raw},
        {
            "role": "user",
            "content": f"That reply cannot be used: {error}. Reply again with only the corrected JSON object: keys "
            f'"setting", "relationship" and "characters" (two objects with {_FIELDS}), every field filled.',
        },
    ]


def validate_norm_scenario(raw: str) -> NormScenario:
    """Parse and check a norm-based scenario; ``ValueError`` with a one-line reason when it is unusable."""
    sc: NormScenario = _parse_object(raw, NormScenario)
    _validate_fields(sc, None)
    _check_name_pairs([(c.first_name.strip(), c.last_name.strip()) for c in sc.characters], set())
    return sc


def pick_norms(norms: Sequence[Norm], n: int, seed: int = 0) -> list[Norm]:
    """``n`` norms: a seeded shuffle within each source, the sources in :func:`load_norms`'s order."""
    rng = random.Random(seed)
    by_source: dict[str, list[Norm]] = {}
    for x in norms:
        by_source.setdefault(x.source, []).append(x)
    ordered: list[Norm] = []
    for group in by_source.values():
        ordered += rng.sample(group, len(group))
    return ordered[:n]


def norm_record_id(country: str, norm: Norm) -> str:
    """The id of the scenario written for ``country`` around ``norm`` (:func:`~clca.scenarios.ids.scenario_id`)."""
    return scenario_id(country, norm)
