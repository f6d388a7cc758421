"""Culture profiles: Hofstede and Inglehart–Welzel scores put into words for prompts (as in CLCA).

CLCA's role-play system prompt describes a culture by its six Hofstede dimensions and its position on the
Inglehart–Welzel (IW) cultural map, in words. The paper prints the words for its five cultures only; this
module derives them with one banding rule per dimension, calibrated so that the five paper profiles come out
*verbatim* (including the paper's odd phrasing), and applies the same rule to every other country.

Hofstede (2015 release, scores 0–100; ``culture/hofstede_2015.csv``). Four bands per dimension, cut points
``(low, mid, high)``: score >= high -> band 1, >= mid -> band 2, >= low -> band 3, else band 4.

========================  ===============  ==============================================================
dimension                 cuts low/mid/hi  words, band 1 .. band 4
========================  ===============  ==============================================================
power distance (pdi)      30 / 50 / 70     highly hierarchical, moderately hierarchical, moderately equal,
                                           highly equal
individualism (idv)       20 / 40 / 60     highly individualistic, moderately individualistic, moderately
                                           collective, highly collective
masculinity (mas)         30 / 50 / 70     high motivation for achievement and success, moderate
                                           motivation for achievement and success, moderate focus on
                                           caring and quality of life, high focus on caring and quality
                                           of life
uncertainty avoid. (uai)  30 / 50 / 70     high uncertainty avoidance, moderately uncertainty avoidance,
                                           moderately risk-taking, highly risk-taking
long-term orient. (lto)   30 / 50 / 85     highly pragmatic, moderately pragmatic, moderately normative,
                                           highly normative
indulgence (ivr)          30 / 50 / 70     highly indulgent, moderately indulgent, moderately restrained,
                                           highly restrained
========================  ===============  ==============================================================

The default bands are the scale midpoint 50 ± 20. Two dimensions need other cuts to reproduce the paper:
individualism is centred on 40 (the paper calls Japan, 46, "moderately individualistic" and China, 20,
"moderately collective"; Hofstede's individualism scores are skewed low, median ≈ 35 over the bundle), and
long-term orientation's "highly" band starts at 85 (the paper calls Germany, 83, "moderately pragmatic" but
China, 87, and Japan, 88, "highly pragmatic"). Missing scores (``#NULL!``) are left out of the words.

Inglehart–Welzel map points (:attr:`DataBundle.inglehart_welzel <clca.data.layout.DataBundle.inglehart_welzel>`:
``culture/inglehart_welzel.csv``, or ``culture/inglehart_welzel_2022.csv`` in older bundles; the edition,
official 2022 points or the IVS wave-7 points, is :func:`clca.data.editions.inglehart_welzel_edition`;
``surv_self`` > 0 self-expression, < 0 survival; ``trad_sec`` > 0 secular-rational, < 0 traditional; 0 counts
as the positive pole). Three bands on the absolute value: ``|x| < 0.3`` little, ``< 1.5`` moderate, else
uttermost. Words:
``surv_self`` -> "little / moderate / uttermost {survival | self-expression} values";
``trad_sec`` -> "slightly / moderately / uttermost {traditional | secular}" ("slightly" is ours: no paper
culture falls in that band; "uttermost secular" is the paper's own wording).

Resulting paper profiles on the official 2022 points (tested verbatim in ``tests/test_culture.py``; the IVS
edition words China differently: "moderate survival values"; see docs/paper.md):

* China: highly hierarchical, moderately collective, moderate motivation for achievement and success,
  moderately risk-taking, highly pragmatic, highly restrained / little survival values, moderately secular.
* Japan: moderately hierarchical, moderately individualistic, high motivation for achievement and success,
  high uncertainty avoidance, highly pragmatic, moderately restrained / moderate self-expression values,
  uttermost secular.
* Germany: moderately equal, highly individualistic, moderate motivation for achievement and success,
  moderately uncertainty avoidance, moderately pragmatic, moderately restrained / uttermost self-expression
  values, moderately secular.
* Great Britain: moderately equal, highly individualistic, moderate motivation for achievement and success,
  moderately risk-taking, moderately pragmatic, moderately indulgent / uttermost self-expression values,
  moderately secular.
* Mexico: highly hierarchical, moderately collective, moderate motivation for achievement and success, high
  uncertainty avoidance, highly normative, highly indulgent / little self-expression values, moderately
  traditional.
"""

from __future__ import annotations

import csv
import difflib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from clca.culture.names import Country, all_names, find_country, normalise
from clca.data.layout import DataBundle
from clca.data.wvs import read_wvs_rows
from clca.errors import DataError
from clca.runs import slug as runs_slug
from clca.settings import data_dir as _data_dir

#: Hofstede dimensions in the order they are worded.
HOFSTEDE_DIMS: tuple[str, ...] = ("pdi", "idv", "mas", "uai", "ltowvs", "ivr")


