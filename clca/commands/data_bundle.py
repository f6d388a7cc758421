"""``clca data pull`` (fetch and build the data bundle from pinned public sources) and ``clca data status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clca.commands.eval import data_app
from clca.errors import DataError


def _local_sources(specs: list[str] | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in specs or []:
        key, sep, path = spec.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise DataError(
                f"--source {spec!r} is not KEY=PATH.", fix="e.g. --source inglehart_welzel_2022=map.csv."
            )
        out[key.strip()] = Path(path.strip()).expanduser()
    return out


@data_app.command("pull")
def data_pull(
    to: Annotated[
        Path | None,
        typer.Option(
            "--to", help="Where to build the bundle (default: $CLCA_CACHE_DIR/data or ~/.cache/clca/data)."
        ),
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            help="Read every source from a mirror instead (a folder, file:// or http(s):// base URL "
            "holding <owner>/<repo>/<commit>/<path>; see docs/data.md).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if a pulled bundle is there.")] = False,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="KEY=PATH: read that source from a local file (sha256-checked; the official Inglehart-Welzel "
            "points, inglehart_welzel_2022=PATH, are checked by format). Repeatable.",
        ),
    ] = None,
) -> None:
    """Download the bundle's public sources (pinned, sha256-checked) and build the data bundle.

    Exits non-zero (one-line error) when a file of the bundle could not be built; the bundle then records
    the gap and `clca data status` reports it incomplete.
    """
    from clca.data import bundle
    from clca.settings import default_bundle_dir

    dest = to.expanduser() if to is not None else default_bundle_dir()
    result = bundle.pull(
        dest,
        mirror=mirror,
        local=_local_sources(source),
        force=force,
        sources=bundle.SOURCES,
        products=bundle.PRODUCTS,
        echo=typer.echo,
    )
    if result.already:
        return
    typer.echo(
        f"built {len(result.built)} files into {result.dest} "
        f"({len(result.fetched)} sources fetched, {len(result.from_cache)} from the download cache)"
    )
    for miss in result.missing:
        typer.echo(f"not built: {miss.file}: {miss.reason}", err=True)
    if result.dest != default_bundle_dir().absolute():
        typer.echo(f"use it with --data-dir {result.dest} or CLCA_DATA_DIR={result.dest}")
    if result.missing:
        files = ", ".join(m.file for m in result.missing)
        keys = sorted({k for m in result.missing for k in m.sources})
        raise DataError(
            f"the bundle at {result.dest} is incomplete: {files} not built (sources {', '.join(keys)} "
            "not available).",
            fix="supply them from a mirror (--mirror, or CLCA_DATA_MIRROR for scripts/setup.sh) or with "
            "--source KEY=PATH, then rerun `clca data pull` (see docs/data.md).",
        )


@data_app.command("status")
def data_status() -> None:
    """Which data bundle is in use, where it comes from, whether its checksums hold, and which edition of
    the Inglehart-Welzel map points it holds.

    A bundle without a manifest is listed with each file's sha256. A pulled bundle whose files differ from
    its manifest, or that lacks a file it could not build, ends with a one-line error (exit 2).
    """
    from clca.data import bundle
    from clca.settings import data_dir

    st = bundle.bundle_status(data_dir())
    for line in bundle.status_lines(st):
        typer.echo(line)
    if st.problems:
        raise DataError(
            f"the bundle at {st.path} does not match its manifest ({len(st.problems)} files).",
            fix="rebuild it with `clca data pull --force` (add --to for a bundle outside the cache).",
        )
    if st.manifest is not None and st.manifest.missing:
        missing = ", ".join(m.file for m in st.manifest.missing)
        raise DataError(
            f"the bundle at {st.path} is incomplete: {missing} not built.",
            fix="rerun `clca data pull --force` with the missing sources (--source KEY=PATH, see docs/data.md).",
        )
