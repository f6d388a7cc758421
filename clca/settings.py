"""Process-wide settings: where the data bundle lives, where caches go.

The data directory is set ONE way: :func:`set_data_dir` (the CLI's global ``--data-dir``, a run config's
``data_dir``, or :func:`using_data_dir` in library code and tests); every reader calls :func:`data_dir` /
:func:`data_file` and takes no directory argument. Precedence: :func:`set_data_dir` > ``CLCA_DATA_DIR`` >
the bundle pulled by ``clca data pull`` into the cache (when it has a manifest) > ``../shared/data`` relative
to the project root (the checkout that holds ``pyproject.toml``) when it exists. Errors name where the value
came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clca.errors import DataError

DATA_ENV = "CLCA_DATA_DIR"
CACHE_ENV = "CLCA_CACHE_DIR"

#: (path, where it came from) set by :func:`set_data_dir`
_data_dir_override: tuple[Path, str] | None = None


def project_root() -> Path:
    """The source checkout's root (the folder holding ``pyproject.toml`` above this package)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent, *here.parents):
        if (cand / "pyproject.toml").exists():
            return cand
    return here.parent


def set_data_dir(path: str | Path | None, *, source: str = "the --data-dir option") -> None:
    """Set the data directory for this process (``None`` clears it); ``source`` names the setting in errors."""
    global _data_dir_override
    _data_dir_override = (Path(path).expanduser(), source) if path is not None else None


def data_dir_override() -> Path | None:
    """The directory set by :func:`set_data_dir`, if any."""
    return _data_dir_override[0] if _data_dir_override is not None else None


@contextmanager
def using_data_dir(path: str | Path | None, *, source: str = "the data_dir setting") -> Iterator[None]:
    """Use ``path`` as the data directory inside the block (``None``: leave the current setting)."""
    global _data_dir_override
    old = _data_dir_override
    if path is not None:
        set_data_dir(path, source=source)
    try:
        yield
    finally:
        _data_dir_override = old


def _pulled_bundle_dir() -> Path | None:
    from clca.data.bundle import pulled_bundle_dir  # imported here: clca.data.bundle imports this module

    return pulled_bundle_dir()


def data_dir(*, must_exist: bool = True) -> Path:
    """Resolve the data bundle directory; raise a one-line :class:`DataError` naming the setting if absent."""
    if _data_dir_override is not None:
        cand, how = _data_dir_override
    elif os.environ.get(DATA_ENV):
        cand, how = Path(os.environ[DATA_ENV]).expanduser(), f"the {DATA_ENV} environment variable"
    elif (pulled := _pulled_bundle_dir()) is not None:
        cand, how = pulled, "the bundle pulled by `clca data pull`"
    else:
        cand, how = project_root().parent / "shared" / "data", "the default ../shared/data"
    if must_exist and not cand.is_dir():
        raise DataError(
            f"data directory {cand} (from {how}) does not exist.",
            fix=f"run `clca data pull` to fetch and build it, or point --data-dir or {DATA_ENV} at a clca data "
            "bundle (see README, 'Data').",
        )
    return cand


def data_file(relpath: str) -> Path:
    """A file inside the data bundle, with a clear error when it is missing."""
    base = data_dir()
    path = base / relpath
    if not path.exists():
        raise DataError(
            f"data file {path} is missing.",
            fix=f"check that {base} is a complete clca data bundle (it needs {relpath}).",
        )
    return path


def cache_dir() -> Path:
    """Root of clca's caches (converted models, the LLM call cache): ``CLCA_CACHE_DIR`` or ``~/.cache/clca``."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "clca").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    """Where converted embedded models live (``<cache>/models``); shared by all runs and tests."""
    d = cache_dir() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d