class Band(BaseModel):
    """A four-band wording rule for one Hofstede dimension (cut points and words, high to low)."""

    model_config = ConfigDict(frozen=True)
    low: float
    mid: float
    high: float
    words: tuple[str, str, str, str]

    def word(self, score: float) -> str:
        """The words for ``score``: band 1 when ``score >= high`` ... band 4 when ``score < low``."""
        if score >= self.high:
            return self.words[0]
        if score >= self.mid:
            return self.words[1]
        if score >= self.low:
            return self.words[2]
        return self.words[3]


HOFSTEDE_BANDS: dict[str, Band] = {
    "pdi": Band(
        low=30,
        mid=50,
        high=70,
        words=("highly hierarchical", "moderately hierarchical", "moderately equal", "highly equal"),
    ),
    "idv": Band(
        low=20,
        mid=40,
        high=60,
        words=(
            "highly individualistic",
            "moderately individualistic",
            "moderately collective",
            "highly collective",
        ),
    ),
    "mas": Band(
        low=30,
        mid=50,
        high=70,
        words=(
            "high motivation for achievement and success",
            "moderate motivation for achievement and success",
            "moderate focus on caring and quality of life",
            "high focus on caring and quality of life",
        ),
    ),
    "uai": Band(
        low=30,
        mid=50,
        high=70,
        words=(
            "high uncertainty avoidance",
            "moderately uncertainty avoidance",
            "moderately risk-taking",
            "highly risk-taking",
        ),
    ),
    "ltowvs": Band(
        low=30,
        mid=50,
        high=85,
        words=("highly pragmatic", "moderately pragmatic", "moderately normative", "highly normative"),
    ),
    "ivr": Band(
        low=30,
        mid=50,
        high=70,
        words=("highly indulgent", "moderately indulgent", "moderately restrained", "highly restrained"),
    ),
}

#: Inglehart–Welzel bands on |score|: below LITTLE -> little, below UTTERMOST -> moderate, else uttermost.
IW_LITTLE = 0.3
IW_UTTERMOST = 1.5


def iw_level(score: float) -> int:
    """0 (little), 1 (moderate) or 2 (uttermost) for an Inglehart–Welzel map coordinate."""
    mag = abs(score)
    if mag < IW_LITTLE:
        return 0
    if mag < IW_UTTERMOST:
        return 1
    return 2


def iw_words(trad_sec: float, surv_self: float) -> list[str]:
    """Words for an Inglehart–Welzel map point: ``[survival/self-expression, traditional/secular]``."""
    ss_pole = "self-expression" if surv_self >= 0 else "survival"
    ss = f"{('little', 'moderate', 'uttermost')[iw_level(surv_self)]} {ss_pole} values"
    ts_pole = "secular" if trad_sec >= 0 else "traditional"
    ts = f"{('slightly', 'moderately', 'uttermost')[iw_level(trad_sec)]} {ts_pole}"
    return [ss, ts]


def hofstede_words(scores: dict[str, float | None]) -> list[str]:
    """Words for the Hofstede dimensions present in ``scores`` (keys as in :data:`HOFSTEDE_DIMS`)."""
    return [HOFSTEDE_BANDS[d].word(v) for d in HOFSTEDE_DIMS if (v := scores.get(d)) is not None]


class CultureProfile(BaseModel):
    """A culture's name, adjective, raw dimension scores and the words CLCA puts into its prompts."""

    model_config = ConfigDict(frozen=True)
    country: str  # canonical name, e.g. "Great Britain"
    demonym: str  # adjective for prompts, e.g. "British"
    iso3: str = ""
    hofstede: dict[str, float | None] | None = None  # pdi, idv, mas, uai, ltowvs, ivr (0-100)
    inglehart_welzel: dict[str, float] | None = None  # trad_sec, surv_self
    hofstede_words: list[str] = []
    iw_words: list[str] = []
    in_wvs: bool = False  # the WVS wave 7 distributions in the bundle cover this country

    def describe(self) -> str:
        """The culture described for a prompt (one or two sentences; empty scores are left out)."""
        parts: list[str] = []
        if self.hofstede_words:
            parts.append(
                f"People in {self.demonym} culture are, on Hofstede's cultural dimensions: "
                f"{', '.join(self.hofstede_words)}."
            )
        if self.iw_words:
            parts.append(
                f"On the Inglehart–Welzel cultural map, {self.demonym} culture has "
                f"{' and is '.join(self.iw_words)}."
            )
        if not parts:
            return f"The conversation takes place in {self.demonym} culture."
        return " ".join(parts)


def _num(text: str) -> float | None:
    text = text.strip()
    if not text or text.upper() == "#NULL!":
        return None
    return float(text)


def _csv_rows(path: Path, delimiter: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a bundle CSV; a non-UTF-8 file is a one-line error."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(enumerate(csv.DictReader(fh, delimiter=delimiter), 2))
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not UTF-8 text.", fix="restore the file from the clca data bundle."
        ) from None


