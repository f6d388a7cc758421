"""What the training stages write: ``mix/<variant>/mix_stats.json`` (:class:`MixStats`) and
``adapters/<variant>/train_result.json`` (:class:`TrainResult`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel


class MixResult(BaseModel):
    """What :func:`clca.training.mix.build_mix` wrote and the counts behind it."""

    path: Path
    culture: str
    train_examples: int
    train_tokens: int = 0  # tokens of the training split (chat template applied; see token_unit)
    token_unit: str = ""
    target_examples: int | None = None  # the no-culture control: the volume it was matched to
    target_tokens: int | None = None
    volume_matched: bool | None = None  # tokens within VOLUME_TOLERANCE of target_tokens (None: no target)
    validation_examples: int
    train_by_task: dict[str, int]
    validation_by_task: dict[str, int]
    available_by_task: dict[str, int]
    episodes_total: int
    episodes_used: int
    episodes_train: int
    episodes_validation: int
    excluded: dict[str, int]


class MixStats(MixResult):
    """``mix_stats.json``: the :class:`MixResult` plus the mix settings and seed it was built with."""

    config: dict[str, Any]
    seed: int


class TrainResult(BaseModel):
    """Summary of one adapter training (``train_result.json``; its presence marks the adapter finished)."""

    adapter_dir: Path
    base_model: str
    base_model_path: str
    base_model_id: str = ""  # what the adapter names as its base (a hub id: portable; see clca.export)
    dataset_dir: str
    train_examples: int
    validation_examples: int
    steps: int
    epochs: float
    train_loss: float | None
    first_loss: float | None
    last_loss: float | None
    eval_loss: float | None
    train_runtime_s: float
    train_tokens: int
    tokens_per_s: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    device: str
    dtype: str
    config: dict[str, Any]
    versions: dict[str, str]
    skipped: bool = False
