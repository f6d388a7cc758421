"""``clca run CONFIG`` (the whole pipeline, resumable) and ``clca report --run DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clca import settings
from clca.cli_app import app


@app.command("run")
def run_cmd(
    config: Annotated[Path, typer.Argument(help="Run config YAML, e.g. configs/demo.yaml.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config key: --set simulate.samples=1 (repeatable; beats the file)."
        ),
    ] = None,
    force_stage: Annotated[
        list[str] | None,
        typer.Option(
            "--force-stage",
            help="Rerun this stage and every later one (old outputs move to run_dir/superseded/). Repeatable.",
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only these stages (e.g. scenarios, simulate, eval)."),
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Run scenarios → simulate → judge → intents → stats → mix + train → eval → report; resumes done stages."""
    from clca.config import load_config
    from clca.pipeline import run_pipeline

    overrides = list(set_ or [])
    explicit = settings._data_dir_override
    if explicit is not None:  # the global --data-dir is a CLI override like --set data_dir=...
        overrides.append(f"data_dir={explicit}")
    cfg = load_config(config, overrides)
    console = Console(stderr=True)

    def on_stage(name: str, event: str) -> None:
        if event == "skip":
            console.print(f"[dim]✓ {name}: done earlier, skipped[/dim]")
        elif event == "start":
            console.print(f"[bold]▶ {name}[/bold]")

    result = run_pipeline(
        cfg,
        progress=not no_progress,
        force_stages=list(force_stage or []),
        only=list(only) if only else None,
        on_stage=on_stage,
    )
    table = Table(title=f"clca run — {cfg.run_dir}")
    for col in ("stage", "status", "seconds", "counts"):
        table.add_column(col)
    for st in result.stages:
        counts = ", ".join(f"{k}={v}" for k, v in st["counts"].items())
        secs = "" if st["duration_s"] is None else f"{st['duration_s']:.1f}"
        table.add_row(st["stage"], st["status"], secs, counts[:80])
    Console().print(table)
    if result.report is not None:
        Console().print(f"report: {result.report}")


@app.command("report")
def report_cmd(
    run: Annotated[Path, typer.Option("--run", help="The run directory of a `clca run`.")],
) -> None:
    """(Re)build run_dir/report/index.html from what the run directory holds."""
    from clca.errors import ClcaError
    from clca.report.pipeline_report import build_report

    if not run.is_dir():
        raise ClcaError(f"run directory {run} does not exist.", fix="pass the run_dir of a `clca run`.")
    page = build_report(run)
    Console().print(f"report: {page}")
