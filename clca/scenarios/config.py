"""The scenario stage's settings (``scenarios:`` in a run config, the options of ``clca scenarios``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScenariosConfig(BaseModel):
    """How scenarios are made. ``source``: ``adapt`` (the teacher culture-adapts Sotopia seeds, the paper's
    first source), ``norms`` (new scenarios around Social Chemistry / NormBank norms, the paper's second),
    ``both`` (``norm_share`` from norms, the rest adapted; as in the paper) or ``seeds`` (the seeds as they
    are, tagged with the culture: no LLM; the culture then enters only through the role-play prompt)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["adapt", "norms", "both", "seeds"] = Field(
        default="adapt",
        description="adapt (Sotopia seeds), norms (new, around a norm), both, or seeds (no LLM).",
    )
    norm_share: float = Field(
        default=0.5, ge=0.0, le=1.0, description="With source both: share of norm-based scenarios."
    )
    names_first: bool = Field(
        default=True,
        description="Ask for the two new names first, then adapt the renamed scenario (small models otherwise "
        "copy the source names); false: one prompt as in the paper.",
    )
    per_culture: int = Field(default=20, ge=1, le=100_000, description="Seed scenarios per culture.")
    max_retries: int = Field(default=2, ge=0, le=20, description="Re-asks per unusable reply.")
    max_new_tokens: int = Field(default=1024, ge=16, le=32_768, description="Tokens per adapted scenario.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature.")
