"""The judge stage's settings (``judge:`` in a run config, the options of ``clca judge``) and the filter rule
that decides which judged episodes are kept."""

from __future__ import annotations

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from clca.records import Confidence


class FilterRule(BaseModel):
    """Which judgements drop an episode. Default: the CLCA paper's rule (drop on very-confident bad quality
    or a very-confident bad meta label; the alignment label is recorded, not used)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drop_quality_bad: frozenset[Confidence] = frozenset({"very confident"})
    drop_meta_bad: frozenset[Confidence] = frozenset({"very confident"})
    drop_not_aligned: frozenset[Confidence] = frozenset()
    keep_on_error: bool = True

    @field_serializer("drop_quality_bad", "drop_meta_bad", "drop_not_aligned")
    def _sorted(self, v: frozenset[str]) -> list[str]:
        return sorted(v)  # a stable order: the settings hash must not depend on set iteration

    def keep(
        self,
        *,
        quality: str | None,
        quality_confidence: str | None,
        meta: str | None,
        meta_confidence: str | None,
        alignment: str | None = None,
        alignment_confidence: str | None = None,
        error: str | None = None,
    ) -> bool:
        """True when the episode is kept. Parsed evidence for dropping always wins over a parse error."""
        if quality == "bad" and quality_confidence in self.drop_quality_bad:
            return False
        if meta == "bad" and meta_confidence in self.drop_meta_bad:
            return False
        if alignment == "not aligned" and alignment_confidence in self.drop_not_aligned:
            return False
        if error:
            return self.keep_on_error
        return True

    @property
    def name(self) -> str | None:
        """``paper`` / ``none`` when the rule is one of :data:`NAMED_RULES`, else ``None``."""
        return next((k for k, r in NAMED_RULES.items() if r == self), None)

    def cli_value(self) -> str:
        """How the rule is written on the command line: its name when it has one, else its JSON."""
        return self.name or self.model_dump_json()


NAMED_RULES: dict[str, FilterRule] = {
    "paper": FilterRule(),
    "none": FilterRule(drop_quality_bad=frozenset(), drop_meta_bad=frozenset(), keep_on_error=True),
}


class JudgeConfig(BaseModel):
    """The judge. ``rule``: ``paper``, ``none`` (keep every judged episode), or a mapping of
    :class:`FilterRule` fields (on the command line as YAML, e.g. ``{drop_not_aligned: [very confident]}``)."""

    model_config = ConfigDict(extra="forbid")

    rule: FilterRule = Field(default_factory=FilterRule, description="paper, none, or a FilterRule mapping.")
    max_new_tokens: int = Field(default=200, ge=8, le=32_768, description="Tokens per judge answer.")
    max_retries: int = Field(default=2, ge=0, le=20, description="Re-asks (new seed) per unparseable answer.")

    @field_validator("rule", mode="before")
    @classmethod
    def _rule(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text in NAMED_RULES:
                return NAMED_RULES[text]
            if text.startswith("{"):
                try:
                    return yaml.safe_load(text)
                except yaml.YAMLError:
                    raise ValueError("not a valid YAML mapping") from None
            raise ValueError(
                f"unknown filter rule {text!r}; use paper, none or a mapping of FilterRule fields"
            )
        return v

    @property
    def rule_name(self) -> str:
        """``paper`` / ``none`` when the rule is one of those, else ``custom``."""
        return self.rule.name or "custom"
