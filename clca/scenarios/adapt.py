"""The adaptation of a Sotopia seed to a culture: the prompts, the reply's schema and its checks.

Names first (the default), the seed shown is already renamed (:mod:`clca.scenarios.names`) and the model is
asked to keep those names (:func:`adaptation_chat` with ``keep_names``); ``names_first: false`` sends the
paper's one prompt (:func:`paper_adaptation_chat`, its Table 19). The reply must be the same JSON with every
field filled and no source name left anywhere (:func:`validate_adaptation`); an invalid reply gets a repair
turn quoting the problem (:func:`repair_chat`). :func:`changed_fields` records what the model changed beyond
the names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clca.culture import CultureProfile
from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Chat
from clca.records import Character, Scenario
from clca.scenarios.names import rename, source_names

PROMPT_VERSION = "adapt-paper-v1"  # one prompt (names_first=False): the paper's Table 19 prompt, verbatim
NAMES_FIRST_PROMPT_VERSION = "adapt-v2"  # names step, then the adaptation of the renamed scenario


class AdaptedCharacter(BaseModel):
    """One character as the model must return it (all text fields filled)."""

    model_config = ConfigDict(extra="ignore")
    first_name: str
    last_name: str
    age: int | None = None
    gender: str
    pronoun: str
    occupation: str
    background: str
    personality: str
    secret: str
    goal: str


class AdaptedScenario(BaseModel):
    """The JSON schema of an adapted scenario (what the model must return)."""

    model_config = ConfigDict(extra="ignore")
    setting: str
    characters: list[AdaptedCharacter] = Field(min_length=2, max_length=2)


def scenario_payload(s: Scenario) -> dict[str, Any]:
    """The part of a scenario that is shown to (and returned by) the adapting model."""
    return {
        "setting": s.setting,
        "characters": [c.model_dump(mode="json") for c in s.characters],
    }


def _expert(profile: CultureProfile) -> str:
    return f"You are an expert in {profile.demonym} culture who writes realistic social role-play scenarios."


def paper_adaptation_chat(seed: Scenario, profile: CultureProfile) -> Chat:
    """The paper's adaptation prompt (its Table 19, one user message, verbatim; ``{culture}`` = the country),
    with the seed as JSON in clca's scenario schema."""
    culture = profile.country
    user = (
        "Here is a generic social interaction. Could you update the name, occupation, setting, goals, and secrets "
        "to make the information logically coherent so that it represents a believable scenario that could occur "
        f"within {culture}? Please change all participants' names to diverse {culture} names with diverse "
        "occupations. The goals and secrets should be relevant to the interaction setting and play a key role in "
        "inciting or resolving conflicts in this interaction. Return the data using the same JSON schema in "
        f"English without any explanation. Input: {json.dumps(scenario_payload(seed), ensure_ascii=False)} Output:"
    )
    return [{"role": "user", "content": user}]


def adaptation_chat(seed: Scenario, profile: CultureProfile, *, keep_names: bool = False) -> Chat:
    """The adaptation prompt for one seed and culture.

    ``keep_names``: ``seed`` was already renamed by the names step, so the model is asked to keep its names
    (the original names appear nowhere in the prompt); otherwise it must replace the seed's names.
    """
    if keep_names:
        name_rule = f"- keep the names {' and '.join(c.name for c in seed.characters)};\n"
    else:
        name_rule = (
            f"- give both people new first and last names that are typical of {profile.demonym} people "
            f"(diverse, not famous); do not keep the original names ({', '.join(source_names(seed))});\n"
        )
    user = (
        f"Adapt the following social scenario to {profile.demonym} culture ({profile.country}).\n\n"
        f"Culture profile: {profile.describe()}\n\n"
        f"Rewrite the scenario so that it is believable in {profile.country}:\n"
        + name_rule
        + f"- adapt the occupations, the setting (places, institutions, customs, money) and the backgrounds "
        f"to {profile.country};\n"
        f"- adapt the goals and secrets so that they still drive or resolve a conflict between the two people, "
        f"in a way that fits {profile.demonym} social expectations;\n"
        "- keep the ages, genders and pronouns; fill every field; keep exactly the same JSON keys.\n\n"
        f"Scenario (JSON):\n{json.dumps(scenario_payload(seed), ensure_ascii=False, indent=1)}\n\n"
        "Reply with only the adapted scenario as one JSON object."
    )
    return [{"role": "system", "content": _expert(profile)}, {"role": "user", "content": user}]


_FIELDS = "first_name, last_name, age, gender, pronoun, occupation, background, personality, secret, goal"


def repair_chat(chat: Chat, raw: str, error: str, seed: Scenario, *, keep_names: bool = False) -> Chat:
    """The follow-up turn asking the model to fix its previous reply (``seed``: what the prompt showed)."""
    names = (
        f"the names {' and '.join(c.name for c in seed.characters)}"
        if keep_names
        else f"none of the original names ({', '.join(source_names(seed))})"
    )
    return [
        *chat,
        {"role": "assistant", "content": raw},
        {
            "role": "user",
            "content": (
                f"That reply cannot be used: {error}. Reply again with only the corrected JSON object: keys "
                f'"setting" and "characters" (two objects with {_FIELDS}), every field filled, {names}.'
            ),
        },
    ]


def _validate_fields(adapted: AdaptedScenario, reference: Sequence[Character] | None) -> None:
    """``ValueError`` for an empty setting or an empty character field (one the reference, if any, fills)."""
    if not adapted.setting.strip():
        raise ValueError("the field 'setting' is empty")
    for i, c in enumerate(adapted.characters):
        for field, value in c.model_dump().items():
            if field == "age":
                continue
            src = getattr(reference[i], field, "x") if reference is not None else "x"
            if isinstance(value, str) and not value.strip() and str(src).strip():
                raise ValueError(f"the field characters[{i}].{field} is empty")


def _parse_object(raw: str, model: type[BaseModel]) -> Any:
    """The reply's JSON object validated by ``model``; ``ValueError`` with a one-line reason otherwise."""
    try:
        obj = extract_json(raw)
    except JsonTextError as exc:
        raise ValueError(str(exc)) from None
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(object)"
        raise ValueError(f"schema error at {loc}: {err.get('msg', 'invalid')}") from None


def validate_adaptation(raw: str, seed: Scenario) -> AdaptedScenario:
    """Parse and check a model reply; raise ``ValueError`` with a one-line reason when it is unusable."""
    adapted: AdaptedScenario = _parse_object(raw, AdaptedScenario)
    _validate_fields(adapted, seed.characters)
    texts = [adapted.setting] + [str(v) for c in adapted.characters for v in c.model_dump().values()]
    blob = "\n".join(texts)
    for name in source_names(seed):
        if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", blob, flags=re.I):
            raise ValueError(f"the original name {name!r} is still in the scenario")
    return adapted


def changed_fields(shown: Scenario, adapted: AdaptedScenario) -> list[str]:
    """The parts of ``adapted`` that differ from the scenario the model was shown (names aside: the shown
    scenario is first renamed to the adapted names)."""
    shown = rename(shown, [(c.first_name, c.last_name) for c in adapted.characters])

    def norm(text: str) -> str:
        return re.sub(r"\s+", " ", text).strip().lower()

    out = ["setting"] if norm(adapted.setting) != norm(shown.setting) else []
    for field in ("occupation", "background", "personality", "goal", "secret"):
        if any(
            norm(str(getattr(a, field))) != norm(str(getattr(c, field)))
            for a, c in zip(adapted.characters, shown.characters, strict=True)
        ):
            out.append(field)
    return out
