"""``clca run CONFIG``: the whole pipeline, resumable; ``--plan`` shows what it would do without loading a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
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
    plan_only: Annotated[
        bool,
        typer.Option("--plan", help="Show the resolved config and what each stage would do; load no model."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --plan: print the plan as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Run scenarios → simulate → judge → intents → stats → mix + train → eval → report; resumes done stages."""
    from clca.config import load_config
    from clca.pipeline import run_pipeline

    overrides = list(set_ or [])
    explicit = settings.data_dir_override()
    if explicit is not None:  # the global --data-dir is a CLI override like --set data_dir=...
        overrides.append(f"data_dir={explicit}")
    cfg = load_config(config, overrides)
    if plan_only:
        _print_plan(cfg, list(force_stage or []), as_json)
        return
    console = Console(stderr=True)

    def on_stage(name: str, event: str) -> None:
        if event == "note":
            console.print(f"[yellow]note: {name}[/yellow]")
        elif event == "skip":
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


def _print_plan(cfg: object, force: list[str], as_json: bool) -> None:
    from clca.config import RunConfig
    from clca.pipeline import plan, prepare
    from clca.settings import using_data_dir

    assert isinstance(cfg, RunConfig)
    with using_data_dir(cfg.data_dir, source="data_dir in the run config"):
        cfg, notes = prepare(cfg)
        rows = plan(cfg, set(force))
    if as_json:
        doc = {"config": cfg.dump(), "notes": notes, "stages": [r.model_dump() for r in rows]}
        typer.echo(json.dumps(doc, indent=2))
        return
    for note in notes:
        Console(stderr=True).print(f"[yellow]note: {note}[/yellow]")
    out = Console()
    out.print("[bold]Resolved config[/bold]")
    out.print(
        yaml.safe_dump(cfg.dump(), sort_keys=False, allow_unicode=True).rstrip(),
        markup=False,
        highlight=False,
    )
    table = Table(title=f"Plan for {cfg.run_dir}")
    for col in ("stage", "status", "settings", "would", "outputs"):
        table.add_column(col, overflow="fold")
    for r in rows:
        would = r.action + (f" (changed: {', '.join(r.changed)})" if r.changed else "")
        table.add_row(r.stage, r.status, r.settings_hash, would, ", ".join(r.outputs))
    out.print(table)
    refused = [r.stage for r in rows if r.action == "refused"]
    if refused:
        out.print(
            f"[yellow]refused: {', '.join(refused)}; `clca run` would stop there (see --force-stage).[/yellow]"
        )
