"""Builders of the bundle's files: pure functions, source bytes in, file bytes out.

Each builder makes one file of :data:`clca.data.bundle.catalog.PRODUCTS` exactly as the bundle's README
describes it, so that tests can run them on small extracts of the real sources.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from clca.errors import DataError


def verbatim(data: bytes) -> bytes:
    """The source file unchanged (its sha256 is already checked against the pinned one)."""
    return data


def hofstede_csv(raw: bytes) -> bytes:
    """``culture/hofstede_2015.csv`` from geerthofstede.com's ``6-dimensions-for-website-2015-08-16.csv``.

    The published file is ``;``-separated with CRLF line ends; the bundle's copy is the same text with LF
    line ends (header ``ctr;country;pdi;idv;mas;uai;ltowvs;ivr``, missing values ``#NULL!``). Nothing else
    changes: same rows, same order, same values.
    """
    text = raw.decode("utf-8").replace("\r\n", "\n")
    lines = text.split("\n")
    header = "ctr;country;pdi;idv;mas;uai;ltowvs;ivr"
    if lines[0] != header:
        raise DataError(
            f"the Hofstede file starts with {lines[0][:60]!r}, not {header!r}.",
            fix="use the pinned 2015-08-16 release (see docs/data.md).",
        )
    for lineno, line in enumerate(lines[1:], 2):
        if line and line.count(";") != 7:
            raise DataError(f"the Hofstede file, line {lineno}: expected 8 ';'-separated fields.")
    return text.encode("utf-8") if text.endswith("\n") else (text + "\n").encode("utf-8")


#: the map file's header (both editions)
MAP_HEADER: tuple[str, str, str, str] = ("iso3", "name", "trad_sec", "surv_self")
#: the range both coordinates must lie in (the official 2022 map spans about -2.1 .. 2.6)
MAP_RANGE: tuple[float, float] = (-4.0, 4.0)
#: a supplied map file must have at least this many countries (the official 2022 file has 110)
MAP_MIN_ROWS = 30
_ISO3 = re.compile(r"[A-Z]{3}")


def _text(raw: bytes, what: str, fix: str) -> str:
    """``raw`` as UTF-8 text with LF line ends (a UTF-8 BOM dropped); a one-line DataError otherwise."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{what} is not UTF-8 text.", fix=fix) from None
    return text.replace("\r\n", "\n")


def inglehart_welzel_csv(raw: bytes) -> bytes:
    """``culture/inglehart_welzel.csv`` from a supplied map points file (the WVSA's official 2022 points).

    The file is accepted by its content, not by one sha256: header ``iso3,name,trad_sec,surv_self``; on
    every row a unique upper-case three-letter ISO3 code, a non-empty name and two numbers within
    :data:`MAP_RANGE`; at least :data:`MAP_MIN_ROWS` rows. The bytes are kept as they are, except that a
    UTF-8 BOM is dropped and CRLF line ends become LF. Any problem is a one-line DataError naming the line.
    """
    fix = (
        "supply the points as CSV with the header iso3,name,trad_sec,surv_self (docs/data.md), or leave "
        "--source inglehart_welzel_2022 out to build the IVS edition."
    )
    what = "the supplied Inglehart-Welzel points (inglehart_welzel_2022)"
    text = _text(raw, what, fix)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != MAP_HEADER:
        raise DataError(f"{what} do not start with the header {','.join(MAP_HEADER)}.", fix=fix)
    seen: set[str] = set()
    lo, hi = MAP_RANGE
    body = [(lineno, row) for lineno, row in enumerate(rows[1:], 2) if row]
    for lineno, row in body:
        where = f"{what}, line {lineno}"
        if len(row) != 4:
            raise DataError(
                f"{where}: expected 4 fields iso3,name,trad_sec,surv_self, got {len(row)}.", fix=fix
            )
        iso3, name, *coords = row
        if not _ISO3.fullmatch(iso3):
            raise DataError(f"{where}: {iso3!r} is not an upper-case three-letter ISO3 code.", fix=fix)
        if iso3 in seen:
            raise DataError(f"{where}: a second row for {iso3}.", fix=fix)
        seen.add(iso3)
        if not name.strip():
            raise DataError(f"{where}: the name is empty.", fix=fix)
        for col, value in zip(MAP_HEADER[2:], coords, strict=True):
            try:
                x = float(value)
            except ValueError:
                raise DataError(f"{where}: {col} {value!r} is not a number.", fix=fix) from None
            if not lo <= x <= hi:
                raise DataError(f"{where}: {col} {value} is outside [{lo:g}, {hi:g}].", fix=fix)
    if len(body) < MAP_MIN_ROWS:
        raise DataError(f"{what} have {len(body)} rows; a map needs at least {MAP_MIN_ROWS}.", fix=fix)
    return text.encode("utf-8")


