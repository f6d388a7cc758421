"""The paper's two-step LLM judge and the filter rule that decides which episodes are kept.

Step 1 (temperature 0) rates an episode's general **quality** (good/bad: bad if many sentences repeat towards
the end or the content does not fit the setting) and its **alignment** with the culture (aligned / not
aligned), each with a confidence (very confident / confident / not sure). Step 2 is a **meta critique** of
step 1 (goal completion is explicitly not judged) that ends in a meta label (good/bad) with a confidence.

Filter (:class:`FilterRule`, default = paper): drop an episode when quality is bad with "very confident", or
the meta label is bad with "very confident"; the alignment label is recorded but not used. An answer that
cannot be parsed is recorded in :attr:`Judgement.error`; labels that *were* parsed still apply the rule, and
otherwise the episode is **kept** by default (``FilterRule.keep_on_error``), because the paper's rule only
drops on confident evidence of a bad conversation. Episodes without any utterance are dropped without a call.

Parsing accepts the requested line format ("Quality: bad (very confident)"), separate confidence lines,
markdown decoration, case and punctuation variants, and JSON (which structured-output servers return, since
each step sends a ``json_schema``). Batching: step 1 for a chunk of episodes is one ``generate`` batch, step 2
another; judgements are appended per chunk, and episodes already judged are skipped (resume).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from clca.culture import CultureProfile, get_profile
from clca.errors import DataError
from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Backend, Chat, GenerationParams
from clca.records import Confidence, Episode, Judgement, Scenario
from clca.runs import JsonlStore

EPISODES_FILE = "episodes.jsonl"
SCENARIOS_FILE = "scenarios.jsonl"
JUDGEMENTS_FILE = "judgements.jsonl"
PROMPT_VERSION = "judge-v1"

CONFIDENCES: tuple[Confidence, ...] = ("very confident", "confident", "not sure")


class FilterRule(BaseModel):
    """Which judgements drop an episode. Default: the CLCA paper's rule."""

    model_config = ConfigDict(frozen=True)
    drop_quality_bad: frozenset[Confidence] = frozenset({"very confident"})
    drop_meta_bad: frozenset[Confidence] = frozenset({"very confident"})
    drop_not_aligned: frozenset[Confidence] = frozenset()  # the paper does not use the alignment label
    keep_on_error: bool = True

    def keep(
        self,
        *,
        quality: str | None,
        quality_confidence: str | None,
        meta: str | None,
        meta_confidence: str | None,
        alignment: str | None = None,
        alignment_confidence: str | None = None,
        error: str | None = None,
    ) -> bool:
        """True when the episode is kept. Parsed evidence for dropping always wins over a parse error."""
        if quality == "bad" and quality_confidence in self.drop_quality_bad:
            return False
        if meta == "bad" and meta_confidence in self.drop_meta_bad:
            return False
        if alignment == "not aligned" and alignment_confidence in self.drop_not_aligned:
            return False
        if error:
            return self.keep_on_error
        return True


# ------------------------------------------------------------------------------------------- parsing


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


_LINE = r"(?im)^[\s>*#_\-\d.)]*(?:\*\*)?\s*{key}\s*(?:\*\*)?\s*[:=\-–]\s*(?P<rest>.*)$"


def _line_after(text: str, keys: Sequence[str]) -> str | None:
    for key in keys:
        m = re.search(_LINE.format(key=key), text)
        if m:
            return m.group("rest").strip()
    return None


def _label(rest: str | None, choices: Sequence[str]) -> str | None:
    if rest is None:
        return None
    low = rest.lower()
    best: tuple[int, str] | None = None
    for c in choices:  # earliest mention wins; "not aligned" listed before "aligned"
        m = re.search(rf"\b{re.escape(c)}\b", low)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), c)
    return best[1] if best else None


_ALIGN = {
    "not aligned": "not aligned",
    "misaligned": "not aligned",
    "unaligned": "not aligned",
    "aligned": "aligned",
}


def _from_json(obj: dict[str, Any], fields: dict[str, Sequence[str]]) -> dict[str, str | None]:
    flat = {re.sub(r"[^a-z]", "", str(k).lower()): v for k, v in obj.items()}
    out: dict[str, str | None] = {}
    for field, keys in fields.items():
        val = None
        for k in keys:
            v = flat.get(re.sub(r"[^a-z]", "", k.lower()))
            if v is not None:
                val = str(v)
                break
        out[field] = val
    return out