@lru_cache(maxsize=8)
def _load(
    base: Path,
) -> tuple[
    dict[str, dict[str, float | None]], dict[str, dict[str, float]], frozenset[str], dict[str, Country]
]:
    """Read the bundle's culture tables, keyed by canonical country name."""
    countries: dict[str, Country] = {}

    def canon(raw: str) -> str:
        c = find_country(raw)
        if c is None:  # a new row in a newer bundle: keep it under its own name
            c = Country(raw.strip(), "", raw.strip())
        countries[c.name] = c
        return c.name

    bundle = DataBundle(base)
    hof: dict[str, dict[str, float | None]] = {}
    path = bundle.hofstede
    for lineno, row in _csv_rows(path, ";"):
        try:
            scores = {d: _num(row[d]) for d in HOFSTEDE_DIMS}
            name = str(row["country"])
        except (KeyError, ValueError, TypeError, AttributeError):
            raise DataError(
                f"{path}, line {lineno}: expected a country and numbers or #NULL! in columns "
                f"{', '.join(HOFSTEDE_DIMS)}.",
                fix="restore the file from the clca data bundle.",
            ) from None
        hof[canon(name)] = scores

    iw: dict[str, dict[str, float]] = {}
    path = bundle.inglehart_welzel
    for lineno, row in _csv_rows(path, ","):
        try:
            point = {"trad_sec": float(row["trad_sec"]), "surv_self": float(row["surv_self"])}
            iso3, raw_name = str(row["iso3"]), str(row["name"])
        except (KeyError, ValueError, TypeError, AttributeError):
            raise DataError(
                f"{path}, line {lineno}: expected iso3, name and numeric trad_sec and surv_self.",
                fix="restore the file from the clca data bundle.",
            ) from None
        found = find_country(iso3) or find_country(raw_name)
        iw[canon(found.name if found else raw_name)] = point

    wvs: set[str] = set()
    wvs_path = bundle / DataBundle.WVS_DISTRIBUTIONS
    if wvs_path.exists():  # optional: a bundle without WVS data still has profiles
        seen_raw: set[str] = set()
        for wvs_row in read_wvs_rows(wvs_path):
            raw = wvs_row.country
            if raw and raw not in seen_raw:
                seen_raw.add(raw)
                wvs.add(canon(raw))
    return hof, iw, frozenset(wvs), countries


def _tables() -> tuple[
    dict[str, dict[str, float | None]], dict[str, dict[str, float]], frozenset[str], dict[str, Country]
]:
    return _load(_data_dir().resolve())


def list_cultures() -> list[str]:
    """Canonical names of every culture with Hofstede or Inglehart–Welzel scores or WVS data, sorted."""
    hof, iw, wvs, _ = _tables()
    return sorted(set(hof) | set(iw) | set(wvs))


def resolve_country(country: str) -> str:
    """The canonical name for ``country`` (alias, ISO3 code or demonym allowed); DataError when unknown."""
    known = list_cultures()
    c = find_country(country)
    if c is not None and c.name in known:
        return c.name
    by_norm = {normalise(k): k for k in known}
    if normalise(country) in by_norm:
        return by_norm[normalise(country)]
    close = difflib.get_close_matches(country, sorted(set(known) | set(all_names())), n=4, cutoff=0.6)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise DataError(
        f"unknown culture {country!r}: no Hofstede, Inglehart–Welzel or WVS data for it.{hint}",
        fix="use a country name from `clca.culture.list_cultures()` (e.g. 'Great Britain', 'China').",
    )


def get_profile(country: str) -> CultureProfile:
    """The :class:`CultureProfile` of ``country`` ("UK", "United Kingdom", "GBR" -> "Great Britain")."""
    name = resolve_country(country)
    hof, iw, wvs, countries = _tables()
    c = countries.get(name) or find_country(name) or Country(name, "", name)
    h = hof.get(name)
    if h is not None and all(v is None for v in h.values()):
        h = None
    point = iw.get(name)
    return CultureProfile(
        country=name,
        demonym=c.demonym,
        iso3=c.iso3,
        hofstede=dict(h) if h is not None else None,
        inglehart_welzel=dict(point) if point is not None else None,
        hofstede_words=hofstede_words(h) if h is not None else [],
        iw_words=iw_words(point["trad_sec"], point["surv_self"]) if point is not None else [],
        in_wvs=name in wvs,
    )


def slug(country: str) -> str:
    """A file/id-safe slug for a culture name ("Great Britain" -> "great-britain")."""
    return runs_slug(country)


__all__ = [
    "HOFSTEDE_BANDS",
    "HOFSTEDE_DIMS",
    "IW_LITTLE",
    "IW_UTTERMOST",
    "Band",
    "CultureProfile",
    "get_profile",
    "hofstede_words",
    "iw_words",
    "list_cultures",
    "resolve_country",
    "slug",
]
