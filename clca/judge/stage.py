"""The LLM judge and the filter rule that decides which episodes are kept: ``clca judge``.

As in the CLCA paper (and its released code), the judge sees the **whole scenario, goals and secrets
included**, and the dialogue, at temperature 0, in three questions:

* step 1a, **quality**: good / bad (bad if many sentences repeat towards the end, or the content does not fit
  the setting), with a confidence;
* step 1b, **culture alignment**: aligned / not aligned with the culture, with a confidence;
* step 2, **meta**: a critique of the step-1 judgements that ends in a meta label (good / bad) on the
  conversation's alignment with the culture, with a confidence ("don't judge the goal achievement").

Each question's answer format and JSON schema derive from its pydantic model (:class:`QualityAnswer`,
:class:`AlignmentAnswer`, :class:`MetaAnswer`) through :mod:`clca.llm.structured`, which also parses the reply
(JSON or labelled lines) and re-asks an unparseable one with a new seed up to ``max_retries`` times.

Filter (:class:`clca.judge.config.FilterRule`, default = paper): drop an episode when quality is bad with "very
confident", or the meta label is bad with "very confident"; the alignment label is recorded, not used by the
paper's rule. An answer that still cannot be parsed is recorded in :attr:`Judgement.error`; labels that were
parsed still apply the rule, and otherwise the episode is kept by default (``keep_on_error``). Episodes
without any utterance are dropped without a call. Resumable: episodes already judged are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clca.culture import CultureProfile, get_profile
from clca.judge.config import JudgeConfig
from clca.llm.base import Backend, Chat, GenerationParams
from clca.llm.structured import (
    Structured,
    StructuredStats,
    answer_format,
    answer_schema,
    generate_structured,
    parse_labelled,
)
from clca.progress import stage_progress
from clca.records import GENERIC, Confidence, Episode, Judgement, Scenario
from clca.render import relationship_phrase, transcript
from clca.rundir import RunDir

PROMPT_VERSION = (
    "judge-v3"  # v3: the paper's dialogue format (Turn / Person 1 / Person 2), person1/person2 JSON
)
CONFIDENCES: tuple[Confidence, ...] = ("very confident", "confident", "not sure")


def normalise_confidence(text: str | None) -> Confidence | None:
    """Map free wording onto the three confidence levels (None when there is none)."""
    if not text:
        return None
    t = re.sub(r"[^a-z ]+", " ", text.lower())
    t = re.sub(r"\s+", " ", t).strip()
    if re.search(
        r"\b(not sure|unsure|uncertain|not confident|not very confident|low confidence|unclear)\b", t
    ):
        return "not sure"
    if re.search(
        r"\b(very|highly|extremely|absolutely|completely|fully) (confident|sure|certain)\b|\bcertain\b", t
    ):
        return "very confident"
    if re.search(r"\b(confident|fairly sure|sure|likely)\b", t):
        return "confident"
    return None


class QualityAnswer(BaseModel):
    """Step 1a: the quality of the conversation."""

    model_config = ConfigDict(extra="ignore")
    quality: Literal["good", "bad"] = Field(title="Quality")
    confidence: Confidence = Field(title="Confidence", json_schema_extra={"aliases": ["quality confidence"]})


class AlignmentAnswer(BaseModel):
    """Step 1b: the conversation's alignment with the culture."""

    model_config = ConfigDict(extra="ignore")
    alignment: Literal["aligned to the culture", "not aligned to the culture"] = Field(
        title="Culture alignment", json_schema_extra={"aliases": ["alignment", "culture"]}
    )
    confidence: Confidence = Field(
        title="Confidence", json_schema_extra={"aliases": ["alignment confidence"]}
    )


class MetaAnswer(BaseModel):
    """Step 2: the meta label after a critique of step 1."""

    model_config = ConfigDict(extra="ignore")
    meta_label: Literal["good", "bad"] = Field(
        title="Meta label", json_schema_extra={"aliases": ["meta", "label"]}
    )
    confidence: Confidence = Field(title="Confidence", json_schema_extra={"aliases": ["meta confidence"]})
    critic: str = Field(
        "",
        title="Critic",
        description="your critique of the previous judgements in one or two sentences",
        json_schema_extra={"aliases": ["critique", "criticism"]},
    )


_NORMALISE: dict[str, Callable[[str], str | None]] = {"confidence": normalise_confidence}
_ALIGN_WORDS = {
    "not aligned": "not aligned to the culture",
    "misaligned": "not aligned to the culture",
    "unaligned": "not aligned to the culture",
    "aligned": "aligned to the culture",
}


def parse_quality(text: str) -> QualityAnswer:
    return parse_labelled(text, QualityAnswer, normalisers=_NORMALISE)