class Step1(BaseModel):
    quality: Literal["good", "bad"] | None = None
    quality_confidence: Confidence | None = None
    alignment: Literal["aligned", "not aligned"] | None = None
    alignment_confidence: Confidence | None = None
    error: str | None = None


class Step2(BaseModel):
    meta: Literal["good", "bad"] | None = None
    meta_confidence: Confidence | None = None
    error: str | None = None


def parse_step1(text: str) -> Step1:
    """Quality and alignment labels with confidences from a step-1 answer (free text or JSON)."""
    q = qc = a = ac = None
    try:
        obj = extract_json(text)
    except JsonTextError:
        obj = None
    if obj is not None:
        j = _from_json(
            obj,
            {
                "q": ["quality", "quality_label"],
                "qc": ["quality_confidence", "qualityconfidence"],
                "a": ["alignment", "culture", "cultural_alignment", "culture_alignment", "adherence"],
                "ac": ["alignment_confidence", "culture_confidence", "cultural_alignment_confidence"],
            },
        )
        q, a = _label(j["q"], ("good", "bad")), _label(j["a"], tuple(_ALIGN))
        qc, ac = normalise_confidence(j["qc"]), normalise_confidence(j["ac"])
    if q is None or a is None:
        q_rest = _line_after(text, ["quality", "general quality", "overall quality"])
        a_rest = _line_after(
            text,
            ["culture", "alignment", "cultural alignment", "culture alignment", "adherence to the culture"],
        )
        q = q or _label(q_rest, ("good", "bad"))
        a = a or _label(a_rest, tuple(_ALIGN))
        qc = qc or normalise_confidence(_line_after(text, ["quality confidence"]) or q_rest)
        ac = ac or normalise_confidence(
            _line_after(text, ["culture confidence", "alignment confidence", "cultural alignment confidence"])
            or a_rest
        )
    missing = [
        n
        for n, v in (
            ("quality", q),
            ("quality confidence", qc),
            ("alignment", a),
            ("alignment confidence", ac),
        )
        if v is None
    ]
    return Step1.model_validate(
        {
            "quality": q,
            "quality_confidence": qc,
            "alignment": _ALIGN[a] if a else None,
            "alignment_confidence": ac,
            "error": f"step 1: could not parse {', '.join(missing)}" if missing else None,
        }
    )


def parse_step2(text: str) -> Step2:
    """The meta label and confidence from a step-2 answer (free text or JSON)."""
    m = mc = None
    try:
        obj = extract_json(text)
    except JsonTextError:
        obj = None
    if obj is not None:
        j = _from_json(
            obj, {"m": ["meta", "meta_label", "verdict", "label"], "mc": ["meta_confidence", "confidence"]}
        )
        m, mc = _label(j["m"], ("good", "bad")), normalise_confidence(j["mc"])
    if m is None:
        rest = _line_after(
            text, ["meta", "meta label", "meta-label", "meta judgement", "final verdict", "verdict"]
        )
        m = _label(rest, ("good", "bad"))
        mc = mc or normalise_confidence(_line_after(text, ["meta confidence", "confidence"]) or rest)
    missing = [n for n, v in (("meta label", m), ("meta confidence", mc)) if v is None]
    return Step2.model_validate(
        {
            "meta": m,
            "meta_confidence": mc,
            "error": f"step 2: could not parse {', '.join(missing)}" if missing else None,
        }
    )


# ------------------------------------------------------------------------------------------- prompts


def render_transcript(ep: Episode) -> str:
    """The conversation as plain lines ("Name: text", "Name [non-verbal]: text", "Name left ...")."""
    lines: list[str] = []
    for t in ep.turns:
        if t.action == "speak":
            lines.append(f"{t.name}: {t.text}")
        elif t.action == "non-verbal":
            lines.append(f"{t.name} [non-verbal]: {t.text}")
        elif t.action == "leave":
            lines.append(f"{t.name} left the conversation.")
        else:
            lines.append(f"{t.name} did nothing.")
    return "\n".join(lines)


