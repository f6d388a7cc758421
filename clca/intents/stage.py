"""Per-utterance intent labelling (CLCA's intent-understanding data): ``clca intents``.

For every utterance (``speak``, ``non-verbal`` and ``leave`` turns, :data:`LABELLED_ACTIONS`) of every episode
the judge kept, the model predicts the speaker's intent, with the CLCA paper's prompts (``intent-v3``): the
system message gives the setting, the relationship and both characters' *public* cards (never goals or secrets)
and says "Both participants are from the {demonym} culture, you are an expert in {demonym} culture"; the user
message gives the conversation up to and including that utterance ("Name: text" lines, as
:func:`clca.render.transcript` writes them: a non-verbal act as ``[non-verbal] ...``, a leave as
``[leaves the conversation] <closing sentence>``) and asks for the intent, reasoned with respect to the
culture's social or cultural expectations only when the model is certain, in the form ``INTENT: ...``. A reply
without an ``INTENT:`` line is re-asked with a new seed (``max_retries``); if it still has none, the record
keeps ``error`` and an empty intent. Records go to ``intents.jsonl`` with id ``{episode_id}:{turn_index}``;
batched and appended per chunk, resumable.

The leave turn is labelled as the released loop labels it: that loop asks for an intent for every utterance of
the stored dialogue, the leaving speaker's closing output included. ``none`` turns (the character did
nothing) carry no utterance in the transcript and get no label. ``intent-v2`` (before) labelled only ``speak``
and ``non-verbal`` turns; a run directory whose ``intents.jsonl`` holds records of another prompt version is
refused rather than extended (:func:`label_intents`).

``Intent.cultural`` mirrors the paper's "% intents with cultural context" (Table 9) with a documented keyword
heuristic on the intent text (:data:`CULTURAL_PATTERNS`): the intent mentions culture, tradition, custom,
norms, etiquette, social/societal expectations or conventions, hierarchy/seniority/elders, face,
harmony, filial duty, modesty/humility, honour, deference, collectivism/individualism, or the culture's own
name or demonym ("British", "in China").
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from clca.culture import CultureProfile, get_profile
from clca.errors import DataError
from clca.intents.config import IntentsConfig
from clca.llm.base import Backend, Chat, GenerationParams
from clca.llm.structured import StructuredStats, generate_structured
from clca.progress import stage_progress
from clca.records import GENERIC, Action, Episode, Intent, Scenario
from clca.render import public_card, relationship_phrase, transcript
from clca.rundir import RunDir

PROMPT_VERSION = "intent-v3"
#: the turns that get an intent (``none`` turns carry no utterance); ``intent-v2`` left out ``leave``
LABELLED_ACTIONS: tuple[Action, ...] = ("speak", "non-verbal", "leave")

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


def _require_intent(text: str) -> str:
    intent = parse_intent(text)
    if intent is None:
        raise ValueError("no 'INTENT:' line in the reply")
    return intent


def intent_system_prompt(s: Scenario, profile: CultureProfile | None) -> str:
    """The paper's intent system prompt: the setting and both public cards (never goals or secrets); without
    a culture (the no-culture control's data) the culture sentence is left out."""
    a, b = s.characters
    rel = relationship_phrase(s.relationship, a.name, b.name)
    culture = (
        f"Both participants are from the {profile.demonym} culture, you are an expert in {profile.demonym} culture."
        if profile is not None
        else "You are an expert in social interaction."
    )
    return (
        "Here is the basic information about this conversation.\n"
        f"Scenario: {s.setting}\n"
        + (f"{rel}\n" if rel else "")
        + "".join(f"Information about {c.name}:\n{public_card(c)}\n" for c in s.characters)
        + culture
    )


def intent_chat(ep: Episode, turn_index: int, s: Scenario, profile: CultureProfile | None) -> Chat:
    """The prompt asking for the intent behind ``ep.turns[turn_index]`` (public information only)."""
    name = ep.turns[turn_index].name
    expectations = (
        f"the social or cultural expectations in {profile.demonym} culture"
        if profile is not None
        else "the social expectations"
    )
    user = (
        f"{transcript(ep.turns, style='lines', upto=turn_index)}\n\n"
        f"Please predict {name}'s intent in the last turn based on the provided conversation, and reason the "
        f"prediction with respect to {expectations} that might be "
        "influencing the tone and content of this interaction in a short sentence. Don't explain if you are unsure "
        "of the reasons, only explain if you are very certain, keep it short. Please follow the schema: "
        "INTENT: <intent>. Please only output the response in English:"
    )
    return [
        {"role": "system", "content": intent_system_prompt(s, profile)},
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
    llm: StructuredStats = Field(default_factory=StructuredStats)


def _check_version(records: list[Intent], run: RunDir) -> None:
    """Refuse to extend an ``intents.jsonl`` written with another prompt version (the labelled turns or the
    prompts differ, so a resumed file would mix two kinds of record)."""
    other = sorted({r.prompt_version or "(none)" for r in records} - {PROMPT_VERSION})
    if other:
        raise DataError(
            f"{run.intents_file} holds intents of prompt version {', '.join(other)}, not {PROMPT_VERSION} "
            "(the labelled turns or the prompts differ); one file never mixes two versions.",
            fix="move that file aside and rerun `clca intents` (within `clca run`: --force-stage intents), "
            "or use a new run directory.",
        )


def label_intents(
    backend: Backend,
    run: RunDir,
    cfg: IntentsConfig,
    *,
    batch_size: int = 64,
    progress: bool = True,
    seed: int = 0,
) -> IntentSummary:
    """Label every utterance of the kept episodes into ``intents.jsonl`` (resumable). ``seed``: the requests'
    seed (the run's seed; a re-ask uses ``seed + attempt``). An ``intents.jsonl`` written with another prompt
    version (:data:`PROMPT_VERSION`) is a :class:`DataError`: one file never mixes two versions."""
    run.require(run.judgements_file)
    run.require(run.episodes_file)
    store = run.intent_store()
    _check_version(store.all(), run)
    kept = run.kept_episode_ids()
    eps = [e for e in run.episodes() if e.id in kept]
    scenarios = run.episodes_with_scenarios(eps)
    done = store.ids()
    summary = IntentSummary(episodes=len(eps))
    profiles = {c: (get_profile(c) if c != GENERIC else None) for c in sorted({e.culture for e in eps})}
    todo: list[tuple[Episode, int]] = []
    for e in eps:
        for i, t in enumerate(e.turns):
            if t.action in LABELLED_ACTIONS:
                summary.utterances += 1
                if f"{e.id}:{i}" in done:
                    summary.skipped += 1
                else:
                    todo.append((e, i))
    params = GenerationParams(temperature=0.0, max_new_tokens=cfg.max_new_tokens, seed=seed)
    with stage_progress("Labelling intents", total=len(todo), enabled=progress) as advance:
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + batch_size]
            chats = [intent_chat(e, i, scenarios[e.scenario_id], profiles[e.culture]) for e, i in chunk]
            results = generate_structured(
                backend,
                chats,
                lambda _i, text: _require_intent(text),
                params,
                max_retries=cfg.max_retries,
                stats=summary.llm,
            )
            recs: list[Intent] = []
            for (e, i), res in zip(chunk, results, strict=True):
                t = e.turns[i]
                recs.append(
                    Intent(
                        id=f"{e.id}:{i}",
                        episode_id=e.id,
                        culture=e.culture,
                        turn_index=i,
                        speaker=t.speaker,
                        name=t.name,
                        intent=res.value,
                        cultural=bool(res.value) and is_cultural(res.value or "", profiles[e.culture]),
                        model=backend.spec,
                        raw=res.raws[-1],
                        attempts=res.attempts,
                        prompt_version=PROMPT_VERSION,
                        error=None if res.value else res.error,
                    )
                )
            summary.labelled += store.extend(recs)
            summary.cultural += sum(r.cultural for r in recs)
            summary.errors += sum(1 for r in recs if r.error)
            advance(len(chunk))
    return summary
