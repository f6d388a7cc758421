"""The training stages' settings: the mix (``mix:``, ``clca mix``) and the adapter training (``train:``, the
preset and its overrides; ``clca train``). The full training settings are :class:`clca.training.presets.TrainConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Ablation = Literal["dialogue_only", "intent_only"]


class MixConfig(BaseModel):
    """The multi-task training mix of one culture (see :mod:`clca.training.mix`)."""

    model_config = ConfigDict(extra="forbid")

    ratio_dialogue_p1: float = Field(
        default=1.0, ge=0, le=1000, description="Share of the person-1 dialogue part."
    )
    ratio_dialogue_p2: float = Field(
        default=1.0, ge=0, le=1000, description="Share of the person-2 dialogue part."
    )
    ratio_intent: float = Field(default=1.0, ge=0, le=1000, description="Share of the intent part.")
    ablation: Ablation | None = Field(
        default=None, description="Leave a part out: dialogue_only or intent_only."
    )
    val_fraction: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Share of scenarios held out for validation (both conversations of a scenario stay on one side).",
    )
    require_judge: bool = Field(default=True, description="Use only episodes the judge kept.")
    max_examples: int | None = Field(default=None, gt=0, description="Cap on training examples.")

    @model_validator(mode="after")
    def _some_part(self) -> MixConfig:
        if not any(v > 0 for v in self.ratios().values()):
            raise ValueError("at least one part of the mix needs a ratio > 0")
        return self

    def ratios(self) -> dict[str, float]:
        """The effective ratio per part (``dialogue_p1``, ``dialogue_p2``, ``intent``) after the ablation."""
        r = {
            "dialogue_p1": self.ratio_dialogue_p1,
            "dialogue_p2": self.ratio_dialogue_p2,
            "intent": self.ratio_intent,
        }
        if self.ablation == "dialogue_only":
            r["intent"] = 0.0
        elif self.ablation == "intent_only":
            r["dialogue_p1"] = r["dialogue_p2"] = 0.0
        return r


class TrainSection(BaseModel):
    """``preset`` (``cpu`` or ``paper``) plus any :class:`~clca.training.presets.TrainConfig` field in
    ``overrides``; validated against ``TrainConfig`` when the config loads. ``seeds``: one adapter per seed
    (per culture and per control; the report's intervals include the variation between seeds); default: the
    run's seed."""

    model_config = ConfigDict(extra="forbid")
    preset: Literal["cpu", "paper"] = Field(default="cpu", description="Training preset: cpu or paper.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields to override.")
    seeds: list[int] | None = Field(
        default=None, min_length=1, max_length=50, description="Training seeds (one adapter each)."
    )
    launcher: Literal["python", "accelerate"] = Field(
        default="python",
        description="python (one process) or accelerate (`accelerate launch -m clca train`, num_processes "
        "processes: several GPUs for one adapter).",
    )
    num_processes: int = Field(
        default=1, ge=1, le=1024, description="Processes (GPUs) with launcher accelerate."
    )
    accelerate_config: Path | None = Field(
        default=None, description="An accelerate config file (e.g. configs/accelerate/multi_gpu.yaml)."
    )

    #: how a training is launched; not part of what is trained (not in a stage's settings hash)
    LAUNCH_FIELDS: ClassVar[frozenset[str]] = frozenset({"launcher", "num_processes", "accelerate_config"})

    @model_validator(mode="after")
    def _check(self) -> TrainSection:
        if self.seeds is not None:
            if "seed" in self.overrides:
                raise ValueError("give training seeds in train.seeds, not train.overrides.seed")
            if len(set(self.seeds)) != len(self.seeds):
                raise ValueError("a seed is listed twice in train.seeds")
        self.resolve(model="embedded:smollm2-135m", seed=0)
        return self

    def seed_list(self, run_seed: int) -> list[int]:
        """The training seeds: ``seeds``, or the run's seed."""
        return list(self.seeds) if self.seeds is not None else [int(self.overrides.get("seed", run_seed))]

    def resolve(self, *, model: str, seed: int) -> Any:
        """The :class:`~clca.training.presets.TrainConfig` for ``model`` and training ``seed``; a ``model`` or
        ``seed`` in ``overrides`` wins (``clca train --seed N``; the pipeline passes the seed it took from
        ``seed_list``, which already honours ``overrides.seed``)."""
        from clca.training.presets import TrainConfig, preset

        unknown = sorted(set(self.overrides) - set(TrainConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown key 'overrides.{unknown[0]}' (not a TrainConfig field)")
        try:
            return preset(self.preset, **{"model": model, "seed": seed, **self.overrides})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ()))
            raise ValueError(f"overrides.{loc}: {err.get('msg', 'invalid')}") from None