def public_info(s: Scenario) -> str:
    """Both characters' public information (never goals or secrets)."""
    out = []
    for c in s.characters:
        bits = [c.name]
        if c.age is not None:
            bits.append(f"{c.age} years old")
        if c.gender:
            bits.append(c.gender.lower())
        if c.occupation:
            bits.append(c.occupation)
        line = ", ".join(bits) + "."
        if c.background:
            line += f" {c.background}"
        out.append(f"- {line}")
    return "\n".join(out)


STEP1_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "quality": {"enum": ["good", "bad"]},
        "quality_confidence": {"enum": list(CONFIDENCES)},
        "alignment": {"enum": ["aligned", "not aligned"]},
        "alignment_confidence": {"enum": list(CONFIDENCES)},
        "reason": {"type": "string"},
    },
    "required": ["quality", "quality_confidence", "alignment", "alignment_confidence", "reason"],
}
STEP2_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "critique": {"type": "string"},
        "meta": {"enum": ["good", "bad"]},
        "meta_confidence": {"enum": list(CONFIDENCES)},
    },
    "required": ["critique", "meta", "meta_confidence"],
}


def step1_chat(ep: Episode, s: Scenario, profile: CultureProfile) -> Chat:
    """Step 1: quality and culture alignment, each with a confidence."""
    user = (
        f"Here is a role-played conversation set in {profile.demonym} culture.\n\n"
        f"Setting: {s.setting}\n\nPeople:\n{public_info(s)}\n\n"
        f"Culture profile: {profile.describe()}\n\nConversation:\n{render_transcript(ep)}\n\n"
        "Judge the conversation:\n"
        "1. Quality: good or bad. It is bad if many sentences are repeated towards the end, or if the content "
        "does not fit the setting.\n"
        f"2. Culture: is the conversation aligned or not aligned with {profile.demonym} culture?\n"
        "Give each judgement a confidence: very confident, confident or not sure.\n\n"
        "Answer in exactly this format:\n"
        "Quality: <good|bad> (<very confident|confident|not sure>)\n"
        "Culture: <aligned|not aligned> (<very confident|confident|not sure>)\n"
        "Reason: <one or two sentences>"
    )
    return [
        {
            "role": "system",
            "content": f"You are a careful judge of conversations and an expert in {profile.demonym} culture.",
        },
        {"role": "user", "content": user},
    ]


def step2_chat(step1: Chat, answer1: str) -> Chat:
    """Step 2: a meta critique of step 1 ending in a meta label (goal completion is not judged)."""
    return [
        *step1,
        {"role": "assistant", "content": answer1},
        {
            "role": "user",
            "content": (
                "Now critique your judgement above: is it correct and well founded, and did it miss repeated "
                "sentences or content that does not fit the setting? Do not judge whether the people achieved "
                "their goals. Then give the final label of the conversation.\n\n"
                "Answer in exactly this format:\n"
                "Critique: <one or two sentences>\n"
                "Meta: <good|bad> (<very confident|confident|not sure>)"
            ),
        },
    ]


class JudgeSummary(BaseModel):
    """Counts of one ``judge_episodes`` call."""

    episodes: int = 0  # finished episodes in episodes.jsonl
    skipped: int = 0  # already judged
    judged: int = 0
    kept: int = 0
    dropped: int = 0
    errors: int = 0


def load_scenarios(run_dir: Path) -> dict[str, Scenario]:
    return {s.id: s for s in JsonlStore(run_dir / SCENARIOS_FILE, Scenario).read()}


def culture_profiles_for(
    run_dir: Path, episodes: Sequence[Episode], scenarios: dict[str, Scenario], data_dir: str | Path | None
) -> dict[str, CultureProfile]:
    """Check that every episode's scenario exists, and load each culture's profile once."""
    profiles: dict[str, CultureProfile] = {}
    for e in episodes:
        if e.scenario_id not in scenarios:
            raise DataError(
                f"{run_dir / EPISODES_FILE}: episode {e.id} refers to scenario {e.scenario_id}, not in {SCENARIOS_FILE}.",
                fix="restore scenarios.jsonl or remove that episode.",
            )
        if e.culture not in profiles:
            profiles[e.culture] = get_profile(e.culture, data_dir)
    return profiles


