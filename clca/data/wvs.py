"""WVS wave 7 country-level answer distributions from the data bundle (``wvs7/country_distributions.jsonl``).

Each line holds one (country, question) (:class:`WvsRow`): the WorldValuesBench wording (``question``),
answer labels (``options``) with their WVS codes (``option_codes``) and the share of respondents per option
(``probs``). :func:`read_wvs_rows` is the file's one reader: the survey here, the culture profiles' country
list, the leakage check's question texts and the culture map all read it through it, so a malformed line
is the same one-line error (``<file>, line N: ...``) wherever it is read.

:func:`load_wvs7` turns the rows into a :class:`Survey`. Questions whose wording is null (Q42, Q83–Q93,
Q152–Q157) are skipped with a note in ``Survey.notes``. Ordinality comes from ``question_metadata.json``
beside the file (``answer_data_type``) when present.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clca.data.layout import DataBundle
from clca.data.survey import Survey, SurveyItem
from clca.errors import DataError

#: the bundle's distributions file (an alias of :attr:`DataBundle.WVS_DISTRIBUTIONS` for older callers)
#: the question metadata's file name; :func:`load_wvs7` looks for it beside the distributions file
_METADATA_NAME = Path(DataBundle.WVS_METADATA).name


class WvsRow(BaseModel):
    """One line of ``wvs7/country_distributions.jsonl``: one country's answer shares for one question.

    The fields are those the bundle's builder writes, in its order
    (:func:`clca.data.bundle.country_distributions_jsonl`); a file made by hand needs only those without a
    default. ``line`` is where the row stands in its file, for errors; it is not part of the data.
    """

    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)

    country: str
    iso3: str = ""
    qid: str
    wvs_short_label: str | None = None
    question: str | None = Field(description="WorldValuesBench's wording; null where it has none")
    simllm_question: str | None = None
    option_codes: tuple[int, ...]
    options: tuple[str, ...]
    probs: tuple[float, ...]
    raw_percent_sum: float | None = None
    source: str = ""
    line: int = Field(default=0, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> WvsRow:
        if not len(self.options) == len(self.option_codes) == len(self.probs) >= 2:
            raise ValueError("options, option_codes and probs differ in length (or < 2 options)")
        if any(x < 0 or math.isnan(x) for x in self.probs) or sum(self.probs) <= 0:
            raise ValueError("probs must be non-negative with a positive sum")
        return self


#: the fields every line must have
REQUIRED: tuple[str, ...] = tuple(name for name, f in WvsRow.model_fields.items() if f.is_required())


def _bad(path: Path, lineno: int, what: str) -> DataError:
    return DataError(
        f"{path}, line {lineno}: {what}.",
        fix="restore the file from the clca data bundle, or fix that line (one JSON object per line with "
        f"{', '.join(REQUIRED)}).",
    )


def _problem(exc: ValidationError) -> str:
    """What is wrong with a line, in words, from pydantic's errors (the first one; all missing fields)."""
    errors = exc.errors(include_url=False)
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    err = errors[0]
    loc = err["loc"]
    if not loc:  # WvsRow._consistent
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if loc[0] in ("option_codes", "options", "probs"):
        if len(loc) == 1:
            return "options, option_codes and probs must be lists"
        if loc[0] == "options":
            return "options must be strings"
        return "probs must be numbers and option_codes integers"
    return f"{loc[0]}: {err['msg']}"


def read_wvs_rows(path: str | Path | None = None) -> tuple[WvsRow, ...]:
    """Every row of a WVS distributions file (default: the bundle's), in file order; cached per file version.

    Blank lines are skipped; a malformed line is a one-line :class:`DataError` naming the file and the line.
    """
    p = Path(path) if path is not None else DataBundle.current().wvs_distributions
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DataError(
            f"WVS file {p} does not exist.", fix="pass an existing file or check --data-dir."
        ) from None
    return _read_rows(str(p.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _read_rows(path_s: str, _mtime_ns: int, _size: int) -> tuple[WvsRow, ...]:
    path = Path(path_s)
    rows: list[WvsRow] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _bad(path, lineno, f"not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise _bad(path, lineno, "not a JSON object")
                try:
                    rows.append(WvsRow.model_validate({**obj, "line": lineno}))
                except ValidationError as exc:
                    raise _bad(path, lineno, _problem(exc)) from None
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not UTF-8 text.", fix="restore the file from the clca data bundle."
        ) from None
    return tuple(rows)


def load_wvs7(path: str | Path | None = None) -> Survey:
    """Load the WVS-7 distributions (default: the bundle's file) into a :class:`Survey`."""
    p = Path(path) if path is not None else DataBundle.current().wvs_distributions
    return _load_cached(str(p.resolve()), p.stat().st_mtime if p.exists() else 0.0)


@lru_cache(maxsize=4)
def _load_cached(path_s: str, _mtime: float) -> Survey:
    path = Path(path_s)
    if not path.exists():
        raise DataError(
            f"survey file {path} does not exist.", fix="pass an existing file or check --data-dir."
        )
    ordinal: dict[str, bool] = {}
    meta = path.parent / _METADATA_NAME
    if meta.exists():
        try:
            for qid, m in json.loads(meta.read_text(encoding="utf-8")).items():
                ordinal[qid] = m.get("answer_data_type") == "ordinal"
        except (json.JSONDecodeError, AttributeError):
            raise DataError(
                f"{meta} is not valid JSON metadata.", fix="restore it from the data bundle."
            ) from None
    items: dict[str, SurveyItem] = {}
    skipped: set[str] = set()
    for row in read_wvs_rows(path):
        qid = row.qid
        if row.question is None:
            skipped.add(qid)
            continue
        codes = list(row.option_codes)
        item = items.get(qid)
        if item is None:
            item = SurveyItem(
                qid=qid,
                text=row.question,
                short_label=row.wvs_short_label or "",
                options=list(row.options),
                codes=codes,
                ordinal=ordinal.get(qid, True),
            )
            items[qid] = item
        elif item.codes != codes:
            raise _bad(path, row.line, f"option codes of {qid} differ from an earlier line")
        total = sum(row.probs)
        item.human[row.country] = [x / total for x in row.probs]
    if not items:
        raise DataError(
            f"{path} holds no survey question.", fix="restore the file from the clca data bundle."
        )
    gone = sorted(skipped - set(items), key=_qkey)
    notes = [f"skipped {', '.join(gone)} (no question wording in the bundle)"] if gone else []
    return Survey(
        name="WVS wave 7",
        source=str(path),
        items=dict(sorted(items.items(), key=lambda kv: _qkey(kv[0]))),
        notes=notes,
    )


def _qkey(qid: str) -> tuple[str, int, str]:
    head = qid.rstrip("0123456789")
    num = qid[len(head) :]
    return (head, int(num) if num else -1, qid)


def load_codebook(path: str | Path | None = None) -> dict[str, dict[str, object]]:
    """The WorldValuesBench codebook (variable -> question, instruction, type, choices)."""
    p = Path(path) if path is not None else DataBundle.current() / DataBundle.WVS_CODEBOOK
    if not p.exists():
        raise DataError(
            f"codebook {p} is missing.", fix="check that --data-dir points at a complete data bundle."
        )
    try:
        book = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{p}, line {exc.lineno}: not valid JSON.", fix="restore it from the data bundle."
        ) from None
    if not isinstance(book, dict):
        raise DataError(f"{p} is not a JSON object of variables.", fix="restore it from the data bundle.")
    return book
