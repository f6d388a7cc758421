"""Every command line the documentation shows parses against the real CLI (issue "The user's path, not ours").

The command lines come from README.md and docs/*.md: the lines of fenced shell blocks (backslash continuations
joined, ``$`` prompts and ``#`` comments dropped, ``&&`` / ``||`` chains split) and inline code spans, each
starting with ``clca``, ``.venv/bin/clca``, ``python -m clca...`` or ``accelerate launch ... -m clca...``.
Documented placeholders are replaced by the plausible values of :data:`PLACEHOLDERS`. Each line is then parsed,
never run, and no model is loaded: through click's command tree (``make_context`` down the group chain), so an
unknown command or option, a missing argument and a value that does not convert (choices, ints, floats, ranges)
fail; then the options a pydantic config generated (``clca.cli_options.config_options``) are validated against
that config, as the command itself does before any work.

Two rules for inline spans, which name things in sentences: a span that is only a command path ("`clca run`
holds the lock") names the command, which must exist (its arguments are not asked for); a span that ends in an
option without its value ("a CSV you pass to `clca eval --survey`") names the option, which must exist.
A line that does not parse is fixed in the docs or listed in :data:`ALLOWED_FAILURES` with the reason; an entry
there that parses, or is gone from the docs, fails the test too.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import runpy
import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from clca.cli import app
from clca.cli_options import validate_options
from clca.errors import ClcaError

try:  # typer >= 0.20 vendors click (as in clca/cli.py)
    from typer._click.exceptions import BadOptionUsage, UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click import BadOptionUsage, UsageError  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: a placeholder the docs use -> the plausible value it is parsed with (matched as a whole word)
PLACEHOLDERS: dict[str, str] = {
    "<new file>": "runs/llm_cache.sqlite",  # clca run ... --set cache=<new file>
    "CONFIG": "configs/demo.yaml",  # clca run CONFIG
    "DIR|URL": "mirror/",  # clca data pull --mirror DIR|URL
    "KEY=PATH": "inglehart_welzel_2022=map.csv",  # clca data pull --source KEY=PATH
    "DIR": "runs/demo",  # clca eval --respondents DIR, clca data pull --to DIR
    "...": "runs/demo",  # clca run ... --set run_dir=...
}

#: (file, command line as the docs write it) -> why it may fail to parse. Keep this tiny.
ALLOWED_FAILURES: dict[tuple[str, str], str] = {}

#: ``python -m MODULE`` -> the clca command it runs (clca/__main__.py; clca/training/train.py runs ``clca train``)
MODULES: dict[str, list[str]] = {"clca": [], "clca.training.train": ["train"]}

#: at least this many command lines per file, so that an extraction bug cannot pass by finding none
MIN_LINES = {
    "README.md": 15,
    "docs/baselines.md": 3,
    "docs/data.md": 5,
    "docs/evaluation.md": 5,
    "docs/pipeline.md": 8,
    "docs/training.md": 15,
}

_SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
_CHAIN = re.compile(r"\s+(?:&&|\|\|)\s+")
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_INLINE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class DocCommand:
    file: str  # relative to the repository root
    line: int
    text: str  # as the docs write it (continuations joined, comment dropped)
    inline: bool  # an inline code span, not a line of a code block


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes: the parse reports what is left
        return text.split()


def clca_args(words: list[str]) -> tuple[str, list[str]] | None:
    """``(module, args)``: ``("clca", args)`` for ``clca ARGS``, ``("clca.x", args)`` for ``python -m clca.x
    ARGS`` or ``accelerate launch ... -m clca.x ARGS``; None for a line that runs something else."""
    while words and _ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words:
        return None
    head = words[0]
    if head == "clca" or head.endswith("/clca"):
        return "clca", words[1:]
    python = (
        head in ("python", "python3") or head.endswith("/python") or words[:2] == ["accelerate", "launch"]
    )
    if python and "-m" in words[:-1]:
        i = words.index("-m")
        if words[i + 1].split(".")[0] == "clca":
            return words[i + 1], words[i + 2 :]
    return None


def extract_commands(text: str, file: str) -> list[DocCommand]:
    """The clca command lines of one markdown document (see the module docstring)."""
    found: list[DocCommand] = []
    fence: str | None = None  # the info string of the open fenced block
    pending, start = "", 0
    for no, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("```"):
            fence = raw.lstrip()[3:].strip().lower() if fence is None else None
            continue
        if fence is None:
            found += [DocCommand(file, no, s, True) for s in _INLINE.findall(raw) if clca_args(_words(s))]
            continue
        if fence not in _SHELL_BLOCKS:
            continue
        if not pending:
            start, raw = no, re.sub(r"^\s*\$\s+", "", raw)
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1].strip() + " "
            continue
        line, pending = _COMMENT.sub("", pending + raw.strip()).strip(), ""
        found += [DocCommand(file, start, s, False) for s in _CHAIN.split(line) if clca_args(_words(s))]
    return found


def _placeholder(key: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w<.]){re.escape(key)}(?![\w>.])")  # a whole word: not DIRS, not <DIR>


def substitute(text: str) -> str:
    """The command line with each documented placeholder replaced by its PLACEHOLDERS value."""
    for key in sorted(PLACEHOLDERS, key=len, reverse=True):  # DIR|URL before DIR
        text = _placeholder(key).sub(PLACEHOLDERS[key], text)
    return text


@functools.cache
def _root_command() -> Any:
    return typer.main.get_command(app)


def _validate_configs(ctx: Any) -> str | None:
    """Validate the options that pydantic configs generated, as the command does: ``config_options`` records
    its decorations in ``__clca_configs__`` and validates with ``validate_options``."""
    for co in getattr(ctx.command.callback, "__clca_configs__", ()):
        try:
            validate_options(co.model, {f: ctx.params[f] for f in co.fields}, co.raw_fields, co.all_optional)
        except ClcaError as exc:
            return f"{co.model.__name__}: {exc}"
    return None


def parse_command(text: str, *, inline: bool = False) -> str | None:
    """Parse one command line (placeholders substituted) without running it: None, or what is wrong with it."""
    module, args = clca_args(_words(text)) or ("clca", [])
    if module not in MODULES:
        return f"`python -m {module}` is not an entry point of clca"
    args = [*MODULES[module], *args]
    last = args[-1] if args else None
    command, name, parent = _root_command(), "clca", None
    with contextlib.redirect_stdout(io.StringIO()):  # what --help prints
        try:
            while True:
                if inline and not args:  # a command path in a sentence: it exists, that is all
                    return None
                ctx = command.make_context(name, list(args), parent=parent)
                if not hasattr(command, "resolve_command"):  # a command, not a group
                    return _validate_configs(ctx)
                rest = [*ctx._protected_args, *ctx.args]  # what TyperGroup.invoke hands to the subcommand
                if not rest:
                    return f"`{name}` needs a subcommand"
                name, command, args = command.resolve_command(ctx, rest)
                parent = ctx
        except typer.Exit as exc:  # --help, --version
            return None if exc.exit_code == 0 else f"exit status {exc.exit_code}"
        except UsageError as exc:
            if inline and isinstance(exc, BadOptionUsage) and exc.option_name == last:
                return None  # `clca eval --survey` in a sentence names the option, which exists
            return exc.format_message() or type(exc).__name__  # NoArgsIsHelpError has no message


def test_documented_command_lines_parse(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [
        c
        for path in DOCS
        for c in extract_commands(path.read_text("utf-8"), path.relative_to(ROOT).as_posix())
    ]
    failing: dict[tuple[str, str], str] = {}
    for cmd in commands:
        error = parse_command(substitute(cmd.text), inline=cmd.inline)
        if error is not None:
            failing[(cmd.file, cmd.text)] = f"{cmd.file}:{cmd.line}: {cmd.text}\n    -> {error}"
    counts = Counter(c.file for c in commands)
    unused = [k for k in PLACEHOLDERS if not any(_placeholder(k).search(c.text) for c in commands)]
    with capsys.disabled():
        print("\ncommand lines checked: " + ", ".join(f"{f} {n}" for f, n in sorted(counts.items())))
    too_few = {f: counts[f] for f, n in MIN_LINES.items() if counts[f] < n}
    assert not too_few, f"fewer command lines than expected (is the extraction broken?): {too_few}"
    assert not unused, f"PLACEHOLDERS no documented command line uses: {unused}"
    stale = [f"{f}: {t}" for f, t in ALLOWED_FAILURES if (f, t) not in failing]
    assert not stale, "ALLOWED_FAILURES entries that parse now or are gone:\n" + "\n".join(stale)
    errors = [msg for key, msg in failing.items() if key not in ALLOWED_FAILURES]
    assert not errors, f"{len(errors)} documented command lines do not parse:\n" + "\n".join(errors)


def test_stage_commands_declare_their_configs() -> None:
    """The config validation is not vacuous: the stage commands say which configs generated their options."""
    root = _root_command()
    for name in ("scenarios", "simulate", "judge", "intents", "mix", "train", "eval"):
        assert getattr(root.commands[name].callback, "__clca_configs__", None), name


@pytest.mark.parametrize("module", sorted(MODULES))
def test_python_m_entry_points_are_the_cli(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """MODULES is true: ``python -m MODULE --help`` shows the help of the clca command it stands for."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert exc.value.code in (0, None)
    assert f"Usage: {' '.join(['clca', *MODULES[module]])} [OPTIONS]" in out.getvalue()


