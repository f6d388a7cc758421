"""The stage commands, in pipeline order: ``clca scenarios | simulate | judge | intents | stats | mix | train``.

Each command's settings are its stage config's fields (each stage's ``config`` module), generated as options by
:func:`clca.cli_options.config_options`, so they have the same names, defaults and ranges as the run config's
section. Every writing command holds the run directory's lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from clca import settings
from clca.cli_app import app
from clca.cli_options import config_options
from clca.errors import ClcaError, DataError
from clca.intents.config import IntentsConfig
from clca.judge.config import JudgeConfig
from clca.llm.base import Backend
from clca.options import DEFAULT_ACTOR, DEFAULT_STUDENT, DEFAULT_TEACHER, CommonOptions
from clca.records import GENERIC
from clca.roleplay.config import SimulateConfig
from clca.rundir import CONTROL, RunDir
from clca.scenarios.config import ScenariosConfig
from clca.training.config import Ablation, MixConfig
from clca.training.presets import TrainConfig, preset_defaults

RunOpt = Annotated[Path, typer.Option("--run", help="Run directory.")]

#: each stage's model role default, as in the run config's ``models:`` section
ROLE_DEFAULT = {
    "scenarios": DEFAULT_TEACHER,
    "simulate": DEFAULT_ACTOR,
    "judge": DEFAULT_TEACHER,
    "intents": DEFAULT_TEACHER,
    "train": DEFAULT_STUDENT,
}
LLM_OPTIONS = ("model", "batch_size", "seed", "cache", "no_cache", "progress", "data_dir")


def shared(stage: str, *fields: str) -> Callable[[Any], Any]:
    """The shared options (:class:`CommonOptions`) ``fields`` of ``stage``'s command, as ``opts``."""
    defaults = {"model": ROLE_DEFAULT[stage]} if stage in ROLE_DEFAULT else {}
    return config_options(CommonOptions, include=fields or LLM_OPTIONS, defaults=defaults, param="opts")


def use_data_dir(opts: CommonOptions) -> None:
    """Make ``--data-dir`` (when given) the data directory: an option beats ``CLCA_DATA_DIR``."""
    if opts.data_dir is not None:
        settings.set_data_dir(opts.data_dir, source="--data-dir")


@contextmanager
def _stage_backend(run: Path, opts: CommonOptions, what: str) -> Iterator[Backend]:
    """Lock the run directory, then load the model (checked before any model load) and close it afterwards."""
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend
    from clca.llm.spec import parse_spec

    parse_spec(opts.model)  # a bad spec fails before the run directory is touched
    rd = RunDir(run)
    cache = opts.call_cache()
    with rd.lock(what):
        backend = load_backend(
            opts.model,
            cache=CallCache(cache) if isinstance(cache, Path) else cache,
            batch_size=opts.batch_size,
        )
        try:
            yield backend
        finally:
            used = backend.usage()
            backend.close()
            if used:
                Console(stderr=True).print("llm: " + ", ".join(f"{k}={v}" for k, v in used.items()))


def summary_table(title: str, summary: BaseModel) -> None:
    """Print a stage summary (nested counts flattened) as a two-column table on stderr."""
    from clca.pipeline import counts_of

    console = Console(stderr=True)
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in counts_of(summary).items():
        table.add_row(key.replace("_", " "), str(value))
    for key, value in summary:
        if isinstance(value, float):
            table.add_row(key.replace("_", " "), f"{value:.2f}")
    console.print(table)


def _cultures(text: str) -> list[str]:
    from clca.culture import resolve_country

    names = [resolve_country(c.strip()) for c in text.split(",") if c.strip()]
    if not names:
        raise DataError("--cultures is empty.", fix='pass e.g. --cultures "Great Britain,China".')
    return list(dict.fromkeys(names))


@app.command("scenarios")
@config_options(ScenariosConfig)
@shared("scenarios")
def scenarios_cmd(
    cfg: ScenariosConfig,
    opts: CommonOptions,
    run: RunOpt = Path("runs/demo"),
    cultures: Annotated[
        str, typer.Option("--cultures", help='Comma-separated cultures, e.g. "Great Britain,China".')
    ] = "Great Britain,China,Germany,Japan",
) -> None:
    """Make culture-adapted scenarios into RUN/scenarios.jsonl (resumable)."""
    from clca.scenarios import make_scenarios

    use_data_dir(opts)
    names = _cultures(cultures)
    rd = RunDir(run)
    kw = {"cultures": names, "seed": opts.seed, "batch_size": opts.batch_size, "progress": opts.progress}
    if cfg.source == "seeds":
        with rd.lock("clca scenarios"):
            s = make_scenarios(None, rd, cfg, **kw)  # type: ignore[arg-type]
    else:
        with _stage_backend(run, opts, "clca scenarios") as backend:
            s = make_scenarios(backend, rd, cfg, **kw)  # type: ignore[arg-type]
    summary_table(f"clca scenarios → {rd.scenarios_file}", s)


