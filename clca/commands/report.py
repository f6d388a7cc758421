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