def parse_alignment(text: str) -> AlignmentAnswer:
    return parse_labelled(text, AlignmentAnswer, normalisers=_NORMALISE, synonyms={"alignment": _ALIGN_WORDS})


def parse_meta(text: str) -> MetaAnswer:
    return parse_labelled(text, MetaAnswer, normalisers=_NORMALISE)


# ------------------------------------------------------------------------------------------- prompts


def scenario_json(s: Scenario) -> str:
    """The whole scenario as the judge sees it (the paper's judge gets the full scenario JSON)."""
    data = {
        "setting": s.setting,
        "relationship": relationship_phrase(s.relationship, *(c.name for c in s.characters)) or None,
        "person1": s.characters[0].model_dump(mode="json"),
        "person2": s.characters[1].model_dump(mode="json"),
    }
    return json.dumps(data, ensure_ascii=False, indent=1)


def _context(ep: Episode, s: Scenario, profile: CultureProfile | None) -> str:
    where = f" in a {profile.demonym} ({profile.country}) setting" if profile is not None else ""
    return (
        f"Here is a conversation between two participants{where}.\n\n"
        f"Participants' information:\n{scenario_json(s)}\n\n"
        f"Conversation:\n{transcript(ep.turns, style='pairs')}\n\n"
    )


def _culture(profile: CultureProfile | None) -> str:
    """What alignment is judged against: the culture, or (no-culture control data) the setting's norms."""
    return f"the {profile.demonym} culture" if profile is not None else "the social norms of its setting"


_CONFIDENCE_CHOICES = "Confidence choices: 1. very confident, 2. confident, 3. not sure."


def quality_chat(ep: Episode, s: Scenario, profile: CultureProfile | None) -> Chat:
    """Step 1a (the paper's quality prompt)."""
    user = (
        _context(ep, s, profile)
        + "Please judge the quality of their conversation. The conversation is bad in quality if it has many "
        "repeating sentences towards the end or the content doesn't align with the given setting.\n"
        f"Quality choices: 1. good, 2. bad.\n{_CONFIDENCE_CHOICES}\n\n"
        f"Answer in exactly this format:\n{answer_format(QualityAnswer)}"
    )
    return [{"role": "user", "content": user}]


def alignment_chat(ep: Episode, s: Scenario, profile: CultureProfile | None) -> Chat:
    """Step 1b (the paper's culture-alignment prompt)."""
    user = (
        _context(ep, s, profile) + f"Please judge if their conversation aligns with {_culture(profile)}.\n"
        "Culture alignment choices: 1. aligned to the culture, 2. not aligned to the culture.\n"
        f"{_CONFIDENCE_CHOICES}\n\n"
        f"Answer in exactly this format:\n{answer_format(AlignmentAnswer)}"
    )
    return [{"role": "user", "content": user}]


def _previous(q: QualityAnswer | None, a: AlignmentAnswer | None, raw_q: str, raw_a: str) -> str:
    one = f"Quality: {q.quality} ({q.confidence})" if q is not None else f"Quality judgement: {raw_q.strip()}"
    two = (
        f"Culture alignment: {a.alignment} ({a.confidence})"
        if a is not None
        else f"Culture alignment judgement: {raw_a.strip()}"
    )
    return f"{one}\n{two}"


def meta_chat(ep: Episode, s: Scenario, profile: CultureProfile | None, previous: str) -> Chat:
    """Step 2 (the paper's meta prompt): critique step 1, then a meta label on the culture alignment."""
    user = (
        _context(ep, s, profile) + f"Previous judgements:\n{previous}\n\n"
        "Please critic on the previous judgement and output a meta label on the conversation's alignment to "
        f"{_culture(profile)} and the confidence (don't judge the goal achievement).\n"
        f"Meta label choices: 1. good, 2. bad.\n{_CONFIDENCE_CHOICES}\n\n"
        f"Answer in exactly this format:\n{answer_format(MetaAnswer)}"
    )
    return [{"role": "user", "content": user}]


# ------------------------------------------------------------------------------------------- the stage


class JudgeSummary(BaseModel):
    """Counts of one ``judge_episodes`` call."""

    episodes: int = 0  # finished episodes in episodes.jsonl
    skipped: int = 0  # already judged
    judged: int = 0
    kept: int = 0
    dropped: int = 0
    errors: int = 0
    llm: StructuredStats = Field(default_factory=StructuredStats)


