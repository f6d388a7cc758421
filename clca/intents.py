"""Per-utterance intent labelling (CLCA's intent-understanding data).

For every utterance (``speak`` and ``non-verbal`` turns) of every episode the judge kept, the model predicts the
speaker's intent from the setting, both characters' *public* information (name, age, gender, occupation,
background; never goals or secrets) and the conversation up to and including that utterance. It adds a short
reason tied to the culture's social or cultural expectations only when it is sure, and answers in the form
``INTENT: ...``. Records go to ``intents.jsonl`` with id ``{episode_id}:{turn_index}``; a reply without an
``INTENT:`` line is stored with ``error`` set and ``intent`` empty.

``Intent.cultural`` mirrors the paper's "% intents with cultural context" (Table 9) with a documented keyword
heuristic on the intent text (:data:`CULTURAL_PATTERNS`): the intent mentions culture, tradition, custom,
norms, etiquette, social/societal expectations or conventions, hierarchy/seniority/elders, face,
harmony, filial duty, modesty/humility, honour, deference, collectivism/individualism, or the culture's own
name or demonym ("British", "in China"). Batched per chunk, appended per chunk, resumable.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from clca.culture import CultureProfile
from clca.errors import DataError
from clca.judge import (
    EPISODES_FILE,
    JUDGEMENTS_FILE,
    culture_profiles_for,
    finished_episodes,
    kept_episode_ids,
    load_scenarios,
    public_info,
)
from clca.llm.base import Backend, Chat, GenerationParams
from clca.records import Episode, Intent, Scenario
from clca.runs import JsonlStore

INTENTS_FILE = "intents.jsonl"
PROMPT_VERSION = "intent-v1"

CULTURAL_PATTERNS: tuple[str, ...] = (
    r"\bcultur",
    r"\btradition",
    r"\bcustom(s|ary)?\b",
    r"\bnorms?\b",
    r"\betiquette\b",
    r"\bsocial (expectation|convention|norm|harmony|hierarchy|status|obligation)",
    r"\bsocietal\b",
    r"\bconvention(s|al)?\b",
    r"\bhierarch",
    r"\bseniority\b",
    r"\belders?\b",
    r"\b(sav|los)(e|es|ing) face\b|\bface[- ]saving\b",
    r"\bharmony\b",
    r"\bfilial\b",
    r"\bmodesty\b|\bhumility\b",
    r"\bhonou?r\b",
    r"\bdeferen",
    r"\bcollectiv",
    r"\bindividualis",
)
_INTENT = re.compile(
    r"(?im)^[\s*#>_\-]*(?:\*\*)?\s*intent(?:ion)?\s*(?:\*\*)?\s*[:\-–]\s*(?:\*\*)?\s*(?P<rest>.+)$"
)


def is_cultural(intent: str, profile: CultureProfile | None = None) -> bool:
    """True when the intent text refers to cultural or social expectations (see module docstring)."""
    low = intent.lower()
    if any(re.search(p, low) for p in CULTURAL_PATTERNS):
        return True
    if profile is not None:
        for word in {profile.demonym, profile.country}:
            if word and re.search(rf"\b{re.escape(word.lower())}\b", low):
                return True
    return False


def parse_intent(text: str) -> str | None:
    """The text after the first ``INTENT:`` marker (markdown and case variants allowed), else None."""
    m = _INTENT.search(text or "")
    if m is None:
        return None
    rest = m.group("rest").strip().strip("*").strip()
    # keep following non-empty lines that are not another labelled field (a wrapped reason)
    tail = text[m.end() :].split("\n")
    for line in tail[1:] if tail and not tail[0].strip() else tail:
        if not line.strip() or re.match(r"^\s*[A-Za-z ]{1,20}:", line):
            break
        rest += " " + line.strip()
    return rest or None


def _history(ep: Episode, upto: int) -> str:
    lines = []
    for t in ep.turns[: upto + 1]:
        if t.action == "speak":
            lines.append(f"{t.name}: {t.text}")
        elif t.action == "non-verbal":
            lines.append(f"{t.name} [non-verbal]: {t.text}")
        elif t.action == "leave":
            lines.append(f"{t.name} left the conversation.")
    return "\n".join(lines)


def intent_chat(ep: Episode, turn_index: int, s: Scenario, profile: CultureProfile) -> Chat:
    """The prompt asking for the intent behind ``ep.turns[turn_index]`` (public information only)."""
    name = ep.turns[turn_index].name
    user = (
        f"Setting ({profile.country}): {s.setting}\n\nPeople:\n{public_info(s)}\n\n"
        f"Conversation so far:\n{_history(ep, turn_index)}\n\n"
        f"What is {name}'s intent in the last utterance? Describe it in one sentence. Only if you are sure, "
        f"add a short reason tied to {profile.demonym} social or cultural expectations.\n"
        "Answer in the form:\nINTENT: <the intent>"
    )
    return [
        {
            "role": "system",
            "content": f"You understand people's intentions in conversations and know {profile.demonym} culture well.",
        },
        {"role": "user", "content": user},
    ]


class IntentSummary(BaseModel):
    """Counts of one ``label_intents`` call."""

    episodes: int = 0  # kept episodes considered
    utterances: int = 0
    skipped: int = 0
    labelled: int = 0
    cultural: int = 0
    errors: int = 0


def label_intents(
    backend: Backend,
    run_dir: str | Path,
    *,
    progress: bool = True,
    batch_size: int = 64,
    max_new_tokens: int = 96,
    data_dir: str | Path | None = None,
) -> IntentSummary:
    """Label every utterance of the kept episodes into ``run_dir/intents.jsonl`` (resumable)."""
    run = Path(run_dir)
    if not (run / JUDGEMENTS_FILE).exists():
        raise DataError(
            f"{run / JUDGEMENTS_FILE} does not exist.", fix=f"run `clca judge --run {run}` first."
        )
    if not (run / EPISODES_FILE).exists():
        raise DataError(
            f"{run / EPISODES_FILE} does not exist.", fix=f"run `clca simulate --run {run}` first."
        )
    kept = kept_episode_ids(run)
    eps = [e for e in finished_episodes(run) if e.id in kept]
    scenarios = load_scenarios(run)
    store = JsonlStore(run / INTENTS_FILE, Intent)
    done = store.ids()
    summary = IntentSummary(episodes=len(eps))
    todo: list[tuple[Episode, int]] = []
    profiles = culture_profiles_for(run, eps, scenarios, data_dir)
    for e in eps:
        for i, t in enumerate(e.turns):
            if t.action in ("speak", "non-verbal"):
                summary.utterances += 1
                if f"{e.id}:{i}" in done:
                    summary.skipped += 1
                else:
                    todo.append((e, i))
    params = GenerationParams(temperature=0.0, max_new_tokens=max_new_tokens)
    from clca.progress import stage_progress

    with stage_progress("Labelling intents", total=len(todo), enabled=progress) as advance:
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + batch_size]
            chats = [intent_chat(e, i, scenarios[e.scenario_id], profiles[e.culture]) for e, i in chunk]
            outs = backend.generate(chats, params)
            recs: list[Intent] = []
            for (e, i), raw in zip(chunk, outs, strict=True):
                intent = parse_intent(raw)
                t = e.turns[i]
                recs.append(
                    Intent(
                        id=f"{e.id}:{i}",
                        episode_id=e.id,
                        culture=e.culture,
                        turn_index=i,
                        speaker=t.speaker,
                        name=t.name,
                        intent=intent,
                        cultural=bool(intent) and is_cultural(intent or "", profiles[e.culture]),
                        model=backend.spec,
                        raw=raw,
                        error=None if intent else "no 'INTENT:' line in the reply",
                    )
                )
            summary.labelled += store.extend(recs)
            summary.cultural += sum(r.cultural for r in recs)
            summary.errors += sum(1 for r in recs if r.error)
            advance(len(chunk))
    return summary
