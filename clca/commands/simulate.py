"""``clca simulate``: two-agent role-play of the run's scenarios (see :mod:`clca.roleplay`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clca.cli_app import app


@app.command("simulate")
def simulate_cmd(
    run: Annotated[Path, typer.Option("--run", help="Run directory holding scenarios.jsonl.")] = Path(
        "runs/demo"
    ),
    model: Annotated[
        str, typer.Option("--model", help="Model spec that plays both characters.")
    ] = "embedded:smollm2-135m",
    samples: Annotated[int, typer.Option(help="Episodes per scenario (distinct seeds).")] = 2,
    max_turns: Annotated[int, typer.Option(help="Turn cap (one turn = one agent's act).")] = 12,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per agent output.")] = 160,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 0.7,
    batch_size: Annotated[
        int | None, typer.Option(help="Chats per backend call (default: the whole round in one call).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Base seed; sample s uses seed*1000+s.")] = 0,
    max_failures: Annotated[
        int, typer.Option("--max-failures", help="Stop after this many unparseable outputs in a row.")
    ] = 2,
    culture: Annotated[
        list[str] | None, typer.Option("--culture", help="Only scenarios of this culture (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N scenarios (after --culture).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the LLM call cache.")] = False,
) -> None:
    """Role-play every scenario of RUN/scenarios.jsonl into RUN/episodes.jsonl (resumable, lock-step batched)."""
    from clca.llm.registry import load_backend
    from clca.roleplay import EPISODES_FILE, load_scenarios, simulate

    load_scenarios(run)  # fail on a missing scenarios file before loading the model
    console = Console(stderr=True)
    backend = load_backend(model, cache=not no_cache, batch_size=batch_size)
    try:
        summary = simulate(
            backend,
            run,
            samples=samples,
            max_turns=max_turns,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            max_consecutive_failures=max_failures,
            cultures=culture,
            limit=limit,
            batch_size=batch_size,
            progress=True,
        )
    finally:
        backend.close()
    table = Table(title=f"clca simulate → {run / EPISODES_FILE}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("episodes planned", str(summary.episodes_planned))
    table.add_row("already done (skipped)", str(summary.already_done))
    table.add_row("resumed from checkpoint", str(summary.resumed))
    table.add_row("finished now", str(summary.finished))
    for reason, n in sorted(summary.stop_reasons.items()):
        table.add_row(f"  stop: {reason}", str(n))
    for cult, n in sorted(summary.per_culture.items()):
        table.add_row(f"  culture: {cult}", str(n))
    table.add_row("average turns", f"{summary.avg_turns:.2f}")
    table.add_row("rounds / backend calls", f"{summary.rounds} / {summary.generate_calls}")
    table.add_row("unparseable outputs", f"{summary.parse_failures} of {summary.outputs}")
    table.add_row("time", f"{summary.elapsed_s:.1f} s")
    console.print(table)
