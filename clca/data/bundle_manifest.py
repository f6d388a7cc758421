"""``bundle_manifest.json``: what a pulled bundle was built from and the sha256 of every file it holds.

``clca data pull`` (:mod:`clca.data.bundle`) writes it; ``clca data status`` and the map edition
(:mod:`clca.data.editions`) read it. It lives beside the layout rather than in the pull package so that its
readers need not import the pull machinery.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from clca.errors import DataError
from clca.settings import BUNDLE_MANIFEST

#: the manifest's file name (:data:`clca.settings.BUNDLE_MANIFEST`: settings finds a pulled bundle by it)
MANIFEST = BUNDLE_MANIFEST
MANIFEST_FORMAT = 1


class ManifestSource(BaseModel):
    """One source of the bundle as the pull had it (sha256 and size of the bytes it used)."""

    key: str
    url: str | None
    repo: str | None
    commit: str | None
    path: str | None
    mirror_path: str
    sha256: str
    size: int
    terms: str
    #: how the bytes were accepted: their pinned sha256, or a format check (a file the user supplies)
    accept: Literal["sha256", "format"] = "sha256"
    #: False for an optional source that this pull was not given (its sha256 is then the pinned one)
    supplied: bool = True


class ManifestFile(BaseModel):
    """One built file: its sha256, size, the sources it was built from, and (map points) its edition."""

    sha256: str
    size: int
    sources: list[str]
    edition: str | None = None


class MissingFile(BaseModel):
    """A file of the bundle that could not be built, and why."""

    file: str
    sources: list[str]
    reason: str


class Manifest(BaseModel):
    """``bundle_manifest.json``: what the bundle was built from and the sha256 of every built file."""

    format: int = MANIFEST_FORMAT
    clca_version: str
    created: str
    sources: list[ManifestSource]
    files: dict[str, ManifestFile]
    missing: list[MissingFile] = Field(default_factory=list)


def read_manifest(bundle: Path) -> Manifest | None:
    """The bundle's manifest, None when it has none; a one-line DataError when it is unreadable."""
    path = bundle / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError):
        raise DataError(
            f"{path} is not a valid bundle manifest.", fix="rebuild the bundle with `clca data pull --force`."
        ) from None


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
