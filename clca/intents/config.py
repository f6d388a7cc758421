"""The intent stage's settings (``intents:`` in a run config, the options of ``clca intents``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IntentsConfig(BaseModel):
    """Intent labelling settings."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(
        default=True, description="Label intents (false only with mix.ablation: dialogue_only)."
    )
    max_new_tokens: int = Field(default=96, ge=8, le=32_768, description="Tokens per intent.")
    max_retries: int = Field(
        default=2, ge=0, le=20, description="Re-asks (new seed) per reply without INTENT:."
    )
