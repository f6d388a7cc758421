"""``clca scenarios | judge | intents | stats``: the cultural-learning data stages around role-play."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clca.cli_app import app
from clca.errors import DataError
from clca.llm.base import Backend

RunOpt = Annotated[Path, typer.Option("--run", help="Run directory.")]
ModelOpt = Annotated[str, typer.Option("--model", help="Model spec, e.g. embedded:qwen2.5-coder-0.5b.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not use the LLM call cache.")]


def _backend(spec: str, no_cache: bool) -> Backend:
    from clca.llm.registry import load_backend

    return load_backend(spec, cache=not no_cache)


def _summary_table(title: str, summary: Any) -> None:
    console = Console(stderr=True)
    console.print(f"[bold]{title}[/bold]")
    table = Table()
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in summary.model_dump().items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@app.command("scenarios")
def scenarios_cmd(
    run: RunOpt = Path("runs/demo"),
    cultures: Annotated[
        str, typer.Option("--cultures", help='Comma-separated cultures, e.g. "Great Britain,China".')
    ] = "Great Britain,China,Germany,Japan",
    per_culture: Annotated[int, typer.Option("--per-culture", help="Seed scenarios per culture.")] = 20,
    model: ModelOpt = "embedded:qwen2.5-coder-0.5b",
    seed: Annotated[int, typer.Option(help="Seed for picking seeds and sampling.")] = 0,
    max_retries: Annotated[int, typer.Option("--max-retries", help="Repair attempts per scenario.")] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Scenarios per backend batch.")] = 64,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Tokens per adapted scenario.")
    ] = 1024,
    names_first: Annotated[
        bool,
        typer.Option(
            "--names-first/--one-step",
            help="Ask for the two new names first, then adapt the renamed scenario (default; small models "
            "otherwise copy the source names), or everything in one prompt as in the paper.",
        ),
    ] = True,
    no_cache: NoCacheOpt = False,
) -> None:
    """Adapt Sotopia seed scenarios to each culture into RUN/scenarios.jsonl (resumable)."""
    from clca.culture import resolve_country
    from clca.scenarios import adapt_scenarios

    names = [resolve_country(c.strip()) for c in cultures.split(",") if c.strip()]
    if not names:
        raise DataError("--cultures is empty.", fix='pass e.g. --cultures "Great Britain,China".')
    if per_culture < 1:
        raise DataError(f"--per-culture {per_culture} must be at least 1.", fix="pass --per-culture 20.")
    backend = _backend(model, no_cache)
    try:
        s = adapt_scenarios(
            backend,
            run,
            names,
            per_culture,
            seed=seed,
            max_retries=max_retries,
            batch_size=batch_size,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            names_first=names_first,
        )
    finally:
        backend.close()
    _summary_table(f"clca scenarios → {run / 'scenarios.jsonl'}", s)


@app.command("judge")
def judge_cmd(
    run: RunOpt = Path("runs/demo"),
    model: ModelOpt = "embedded:qwen2.5-coder-0.5b",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Episodes per backend batch.")] = 32,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens per judge answer.")] = 200,
    drop_on_error: Annotated[
        bool, typer.Option("--drop-on-error", help="Drop episodes whose judgement cannot be parsed.")
    ] = False,
    no_cache: NoCacheOpt = False,
) -> None:
    """Two-step judge of RUN/episodes.jsonl into RUN/judgements.jsonl, with the paper's filter rule."""
    from clca.judge import EPISODES_FILE, FilterRule, judge_episodes

    if not (run / EPISODES_FILE).exists():
        raise DataError(
            f"{run / EPISODES_FILE} does not exist.", fix=f"run `clca simulate --run {run}` first."
        )
    backend = _backend(model, no_cache)
    try:
        s = judge_episodes(
            backend,
            run,
            rule=FilterRule(keep_on_error=not drop_on_error),
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
        )
    finally:
        backend.close()
    _summary_table(f"clca judge → {run / 'judgements.jsonl'}", s)


@app.command("intents")
def intents_cmd(
    run: RunOpt = Path("runs/demo"),
    model: ModelOpt = "embedded:qwen2.5-coder-0.5b",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Utterances per backend batch.")] = 64,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens per intent.")] = 96,
    no_cache: NoCacheOpt = False,
) -> None:
    """Label the intent of every utterance of the kept episodes into RUN/intents.jsonl (resumable)."""
    from clca.intents import label_intents
    from clca.judge import JUDGEMENTS_FILE

    if not (run / JUDGEMENTS_FILE).exists():
        raise DataError(
            f"{run / JUDGEMENTS_FILE} does not exist.", fix=f"run `clca judge --run {run}` first."
        )
    backend = _backend(model, no_cache)
    try:
        s = label_intents(backend, run, batch_size=batch_size, max_new_tokens=max_new_tokens)
    finally:
        backend.close()
    _summary_table(f"clca intents → {run / 'intents.jsonl'}", s)


@app.command("stats")
def stats_cmd(run: RunOpt = Path("runs/demo")) -> None:
    """Per-culture statistics of a run (Table 9 style) and the WVS leakage check; writes RUN/stats.json."""
    from clca.stats import TABLE_COLUMNS, compute_stats

    if not run.is_dir():
        raise DataError(
            f"run directory {run} does not exist.", fix="pass --run with an existing run directory."
        )
    st = compute_stats(run)
    console = Console()
    if not console.is_terminal:  # files and pipes: wide enough for every column
        console = Console(width=max(console.width, 160))
    table = Table(title=f"clca stats → {run / 'stats.json'}")
    table.add_column("culture", no_wrap=True)
    for _, header in TABLE_COLUMNS:
        table.add_column(header, justify="right")
    rows = [*st["cultures"].items(), ("total", st["total"])]
    for name, row in rows:
        table.add_row(name, *("–" if row[k] is None else str(row[k]) for k, _ in TABLE_COLUMNS))
    console.print(table)
    if st["leakage"]["flagged_episodes"]:
        Console(stderr=True).print(
            f"[yellow]{len(st['leakage']['flagged_episodes'])} episode(s) overlap WVS question wording "
            f"(see {run / 'leakage.jsonl'}); the training mix excludes them.[/yellow]"
        )