def test_extraction_substitution_and_parse_rules() -> None:
    found = [(c.line, c.text, c.inline) for c in extract_commands(SAMPLE, "sample.md")]
    assert found == [
        (1, "clca models list", True),
        (4, "clca data pull --to runs/x", False),
        (5, 'clca eval --model embedded:smollm2-135m --countries "Great Britain"', False),
        (7, "clca run configs/demo.yaml", False),
        (7, "clca report --run runs/x", False),
        (9, "CLCA_DATA_DIR=d python -m clca.training.train --help", False),
        (10, "accelerate launch --num_processes 2 -m clca train --run runs/x", False),
    ]
    assert substitute("clca run CONFIG --set x=... --set cache=<new file> --set y=CONFIGS") == (
        "clca run configs/demo.yaml --set x=runs/demo --set cache=runs/llm_cache.sqlite --set y=CONFIGS"
    )
    assert parse_command("python -m clca.training.train --max-steps 8") is None
    assert "No such option" in (parse_command("clca train --epochs 1") or "")
    assert "not an entry point" in (parse_command("python -m clca.cli run x") or "")
    assert "--lora-r" in (parse_command("clca train --lora-r 0") or "")  # the config's range, not click's
    assert "Missing argument" in (parse_command("clca run") or "")
    assert parse_command("clca run", inline=True) is None
    assert "requires an argument" in (parse_command("clca eval --survey") or "")
    assert parse_command("clca eval --survey", inline=True) is None
    assert "No such option" in (parse_command("clca eval --surveys", inline=True) or "")
    assert parse_command("clca models") == "NoArgsIsHelpError"
    assert parse_command("clca models", inline=True) is None


SAMPLE = """\
Text with `clca models list` and `hf upload x`.

```bash
$ clca data pull --to runs/x   # a comment
clca eval --model embedded:smollm2-135m \\
          --countries "Great Britain"
./scripts/setup.sh && clca run configs/demo.yaml && clca report --run runs/x
# clca stats --run runs/x
CLCA_DATA_DIR=d python -m clca.training.train --help
accelerate launch --num_processes 2 -m clca train --run runs/x
```

```python
clca run configs/demo.yaml
```
"""