def _ivs_values(raw: bytes, column: str) -> dict[tuple[str, int], float]:
    """(geo, year) -> value of an open-numbers DDF datapoints file ``geo,year,<column>``."""
    what = f"the IVS datapoints file for {column}"
    fix = "use the pinned open-numbers file (see docs/data.md)."
    rows = list(csv.reader(io.StringIO(_text(raw, what, fix))))
    if not rows or rows[0] != ["geo", "year", column]:
        raise DataError(f"{what} does not start with the header geo,year,{column}.", fix=fix)
    out: dict[tuple[str, int], float] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        try:
            geo, year, value = row[0], int(row[1]), float(row[2])
            if len(row) != 3 or not geo or not math.isfinite(value):
                raise ValueError
        except (ValueError, IndexError):
            raise DataError(f"{what}, line {lineno}: expected geo,year,number.", fix=fix) from None
        if (geo, year) in out:
            raise DataError(f"{what}, line {lineno}: a second value for {geo} {year}.", fix=fix)
        out[(geo, year)] = value
    return out


def _ivs_names(raw: bytes) -> dict[str, str]:
    """geo -> name of open-numbers' ``ddf--entities--geo--country.csv`` (``country,name``)."""
    what = "the IVS country entities file"
    fix = "use the pinned open-numbers file (see docs/data.md)."
    rows = list(csv.reader(io.StringIO(_text(raw, what, fix))))
    if not rows or rows[0][:2] != ["country", "name"]:
        raise DataError(f"{what} does not start with the header country,name.", fix=fix)
    out: dict[str, str] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) < 2 or not row[0] or not row[1].strip():
            raise DataError(f"{what}, line {lineno}: expected a geo key and a name.", fix=fix)
        out[row[0]] = row[1].strip()
    return out


def _coordinate(x: float) -> str:
    """A map coordinate as the official file writes it: rounded to 4 decimals, shortest form, no -0.0."""
    return repr(round(x, 4) + 0.0)


