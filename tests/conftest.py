"""Shared fixtures. Tests that load the real embedded model are marked ``slow``; CI runs them all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clca.settings import data_dir as _data_dir

# Keep torch from oversubscribing the 2-core machines CI runs on.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data bundle (../shared/data or CLCA_DATA_DIR). Missing data is a failure, not a skip."""
    return _data_dir()


@pytest.fixture()
def call_cache_path(tmp_path: Path) -> Path:
    """A fresh LLM call cache file for one test."""
    return tmp_path / "llm_cache.sqlite"
