"""The one progress display of clca's stages.

On a terminal: a rich bar (description, done/total, elapsed, remaining). Without a terminal (a log file, CI):
one plain line on stderr at the start, then at least every ``interval`` seconds while work advances, and at
the end: ``[description] done/total (pct%), rate/s, elapsed, ETA``, so a long stage in a log is never silent.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

LOG_INTERVAL_S = 30.0


def _fmt_s(s: float) -> str:
    s = max(0.0, s)
    return (
        f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m" if s >= 3600 else f"{int(s // 60)}m{int(s % 60):02d}s"
    )


class StageProgress:
    """Progress of one stage: ``advance(n)`` (also ``progress(n)``) or ``update(done, total)``."""

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float = LOG_INTERVAL_S,
        tty: bool | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self.t0 = time.perf_counter()
        self._last_log = self.t0
        self._bar: Any = None
        self._task: Any = None
        self.tty = self.stream.isatty() if tty is None else tty
        self.lines: list[str] = []  # the plain lines written (non-TTY mode)

    # ----------------------------------------------------------------------------------------- life cycle
    def start(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        else:
            self._log()

    def stop(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        else:
            self._log()

    # ------------------------------------------------------------------------------------------- updates
    def __call__(self, n: int = 1) -> None:
        self.advance(n)

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total)
        elif time.perf_counter() - self._last_log >= self.interval:
            self._log()

    def line(self) -> str:
        """The plain progress line: done/total, rate, elapsed and ETA."""
        el = time.perf_counter() - self.t0
        rate = self.done / el if el > 0 else 0.0
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            eta_s = _fmt_s(eta) if eta == eta else "?"
            return (
                f"[{self.description}] {self.done}/{self.total} ({pct:.0f}%), {rate:.2f}/s, "
                f"elapsed {_fmt_s(el)}, ETA {eta_s}"
            )
        return f"[{self.description}] {self.done} done, {rate:.2f}/s, elapsed {_fmt_s(el)}"

    def _log(self) -> None:
        text = self.line()
        self.lines.append(text)
        print(text, file=self.stream, flush=True)
        self._last_log = time.perf_counter()


@contextmanager
def stage_progress(
    description: str, total: int | None = None, *, enabled: bool = True, interval: float = LOG_INTERVAL_S
) -> Iterator[StageProgress]:
    """A :class:`StageProgress` for the block (nothing is shown when ``enabled`` is false)."""
    prog = StageProgress(description, total, enabled=enabled, interval=interval)
    prog.start()
    try:
        yield prog
    finally:
        prog.stop()