def ivs_map_points_csv(
    tradagg: bytes,
    survsagg: bytes,
    entities: bytes,
    *,
    iso3: Mapping[str, str],
    years: tuple[int, int],
) -> bytes:
    """``culture/inglehart_welzel.csv``, IVS edition, from open-numbers' Integrated Values Surveys aggregates.

    Inputs: ``ddf--datapoints--tradagg--by--geo--year.csv`` (``geo,year,tradagg``: traditional (-) vs
    secular-rational (+) values), ``ddf--datapoints--survsagg--by--geo--year.csv`` (``geo,year,survsagg``:
    note the sign, positive means *survival*) and ``ddf--entities--geo--country.csv`` (``country,name``).
    For each geo, its latest year within ``years`` (inclusive) that has both values gives one row:

    - ``iso3``: ``iso3[geo]`` (the catalog's explicit table; a geo in the window without an entry is an
      error, and so are two geos of one country in the window, e.g. ``russia`` and ``russian_federation``);
    - ``name``: the entities file's name of the geo;
    - ``trad_sec`` = ``tradagg``; ``surv_self`` = ``-survsagg`` (positive = self-expression, as on the map);
      both rounded to 4 decimals like the official file.

    Rows are sorted by name; header ``iso3,name,trad_sec,surv_self``; LF line ends.
    """
    trad = _ivs_values(tradagg, "tradagg")
    surv = _ivs_values(survsagg, "survsagg")
    names = _ivs_names(entities)
    first, last = years
    fix = "use the pinned open-numbers files (see docs/data.md)."
    latest: dict[str, int] = {}
    for key in sorted(set(trad) | set(surv)):
        geo, year = key
        if not first <= year <= last:
            continue
        if key not in trad or key not in surv:
            has, lacks = ("tradagg", "survsagg") if key in trad else ("survsagg", "tradagg")
            raise DataError(f"the IVS files give {geo} {year} a {has} but no {lacks} value.", fix=fix)
        latest[geo] = max(year, latest.get(geo, year))
    by_iso: dict[str, str] = {}
    rows: list[tuple[str, str, float, float]] = []
    for geo, year in sorted(latest.items()):
        code = iso3.get(geo)
        if code is None:
            raise DataError(
                f"the IVS geo {geo!r} ({year}) has no ISO3 code.",
                fix="add it to IVS_GEO_ISO3 in clca/data/bundle/catalog.py.",
            )
        if code in by_iso:
            raise DataError(
                f"the IVS geos {by_iso[code]!r} and {geo!r} are both {code} within {first}-{last}; "
                "one country needs one key.",
                fix="narrow the window or drop one key (IVS_GEO_ISO3 in clca/data/bundle/catalog.py).",
            )
        by_iso[code] = geo
        name = names.get(geo)
        if name is None:
            raise DataError(f"the IVS geo {geo!r} is not in the country entities file.", fix=fix)
        rows.append((code, name, trad[(geo, year)], -surv[(geo, year)]))
    if not rows:
        raise DataError(f"the IVS files have no country with data in {first}-{last}.", fix=fix)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MAP_HEADER)
    for code, name, ts, ss in sorted(rows, key=lambda r: (r[1], r[0])):
        writer.writerow((code, name, _coordinate(ts), _coordinate(ss)))
    return out.getvalue().encode("utf-8")


def env_subsets_json(used_env: bytes) -> bytes:
    """``sotopia/env_subsets.json`` from Sotopia-pi's ``data_generate/env_files/used_env.json``.

    Keeps the two subsets that describe Sotopia itself, ``sotopia_env`` (all 90 scenario ids) and
    ``sotopia_hard_env`` (the 14 "hard" ids), in that order and unchanged, and drops Sotopia-pi's own
    training/dev rounds (``SFT-round-1``, ``selftrain-round-*`` ...). Written as ``json.dumps(..., indent=1)``
    without a final newline.
    """
    try:
        d = json.loads(used_env)
        out = {k: [str(x) for x in d[k]] for k in ("sotopia_env", "sotopia_hard_env")}
    except (ValueError, KeyError, TypeError):
        raise DataError("used_env.json has no sotopia_env / sotopia_hard_env id lists.") from None
    return json.dumps(out, indent=1).encode("utf-8")


#: SimLLMCultureDist's training split covers Q1-Q163 without Q82 and Q94-Q105 (``construct_sft_data.py``:
#: ``Q_1 = [1, 164]`` and ``exclude_ques = [82, 223] + list(range(94, 106))``); the validation split is
#: Q164-Q198 and carries its question ids.
SIMLLM_TRAIN_QIDS: tuple[int, ...] = tuple(q for q in range(1, 164) if q != 82 and not 94 <= q <= 105)

_INSTRUCTION = re.compile(r"How would someone from (.+) answer the following question:\n\n")
_QUESTION_SUFFIX = " \nHere are the options: \n"
_SHARE = re.compile(r"(\d+(?:\.\d+)?)% of people select option ([A-Z])")
#: construct_sft_data.py's ``num2alpha``: answer code 1..10 -> A..J, code 0 ("hard to say") -> X.
_LETTER_CODE: dict[str, int] = {**{chr(ord("A") + i): i + 1 for i in range(10)}, "X": 0}
#: Country names of SimLLMCultureDist (the WVS ``B_COUNTRY`` labels) that the codebook's
#: ``B_COUNTRY_ALPHA`` list spells differently ("Macao", "Russian Federation") or lacks (Hong Kong).
_ISO3_FIXES: dict[str, str] = {"Hong Kong SAR": "HKG", "Macao SAR": "MAC", "Russia": "RUS"}
_SOURCE_LABEL = {"train": "train(custom_dataset.json)", "valid": "valid(sft_wvs_valid.json)"}


