"""The CLI entry point: version, unknown commands, one-line user errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from clca.cli import main
from clca.cli_app import app
from clca.errors import DataError


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("clca ")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_user_error_is_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    @app.command("_raise-for-test", hidden=True)
    def _raise() -> None:
        raise DataError("file x.jsonl, line 3: bad record.", fix="delete that line.")

    assert main(["_raise-for-test"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: file x.jsonl, line 3: bad record. Fix: delete that line."
    assert "Traceback" not in err


def test_missing_data_dir_is_reported(tmp_path: Path) -> None:
    from clca.settings import data_dir, set_data_dir

    set_data_dir(tmp_path / "nowhere")
    try:
        with pytest.raises(DataError, match="does not exist"):
            data_dir()
    finally:
        set_data_dir(None)
