"""WorldValuesBench respondent-level files, for persona prompts (user-supplied: WVS microdata is not ours).

A WorldValuesBench directory holds ``full_value_qa.tsv`` (one row per respondent: ``D_INTERVIEW`` and one
column per value question, e.g. ``Q1``, holding the WVS answer code) and ``full_demographic_qa.tsv`` (one row
per respondent: ``D_INTERVIEW``, ``B_COUNTRY`` and the demographic variables). The two are joined on
``D_INTERVIEW``. Codes are turned into words with the bundle's ``wvs7/codebook.json``; negative codes
("Don't know", "Missing", ...) mean the attribute is unknown and it is left out of the persona.

The persona attributes are the CLCA paper's (Table 20 and its released code): settlement (``H_SETTLEMENT``),
region (``H_URBRURAL``), gender (``Q260``), age (``X003R``, the age bands; ``Q262``, the age, when the band is
absent), born in the country (``Q263``), marital status (``Q273``), household size (``Q270``), education
(``Q275``), profession (``Q281``), employment (``Q279``), class (``Q287``).
"""

from __future__ import annotations

import csv
import random
import re
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from clca.data.wvs import load_codebook
from clca.errors import DataError

VALUE_FILE = "full_value_qa.tsv"
DEMO_FILE = "full_demographic_qa.tsv"

#: persona attribute (the placeholder of the paper's persona prompt) -> WVS variable(s), first present wins
PERSONA_FIELDS: dict[str, tuple[str, ...]] = {
    "settlement": ("H_SETTLEMENT",),
    "region": ("H_URBRURAL",),
    "gender": ("Q260",),
    "age": ("X003R", "Q262"),
    "born": ("Q263",),
    "marital_status": ("Q273",),
    "household": ("Q270",),
    "education": ("Q275",),
    "profession": ("Q281",),
    "employed": ("Q279",),
    "classes": ("Q287",),
}
#: how the generic persona style labels each attribute
PERSONA_LABELS: dict[str, str] = {
    "settlement": "Settlement",
    "region": "Urban or rural",
    "gender": "Gender",
    "age": "Age",
    "born": "Born in the country",
    "marital_status": "Marital status",
    "household": "Number of people in household",
    "education": "Education",
    "profession": "Profession",
    "employed": "Employment",
    "classes": "Class",
}


class Respondent(BaseModel):
    """One survey respondent: demographics in words and value answers as WVS codes."""

    model_config = ConfigDict(extra="forbid")
    id: str
    country: str
    demographics: dict[str, str] = Field(default_factory=dict)  # persona attribute -> words
    answers: dict[str, int] = Field(default_factory=dict)  # qid -> answer code (valid answers only)


def _read_tsv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    if not path.exists():
        raise DataError(
            f"respondent file {path} does not exist.",
            fix=f"pass --respondents a WorldValuesBench directory holding {VALUE_FILE} and {DEMO_FILE}.",
        )
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        fields = list(reader.fieldnames or [])
        if "D_INTERVIEW" not in fields:
            raise DataError(
                f"{path}, line 1: no D_INTERVIEW column.",
                fix="use WorldValuesBench's tab-separated files (header with D_INTERVIEW and question ids).",
            )
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise DataError(
                    f"{path}, line {reader.line_num}: the row has a different number of fields than the header.",
                    fix="repair the tab-separated row or regenerate the file with WorldValuesBench.",
                )
            rows.append((reader.line_num, row))
    return fields, rows


def _code(value: str) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _describe(var: str, raw: str, codebook: dict[str, dict[str, object]]) -> str | None:
    """Words for one demographic value, or None when missing/negative."""
    raw = (raw or "").strip()
    if not raw:
        return None
    code = _code(raw)
    if code is not None and code < 0:
        return None
    choices = codebook.get(var, {}).get("choices") or {}
    if isinstance(choices, dict) and code is not None and str(code) in choices:
        text = str(choices[str(code)])
        if var.startswith("N_REGION"):
            text = re.sub(r"^[A-Z]{2}-[A-Z0-9]+\s+", "", text)  # "GB-ENG England" -> "England"
        return re.sub(r"^\d+\.-\s*", "", text)  # "89.- 7 persons or more"
    return raw


def load_respondents(
    directory: str | Path,
    *,
    countries: list[str] | None = None,
    codebook_path: str | Path | None = None,
) -> dict[str, list[Respondent]]:
    """Join the two WorldValuesBench files on ``D_INTERVIEW``; respondents grouped by country name."""
    d = Path(directory)
    codebook = load_codebook(codebook_path)
    country_names = codebook.get("B_COUNTRY", {}).get("choices") or {}
    assert isinstance(country_names, dict)
    vfields, vrows = _read_tsv(d / VALUE_FILE)
    dfields, drows = _read_tsv(d / DEMO_FILE)
    if "B_COUNTRY" not in dfields:
        raise DataError(
            f"{d / DEMO_FILE}, line 1: no B_COUNTRY column.", fix="use WorldValuesBench's demographic file."
        )
    wanted = {c.lower() for c in countries} if countries else None
    demo: dict[str, Respondent] = {}
    for line, row in drows:
        code = _code(row["B_COUNTRY"])
        country = (
            str(country_names.get(str(code), row["B_COUNTRY"])) if code is not None else row["B_COUNTRY"]
        )
        if wanted is not None and country.lower() not in wanted:
            continue
        rid = row["D_INTERVIEW"].strip()
        if not rid:
            raise DataError(
                f"{d / DEMO_FILE}, line {line}: empty D_INTERVIEW.", fix="give every row its interview id."
            )
        demographics: dict[str, str] = {}
        for attr, vars_ in PERSONA_FIELDS.items():
            for var in vars_:
                if var in row:
                    words = _describe(var, row[var], codebook)
                    if words is not None:
                        demographics[attr] = words
                        break
        demo[rid] = Respondent(id=rid, country=country, demographics=demographics)
    qcols = [f for f in vfields if re.fullmatch(r"Q\d+[A-Z_0-9]*", f)]
    for _line, row in vrows:
        rid = row["D_INTERVIEW"].strip()
        r = demo.get(rid)
        if r is None:
            continue
        for q in qcols:
            c = _code(row[q])
            if c is not None and c >= 0:
                r.answers[q] = c
    out: dict[str, list[Respondent]] = {}
    for r in demo.values():
        out.setdefault(r.country, []).append(r)
    if countries:
        missing = [c for c in countries if c.lower() not in {k.lower() for k in out}]
        if missing:
            raise DataError(
                f"no respondent of {', '.join(missing)} in {d}.",
                fix="choose countries present in the respondent files or drop the persona style.",
            )
    return out


def sample_respondents(respondents: list[Respondent], n: int, seed: int = 0) -> list[Respondent]:
    """``n`` respondents drawn without replacement with a seeded RNG (all of them when fewer)."""
    ordered = sorted(respondents, key=lambda r: r.id)
    if n >= len(ordered):
        return ordered
    return random.Random(seed).sample(ordered, n)
