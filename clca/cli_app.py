"""The typer application object. Command modules in :mod:`clca.commands` register on it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from clca import settings

app = typer.Typer(
    name="clca",
    help="Cultural learning-based culture adaptation of language models (CLCA): generate, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List and pull the models clca knows by name.", no_args_is_help=True)
app.add_typer(models_app, name="models")

#: ``debug`` (set by ``--debug``; the entry point shows tracebacks when True) and ``data_dir_from_env`` (the
#: global ``--data-dir`` value came from ``CLCA_DATA_DIR``, not from the command line)
STATE: dict[str, bool] = {"debug": False, "data_dir_from_env": False}


def _print_version(value: bool) -> None:
    if value:
        from clca import __version__

        typer.echo(f"clca {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar=settings.DATA_ENV,
            help="The clca data bundle (default: ../shared/data beside the project when it exists).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the clca version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    STATE["debug"] = debug
    from_env = data_dir is not None and os.environ.get(settings.DATA_ENV) == str(data_dir)
    STATE["data_dir_from_env"] = from_env
    settings.set_data_dir(data_dir, source="--data-dir" if data_dir is not None else "")
    if from_env:
        settings.set_data_dir(data_dir, source=f"the {settings.DATA_ENV} environment variable")
