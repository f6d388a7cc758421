"""Training configuration and its named presets.

``paper``
    The CLCA paper's Table 14 (QLoRA 4-bit on GPU, LoRA r 4, **alpha 0.1**, **dropout 0.5** on ``q_proj``/
    ``v_proj``, embeddings and LM head trainable and saved (on students that tie them, Llama-3.2 1B/3B and
    Qwen2.5 0.5B/1.5B, as two separately trained copies, as the PEFT of the released code did:
    ``tie_trained_embeddings: false``), a pad token added when the tokenizer lacks one,
    batch 8, lr 1e-4, 3 epochs, max length 2048), with the paper's per-family exceptions applied from the
    model spec unless overridden: Qwen students 1 epoch, Mistral students lr 5e-5. Alpha 0.1 is as
    published: with r 4 the LoRA update is scaled by alpha / r = 0.025, so most of the adaptation can come
    from the trainable embeddings and LM head (see docs/training.md).
``cpu``
    Fits and runs fast on a small CPU machine with the embedded SmolLM2-135M: fp32, LoRA r 8 on all attention
    projections (q/k/v/o), dropout 0, no trainable embeddings (small adapters, loadable by vLLM), batch 4 x 2
    accumulation, max length 512, lr 2e-4, no gradient checkpointing (measured in bench/bench_train.py:
    at 512 tokens the activations of a 135M model fit easily, and checkpointing costs ~30% more compute).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clca.errors import ClcaError

PresetName = Literal["paper", "cpu"]


class TrainConfig(BaseModel):
    """Everything :func:`clca.training.train.train_adapter` needs besides the data and output folder."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        default="embedded:smollm2-135m", description="Base model spec (embedded:..., hf:<id or path>)."
    )
    lora_r: int = Field(default=8, gt=0, description="LoRA rank.")
    lora_alpha: float = Field(default=16, gt=0, description="LoRA alpha (the update is scaled by alpha / r).")
    lora_dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Modules that get LoRA layers (comma-separated).",
    )
    modules_to_save: list[str] = Field(
        default_factory=list,
        description="Modules trained fully and saved with the adapter, e.g. embed_tokens,lm_head.",
    )
    tie_trained_embeddings: bool = Field(
        default=True,
        description="On a student that ties embeddings and LM head, train them as one matrix (else two copies).",
    )
    add_pad_token: bool = Field(
        default=True, description="Add <|pad|> when the tokenizer has none and the embeddings are trained."
    )
    learning_rate: float = Field(default=2e-4, gt=0, description="Peak learning rate.")
    num_epochs: float = Field(default=1.0, gt=0, description="Passes over the training split.")
    max_steps: int | None = Field(default=None, gt=0, description="Optimizer steps; overrides num_epochs.")
    per_device_batch_size: int = Field(default=4, gt=0, description="Examples per device and step.")
    grad_accum: int = Field(default=2, gt=0, description="Gradient accumulation steps.")
    max_length: int = Field(default=512, gt=0, description="Tokens per example (longer ones are cut).")
    gradient_checkpointing: bool = Field(default=False, description="Recompute activations (less memory).")
    bf16: bool | None = Field(default=None, description="bf16 training (default: when the GPU supports it).")
    load_in_4bit: bool = Field(
        default=False, description="QLoRA: the base in 4-bit nf4 (CUDA + bitsandbytes)."
    )
    lr_scheduler: str = Field(default="linear", description="Learning-rate schedule (transformers' names).")
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1, description="Warm-up share of the steps.")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    seed: int = Field(default=0, description="Training seed (data order, LoRA init, dropout).")
    logging_steps: int = Field(default=5, gt=0, description="Steps between log lines (train_log.jsonl).")
    eval_each_epoch: bool = Field(default=True, description="Validation loss after every epoch (else once).")
    save_checkpoints: bool = Field(
        default=True, description="Per-epoch checkpoints, so an interrupted training resumes."
    )
    sparse_lm_head: bool | None = Field(
        default=None, description="LM head only on labelled positions (default: on when not on CUDA)."
    )


PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(
        lora_r=4,
        lora_alpha=0.1,
        lora_dropout=0.5,
        target_modules=["q_proj", "v_proj"],
        modules_to_save=["embed_tokens", "lm_head"],
        tie_trained_embeddings=False,  # two copies, as PEFT trained them for the released code (peft#2777)
        add_pad_token=True,
        learning_rate=1e-4,
        num_epochs=3,
        per_device_batch_size=8,
        grad_accum=1,
        max_length=2048,
        gradient_checkpointing=True,
        load_in_4bit=True,
        warmup_ratio=0.0,  # the released code's TrainingArguments set none: HF's default, no warm-up ([?])
    ),
    "cpu": TrainConfig(),
}


#: the paper's per-family exceptions to its preset (Table 14): model-name substring -> settings
PAPER_FAMILY_EXCEPTIONS: dict[str, dict[str, object]] = {
    "qwen": {"num_epochs": 1.0},
    "mistral": {"learning_rate": 5e-5},
}


def family_exceptions(name: str, model: str) -> dict[str, object]:
    """The per-family settings preset ``name`` applies for ``model`` (only ``paper`` has any)."""
    if name != "paper":
        return {}
    low = model.lower()
    for family, settings in PAPER_FAMILY_EXCEPTIONS.items():
        if family in low:
            return dict(settings)
    return {}


def preset(name: str, **overrides: object) -> TrainConfig:
    """A copy of preset ``name`` with its family exceptions for ``overrides['model']`` and then ``overrides``
    (``None`` values are ignored) applied and validated."""
    if name not in PRESETS:
        raise ClcaError(f"unknown training preset {name!r}.", fix=f"use one of: {', '.join(PRESETS)}.")
    data = PRESETS[name].model_dump()
    given = {k: v for k, v in overrides.items() if v is not None}
    data.update(family_exceptions(name, str(given.get("model", data["model"]))))
    data.update(given)
    return TrainConfig.model_validate(data)


def preset_defaults(field: str) -> str:
    """A field's default in every preset, for help texts: ``(default: x)`` or ``(default: cpu x, paper y)``."""
    values = {name: getattr(cfg, field) for name, cfg in PRESETS.items()}

    def show(v: object) -> str:
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    if len({show(v) for v in values.values()}) == 1:
        return f"(default: {show(next(iter(values.values())))})"
    return "(default: " + ", ".join(f"{k} {show(v)}" for k, v in sorted(values.items())) + ")"
