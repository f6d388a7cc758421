"""Entry point of the ``clca`` command: imports the command modules in pipeline order, turns errors into one line."""

from __future__ import annotations

import importlib
import sys

import typer

try:  # typer >= 0.20 vendors click; its exceptions are not the ``click`` package's
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click import ClickException, UsageError  # type: ignore[assignment]

from clca import settings
from clca.cli_app import STATE, app
from clca.errors import EXIT_INTERRUPTED, ClcaError

#: command modules, in the order ``clca --help`` lists their commands (the pipeline's order)
COMMAND_MODULES = ("run", "stages", "translate", "eval", "report", "models", "data_bundle")
for _mod in COMMAND_MODULES:
    importlib.import_module(f"clca.commands.{_mod}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. User errors print one line on stderr and exit with their code (2 bad input, 3 a model or
    server failed during the work, 130 after Ctrl-C; :mod:`clca.errors`); ``--debug`` re-raises them. The process-wide
    data-directory setting of ``--data-dir`` is restored afterwards (``main`` may be called several times)."""
    saved = settings._data_dir_override
    try:
        return _main(argv)
    finally:
        settings._data_dir_override = saved


def _main(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, standalone_mode=False, prog_name="clca")
        if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C inside a command into this return value
            raise KeyboardInterrupt
        if isinstance(result, int):  # and `raise typer.Exit(code)` into the code
            return result
    except typer.Exit as exc:
        return int(exc.exit_code)
    except UsageError as exc:  # a bad option or value: one line, like every other user error
        where = f" (clca {exc.ctx.info_name})" if exc.ctx is not None and exc.ctx.parent is not None else ""
        msg = exc.format_message().replace("Value error, ", "")
        print(f"error: {msg}{where} Fix: see --help.", file=sys.stderr)
        return 2
    except ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("Interrupted; rerun the same command to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ClcaError as exc:
        if STATE["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def entry() -> None:
    sys.exit(main())


__all__ = ["app", "entry", "main", "typer"]