@app.command("simulate")
@config_options(SimulateConfig)
@shared("simulate")
def simulate_cmd(
    cfg: SimulateConfig,
    opts: CommonOptions,
    run: RunOpt = Path("runs/demo"),
    culture: Annotated[
        list[str] | None,
        typer.Option(
            "--culture", help="Only scenarios of these cultures (comma-separated, or repeat the option)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N scenarios (after --culture).")
    ] = None,
) -> None:
    """Role-play every scenario of RUN/scenarios.jsonl into RUN/episodes.jsonl (resumable, lock-step batched)."""
    from clca.roleplay import simulate
    from clca.roleplay.simulate import select_scenarios

    use_data_dir(opts)
    rd = RunDir(run)
    cultures = [c.strip() for text in culture or [] for c in text.split(",") if c.strip()] or None
    select_scenarios(
        rd.require_scenarios(), cultures, limit, rd.scenarios_file
    )  # fail before loading a model
    with _stage_backend(run, opts, "clca simulate") as backend:
        summary = simulate(
            backend,
            rd,
            cfg,
            seed=opts.seed,
            cultures=cultures,
            limit=limit,
            batch_size=opts.batch_size,
            progress=opts.progress,
        )
    summary_table(f"clca simulate → {rd.episodes_file}", summary)


@app.command("judge")
@config_options(JudgeConfig)
@shared("judge")
def judge_cmd(cfg: JudgeConfig, opts: CommonOptions, run: RunOpt = Path("runs/demo")) -> None:
    """Judge RUN/episodes.jsonl into RUN/judgements.jsonl with the paper's rubric and filter rule."""
    from clca.judge import judge_episodes

    use_data_dir(opts)
    rd = RunDir(run)
    rd.require(rd.episodes_file)
    with _stage_backend(run, opts, "clca judge") as backend:
        s = judge_episodes(
            backend, rd, cfg, batch_size=opts.batch_size, progress=opts.progress, seed=opts.seed
        )
    summary_table(f"clca judge → {rd.judgements_file}", s)


@app.command("intents")
@config_options(IntentsConfig, exclude=("enabled",))
@shared("intents")
def intents_cmd(cfg: IntentsConfig, opts: CommonOptions, run: RunOpt = Path("runs/demo")) -> None:
    """Label the intent of every utterance of the kept episodes into RUN/intents.jsonl (resumable)."""
    from clca.intents import label_intents

    use_data_dir(opts)
    rd = RunDir(run)
    rd.require(rd.judgements_file)
    with _stage_backend(run, opts, "clca intents") as backend:
        s = label_intents(
            backend, rd, cfg, batch_size=opts.batch_size, progress=opts.progress, seed=opts.seed
        )
    summary_table(f"clca intents → {rd.intents_file}", s)


@app.command("stats")
@shared("stats", "data_dir")
def stats_cmd(opts: CommonOptions, run: RunOpt = Path("runs/demo")) -> None:
    """Per-culture statistics of a run (Table 9 style) and the WVS leakage check; writes RUN/stats.json."""
    from clca.stats import TABLE_COLUMNS, compute_stats

    use_data_dir(opts)
    rd = RunDir(run)
    if not run.is_dir():
        raise DataError(
            f"run directory {run} does not exist.", fix="pass --run with an existing run directory."
        )
    with rd.lock("clca stats"):
        st = compute_stats(rd)
    console = Console()
    if not console.is_terminal:  # files and pipes: wide enough for every column
        console = Console(width=max(console.width, 160))
    table = Table(title=f"clca stats → {rd.stats_file}")
    table.add_column("culture", no_wrap=True)
    for _, header in TABLE_COLUMNS:
        table.add_column(header, justify="right")
    for name, row in [*st.cultures.items(), ("total", st.total)]:
        values = (getattr(row, k) for k, _ in TABLE_COLUMNS)
        table.add_row(name, *("–" if v is None else str(v) for v in values))
    console.print(table)
    if st.leakage.flagged_episodes:
        Console(stderr=True).print(
            f"[yellow]{len(st.leakage.flagged_episodes)} episode(s) overlap WVS question wording "
            f"(see {rd.leakage_file}); the training mix excludes them.[/yellow]"
        )


