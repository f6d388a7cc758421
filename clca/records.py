"""Pydantic records that cross a stage boundary (one JSON object per line in a run directory).

Every record has a stable ``id`` so that a stage can skip what it already wrote when resumed.
Add fields with defaults rather than renaming: run directories written by older versions must load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["none", "non-verbal", "speak", "leave"]
Confidence = Literal["very confident", "confident", "not sure"]


class Record(BaseModel):
    """Base for all run-directory records: unknown keys are an error, ids are required."""

    model_config = ConfigDict(extra="forbid")
    id: str


class Character(BaseModel):
    """One participant of a social scenario. ``goal`` and ``secret`` are private to this character."""

    model_config = ConfigDict(extra="forbid")
    first_name: str
    last_name: str = ""
    age: int | None = None
    gender: str = ""
    pronoun: str = ""
    occupation: str = ""
    background: str = ""  # public information: what the other character may know
    personality: str = ""  # personality and values (public)
    secret: str = ""  # private
    goal: str = ""  # private social goal

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Scenario(Record):
    """A (culture-adapted) social scenario: a setting and two characters with private goals and secrets."""

    seed_id: str  # Sotopia env id + combo index, or the user's own id
    culture: str  # country name as in the data bundle ("Great Britain"), or "generic" for seeds
    setting: str
    relationship: str = ""  # e.g. "stranger", "friend", "family"
    characters: list[Character] = Field(min_length=2, max_length=2)
    model: str = ""  # model spec that adapted it ("" for seeds)
    prompt_version: str = ""
    source: str = "sotopia"
    #: which parts the adapting model changed beyond the names (``setting``, ``occupation``, ``background``,
    #: ``personality``, ``goal``, ``secret``); ``[]`` for a names-only adaptation, ``None`` when not recorded
    #: (unadapted seeds, records written before clca recorded it)
    adapted_fields: list[str] | None = None


class ScenarioFailure(Record):
    """A seed that could not be adapted after the bounded retries (kept so nothing is silently lost)."""

    seed_id: str
    culture: str
    model: str
    reason: str
    raw: list[str] = Field(default_factory=list)


class Turn(BaseModel):
    """One utterance or act in an episode. ``speaker`` is 0 (person 1) or 1 (person 2)."""

    model_config = ConfigDict(extra="forbid")
    speaker: int = Field(ge=0, le=1)
    name: str
    action: Action
    text: str
    raw: str = ""  # the model's raw output for this turn


class Episode(Record):
    """A role-played conversation for one scenario sample."""

    scenario_id: str
    culture: str
    sample: int
    seed: int
    model: str
    turns: list[Turn] = Field(default_factory=list)
    stop_reason: Literal["leave", "max_turns", "parse_failure", "running"] = "running"
    parse_failures: int = 0
    parse_errors: list[str] = Field(
        default_factory=list
    )  # one line per unparseable output (reason: raw text)


class Judgement(Record):
    """The two-step LLM judge's verdict on one episode (``id`` equals the episode id)."""

    episode_id: str
    culture: str
    model: str
    quality: Literal["good", "bad"] | None = None
    quality_confidence: Confidence | None = None
    alignment: Literal["aligned", "not aligned"] | None = None
    alignment_confidence: Confidence | None = None
    meta: Literal["good", "bad"] | None = None
    meta_confidence: Confidence | None = None
    keep: bool
    raw_step1: str = ""
    raw_step2: str = ""
    error: str | None = None


class Intent(Record):
    """The intent behind one utterance (``id`` is ``{episode_id}:{turn_index}``)."""

    episode_id: str
    culture: str
    turn_index: int
    speaker: int
    name: str
    intent: str | None = None
    cultural: bool = False  # the intent's reason refers to cultural/social expectations
    model: str = ""
    raw: str = ""
    error: str | None = None
