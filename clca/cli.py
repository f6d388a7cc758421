"""Entry point of the ``clca`` command: imports every command module, turns errors into one line."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

try:  # typer >= 0.20 vendors click; its exceptions are not the ``click`` package's
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on top of click
    from click import ClickException  # type: ignore[assignment]

import clca.commands
from clca.cli_app import STATE, app
from clca.errors import ClcaError

for _mod in pkgutil.iter_modules(clca.commands.__path__):
    importlib.import_module(f"clca.commands.{_mod.name}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. User errors print one line on stderr and exit 2; ``--debug`` re-raises them."""
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except ClickException as exc:
        exc.show()
        return exc.exit_code
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("Interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130
    except ClcaError as exc:
        if STATE["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def entry() -> None:
    sys.exit(main())


__all__ = ["app", "entry", "main", "typer"]
