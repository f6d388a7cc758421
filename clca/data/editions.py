"""Which edition of the Inglehart–Welzel map points a bundle holds (:func:`inglehart_welzel_edition`).

The map file (:attr:`clca.data.layout.DataBundle.INGLEHART_WELZEL`) comes in editions:

- ``ivs-wave7`` (the default, built by every ``clca data pull``): computed from the Integrated Values Surveys
  (WVS + EVS) country-year aggregates published by open-numbers, each country's latest year in 2017–2023;
- ``wvsa-2022``: the World Values Survey Association's official 2022 map points, a file with no pinned public
  copy that the user supplies (``clca data pull --source inglehart_welzel_2022=FILE``);
- ``user``: any other supplied file that passes the format check;
- ``unknown``: a file no manifest describes and whose sha256 matches no known edition.

The edition is read from the bundle's manifest when it describes the file (the edition it recorded, or the
sources the file was built from), else from the file's sha256. Run manifests and reports name it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from clca.data.bundle_manifest import read_manifest, sha256_file
from clca.data.layout import DataBundle

EditionId = Literal["ivs-wave7", "wvsa-2022", "user", "unknown"]

#: the source key of the official 2022 points (optional, supplied by the user)
OFFICIAL_SOURCE = "inglehart_welzel_2022"
#: the source keys the IVS edition is built from
IVS_SOURCES: tuple[str, str, str] = ("ivs_tradagg", "ivs_survsagg", "ivs_geo_entities")
#: sha256 of the WVSA's official 2022 points file (110 countries, 3043 bytes)
OFFICIAL_SHA256 = "b8f580a27d9c052e7fcff2f45d9c05cdf88442cef13f8d84c9c8c50ee8e15c71"
#: sha256 of the IVS edition built from the pinned sources (``ivs_map_points_csv``; 87 countries)
IVS_WAVE7_SHA256 = "89fa7c018a340656535b9a6e00405540b1f692f7095f43e3f9d7359d8137f7a8"
#: the years of the IVS edition: WVS wave 7 fieldwork (2017-2022) plus the 2023 surveys of the wave-7
#: releases (e.g. India); EVS 2017 ran 2017-2021
IVS_WAVE7_YEARS: tuple[int, int] = (2017, 2023)

_IVS_REPO = "open-numbers/ddf--open_numbers--integrated_values_surveys_indicators"
IVS_COMMIT = "4cfde16b97e85deeff056ca56af3cc3744f5b8dd"

DESCRIPTIONS: dict[str, str] = {
    "ivs-wave7": (
        "Inglehart-Welzel points computed from the Integrated Values Surveys (WVS + EVS) aggregates, each "
        f"country's latest survey year in {IVS_WAVE7_YEARS[0]}-{IVS_WAVE7_YEARS[1]} (clca's default edition)"
    ),
    "wvsa-2022": "the World Values Survey Association's official 2022 Inglehart-Welzel map points (WVS wave 7)",
    "user": "Inglehart-Welzel points from a user-supplied file that is not the official 2022 file",
    "unknown": "Inglehart-Welzel points of unknown origin (no manifest names their sources; no known sha256)",
}


_IDS: dict[str, EditionId] = {
    "ivs-wave7": "ivs-wave7",
    "wvsa-2022": "wvsa-2022",
    "user": "user",
    "unknown": "unknown",
}


class MapEdition(BaseModel):
    """The edition of a bundle's Inglehart–Welzel map points, and how that was decided."""

    model_config = ConfigDict(frozen=True)

    id: EditionId
    description: str
    source: str
    file: str
    sha256: str
    decided_by: Literal["manifest", "sha256"]

    def line(self) -> str:
        """One line for people: ``ivs-wave7 (description; source)``."""
        return f"{self.id} ({self.description}; source: {self.source})"


def edition_from_sources(sources: Sequence[str], sha256: Mapping[str, str]) -> EditionId | None:
    """The edition of a map file built from ``sources`` (``sha256``: each source's sha256); None otherwise."""
    if OFFICIAL_SOURCE in sources:
        return "wvsa-2022" if sha256.get(OFFICIAL_SOURCE) == OFFICIAL_SHA256 else "user"
    if set(IVS_SOURCES) <= set(sources):
        return "ivs-wave7"
    return None


def edition_from_sha256(sha256: str) -> EditionId:
    """The edition of a map file known only by its sha256: the official file, the pinned IVS build, or unknown."""
    known: dict[str, EditionId] = {OFFICIAL_SHA256: "wvsa-2022", IVS_WAVE7_SHA256: "ivs-wave7"}
    return known.get(sha256, "unknown")


def _source_text(edition: EditionId, sha256: str) -> str:
    if edition == "ivs-wave7":
        return (
            f"{_IVS_REPO}@{IVS_COMMIT}: ddf--datapoints--tradagg--by--geo--year.csv, "
            "ddf--datapoints--survsagg--by--geo--year.csv (surv_self = -survsagg), ddf--entities--geo--country.csv"
        )
    if edition == "wvsa-2022":
        return f"World Values Survey Association, Inglehart-Welzel World Cultural Map 2022 (supplied file, sha256 {sha256})"
    if edition == "user":
        return f"a user-supplied file, sha256 {sha256}"
    return f"not recorded; the file's sha256 is {sha256}"


def inglehart_welzel_edition(bundle: DataBundle | None = None) -> MapEdition:
    """The edition of the map points in ``bundle`` (default: the bundle in use).

    From the bundle's manifest when it lists the file with the sha256 the file still has (the recorded
    edition, or the sources it was built from); otherwise from the file's sha256 (:func:`edition_from_sha256`).
    A bundle without the map file is the usual one-line DataError of :attr:`DataBundle.inglehart_welzel`.
    """
    b = bundle if bundle is not None else DataBundle.current()
    path = b.inglehart_welzel
    digest = sha256_file(path)
    rel = path.relative_to(b.root).as_posix()
    manifest = read_manifest(b.root)
    rec = manifest.files.get(rel) if manifest is not None else None
    edition: EditionId | None = None
    if manifest is not None and rec is not None and rec.sha256 == digest:
        edition = _IDS.get(rec.edition or "") or edition_from_sources(
            rec.sources, {s.key: s.sha256 for s in manifest.sources}
        )
    decided_by: Literal["manifest", "sha256"] = "manifest"
    if edition is None:
        edition, decided_by = edition_from_sha256(digest), "sha256"
    return MapEdition(
        id=edition,
        description=DESCRIPTIONS[edition],
        source=_source_text(edition, digest),
        file=rel,
        sha256=digest,
        decided_by=decided_by,
    )


__all__ = [
    "DESCRIPTIONS",
    "IVS_COMMIT",
    "IVS_SOURCES",
    "IVS_WAVE7_SHA256",
    "IVS_WAVE7_YEARS",
    "OFFICIAL_SHA256",
    "OFFICIAL_SOURCE",
    "EditionId",
    "MapEdition",
    "edition_from_sha256",
    "edition_from_sources",
    "inglehart_welzel_edition",
]
