"""One exception type for every user-facing error.

A :class:`ClcaError` carries a one-line message that names the input at fault and the fix.
The CLI prints it without a traceback (``--debug`` shows the traceback) and exits non-zero.
"""

from __future__ import annotations


class ClcaError(Exception):
    """A user-facing error: bad input, a missing resource, an unreachable server."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.fix = fix
        text = message if fix is None else f"{message} Fix: {fix}"
        super().__init__(text)


class DataError(ClcaError):
    """Input data (a survey file, a record in a run directory, a data bundle) is missing or malformed."""


class ModelError(ClcaError):
    """A model spec cannot be resolved, or a model/server cannot be reached."""


class BatchError(ModelError):
    """Some requests of a batch failed for good; ``done`` holds the finished answers by batch index (the call
    cache keeps them before the error propagates)."""

    def __init__(self, error: ModelError, done: dict[int, object]) -> None:
        super().__init__(str(error))
        self.error = error
        self.done = done
