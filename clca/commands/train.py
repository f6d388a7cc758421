"""``clca mix`` (build the multi-task training mix) and ``clca train`` (train a culture's LoRA adapter)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clca.cli_app import app
from clca.errors import ClcaError


def _ablation(value: str | None) -> str | None:
    if value in (None, "", "none"):
        return None
    if value not in ("dialogue_only", "intent_only"):
        raise ClcaError(
            f"unknown ablation {value!r}.", fix="use dialogue_only or intent_only (or leave it out)."
        )
    return value


@app.command("mix")
def mix_cmd(
    run: Annotated[Path, typer.Option("--run", help="Run directory with episodes, judgements and intents.")],
    culture: Annotated[str, typer.Option("--culture", help="Culture (country name), e.g. China.")],
    ablation: Annotated[
        str | None, typer.Option(help="Leave a part out: dialogue_only or intent_only (default: full mix).")
    ] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of episodes held out for validation.")] = 0.1,
    no_judge: Annotated[
        bool, typer.Option("--no-judge", help="Use every finished episode, not only those the judge kept.")
    ] = False,
    ratio_p1: Annotated[float, typer.Option(help="Share of the person-1 dialogue part.")] = 1.0,
    ratio_p2: Annotated[float, typer.Option(help="Share of the person-2 dialogue part.")] = 1.0,
    ratio_intent: Annotated[float, typer.Option(help="Share of the intent part.")] = 1.0,
    max_examples: Annotated[int | None, typer.Option(help="Cap on training examples.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the resampling.")] = 0,
) -> None:
    """Build the CLCA training mix (both speakers' views + intents) as a Hugging Face dataset on disk."""
    from pydantic import ValidationError

    from clca.training.mix import MixConfig, build_mix

    try:
        cfg = MixConfig(
            ratio_dialogue_p1=ratio_p1,
            ratio_dialogue_p2=ratio_p2,
            ratio_intent=ratio_intent,
            ablation=_ablation(ablation),  # type: ignore[arg-type]
            val_fraction=val_fraction,
            require_judge=not no_judge,
            seed=seed,
            max_examples=max_examples,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ClcaError(
            f"invalid mix option: {err.get('msg')}.", fix="check the ratios and --val-fraction."
        ) from None
    res = build_mix(run, culture, cfg)
    table = Table(title=f"Training mix for {res.culture}: {res.path}")
    table.add_column("part")
    table.add_column("available", justify="right")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    for task in ("dialogue_p1", "dialogue_p2", "intent"):
        if task in res.train_by_task:
            table.add_row(
                task,
                str(res.available_by_task.get(task, 0)),
                str(res.train_by_task.get(task, 0)),
                str(res.validation_by_task.get(task, 0)),
            )
    console = Console()
    console.print(table)
    console.print(
        f"episodes: {res.episodes_used} used of {res.episodes_total} "
        f"({res.episodes_train} train / {res.episodes_validation} validation); excluded: {res.excluded or 'none'}"
    )


@app.command("train")
def train_cmd(
    run: Annotated[Path, typer.Option("--run", help="Run directory holding mix/<culture>.")],
    culture: Annotated[str, typer.Option("--culture", help="Culture (country name), e.g. China.")],
    model: Annotated[str | None, typer.Option(help="Base model spec (default: the preset's).")] = None,
    preset: Annotated[str, typer.Option(help="paper (GPU, QLoRA) or cpu.")] = "cpu",
    ablation: Annotated[str | None, typer.Option(help="Train on the ablation mix of that name.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Training epochs.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Per-device batch size.")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Gradient accumulation steps.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per example.")] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimiser steps.")] = None,
    four_bit: Annotated[
        bool | None, typer.Option("--4bit/--no-4bit", help="QLoRA 4-bit (default: the preset's).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
    build_mix_if_missing: Annotated[
        bool,
        typer.Option("--build-mix/--no-build-mix", help="Build the default mix first when it is missing."),
    ] = True,
) -> None:
    """Train the culture's LoRA adapter into RUN/adapters/<culture>; a finished adapter is not retrained."""
    from pydantic import ValidationError

    from clca.culture import resolve_country
    from clca.training.mix import MixConfig, build_mix, mix_dir
    from clca.training.presets import preset as make_preset
    from clca.training.train import adapter_dir, train_adapter

    abl = _ablation(ablation)
    country = resolve_country(culture)
    try:
        cfg = make_preset(
            preset,
            model=model,
            num_epochs=epochs,
            learning_rate=lr,
            per_device_batch_size=batch_size,
            grad_accum=grad_accum,
            max_length=max_length,
            lora_r=lora_r,
            max_steps=max_steps,
            load_in_4bit=four_bit,
            seed=seed,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise ClcaError(
            f"invalid training option {loc}: {err.get('msg')}.", fix="check the option values."
        ) from None
    mdir = mix_dir(run, country, abl)
    console = Console()
    if not (mdir / "dataset_dict.json").exists():
        if not build_mix_if_missing:
            raise ClcaError(
                f"no training mix at {mdir}.", fix=f"run `clca mix --run {run} --culture {country!r}`."
            )
        res_mix = build_mix(run, country, MixConfig(ablation=abl))  # type: ignore[arg-type]
        console.print(f"built the default mix: {res_mix.train_examples} training examples at {res_mix.path}")
    out = adapter_dir(run, country, abl)
    res = train_adapter(mdir, out, cfg, progress=True)
    table = Table(
        title=f"Adapter for {country}: {out}" + (" (already trained, skipped)" if res.skipped else "")
    )
    for col in ("steps", "train loss", "eval loss", "tokens/s", "peak RSS MB", "minutes"):
        table.add_column(col, justify="right")

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    table.add_row(
        str(res.steps),
        fmt(res.train_loss),
        fmt(res.eval_loss),
        f"{res.tokens_per_s:.0f}",
        f"{res.peak_rss_mb:.0f}",
        f"{res.train_runtime_s / 60:.1f}",
    )
    console.print(table)
    console.print(f"use it as: --model '{res.base_model}+adapter={out}'")
