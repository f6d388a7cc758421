"""``clca report --run DIR``: rebuild a run's HTML report from what the run directory holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from clca.cli_app import app


@app.command("report")
def report_cmd(
    run: Annotated[Path, typer.Option("--run", help="The run directory of a `clca run`.")],
) -> None:
    """(Re)build run_dir/report/index.html from what the run directory holds."""
    from clca.errors import ClcaError
    from clca.report.pipeline_report import build_report
    from clca.rundir import RunDir

    if not run.is_dir():
        raise ClcaError(f"run directory {run} does not exist.", fix="pass the run_dir of a `clca run`.")
    page = build_report(RunDir(run))
    Console().print(f"report: {page}")


@app.command("export")
def export_cmd(
    run: Annotated[Path, typer.Option("--run", help="The run directory of a `clca run`.")],
    to: Annotated[Path, typer.Option("--to", help="Output folder (adapters/<name>/, datasets/<name>/).")],
) -> None:
    """Write every adapter (with a model card, portable base id) and training mix (Parquet + dataset card) of a
    run as folders that `hf upload` / `push_to_hub` accept as they are (no network needed)."""
    from clca.errors import ClcaError
    from clca.export import export_run

    if not run.is_dir():
        raise ClcaError(f"run directory {run} does not exist.", fix="pass the run_dir of a `clca run`.")
    written = export_run(run, to)
    Console().print(
        f"exported {len(written['adapters'])} adapters and {len(written['datasets'])} training mixes to {to}"
    )


@app.command("merge")
def merge_cmd(
    adapter: Annotated[Path, typer.Option("--adapter", help="An adapter folder (run_dir/adapters/<name>).")],
    to: Annotated[Path, typer.Option("--to", help="Where to write the merged model folder.")],
    base: Annotated[
        str | None, typer.Option("--base", help="The base model spec (default: from train_result.json).")
    ] = None,
) -> None:
    """Fold a LoRA adapter into its base model and save a full model folder (e.g. for vLLM, which cannot serve
    adapters with fully trained embeddings and LM head as LoRA)."""
    from clca.export import merge_adapter

    out = merge_adapter(adapter, to, base)
    Console().print(f"merged model: {out}")
