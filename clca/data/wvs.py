"""WVS wave 7 country-level answer distributions from the data bundle (``wvs7/country_distributions.jsonl``).

Each line holds one (country, question): the WorldValuesBench wording (``question``), answer labels
(``options``) with their WVS codes (``option_codes``) and the share of respondents per option (``probs``).
Questions whose wording is null (Q42, Q83–Q93, Q152–Q157) are skipped with a note in ``Survey.notes``.
Ordinality comes from ``wvs7/question_metadata.json`` (``answer_data_type``) when present.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from clca.data.survey import Survey, SurveyItem
from clca.errors import DataError
from clca.settings import data_dir, data_file

WVS_FILE = "wvs7/country_distributions.jsonl"
_REQUIRED = ("country", "qid", "question", "options", "option_codes", "probs")


def _bad(path: Path, lineno: int, what: str) -> DataError:
    return DataError(
        f"{path}, line {lineno}: {what}.",
        fix="restore the file from the clca data bundle, or fix that line (one JSON object per line with "
        "country, qid, question, options, option_codes, probs).",
    )


def load_wvs7(path: str | Path | None = None) -> Survey:
    """Load the WVS-7 distributions (default: the bundle's file) into a :class:`Survey`."""
    p = Path(path) if path is not None else data_file(WVS_FILE)
    return _load_cached(str(p.resolve()), p.stat().st_mtime if p.exists() else 0.0)


@lru_cache(maxsize=4)
def _load_cached(path_s: str, _mtime: float) -> Survey:
    path = Path(path_s)
    if not path.exists():
        raise DataError(
            f"survey file {path} does not exist.", fix="pass an existing file or check --data-dir."
        )
    ordinal: dict[str, bool] = {}
    meta = path.parent / "question_metadata.json"
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
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _bad(path, lineno, f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise _bad(path, lineno, "not a JSON object")
            missing = [k for k in _REQUIRED if k not in row]
            if missing:
                raise _bad(path, lineno, f"missing field(s) {', '.join(missing)}")
            qid = str(row["qid"])
            if row["question"] is None:
                skipped.add(qid)
                continue
            opts, codes, probs = row["options"], row["option_codes"], row["probs"]
            if not (isinstance(opts, list) and isinstance(codes, list) and isinstance(probs, list)):
                raise _bad(path, lineno, "options, option_codes and probs must be lists")
            if not (len(opts) == len(codes) == len(probs) >= 2):
                raise _bad(path, lineno, "options, option_codes and probs differ in length (or < 2 options)")
            try:
                pv = [float(x) for x in probs]
                cv = [int(c) for c in codes]
            except (TypeError, ValueError):
                raise _bad(path, lineno, "probs must be numbers and option_codes integers") from None
            total = sum(pv)
            if any(x < 0 or math.isnan(x) for x in pv) or total <= 0:
                raise _bad(path, lineno, "probs must be non-negative with a positive sum")
            item = items.get(qid)
            if item is None:
                item = SurveyItem(
                    qid=qid,
                    text=str(row["question"]),
                    short_label=str(row.get("wvs_short_label") or ""),
                    options=[str(o) for o in opts],
                    codes=cv,
                    ordinal=ordinal.get(qid, True),
                )
                items[qid] = item
            elif item.codes != cv:
                raise _bad(path, lineno, f"option codes of {qid} differ from an earlier line")
            item.human[str(row["country"])] = [x / total for x in pv]
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
    p = Path(path) if path is not None else data_dir() / "wvs7" / "codebook.json"
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
