"""``clca data status``: which bundle is in use, where it comes from, and whether its checksums hold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from clca.data.bundle_manifest import Manifest, read_manifest, sha256_file
from clca.data.editions import MapEdition, inglehart_welzel_edition
from clca.data.layout import DataBundle
from clca.errors import DataError
from clca.settings import BUNDLE_MANIFEST, DATA_ENV, pulled_bundle_dir, shared_data_dir


class FileCheck(BaseModel):
    """One file of a bundle: its sha256 now and, with a manifest, the recorded one."""

    path: str
    sha256: str | None
    expected: str | None = None
    state: Literal["ok", "changed", "missing", "unlisted", "unchecked"]


class BundleStatus(BaseModel):
    """The outcome of :func:`bundle_status`."""

    path: Path
    origin: str
    manifest: Manifest | None
    files: list[FileCheck]
    #: data files of the layout (:data:`DataBundle.FILES`) the bundle lacks under any of their names
    absent: list[str] = []
    #: the edition of the map points; None when the bundle has no map file
    edition: MapEdition | None = None

    @property
    def problems(self) -> list[FileCheck]:
        return [f for f in self.files if f.state in ("changed", "missing")]

    @property
    def complete(self) -> bool:
        """Every data file is there, matches its manifest, and nothing was left unbuilt."""
        missing = self.manifest.missing if self.manifest is not None else []
        return not self.absent and not self.problems and not missing


def describe_origin(path: Path) -> str:
    """Which setting the bundle at ``path`` comes from, in words (for ``clca data status``)."""
    p = path.expanduser().absolute()
    env = os.environ.get(DATA_ENV)
    if env and Path(env).expanduser().absolute() == p:
        return f"the {DATA_ENV} environment variable (or --data-dir)"
    pulled = pulled_bundle_dir()
    if pulled is not None and pulled.absolute() == p:
        return "the bundle pulled by `clca data pull` (in the cache)"
    if shared_data_dir().absolute() == p:
        return "the shared bundle ../shared/data beside the checkout"
    return "the --data-dir option"


def bundle_status(path: Path, origin: str | None = None) -> BundleStatus:
    """Check the bundle at ``path`` against its manifest (or, without one, list its files with sha256)."""
    manifest = read_manifest(path)
    present = sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.name != BUNDLE_MANIFEST
    )
    checks: list[FileCheck] = []
    if manifest is None:
        checks = [FileCheck(path=r, sha256=sha256_file(path / r), state="unchecked") for r in present]
    else:
        for rel, rec in sorted(manifest.files.items()):
            f = path / rel
            if not f.is_file():
                checks.append(FileCheck(path=rel, sha256=None, expected=rec.sha256, state="missing"))
                continue
            digest = sha256_file(f)
            state: Literal["ok", "changed"] = "ok" if digest == rec.sha256 else "changed"
            checks.append(FileCheck(path=rel, sha256=digest, expected=rec.sha256, state=state))
        checks += [
            FileCheck(path=r, sha256=sha256_file(path / r), state="unlisted")
            for r in present
            if r not in manifest.files
        ]
    layout = DataBundle(path)
    absent = [rel for rel in DataBundle.FILES if not layout.path(rel).is_file()]
    edition: MapEdition | None = None
    if layout.path(DataBundle.INGLEHART_WELZEL).is_file():
        try:
            edition = inglehart_welzel_edition(layout)
        except DataError:
            edition = None
    return BundleStatus(
        path=path,
        origin=origin or describe_origin(path),
        manifest=manifest,
        files=checks,
        absent=absent,
        edition=edition,
    )


def _tail(st: BundleStatus) -> list[str]:
    """The map edition and whether the bundle is complete (the last lines of ``clca data status``)."""
    if st.edition is not None:
        e = st.edition
        how = "from the manifest" if e.decided_by == "manifest" else "from the file's sha256"
        lines = [
            f"inglehart-welzel map: {e.file}, edition {e.id} ({how}): {e.description}; source: {e.source}"
        ]
    else:
        lines = [f"inglehart-welzel map: none ({DataBundle.INGLEHART_WELZEL} is missing)"]
    said = {f.path for f in st.problems} | {m.file for m in (st.manifest.missing if st.manifest else [])}
    unsaid = [rel for rel in st.absent if rel not in said]
    if st.complete:
        lines.append(f"complete: all {len(DataBundle.FILES)} data files of the bundle are there")
    elif unsaid:
        lines.append(f"incomplete: {len(unsaid)} data files are missing: {', '.join(unsaid)}")
    return lines


def status_lines(st: BundleStatus) -> list[str]:
    """``clca data status`` output for a :class:`BundleStatus`."""
    lines = [f"bundle: {st.path}", f"from: {st.origin}"]
    m = st.manifest
    if m is None:
        lines.append(
            f"manifest: none ({BUNDLE_MANIFEST} is written by `clca data pull`), so the checksums cannot be "
            f"checked; {len(st.files)} files and their sha256:"
        )
        lines += [f"  {f.sha256}  {f.path}" for f in st.files]
        return lines + _tail(st)
    listed = [f for f in st.files if f.state != "unlisted"]
    lines.append(
        f"manifest: {BUNDLE_MANIFEST}, built {m.created} by clca {m.clca_version}, {len(listed)} files"
    )
    for s in m.sources:
        if not s.supplied:
            lines.append(f"  source {s.key}: not supplied (optional, no pinned public URL)")
            continue
        where = f"{s.repo}@{s.commit}:{s.path}" if s.repo else "no pinned public URL"
        given = ", supplied file checked by format" if s.accept == "format" else ""
        lines.append(f"  source {s.key}: {where} sha256 {s.sha256}{given}")
    if st.problems:
        lines.append(f"checksums: {len(st.problems)} of {len(listed)} files do not match the manifest:")
        for f in st.problems:
            got = "file is missing" if f.state == "missing" else f"sha256 {f.sha256}"
            lines.append(f"  {f.state}: {f.path} ({got}, expected {f.expected})")
    else:
        lines.append(f"checksums: all {len(listed)} files match the manifest")
    lines += [f"  not in the manifest: {f.path}" for f in st.files if f.state == "unlisted"]
    for miss in m.missing:
        lines.append(f"incomplete: {miss.file} was not built: {miss.reason}")
    return lines + _tail(st)