@app.command("mix")
@config_options(MixConfig)
@shared("mix", "seed", "data_dir")
def mix_cmd(
    cfg: MixConfig,
    opts: CommonOptions,
    run: RunOpt = Path("runs/demo"),
    culture: Annotated[str, typer.Option("--culture", help="Culture (country name), e.g. China.")] = "China",
) -> None:
    """Build the CLCA training mix (both speakers' views + intents) as a Hugging Face dataset on disk."""
    from clca.culture import resolve_country
    from clca.training.mix import TASKS, build_mix

    use_data_dir(opts)
    rd = RunDir(run)
    culture = resolve_country(culture)  # bad input fails before the run directory is touched
    rd.require(rd.episodes_file)
    if cfg.require_judge and not rd.judgements_file.exists():
        raise DataError(
            f"{rd.judgements_file} is missing, but the mix uses only episodes the judge kept.",
            fix="run `clca judge` first, or build the mix without the judge filter (--no-require-judge).",
        )
    with rd.lock("clca mix"):
        res = build_mix(rd, culture, cfg, seed=opts.seed)
    table = Table(title=f"Training mix for {res.culture}: {res.path}")
    for col in ("part", "available", "train", "validation"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for task in TASKS:
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


def _quiet_replica() -> None:
    """Silence a training process other than the first (warnings, library logs and progress bars): its output
    would repeat rank 0's line for line."""
    import warnings

    import datasets
    import transformers

    warnings.simplefilter("ignore")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()


@app.command("train")
@config_options(
    TrainConfig, exclude=("model", "seed"), all_optional=True, param="overrides", help_extra=preset_defaults
)
@shared("train", "model", "seed", "progress", "data_dir")
def train_cmd(
    overrides: dict[str, Any],
    opts: CommonOptions,
    run: RunOpt = Path("runs/demo"),
    culture: Annotated[
        str, typer.Option("--culture", help="Culture (country name), e.g. China; no-culture: the control.")
    ] = "China",
    preset: Annotated[
        Literal["cpu", "paper"], typer.Option(help="Training preset: paper (GPU, QLoRA) or cpu.")
    ] = "cpu",
    ablation: Annotated[Ablation | None, typer.Option(help="Train on the mix of this ablation.")] = None,
    build_mix_if_missing: Annotated[
        bool,
        typer.Option("--build-mix/--no-build-mix", help="Build the default mix first when it is missing."),
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Adapter folder (default: RUN/adapters/<culture>[--<ablation>]; the pipeline adds --seed<k>).",
        ),
    ] = None,
) -> None:
    """Train the culture's LoRA adapter into RUN/adapters/<culture>; a finished adapter is not retrained.

    Every TrainConfig field is an option (its default is the preset's value: shown per preset where they
    differ). `python -m clca.training.train` (for `accelerate launch`) takes the same options."""
    from pydantic import ValidationError

    from clca.cli_options import option_error
    from clca.culture import resolve_country
    from clca.training.config import TrainSection
    from clca.training.mix import build_mix
    from clca.training.train import PROCESSES_ENV, train_adapter

    use_data_dir(opts)
    try:
        section = TrainSection(preset=preset, overrides=overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise option_error(exc) from None
    cfg = section.resolve(model=opts.model, seed=opts.seed)
    abl = ablation
    control = culture.strip().lower() in (CONTROL, GENERIC)  # the no-culture control's mix
    country = GENERIC if control else resolve_country(culture)
    rd = RunDir(run)
    mdir = rd.mix(country, abl)
    console = Console()
    # under `accelerate launch` every process runs this command: rank 0 holds the run directory's lock and alone
    # writes and prints; the mix must exist before the processes start (they would race to build it)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    expected = os.environ.get(PROCESSES_ENV)
    if expected is not None and int(expected) != world:
        raise ClcaError(
            f"clca train was launched for {expected} processes but runs in {world}.",
            fix="launch with `accelerate launch --multi_gpu --num_processes N` (`--cpu` starts one process).",
        )
    if rank > 0:
        _quiet_replica()
    if world > 1 and not mdir.exists():
        raise DataError(
            f"no training mix at {mdir.path}, and {world} processes were launched.",
            fix=f"build it first: `clca mix --run {run} --culture {country!r}`, then launch the training.",
        )
    out = out or rd.adapter_dir(country, abl)
    with rd.unit_lock(f"train:{out.name}", "clca train") if rank == 0 else contextlib.nullcontext():
        if not mdir.exists():
            if control or not build_mix_if_missing:
                raise DataError(
                    f"no training mix at {mdir}.", fix=f"run `clca mix --run {run} --culture {country!r}`."
                )
            res_mix = build_mix(rd, country, MixConfig(ablation=abl), seed=cfg.seed)
            console.print(
                f"built the default mix: {res_mix.train_examples} training examples at {res_mix.path}"
            )
        res = train_adapter(mdir.path, out, cfg, progress=opts.progress)
    if rank > 0:
        return
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
