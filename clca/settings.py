"""Process-wide settings: where the data bundle lives, where caches go.

The data directory is set ONE way: :func:`set_data_dir` (the CLI's global ``--data-dir``, a run config's
``data_dir``, or :func:`using_data_dir` in library code and tests); every reader calls :func:`data_dir` /
:func:`data_file` and takes no directory argument. Precedence: :func:`set_data_dir` > ``CLCA_DATA_DIR`` >
the bundle pulled by ``clca data pull`` into the cache (when it has a manifest) > ``../shared/data`` relative
to the project root (the checkout that holds ``pyproject.toml``) when it exists. Errors name where the value
came from.

It also names every location under the cache (:func:`cache_root`): the pulled bundle, the download cache
and the models folder. They live here, not in :mod:`clca.data.bundle`, because :func:`data_dir` needs the
pulled bundle's place and this module imports nothing from :mod:`clca.data`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clca.errors import DataError

DATA_ENV = "CLCA_DATA_DIR"
CACHE_ENV = "CLCA_CACHE_DIR"
#: the file ``clca data pull`` writes into a bundle (sources, sha256 of every file); marks a pulled bundle
BUNDLE_MANIFEST = "bundle_manifest.json"

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


def data_dir(*, must_exist: bool = True) -> Path:
    """Resolve the data bundle directory; raise a one-line :class:`DataError` naming the setting if absent."""
    if _data_dir_override is not None:
        cand, how = _data_dir_override
    elif os.environ.get(DATA_ENV):
        cand, how = Path(os.environ[DATA_ENV]).expanduser(), f"the {DATA_ENV} environment variable"
    elif (pulled := pulled_bundle_dir()) is not None:
        cand, how = pulled, "the bundle pulled by `clca data pull`"
    else:
        cand, how = shared_data_dir(), "the default ../shared/data"
    if must_exist and not cand.is_dir():
        raise DataError(
            f"data directory {cand} (from {how}) does not exist.",
            fix=f"run `clca data pull` to fetch and build it, or point --data-dir or {DATA_ENV} at a clca data "
            "bundle (see README, 'Data').",
        )
    return cand


def data_file(relpath: str) -> Path:
    """A file inside the data bundle, with a clear error when it is missing.

    For paths of one's own; clca's readers name the bundle's files with :class:`clca.data.layout.DataBundle`
    (which gives the same error).
    """
    base = data_dir()
    path = base / relpath
    if not path.exists():
        raise DataError(
            f"data file {path} is missing.",
            fix=f"check that {base} is a complete clca data bundle (it needs {relpath}).",
        )
    return path


def shared_data_dir() -> Path:
    """The shared bundle beside the checkout, ``../shared/data`` (whether or not it exists)."""
    return project_root().parent / "shared" / "data"


def cache_root() -> Path:
    """Root of clca's caches: ``CLCA_CACHE_DIR`` or ``~/.cache/clca`` (not created; see :func:`cache_dir`)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "clca").expanduser()


def cache_dir() -> Path:
    """:func:`cache_root`, created: where converted models and the LLM call cache go."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


#: environment variable naming the LLM call cache file (beats the default below; a run config's ``cache:`` and
#: ``--cache`` beat it)
CALL_CACHE_ENV = "CLCA_CALL_CACHE"


def call_cache_path() -> Path:
    """The default LLM call cache file: ``CLCA_CALL_CACHE``; under SLURM (``SLURM_JOB_ID`` set) a node-local file
    (``$SLURM_TMPDIR``, else ``$TMPDIR``, else ``/tmp``: ``clca-<user>/llm_cache.sqlite``), because SQLite over a
    shared file system (NFS, Lustre) is unsafe when several nodes write it; else ``<cache>/llm_cache.sqlite``."""
    if os.environ.get(CALL_CACHE_ENV):
        return Path(os.environ[CALL_CACHE_ENV]).expanduser()
    if os.environ.get("SLURM_JOB_ID"):
        local = os.environ.get("SLURM_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
        return Path(local) / f"clca-{os.environ.get('USER') or os.getuid()}" / "llm_cache.sqlite"
    return cache_root() / "llm_cache.sqlite"


def default_bundle_dir() -> Path:
    """Where ``clca data pull`` puts the bundle unless told otherwise: ``<cache>/data``."""
    return cache_root() / "data"


def download_cache_dir() -> Path:
    """The download cache: ``<cache>/downloads/<sha256>``, one file per verified source."""
    return cache_root() / "downloads"


def pulled_bundle_dir() -> Path | None:
    """The pulled bundle in the cache when it exists and has a manifest, else None."""
    d = default_bundle_dir()
    return d if (d / BUNDLE_MANIFEST).is_file() else None


def models_dir() -> Path:
    """Where converted embedded models live (``<cache>/models``); shared by all runs and tests."""
    d = cache_dir() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d
