"""Run statistics per culture (paper Table 9 style) and ``stats.json``.

Per culture (rows of ``scenarios.jsonl`` etc. are grouped by their ``culture`` field):

* ``scenarios``: adapted scenarios; ``scenario_failures``: seeds that could not be adapted (and were not
  adapted later); ``names_only``: LLM-adapted scenarios in which the model changed nothing but the names
  (``Scenario.adapted_fields == []``).
* ``episodes``: finished episodes; ``stopped_by_parse_failure``: episodes whose stop reason is
  ``parse_failure``; ``unparseable_turns``: role-play outputs that could not be parsed (summed
  ``Episode.parse_failures``); ``running``: episodes still in progress (in the simulation's checkpoint).
* ``judged``, ``kept``, ``kept_pct`` (= kept / judged × 100), ``judge_errors``.
* The data statistics are computed over the **final data** (``data_from``): the kept episodes when the culture
  has judgements, otherwise all finished episodes. ``avg_turns``: turns per episode, one turn being a pair
  of utterances (``speak`` + ``non-verbal``), as the CLCA paper's Table 9 counts them ("AT");
  ``avg_utterances``: utterances per episode; ``avg_words_per_utterance``: whitespace words per ``speak``
  utterance; ``avg_words_per_turn``: words per pair of utterances (Table 9's "AW" when a turn is a pair).
* ``intents``, ``intent_errors``, ``cultural_intent_pct`` (intents whose text refers to cultural context, over
  intents with a parsed text; see :mod:`clca.intents`).
* ``leakage_flagged``: final-data episodes whose text overlaps WVS question wording (:mod:`clca.leakage`).

A ``total`` row aggregates all cultures the same way. The file's model is :class:`clca.records.RunStats`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from clca.leakage import check_run
from clca.records import (
    CultureStats,
    Episode,
    Intent,
    Judgement,
    LeakageSummary,
    LiveEpisode,
    RunStats,
    Scenario,
    ScenarioFailure,
)
from clca.rundir import RunDir


def _culture_stats(
    scen: list[Scenario],
    fails: list[ScenarioFailure],
    finished: list[Episode],
    live: list[LiveEpisode],
    judg: list[Judgement],
    ints: list[Intent],
    flagged: set[str],
) -> CultureStats:
    judged = {j.episode_id: j for j in judg}
    kept_ids = {i for i, j in judged.items() if j.keep}
    final = [e for e in finished if e.id in kept_ids] if judged else finished
    utter = [t for e in final for t in e.turns if t.action in ("speak", "non-verbal")]
    speak = [t for e in final for t in e.turns if t.action == "speak"]
    parsed = [i for i in ints if i.intent]
    scen_ids = {s.id for s in scen}

    def pct(a: int, b: int) -> float | None:
        return round(100.0 * a / b, 2) if b else None

    words = sum(len(t.text.split()) for t in speak)

    return CultureStats(
        scenarios=len(scen),
        scenario_failures=sum(1 for f in fails if f.id not in scen_ids),
        names_only=sum(1 for x in scen if x.adapted_fields == []),
        episodes=len(finished),
        running=len(live),
        stopped_by_parse_failure=sum(1 for e in finished if e.stop_reason == "parse_failure"),
        unparseable_turns=sum(e.parse_failures for e in finished),
        judged=len(judged),
        kept=len(kept_ids),
        kept_pct=pct(len(kept_ids), len(judged)),
        judge_errors=sum(1 for j in judged.values() if j.error),
        data_from="kept" if judged else "all",
        final_episodes=len(final),
        avg_turns=round(len(utter) / 2 / len(final), 2) if final else None,
        avg_utterances=round(len(utter) / len(final), 2) if final else None,
        avg_words_per_utterance=round(words / len(speak), 2) if speak else None,
        avg_words_per_turn=round(2 * words / len(utter), 2) if utter else None,
        intents=len(ints),
        intent_errors=sum(1 for i in ints if i.error),
        cultural_intent_pct=pct(sum(1 for i in parsed if i.cultural), len(parsed)),
        leakage_flagged=sum(1 for e in final if e.id in flagged),
    )


def compute_stats(run: RunDir) -> RunStats:
    """Statistics of ``run`` per culture plus a ``total``; also written to the run's ``stats.json``."""
    scen, fails = run.scenarios(), run.scenario_failures()
    eps, live = run.episodes(), run.live_episodes()
    judg, ints = run.judgements(), run.intents()
    flagged: set[str] = set()
    leakage_checked = False
    if run.episodes_file.exists():
        flagged = {r.id for r in check_run(run) if r.flagged}
        leakage_checked = True
    groups: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for name, recs in (
        ("scen", scen), ("fails", fails), ("eps", eps), ("live", live), ("judg", judg), ("ints", ints)
    ):  # fmt: skip
        for r in recs:
            groups[r.culture][name].append(r)
    cultures = {
        c: _culture_stats(g["scen"], g["fails"], g["eps"], g["live"], g["judg"], g["ints"], flagged)
        for c, g in sorted(groups.items())
    }
    stats = RunStats(
        run=str(run.path),
        cultures=cultures,
        total=_culture_stats(scen, fails, eps, live, judg, ints, flagged),
        leakage=LeakageSummary(checked=leakage_checked, flagged_episodes=sorted(flagged)),
    )
    run.write_stats(stats)
    return stats


#: columns of the CLI table: (key, header)
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("scenarios", "scen."),
    ("scenario_failures", "fail"),
    ("names_only", "names only"),
    ("episodes", "episodes"),
    ("kept", "kept"),
    ("kept_pct", "kept %"),
    ("avg_turns", "turns (pairs)"),
    ("avg_words_per_utterance", "words/utt."),
    ("cultural_intent_pct", "cult. intents %"),
    ("stopped_by_parse_failure", "parse stops"),
    ("unparseable_turns", "bad turns"),
    ("judge_errors", "judge err."),
    ("intent_errors", "intent err."),
    ("leakage_flagged", "leaks"),
)