def finished_episodes(run_dir: Path) -> list[Episode]:
    """Episodes that ended (any stop reason but ``running``), last record per id."""
    eps: dict[str, Episode] = {}
    for e in JsonlStore(run_dir / EPISODES_FILE, Episode).read():
        eps[e.id] = e
    return [e for e in eps.values() if e.stop_reason != "running"]


def judge_episodes(
    backend: Backend,
    run_dir: str | Path,
    *,
    rule: FilterRule | None = None,
    progress: bool = True,
    batch_size: int = 32,
    max_new_tokens: int = 200,
    data_dir: str | Path | None = None,
) -> JudgeSummary:
    """Judge every finished episode of ``run_dir/episodes.jsonl`` into ``judgements.jsonl`` (resumable)."""
    run = Path(run_dir)
    rule = rule or FilterRule()
    if not (run / EPISODES_FILE).exists():
        raise DataError(
            f"{run / EPISODES_FILE} does not exist.", fix=f"run `clca simulate --run {run}` first."
        )
    store = JsonlStore(run / JUDGEMENTS_FILE, Judgement)
    scenarios = load_scenarios(run)
    eps = finished_episodes(run)
    summary = JudgeSummary(episodes=len(eps))
    done = store.ids()
    todo = [e for e in eps if e.id not in done]
    summary.skipped = len(eps) - len(todo)
    profiles = culture_profiles_for(run, todo, scenarios, data_dir)
    p1 = GenerationParams(temperature=0.0, max_new_tokens=max_new_tokens, json_schema=STEP1_SCHEMA)
    p2 = GenerationParams(temperature=0.0, max_new_tokens=max_new_tokens, json_schema=STEP2_SCHEMA)
    from clca.progress import stage_progress

    with stage_progress("Judging episodes", total=len(todo), enabled=progress) as advance:
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + batch_size]
            out: list[Judgement] = []
            live = [e for e in chunk if any(t.action in ("speak", "non-verbal") for t in e.turns)]
            for e in chunk:
                if e not in live:
                    out.append(
                        Judgement(
                            id=e.id,
                            episode_id=e.id,
                            culture=e.culture,
                            model=backend.spec,
                            keep=False,
                            error="episode has no utterance; dropped without judging",
                        )
                    )
            chats1 = [step1_chat(e, scenarios[e.scenario_id], profiles[e.culture]) for e in live]
            ans1 = backend.generate(chats1, p1) if live else []
            ans2 = (
                backend.generate([step2_chat(c, a) for c, a in zip(chats1, ans1, strict=True)], p2)
                if live
                else []
            )
            for e, a1, a2 in zip(live, ans1, ans2, strict=True):
                s1, s2 = parse_step1(a1), parse_step2(a2)
                error = "; ".join(x for x in (s1.error, s2.error) if x) or None
                keep = rule.keep(
                    quality=s1.quality,
                    quality_confidence=s1.quality_confidence,
                    meta=s2.meta,
                    meta_confidence=s2.meta_confidence,
                    alignment=s1.alignment,
                    alignment_confidence=s1.alignment_confidence,
                    error=error,
                )
                out.append(
                    Judgement(
                        id=e.id,
                        episode_id=e.id,
                        culture=e.culture,
                        model=backend.spec,
                        quality=s1.quality,
                        quality_confidence=s1.quality_confidence,
                        alignment=s1.alignment,
                        alignment_confidence=s1.alignment_confidence,
                        meta=s2.meta,
                        meta_confidence=s2.meta_confidence,
                        keep=keep,
                        raw_step1=a1,
                        raw_step2=a2,
                        error=error,
                    )
                )
            order = {e.id: i for i, e in enumerate(chunk)}
            out.sort(key=lambda j: order[j.id])
            n = store.extend(out)
            summary.judged += n
            summary.kept += sum(1 for j in out if j.keep)
            summary.dropped += sum(1 for j in out if not j.keep)
            summary.errors += sum(1 for j in out if j.error)
            advance(len(chunk))
    return summary


def kept_episode_ids(run_dir: str | Path) -> set[str]:
    """Ids of the episodes the judge kept (per ``judgements.jsonl``)."""
    return {j.episode_id for j in JsonlStore(Path(run_dir) / JUDGEMENTS_FILE, Judgement).read() if j.keep}