def _country(instruction: object, where: str) -> str:
    m = _INSTRUCTION.fullmatch(instruction) if isinstance(instruction, str) else None
    if m is None:
        raise DataError(f"{where}: unexpected instruction {str(instruction)[:60]!r}.")
    return m.group(1)


def _question_text(text: object, where: str) -> str:
    if not isinstance(text, str) or not text.endswith(_QUESTION_SUFFIX):
        raise DataError(f"{where}: the question does not end with {_QUESTION_SUFFIX!r}.")
    return text[: -len(_QUESTION_SUFFIX)]


def _train_shares(output: object, where: str) -> dict[str, float]:
    """``"89.54% of people select option A, 9.66% of people select option B, ..."`` -> {letter: percent}."""
    if not isinstance(output, str):
        raise DataError(f"{where}: the output is not a string.")
    shares: dict[str, float] = {}
    for part in output.split(", "):
        m = _SHARE.fullmatch(part)
        if m is None or m.group(2) in shares:
            raise DataError(f"{where}: cannot read {part[:60]!r} as 'P% of people select option L'.")
        shares[m.group(2)] = float(m.group(1))
    return shares


def _train_qids(blocks: Mapping[str, list[dict[str, Any]]], train_qids: Sequence[int]) -> dict[str, int]:
    """Question text -> question number for the training split, which carries no ids.

    The split lists, per country, the questions of ``train_qids`` in increasing order; a country leaves out
    the questions it has no answers for. Countries that answer all of them fix each text's number by
    position; every text must get exactly one number.
    """
    table: dict[str, int] = {}
    complete = [b for b in blocks.values() if len(b) == len(train_qids)]
    if not complete:
        raise DataError(f"no country in the training split has all {len(train_qids)} questions.")
    for block in complete:
        for qid, rec in zip(train_qids, block, strict=True):
            if table.setdefault(rec["input"], qid) != qid:
                raise DataError(f"the training split gives one question text two numbers (Q{qid}).")
    if len(set(table.values())) != len(table):
        raise DataError("the training split gives two question texts one number.")
    return table


