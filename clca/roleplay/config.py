"""The role-play stage's settings (``simulate:`` in a run config, the options of ``clca simulate``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SimulateConfig(BaseModel):
    """Role-play settings. One turn is a pair of utterances (person 1, then person 2), as in the paper."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(default=2, ge=1, le=1000, description="Episodes per scenario (distinct seeds).")
    max_turns: int = Field(
        default=12, ge=1, le=500, description="Turn cap; one turn = person 1 then person 2."
    )
    max_new_tokens: int = Field(default=160, ge=8, le=32_768, description="Tokens per agent output.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    max_consecutive_failures: int = Field(
        default=2, ge=1, le=100, description="Stop an episode after this many unparseable outputs in a row."
    )
