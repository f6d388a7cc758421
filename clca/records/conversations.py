"""The conversation records: scenarios, episodes, judgements, intents, leakage verdicts (JSONL, one per line).

Every record has a stable ``id`` so that a stage can skip what it already wrote when resumed.
Add fields with defaults rather than renaming: run directories written by older versions must load.
Where each record lives in a run directory: :class:`clca.rundir.RunDir`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Action = Literal["none", "non-verbal", "speak", "leave"]
#: the culture of unadapted seed scenarios and of the no-culture control's data: no culture in any prompt
GENERIC = "generic"
Confidence = Literal["very confident", "confident", "not sure"]

#: Sotopia's relationship types (its ``RelationshipType``), in the words Sotopia uses; ``""`` = not given.
#: The Sotopia files store them as digit codes "0".."5" in this order.
Relationship = Literal[
    "stranger", "know by name", "acquaintance", "friend", "romantic relationship", "family member", ""
]
RELATIONSHIPS: tuple[Relationship, ...] = (
    "stranger",
    "know by name",
    "acquaintance",
    "friend",
    "romantic relationship",
    "family member",
)
_RELATIONSHIP_ALIASES: dict[str, Relationship] = {
    **{str(i): r for i, r in enumerate(RELATIONSHIPS)},
    **{r.replace(" ", "_"): r for r in RELATIONSHIPS},
    "strangers": "stranger",
    "known by name": "know by name",
    "knows by name": "know by name",
    "acquaintances": "acquaintance",
    "friends": "friend",
    "romantic": "romantic relationship",
    "romantic partners": "romantic relationship",
    "partners": "romantic relationship",
    "couple": "romantic relationship",
    "family": "family member",
    "family members": "family member",
    "relatives": "family member",
}


def normalise_relationship(value: object) -> Relationship:
    """One representation of a relationship: a Sotopia code ("3"), Sotopia's name ("friend",
    "know_by_name") or a plural/synonym ("friends", "family") -> the canonical word; ``ValueError`` otherwise."""
    text = re.sub(r"\s+", " ", str(value if value is not None else "")).strip().lower()
    if text in ("", "none", "null", "unknown"):
        return ""
    if text in RELATIONSHIPS:
        return text  # type: ignore[return-value]
    if text in _RELATIONSHIP_ALIASES:
        return _RELATIONSHIP_ALIASES[text]
    raise ValueError(
        f"relationship {value!r} is not one of {', '.join(RELATIONSHIPS)} (or Sotopia's codes 0-5)"
    )


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

    seed_id: str  # Sotopia env id + combo index, the norm id, or the user's own id
    culture: str  # country name as in the data bundle ("Great Britain"), or "generic" for seeds
    setting: str
    relationship: Relationship = ""
    characters: list[Character] = Field(min_length=2, max_length=2)
    model: str = ""  # model spec that adapted it ("" for seeds)
    prompt_version: str = ""
    source: str = "sotopia"
    #: which parts the adapting model changed beyond the names (``setting``, ``occupation``, ``background``,
    #: ``personality``, ``goal``, ``secret``); ``[]`` for a names-only adaptation, ``None`` when not recorded
    #: (unadapted seeds, norm-based scenarios, records written before clca recorded it)
    adapted_fields: list[str] | None = None
    #: norm-based scenarios: the norm / situation the scenario was built around (``{source}:{pk}`` and its text)
    norm_id: str | None = Field(
        default=None, exclude_if=lambda v: v is None
    )  # absent from adapted/seed records
    norm: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("relationship", mode="before")
    @classmethod
    def _relationship(cls, v: object) -> Relationship:
        return normalise_relationship(v)


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


#: why an episode ended: an agent left, the turn cap, or too many unparseable outputs in a row
StopReason = Literal["leave", "max_turns", "parse_failure"]


class Episode(Record):
    """A finished role-played conversation for one scenario sample (``episodes.jsonl`` holds only these; an
    episode in progress is a :class:`LiveEpisode` in the simulation's checkpoint)."""

    scenario_id: str
    culture: str
    sample: int
    seed: int
    model: str
    turns: list[Turn] = Field(default_factory=list)
    stop_reason: StopReason
    parse_failures: int = 0
    parse_errors: list[str] = Field(
        default_factory=list
    )  # one line per unparseable output (reason: raw text)
    prompt_version: str = ""


class LiveEpisode(Episode):
    """An episode in progress, as the simulation's checkpoint holds it: ``stop_reason`` is ``running`` until
    a stop rule fires; :meth:`finished` is the record ``episodes.jsonl`` gets."""

    stop_reason: StopReason | Literal["running"] = "running"  # type: ignore[assignment]

    @property
    def done(self) -> bool:
        return self.stop_reason != "running"

    def finished(self) -> Episode:
        """The stored form of the ended episode (a ``ValueError`` while it is still running)."""
        if self.stop_reason == "running":
            raise ValueError(f"episode {self.id} is still running")
        return Episode.model_validate(self.model_dump())


class CheckpointEntry(BaseModel):
    """One in-progress episode in the simulation's checkpoint: the episode so far and its failure streak."""

    model_config = ConfigDict(extra="forbid")
    episode: LiveEpisode
    consecutive_failures: int = 0


class Judgement(Record):
    """The LLM judge's verdict on one episode (``id`` equals the episode id).

    Step 1: ``quality`` and ``alignment`` (with the culture), each with a confidence; step 2: a ``critique`` of
    step 1 ending in a ``meta`` label on the conversation's alignment with the culture, with a confidence.
    """

    episode_id: str
    culture: str
    model: str
    quality: Literal["good", "bad"] | None = None
    quality_confidence: Confidence | None = None
    alignment: Literal["aligned", "not aligned"] | None = None
    alignment_confidence: Confidence | None = None
    meta: Literal["good", "bad"] | None = None
    meta_confidence: Confidence | None = None
    critique: str = ""
    keep: bool
    #: every raw reply per question (``quality``, ``alignment``, ``meta``), retries included
    raw: dict[str, list[str]] = Field(default_factory=dict)
    raw_step1: str = ""  # records written before judge-v2
    raw_step2: str = ""
    attempts: int = 0  # model calls made for this judgement (3 without retries)
    prompt_version: str = ""
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
    attempts: int = 1
    prompt_version: str = ""
    error: str | None = None


class LeakageRecord(BaseModel):
    """The leakage verdict for one episode (``id`` equals the episode id); see :mod:`clca.leakage`."""

    model_config = ConfigDict(extra="forbid")
    id: str
    culture: str
    n: int
    flagged: bool
    qids: list[str] = Field(default_factory=list)  # WVS questions whose wording overlaps
    matches: list[str] = Field(default_factory=list)  # up to 5 overlapping n-grams


class AnyRecord(BaseModel):
    """Any record with an id (to count the lines of a file whose exact schema does not matter)."""

    model_config = ConfigDict(extra="allow")
    id: str
