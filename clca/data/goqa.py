"""GlobalOpinionQA (Durmus et al. 2023) in its published CSV format.

Columns: ``question`` (text), ``selections`` (string repr of a per-country dict of option shares, sometimes
wrapped as ``defaultdict(<class 'list'>, {...})``), ``options`` (string repr of a list of labels), ``source``
(e.g. "GAS", "WVS"). Questions get ids ``Q1``..``Qn`` in file order so ranges work as for WVS.

Non-substantive options ("Don't know", "No answer", "Refused", "DK/Refused", ...) are dropped and every
country's remaining shares are renormalised; a country whose remaining shares sum to 0 is left out of that
question. Options are coded 1..K in their listed order. Scales are not known to be ordinal, so EMD is not
computed for GlobalOpinionQA items.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
from pathlib import Path

from clca.data.survey import Survey, SurveyItem
from clca.errors import DataError

_NON_SUBSTANTIVE = re.compile(
    r"^\s*(dk|dk/ref(used)?|dk/refused|dk/na|don['’]?t know.*|do not know.*|no answer.*|refused.*|"
    r"not sure|no opinion|dk/no answer|don['’]?t know/refused.*|none of these|\(vol\.?\).*)\s*$",
    re.IGNORECASE,
)


def is_non_substantive(label: str) -> bool:
    """True for answer labels that carry no opinion (dropped before renormalising)."""
    return bool(_NON_SUBSTANTIVE.match(label)) or "refused" in label.lower() or "don't know" in label.lower()


def _literal(text: str) -> object:
    t = text.strip()
    m = re.match(r"^defaultdict\(\s*<class '[A-Za-z_]+'>\s*,\s*(.*)\)\s*$", t, re.DOTALL)
    if m:
        t = m.group(1)
    return ast.literal_eval(t)


def load_goqa(path: str | Path) -> Survey:
    """Load a GlobalOpinionQA CSV; malformed rows raise a one-line :class:`DataError` naming file and line."""
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"survey file {p} does not exist.", fix="pass --survey wvs7 or the path of a GlobalOpinionQA CSV."
        )
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    fix = "each row needs question, selections (a dict of country -> list of shares) and options (a list of labels)."
    items: dict[str, SurveyItem] = {}
    with p.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"question", "selections", "options"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise DataError(
                f"{p}, line 1: header lacks column(s) {', '.join(sorted(need - set(reader.fieldnames or [])))}.",
                fix="use the published GlobalOpinionQA CSV (columns question, selections, options, source).",
            )
        n = 0
        for row in reader:
            line = reader.line_num
            try:
                sel = _literal(row["selections"] or "")
                opts = _literal(row["options"] or "")
            except (ValueError, SyntaxError):
                raise DataError(
                    f"{p}, line {line}: selections/options are not Python literals.", fix=fix
                ) from None
            if not isinstance(sel, dict) or not isinstance(opts, list) or not opts:
                raise DataError(
                    f"{p}, line {line}: selections is not a dict or options is not a list.", fix=fix
                )
            labels = [str(o) for o in opts]
            keep = [i for i, lab in enumerate(labels) if not is_non_substantive(lab)]
            if len(keep) < 2:
                continue  # fewer than two substantive options: not a distribution question
            human: dict[str, list[float]] = {}
            for country, shares in sel.items():
                if not isinstance(shares, list | tuple) or len(shares) != len(labels):
                    raise DataError(
                        f"{p}, line {line}: {country!r} has {len(shares) if isinstance(shares, list | tuple) else 'no'}"
                        f" shares for {len(labels)} options.",
                        fix=fix,
                    )
                try:
                    vals = [max(0.0, float(shares[i])) for i in keep]
                except (TypeError, ValueError):
                    raise DataError(
                        f"{p}, line {line}: non-numeric share for {country!r}.", fix=fix
                    ) from None
                tot = sum(vals)
                if tot > 0:
                    human[str(country)] = [v / tot for v in vals]
            n += 1
            qid = f"Q{n}"
            items[qid] = SurveyItem(
                qid=qid,
                text=str(row["question"]).strip(),
                short_label=str(row.get("source") or ""),
                options=[labels[i] for i in keep],
                codes=list(range(1, len(keep) + 1)),
                ordinal=False,
                human=human,
            )
    if not items:
        raise DataError(f"{p} holds no usable question.", fix=fix)
    return Survey(name=f"GlobalOpinionQA ({p.name})", source=str(p), items=items)