def _judgement(
    e: Episode,
    backend: Backend,
    rule: JudgeConfig,
    q: Structured[QualityAnswer],
    a: Structured[AlignmentAnswer],
    m: Structured[MetaAnswer],
) -> Judgement:
    errors = [
        f"{name}: {r.error}" for name, r in (("quality", q), ("alignment", a), ("meta", m)) if r.value is None
    ]
    error = "; ".join(errors) or None
    qv, av, mv = q.value, a.value, m.value
    alignment = (
        None if av is None else ("aligned" if av.alignment == "aligned to the culture" else "not aligned")
    )
    fields: dict[str, Any] = {
        "quality": qv.quality if qv else None,
        "quality_confidence": qv.confidence if qv else None,
        "alignment": alignment,
        "alignment_confidence": av.confidence if av else None,
        "meta": mv.meta_label if mv else None,
        "meta_confidence": mv.confidence if mv else None,
    }
    return Judgement(
        id=e.id,
        episode_id=e.id,
        culture=e.culture,
        model=backend.spec,
        **fields,
        critique=mv.critic if mv else "",
        keep=rule.rule.keep(**fields, error=error),
        raw={"quality": q.raws, "alignment": a.raws, "meta": m.raws},
        attempts=q.attempts + a.attempts + m.attempts,
        prompt_version=PROMPT_VERSION,
        error=error,
    )


def judge_episodes(
    backend: Backend,
    run: RunDir,
    cfg: JudgeConfig,
    *,
    batch_size: int = 32,
    progress: bool = True,
    seed: int = 0,
) -> JudgeSummary:
    """Judge every finished episode of ``run`` into ``judgements.jsonl`` (resumable). ``seed``: the requests'
    seed (the run's seed; a re-ask uses ``seed + attempt``)."""
    run.require(run.episodes_file)
    store = run.judgement_store()
    eps = run.episodes()
    scenarios = run.episodes_with_scenarios(eps)
    summary = JudgeSummary(episodes=len(eps))
    done = store.ids()
    todo = [e for e in eps if e.id not in done]
    summary.skipped = len(eps) - len(todo)
    profiles = {c: (get_profile(c) if c != GENERIC else None) for c in sorted({e.culture for e in todo})}
    params = GenerationParams(temperature=0.0, max_new_tokens=cfg.max_new_tokens, seed=seed)
    with stage_progress("Judging episodes", total=len(todo), enabled=progress) as advance:
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + batch_size]
            live = [e for e in chunk if any(t.action in ("speak", "non-verbal") for t in e.turns)]
            out = [
                Judgement(
                    id=e.id,
                    episode_id=e.id,
                    culture=e.culture,
                    model=backend.spec,
                    keep=False,
                    prompt_version=PROMPT_VERSION,
                    error="episode has no utterance; dropped without judging",
                )
                for e in chunk
                if e not in live
            ]
            out += _judge_live(backend, live, scenarios, profiles, cfg, params, summary.llm)
            order = {e.id: i for i, e in enumerate(chunk)}
            out.sort(key=lambda j: order[j.id])
            summary.judged += store.extend(out)
            summary.kept += sum(1 for j in out if j.keep)
            summary.dropped += sum(1 for j in out if not j.keep)
            summary.errors += sum(1 for j in out if j.error)
            advance(len(chunk))
    return summary


def _judge_live(
    backend: Backend,
    live: Sequence[Episode],
    scenarios: dict[str, Scenario],
    profiles: dict[str, CultureProfile | None],
    cfg: JudgeConfig,
    params: GenerationParams,
    stats: StructuredStats,
) -> list[Judgement]:
    if not live:
        return []
    ctx = [(e, scenarios[e.scenario_id], profiles[e.culture]) for e in live]
    n = len(ctx)

    p_q = params.model_copy(update={"json_schema": answer_schema(QualityAnswer)})
    p_a = params.model_copy(update={"json_schema": answer_schema(AlignmentAnswer)})
    p_m = params.model_copy(update={"json_schema": answer_schema(MetaAnswer)})
    quality = generate_structured(
        backend, [quality_chat(*c) for c in ctx], lambda i, t: parse_quality(t), p_q,
        max_retries=cfg.max_retries, stats=stats,
    )  # fmt: skip
    alignment = generate_structured(
        backend, [alignment_chat(*c) for c in ctx], lambda i, t: parse_alignment(t), p_a,
        max_retries=cfg.max_retries, stats=stats,
    )  # fmt: skip
    previous = [
        _previous(quality[i].value, alignment[i].value, quality[i].raws[-1], alignment[i].raws[-1])
        for i in range(n)
    ]
    meta = generate_structured(
        backend, [meta_chat(*ctx[i], previous[i]) for i in range(n)], lambda i, t: parse_meta(t), p_m,
        max_retries=cfg.max_retries, stats=stats,
    )  # fmt: skip
    return [_judgement(e, backend, cfg, quality[i], alignment[i], meta[i]) for i, e in enumerate(live)]
