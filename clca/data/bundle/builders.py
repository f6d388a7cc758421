"""Builders of the bundle's files: pure functions, source bytes in, file bytes out.

Each builder makes one file of :data:`clca.data.bundle.catalog.PRODUCTS` exactly as the bundle's README
describes it, so that tests can run them on small extracts of the real sources.
"""

from __future__ import annotations

import json
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


def inglehart_welzel_csv(raw: bytes) -> bytes:
    """``culture/inglehart_welzel_2022.csv``: the map points file itself, after a format check.

    Checks the header ``iso3,name,trad_sec,surv_self`` and that both coordinates parse as numbers on every
    row; the bytes are kept as they are (the pinned sha256 already fixes the content).
    """
    lines = raw.decode("utf-8").splitlines()
    if not lines or lines[0] != "iso3,name,trad_sec,surv_self":
        raise DataError(
            "the Inglehart-Welzel file does not start with the header iso3,name,trad_sec,surv_self."
        )
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split(",")
        try:
            if len(parts) != 4:
                raise ValueError
            float(parts[2]), float(parts[3])
        except ValueError:
            raise DataError(f"the Inglehart-Welzel file, line {lineno}: expected iso3,name,x,y.") from None
    return raw


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
