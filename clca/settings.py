"""Process-wide settings: where the data bundle lives, where caches go.

Precedence for the data directory: explicit argument (CLI ``--data-dir``) > ``CLCA_DATA_DIR`` > the bundle
pulled by ``clca data pull`` into the cache (when it has a manifest) > ``../shared/data`` relative to the
project root (the checkout that holds ``pyproject.toml``).
"""

from __future__ import annotations

import os
from pathlib import Path

from clca.errors import DataError

DATA_ENV = "CLCA_DATA_DIR"
CACHE_ENV = "CLCA_CACHE_DIR"

_data_dir_override: Path | None = None


def project_root() -> Path:
    """The source checkout's root (the folder holding ``pyproject.toml`` above this package)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent, *here.parents):
        if (cand / "pyproject.toml").exists():
            return cand
    return here.parent


def set_data_dir(path: str | Path | None) -> None:
    """Set the data directory for this process (the CLI's ``--data-dir``)."""
    global _data_dir_override
    _data_dir_override = Path(path).expanduser() if path is not None else None


def _pulled_bundle_dir() -> Path | None:
    from clca.data.bundle import pulled_bundle_dir  # imported here: clca.data.bundle imports this module

    return pulled_bundle_dir()


def data_dir(explicit: str | Path | None = None, *, must_exist: bool = True) -> Path:
    """Resolve the data bundle directory; raise a one-line :class:`DataError` naming the setting if absent."""
    if explicit is not None:
        cand, how = Path(explicit).expanduser(), "the --data-dir option"
    elif _data_dir_override is not None:
        cand, how = _data_dir_override, "the --data-dir option"
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


def data_file(relpath: str, explicit_dir: str | Path | None = None) -> Path:
    """A file inside the data bundle, with a clear error when it is missing."""
    base = data_dir(explicit_dir)
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
