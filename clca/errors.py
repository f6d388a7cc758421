"""One exception type for every user-facing error.

A :class:`ClcaError` carries a one-line message that names the input at fault and the fix. The CLI prints it
without a traceback (``--debug`` shows the traceback) and exits with the error's :attr:`ClcaError.exit_code`:
2 for bad input (a config, an option, a file, a model spec), 3 when a model or server failed during the work
(:class:`ServiceError`: the input was fine, rerun the same command to resume once the server is back); 130
after Ctrl-C.
"""

from __future__ import annotations

#: exit codes of the ``clca`` command
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
EXIT_INTERRUPTED = 130


class ClcaError(Exception):
    """A user-facing error: bad input, a missing resource, an unreachable server."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        text = message if fix is None else f"{message} Fix: {fix}"
        super().__init__(text)


class DataError(ClcaError):
    """Input data (a survey file, a record in a run directory, a data bundle) is missing or malformed."""


class ModelError(ClcaError):
    """A model spec cannot be resolved, or a model/server refuses what it was asked (bad input)."""


class ServiceError(ModelError):
    """A model or server failed during the work (still down after the retries, timing out, answering 5xx):
    not the input's fault, so the exit code differs (3) and a rerun resumes."""

    exit_code = EXIT_SERVICE


class BatchError(ModelError):
    """Some requests of a batch failed for good; ``done`` holds the finished answers by batch index (the call
    cache keeps them before the error propagates). Its exit code is its first error's."""

    def __init__(self, error: ModelError, done: dict[int, object]) -> None:
        super().__init__(error.message, fix=error.fix)
        self.error = error
        self.done = done
        self.exit_code = error.exit_code
