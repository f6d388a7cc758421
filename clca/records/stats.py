"""``stats.json``: the run's data statistics per culture (the CLCA paper's Table 9 and more); see
:mod:`clca.stats` for how each number is counted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CultureStats(BaseModel):
    """The statistics of one culture (or of the whole run, ``total``)."""

    model_config = ConfigDict(extra="forbid")
    scenarios: int
    scenario_failures: int
    names_only: int
    episodes: int
    running: int
    stopped_by_parse_failure: int
    unparseable_turns: int
    judged: int
    kept: int
    kept_pct: float | None
    judge_errors: int
    data_from: str  # "kept" (the judge's kept episodes) or "all" (no judgements yet)
    final_episodes: int
    avg_turns: float | None
    avg_utterances: float | None
    avg_words_per_utterance: float | None
    avg_words_per_turn: float | None
    intents: int
    intent_errors: int
    cultural_intent_pct: float | None
    leakage_flagged: int


class LeakageSummary(BaseModel):
    """Whether the WVS-overlap check ran and which episodes it flagged."""

    model_config = ConfigDict(extra="forbid")
    checked: bool
    flagged_episodes: list[str]


class RunStats(BaseModel):
    """The whole ``stats.json``."""

    model_config = ConfigDict(extra="forbid")
    run: str
    cultures: dict[str, CultureStats]
    total: CultureStats
    leakage: LeakageSummary
