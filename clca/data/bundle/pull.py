"""Fetch the pinned sources, check their sha256, build the bundle, and write its manifest.

Sources are read from their pinned URL, a mirror or a local file (:func:`source_location`), checked against
:data:`~clca.data.bundle.catalog.SOURCES` and kept in the download cache (:func:`fetch_source`);
:func:`pull` builds every file in a hidden folder beside the destination and renames it into place, with
a :class:`Manifest` (``bundle_manifest.json``) recording the sources and the sha256 of every file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field

from clca import __version__
from clca.data.bundle.catalog import PRODUCTS, SOURCES, Product, Recipe, Source, terms_text
from clca.data.bundle_manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    Manifest,
    ManifestFile,
    ManifestSource,
    MissingFile,
    read_manifest,
    sha256_bytes,
    sha256_file,
)
from clca.data.editions import DESCRIPTIONS, edition_from_sources
from clca.data.layout import DataBundle
from clca.errors import DataError
from clca.settings import default_bundle_dir, download_cache_dir

README = DataBundle.README

Echo = Callable[[str], None]

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "README",
    "Echo",
    "FetchHow",
    "Manifest",
    "ManifestFile",
    "ManifestSource",
    "MissingFile",
    "PullResult",
    "fetch_source",
    "pull",
    "read_manifest",
    "sha256_bytes",
    "sha256_file",
    "source_location",
]


# --------------------------------------------------------------------------------------------------------
# Fetching


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_http(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _local_path(location: str) -> Path:
    if location.startswith("file://"):
        return Path(unquote(urlparse(location).path))
    return Path(location).expanduser()


def source_location(source: Source, mirror: str | None, local: Mapping[str, Path]) -> str | Path | None:
    """Where to read ``source`` from: a ``--source`` file, the mirror, or its pinned URL (None: nowhere)."""
    if source.key in local:
        return local[source.key]
    if mirror:
        if _is_http(mirror):
            return f"{mirror.rstrip('/')}/{source.mirror_path}"
        return _local_path(mirror) / source.mirror_path
    return source.url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _download(url: str) -> bytes | None:
    """The body at ``url``; None for a 404; a one-line DataError for any other failure."""
    import httpx

    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=15.0)) as client:
            resp = client.get(url)
            if resp.status_code == 404:
                return None
            resp.raise_for_status()
            return resp.content
    except httpx.HTTPError as exc:
        raise DataError(
            f"could not download {url}: {_first_line(exc)}.",
            fix="check the network, or use --mirror, or point --data-dir or CLCA_DATA_DIR at an existing bundle.",
        ) from None


def _read(location: str | Path) -> bytes | None:
    """The bytes at a URL or path; None when there is no such file."""
    if isinstance(location, str) and _is_http(location):
        return _download(location)
    path = location if isinstance(location, Path) else _local_path(location)
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {_first_line(exc)}.") from None


FetchHow = Literal["cache", "downloaded", "read", "unavailable"]


def fetch_source(
    source: Source, *, mirror: str | None, local: Mapping[str, Path], cache: Path
) -> tuple[bytes | None, FetchHow]:
    """The verified bytes of ``source`` and how they were had: from the download cache, downloaded over
    http(s), or read from a local file (a mirror folder, ``file://`` or ``--source``).

    A cached copy is used when its sha256 still matches (unless the source is given in ``local``). Otherwise the
    file is read from :func:`source_location` and its sha256 checked: a mismatch is a one-line DataError and
    nothing is stored; a match is stored in the cache under its sha256. A source with no pinned URL that is in
    neither ``local`` nor the mirror gives ``(None, "unavailable")``; any other missing file is an error.

    A source accepted by its format (``accept="format"``: the user's own copy of a file with no pinned public
    copy) skips the sha256 check and the download cache: what this pull is given decides what it builds, and
    its product's builder checks the content.
    """
    by_format = source.accept == "format"
    cached = cache / source.sha256
    if not by_format and cached.is_file() and source.key not in local:  # --source is always read
        hit = cached.read_bytes()
        if sha256_bytes(hit) == source.sha256:
            return hit, "cache"
        cached.unlink(missing_ok=True)  # a damaged cache entry: fetch again
    location = source_location(source, mirror, local)
    if location is None:
        return None, "unavailable"
    data = _read(location)
    if data is None:
        if source.url is None and source.key not in local:
            return None, "unavailable"
        raise DataError(
            f"{source.key}: no file at {location}.",
            fix=(
                f"a mirror must hold each source at <mirror>/{source.mirror_path} (see docs/data.md)."
                if mirror and source.key not in local
                else "check the path or URL."
            ),
        )
    how: FetchHow = "downloaded" if isinstance(location, str) and _is_http(location) else "read"
    if by_format:
        return data, how
    digest = sha256_bytes(data)
    if digest != source.sha256:
        raise DataError(
            f"checksum mismatch for {source.key} from {location}: sha256 {digest}, expected {source.sha256}.",
            fix="that file is not the pinned version; fetch it from its pinned source (see docs/data.md).",
        )
    _write_atomic(cached, data)
    return data, how


# --------------------------------------------------------------------------------------------------------
# The pull


class PullResult(BaseModel):
    """What a pull did: where the bundle is, what was built, what is missing, how sources were had."""

    dest: Path
    already: bool = False
    built: list[str] = Field(default_factory=list)
    missing: list[MissingFile] = Field(default_factory=list)
    fetched: list[str] = Field(default_factory=list)
    from_cache: list[str] = Field(default_factory=list)
    #: file -> edition id, for files that come in editions (the Inglehart-Welzel map points)
    editions: dict[str, str] = Field(default_factory=dict)


def _readme(manifest: Manifest, sources: Sequence[Source]) -> bytes:
    lines = [
        "# clca data bundle",
        "",
        f"Built by `clca data pull` (clca {manifest.clca_version}) on {manifest.created} from pinned public",
        f"sources; `{MANIFEST}` lists each source (URL, commit, sha256) and the sha256 of each file.",
        "`clca data status` checks them. The files are described in clca's docs/data.md.",
    ]
    for rel, rec in manifest.files.items():
        if rec.edition is not None:
            lines += ["", f"`{rel}`: edition {rec.edition}, {DESCRIPTIONS.get(rec.edition, rec.edition)}."]
    lines += ["", "## Terms of use and citations", "", *terms_text(sources)]
    if manifest.missing:
        lines += ["", "## Not built", ""]
        lines += [f"- {m.file}: {m.reason}" for m in manifest.missing]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _clean_partials(dest: Path) -> None:
    for leftover in dest.parent.glob(f".{dest.name}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(tmp: Path, dest: Path) -> None:
    """Rename the finished ``tmp`` to ``dest``, replacing an older bundle there."""
    if not dest.exists():
        tmp.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    dest.rename(old)
    try:
        tmp.rename(dest)
    except BaseException:
        old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _choose(product: Product, data: Mapping[str, bytes]) -> Recipe | None:
    """The first recipe of ``product`` whose sources were all had, None when none was."""
    return next((r for r in product.recipes if all(k in data for k in r.needs)), None)


def _manifest_source(s: Source, data: Mapping[str, bytes]) -> ManifestSource:
    """The manifest's entry for ``s``: a format-accepted source with the sha256 and size it was given."""
    rec = ManifestSource(**s.model_dump(include=set(ManifestSource.model_fields)))
    got = data.get(s.key)
    if got is None:
        return rec.model_copy(update={"supplied": False}) if s.url is None else rec
    return rec.model_copy(update={"sha256": sha256_bytes(got), "size": len(got)})


def pull(
    dest: Path | None = None,
    *,
    mirror: str | None = None,
    local: Mapping[str, Path] | None = None,
    force: bool = False,
    sources: Sequence[Source] = SOURCES,
    products: Sequence[Product] = PRODUCTS,
    cache: Path | None = None,
    echo: Echo = print,
) -> PullResult:
    """Fetch, verify and build the bundle into ``dest`` (default :func:`default_bundle_dir`).

    ``sources`` and ``products`` default to the pinned tables; tests pass their own (small extracts with
    their own sha256). ``local`` maps source keys to files on disk (``--source KEY=PATH``). A complete bundle
    with a manifest already at ``dest`` is kept unless ``force`` (an incomplete one is rebuilt); a non-empty
    folder without a manifest is never replaced. Sources are all fetched (and cached) first, then each file
    is built by the first of its recipes whose sources were had, in a hidden folder beside ``dest`` that
    replaces ``dest`` only when complete; on any error the folder is removed. A file no recipe could build is
    recorded in the manifest and in :attr:`PullResult.missing` (``clca data pull`` then exits non-zero).
    """
    dest = (dest or default_bundle_dir()).expanduser().absolute()
    cache = cache or download_cache_dir()
    local = dict(local or {})
    by_key = {s.key: s for s in sources}
    unknown = sorted(set(local) - set(by_key))
    if unknown:
        raise DataError(
            f"--source names unknown source(s) {', '.join(unknown)}.",
            fix=f"use one of: {', '.join(by_key)}.",
        )
    for p in products:
        for k in p.needs:
            if k not in by_key:
                raise ValueError(f"product {p.file} needs unknown source {k!r}")

    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest} exists and is not a folder.", fix="choose another --to.")
    if (dest / MANIFEST).is_file() and not force:
        old = read_manifest(dest)
        if old is not None and not old.missing:
            echo(f"a pulled bundle is already at {dest}; `clca data pull --force` rebuilds it.")
            return PullResult(dest=dest, already=True)
        echo(f"the pulled bundle at {dest} is incomplete: rebuilding it.")
    if dest.is_dir() and not (dest / MANIFEST).is_file() and any(dest.iterdir()):
        raise DataError(
            f"{dest} is not empty and holds no pulled bundle ({MANIFEST}); it is left alone.",
            fix="choose another --to, or empty that folder.",
        )

    echo("Terms of the data sources (by pulling you agree to use them accordingly):")
    for line in terms_text(sources):
        echo(line)

    result = PullResult(dest=dest)
    data: dict[str, bytes] = {}
    for s in sources:
        got, how = fetch_source(s, mirror=mirror, local=local, cache=cache)
        if got is None:
            echo(f"  {s.key}: not supplied ({s.note or 'no pinned public copy'})")
            continue
        data[s.key] = got
        (result.from_cache if how == "cache" else result.fetched).append(s.key)
        where = "in the download cache" if how == "cache" else f"{how} {source_location(s, mirror, local)}"
        check = "format checked when built" if s.accept == "format" else "sha256 ok"
        echo(f"  {s.key}: {where}, {check}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    _clean_partials(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the bundle is an ordinary folder
    try:
        files: dict[str, ManifestFile] = {}
        for p in products:
            recipe = _choose(p, data)
            if recipe is None:
                # the reason names what the last recipe (the default way to build the file) lacks
                absent = [k for k in p.recipes[-1].needs if k not in data]
                notes = "; ".join(by_key[k].note or f"{k} is not available" for k in absent)
                result.missing.append(MissingFile(file=p.file, sources=list(p.needs), reason=notes))
                continue
            try:
                out = recipe.build(*(data[k] for k in recipe.needs))
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"building {p.file} failed: {_first_line(exc)}.") from exc
            target = tmp / p.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(out)
            edition = edition_from_sources(recipe.needs, {k: sha256_bytes(data[k]) for k in recipe.needs})
            files[p.file] = ManifestFile(
                sha256=sha256_bytes(out), size=len(out), sources=list(recipe.needs), edition=edition
            )
            result.built.append(p.file)
            if edition is not None:
                result.editions[p.file] = edition
                echo(f"{p.file}: edition {edition}, {DESCRIPTIONS[edition]}")
        manifest = Manifest(
            clca_version=__version__,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            sources=[_manifest_source(s, data) for s in sources],
            files=files,
            missing=result.missing,
        )
        readme = _readme(manifest, sources)
        (tmp / README).write_bytes(readme)
        manifest.files[README] = ManifestFile(sha256=sha256_bytes(readme), size=len(readme), sources=[])
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _swap_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