def country_distributions_jsonl(
    train: bytes,
    valid: bytes,
    codebook: bytes,
    question_metadata: bytes,
    *,
    train_qids: Sequence[int] = SIMLLM_TRAIN_QIDS,
) -> bytes:
    """``wvs7/country_distributions.jsonl`` from SimLLMCultureDist's WVS7 aggregates and WorldValuesBench.

    Inputs: SimLLMCultureDist's ``llama_recipes/datasets/custom_dataset.json`` (training split, Q1-Q163)
    and ``dataset/sft_wvs_valid.json`` (validation split, Q164-Q198), WorldValuesBench's ``codebook.json``
    and ``question_metadata.json``. One output row per (country, question), sorted by country name, then
    question number. For each source record:

    - ``country``: the name in "How would someone from <country> answer the following question:";
      ``iso3``: the codebook's ``B_COUNTRY_ALPHA`` code of that name (three names fixed by hand:
      Hong Kong SAR -> HKG, Macao SAR -> MAC, Russia -> RUS).
    - ``qid``: ``Q<id>`` from the validation record's ``id``; the training records carry no id, so the
      number comes from the text (:func:`_train_qids`: the split lists Q1-Q163 without Q82 and
      Q94-Q105 in order, countries without answers to a question skip it).
    - ``wvs_short_label``: the codebook's ``question`` for that id; ``question``: WorldValuesBench's
      prompt wording from ``question_metadata.json`` (null where it has none, e.g. Q42, Q83-Q93,
      Q152-Q157); ``simllm_question``: the record's ``input`` without its trailing
      ``" \\nHere are the options: \\n"``.
    - ``option_codes``: the codebook's non-negative answer codes, ascending; ``options``: their labels.
    - Shares: the training ``output`` "P% of people select option L, ..." or the validation
      ``options_dist`` {L: P}; letters map to codes A..J -> 1..10 and X -> 0. Every code must have a share
      and every share a code. ``raw_percent_sum`` = sum of the percentages (2 decimals); ``probs`` = each
      percentage divided by that sum, rounded to 6 decimals, in code order.
    - ``source``: ``train(custom_dataset.json)`` or ``valid(sft_wvs_valid.json)``.

    Each row is written with ``json.dumps`` (ASCII escapes, default separators) and a newline.
    """
    try:
        train_recs = json.loads(train)
        valid_recs = json.loads(valid)
        cb = json.loads(codebook)
        qm = json.loads(question_metadata)
        alpha = {str(v): str(k) for k, v in cb["B_COUNTRY_ALPHA"]["choices"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DataError(
            "the SimLLMCultureDist or WorldValuesBench files are not in their published format."
        ) from None
    if not isinstance(train_recs, list) or not isinstance(valid_recs, list):
        raise DataError("the SimLLMCultureDist splits are not JSON lists.")

    blocks: dict[str, list[dict[str, Any]]] = {}
    for i, rec in enumerate(train_recs):
        blocks.setdefault(_country(rec.get("instruction"), f"custom_dataset.json record {i}"), []).append(rec)
    text_qid = _train_qids(blocks, train_qids)

    rows: dict[tuple[str, int], dict[str, Any]] = {}

    def add(country: str, qid: int, text: str, shares: Mapping[str, float], split: str, where: str) -> None:
        key = f"Q{qid}"
        entry = cb.get(key)
        if not isinstance(entry, dict):
            raise DataError(f"{where}: {key} is not in the WorldValuesBench codebook.")
        choices = {int(c): str(label) for c, label in entry["choices"].items() if int(c) >= 0}
        codes = sorted(choices)
        try:
            by_code = {_LETTER_CODE[letter]: float(p) for letter, p in shares.items()}
        except KeyError as exc:
            raise DataError(f"{where}: unknown option letter {exc.args[0]!r}.") from None
        if set(by_code) != set(codes):
            raise DataError(
                f"{where}: shares for codes {sorted(by_code)}, the codebook has {codes} for {key}."
            )
        iso3 = _ISO3_FIXES.get(country) or alpha.get(country)
        if iso3 is None:
            raise DataError(f"{where}: no ISO3 code for country {country!r} in the codebook.")
        total = sum(by_code[c] for c in codes)
        if total <= 0:
            raise DataError(f"{where}: the shares sum to {total}.")
        if (country, qid) in rows:
            raise DataError(f"{where}: a second row for {country} {key}.")
        meta = qm.get(key)
        rows[(country, qid)] = {
            "country": country,
            "iso3": iso3,
            "qid": key,
            "wvs_short_label": entry["question"],
            "question": meta["question"] if isinstance(meta, dict) else None,
            "simllm_question": text,
            "option_codes": codes,
            "options": [choices[c] for c in codes],
            "probs": [round(by_code[c] / total, 6) for c in codes],
            "raw_percent_sum": round(total, 2),
            "source": _SOURCE_LABEL[split],
        }

    for country, block in blocks.items():
        last = 0
        for j, rec in enumerate(block):
            where = f"custom_dataset.json, {country} record {j}"
            qid = text_qid.get(rec["input"])
            if qid is None:
                raise DataError(f"{where}: a question text that no complete country has.")
            if qid <= last:
                raise DataError(f"{where}: Q{qid} after Q{last}; the split is not in question order.")
            last = qid
            text = _question_text(rec["input"], where)
            add(country, qid, text, _train_shares(rec.get("output"), where), "train", where)
    for i, rec in enumerate(valid_recs):
        where = f"sft_wvs_valid.json record {i}"
        try:
            qid = int(rec["id"])
            shares = {str(k): float(v) for k, v in rec["options_dist"].items()}
        except (KeyError, ValueError, TypeError, AttributeError):
            raise DataError(f"{where}: expected an id and an options_dist.") from None
        country = _country(rec.get("instruction"), where)
        add(country, qid, _question_text(rec.get("input"), where), shares, "valid", where)

    lines = [json.dumps(rows[k]) + "\n" for k in sorted(rows)]
    return "".join(lines).encode("utf-8")
