"""Shared fixtures. Tests that load the real embedded model are marked ``slow``; CI runs them all.

Tests leave no trace outside their temporary folders: every cache a test could write (clca's call cache and
converted models, Hugging Face's hub and datasets caches, matplotlib's font cache, anything under
``XDG_CACHE_HOME``) points into one folder made for this test session and removed after it. Converted embedded
models the user already has are linked in (read only), so a session does not convert them again. At the end the
user's caches are compared with their state at the start: any change fails the suite.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep torch from oversubscribing the 2-core machines CI runs on.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: the user's caches, as they are before the session redirects them
USER_CACHES = [
    Path(os.environ.get("CLCA_CACHE_DIR") or Path.home() / ".cache" / "clca").expanduser(),
    Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser(),
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "matplotlib",
]
SESSION = Path(tempfile.mkdtemp(prefix="clca-tests-"))
for _var, _sub in (
    ("CLCA_CACHE_DIR", "clca"),
    ("HF_HOME", "huggingface"),
    ("HF_DATASETS_CACHE", "huggingface/datasets"),
    ("MPLCONFIGDIR", "matplotlib"),
    ("XDG_CACHE_HOME", "xdg"),
):
    os.environ[_var] = str(SESSION / _sub)
    (SESSION / _sub).mkdir(parents=True, exist_ok=True)
# converted embedded models the user has: linked, never written (a conversion happens only when one is missing);
# a data bundle pulled into the user's cache: linked too, so the data directory resolves as it does for the user
(SESSION / "clca" / "models").mkdir(parents=True, exist_ok=True)
for _model in (USER_CACHES[0] / "models").glob("*"):
    if (_model / "config.json").is_file():
        (SESSION / "clca" / "models" / _model.name).symlink_to(_model, target_is_directory=True)
if (USER_CACHES[0] / "data" / "bundle_manifest.json").is_file():
    (SESSION / "clca" / "data").symlink_to(USER_CACHES[0] / "data", target_is_directory=True)

from clca.settings import data_dir as _data_dir  # noqa: E402  (after the environment above)


def _snapshot(roots: list[Path]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        if not root.exists():
            out[str(root)] = (-1, -1)
            continue
        for p in root.rglob("*"):
            try:
                st = p.lstat()
            except OSError:
                continue
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


_BEFORE = _snapshot(USER_CACHES)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the suite when a test changed a user cache; remove the session's caches."""
    after = _snapshot(USER_CACHES)
    changed = sorted(k for k in set(_BEFORE) | set(after) if _BEFORE.get(k) != after.get(k))
    shutil.rmtree(SESSION, ignore_errors=True)
    if changed:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"tests changed the user's caches ({len(changed)} paths), e.g.:", *changed[:10]]
        if tr is not None:
            tr.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data bundle (../shared/data or CLCA_DATA_DIR). Missing data is a failure, not a skip."""
    return _data_dir()


@pytest.fixture()
def call_cache_path(tmp_path: Path) -> Path:
    """A fresh LLM call cache file for one test."""
    return tmp_path / "llm_cache.sqlite"


@pytest.fixture()
def session_caches() -> Iterator[Path]:
    """The folder this session's caches live in (for tests that check where something was written)."""
    yield SESSION
