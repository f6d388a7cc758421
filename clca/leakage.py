"""Leakage check: flag role-play dialogues that reuse World Values Survey question wording.

Training data must never carry the evaluation items. Every ``question`` and ``simllm_question`` text of
``wvs7/country_distributions.jsonl`` is cut into word n-grams (lower-cased, words = letters, digits and
apostrophes; ``n = 8`` by default); an episode is flagged when any utterance shares at least one n-gram with
them. Results go to the run's ``leakage.jsonl`` (one :class:`LeakageRecord` per finished episode, flagged or
not), which is recomputed whenever it is missing, was computed with another ``n``, or does not cover exactly
the current episodes. :func:`flagged_episode_ids` is what the training-mix builder calls to exclude episodes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from clca.data.layout import DataBundle
from clca.data.wvs import read_wvs_rows
from clca.records import Episode, LeakageRecord
from clca.rundir import RunDir
from clca.runs import tmp_path

DEFAULT_N = 8
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, inner apostrophes; quotes and curly apostrophes folded)."""
    toks = (w.strip("'") for w in _WORD.findall(text.lower().replace("\u2019", "'")))
    return [w for w in toks if w]


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """All contiguous word n-grams of ``tokens``."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@lru_cache(maxsize=4)
def _wvs_index(path: Path, _mtime_ns: int, n: int) -> dict[tuple[str, ...], frozenset[str]]:
    index: dict[tuple[str, ...], set[str]] = {}
    seen: set[str] = set()
    for row in read_wvs_rows(path):
        for text in (row.question, row.simllm_question):
            if not text or text in seen:
                continue
            seen.add(text)
            for g in ngrams(words(text), n):
                index.setdefault(g, set()).add(row.qid)
    return {g: frozenset(q) for g, q in index.items()}


def wvs_ngrams(n: int = DEFAULT_N) -> dict[tuple[str, ...], frozenset[str]]:
    """n-gram -> WVS question ids whose wording contains it (cached per file version)."""
    path = DataBundle.current().wvs_distributions.resolve()
    return _wvs_index(path, path.stat().st_mtime_ns, n)


def check_episode(ep: Episode, index: dict[tuple[str, ...], frozenset[str]], n: int) -> LeakageRecord:
    """Compare every utterance of ``ep`` with the WVS n-grams."""
    qids: set[str] = set()
    matches: list[str] = []
    for t in ep.turns:
        for g in sorted(ngrams(words(t.text), n)):
            if g in index:
                qids |= index[g]
                if len(matches) < 5:
                    matches.append(" ".join(g))
    return LeakageRecord(
        id=ep.id, culture=ep.culture, n=n, flagged=bool(qids), qids=sorted(qids), matches=matches
    )


def check_run(run: RunDir, *, n: int = DEFAULT_N, force: bool = False) -> list[LeakageRecord]:
    """Leakage records for every finished episode of ``run``; (re)writes ``leakage.jsonl`` when stale."""
    eps = run.episodes()
    if run.leakage_file.exists() and not force:
        old = run.leakage()
        if {r.id for r in old} == {e.id for e in eps} and all(r.n == n for r in old):
            return old
    index = wvs_ngrams(n)
    recs = [check_episode(e, index, n) for e in eps]
    run.path.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(run.leakage_file)
    tmp.write_text("".join(r.model_dump_json() + "\n" for r in recs), encoding="utf-8")
    tmp.replace(run.leakage_file)
    return recs


def flagged_episode_ids(run: RunDir, *, n: int = DEFAULT_N) -> set[str]:
    """Ids of episodes whose text overlaps WVS question wording (computes ``leakage.jsonl`` if needed)."""
    return {r.id for r in check_run(run, n=n) if r.flagged}
