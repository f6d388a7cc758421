"""Two-agent role-play of culture-adapted scenarios (CLCA / Sotopia format), lock-step batched.

Method
------
One language model plays both characters of a :class:`~clca.records.Scenario`. Each agent's prompt holds,
in this order (what both agents are told first, so that prefix caches share it; prompt ``roleplay-v2``):

* the setting, the relationship and the culture profile in words ("You are a member of the {demonym}
  culture..." followed by the Hofstede and Inglehart–Welzel description from :func:`clca.culture.get_profile`),
  as in the CLCA system prompt, and BOTH characters' public information (name, age, gender, occupation,
  background, personality and values), and the answer format,
* ITS OWN name, social goal and secret only (the other character's goal is "Unknown"; its secret is never shown),
* the conversation history in Sotopia's wording (``Turn #k: Name said: "..."``, ``Turn #k: Name [non-verbal]
  ...``, ``Turn #k: Name did nothing``, ``Turn #k: Name left the conversation``).

Each turn the acting agent picks one of ``none``, ``non-verbal``, ``speak``, ``leave`` and answers
``ACTION: ...`` / ``OUTPUT: ...``. :func:`parse_action` reads that robustly from messy small-model output.
Person 1 opens and speakers alternate. An episode stops when an agent leaves, when ``max_turns`` turns
(one turn = one agent's act, as in Sotopia's ``Turn #k``) have been played, or when the same agent produced
``max_consecutive_failures`` unparseable outputs in a row (an unparseable output is not a turn: the same agent
is asked again at the next round; the raw text is kept in ``Episode.parse_errors``, the stop reason is
``parse_failure``).

Lock-step batching: every unfinished episode advances by exactly one agent output per *round*, and a round is
ONE ``backend.generate`` call (or a few, when ``batch_size`` caps it). After every round the state of all
in-progress episodes is written atomically to ``episodes.checkpoint.json``; finished episodes are appended to
``episodes.jsonl`` (first) and dropped from the checkpoint (second), so a killed run resumes mid-conversation and
a rerun never duplicates an episode. Sample ``s`` of a scenario is episode ``{scenario_id}#s{s}`` with seed
``base_seed * 1000 + s``, passed to the backend (it is part of the call-cache key).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clca.errors import DataError
from clca.llm.base import Backend, Chat, GenerationParams
from clca.records import Action, Character, Episode, Scenario, Turn
from clca.runs import JsonlStore, write_json_atomic

SCENARIOS_FILE = "scenarios.jsonl"
EPISODES_FILE = "episodes.jsonl"
CHECKPOINT_FILE = "episodes.checkpoint.json"
PROMPT_VERSION = "roleplay-v2"
NO_HISTORY = "This is the beginning of the interaction, no history available."

# --------------------------------------------------------------------------------------------------------------
# Prompt rendering
# --------------------------------------------------------------------------------------------------------------


def culture_words(culture: str) -> str:
    """The culture block of the system prompt for ``culture`` ("" for culture-neutral seed scenarios).

    Uses ``clca.culture.get_profile(culture)``: its ``demonym`` and ``describe()`` (the Hofstede and
    Inglehart–Welzel profile in words). An unknown country raises that module's one-line error.
    """
    if not culture or culture.lower() == "generic":
        return ""
    from clca.culture import get_profile  # imported lazily: the culture package is optional for seeds

    profile = get_profile(culture)
    demonym = profile.demonym
    return (
        f"Both participants are {demonym}. You are a member of the {demonym} culture, "
        f"and you think, speak and act in line with its culture dimensions:\n{profile.describe()}"
    )


def _public_info(c: Character) -> str:
    """A character's public information (what both agents may see): never ``goal`` or ``secret``."""
    lines = [f"Name: {c.name}"]
    if c.age is not None:
        lines.append(f"Age: {c.age}")
    if c.gender:
        lines.append(f"Gender: {c.gender}" + (f" ({c.pronoun})" if c.pronoun else ""))
    if c.occupation:
        lines.append(f"Occupation: {c.occupation}")
    if c.background:
        lines.append(f"Background: {c.background}")
    if c.personality:
        lines.append(f"Personality and values: {c.personality}")
    return "\n".join(lines)


def render_history(scenario: Scenario, turns: Sequence[Turn]) -> str:
    """The conversation so far in Sotopia's wording, one line per turn (``Turn #0`` is person 1's opener)."""
    if not turns:
        return NO_HISTORY
    out = []
    for k, t in enumerate(turns):
        name = scenario.characters[t.speaker].name
        if t.action == "speak":
            out.append(f'Turn #{k}: {name} said: "{t.text}"')
        elif t.action == "non-verbal":
            out.append(f"Turn #{k}: {name} [non-verbal] {t.text}")
        elif t.action == "leave":
            out.append(f"Turn #{k}: {name} left the conversation" + (f': "{t.text}"' if t.text else ""))
        else:
            out.append(f"Turn #{k}: {name} did nothing")
    return "\n".join(out)


def build_messages(scenario: Scenario, speaker: int, turns: Sequence[Turn], culture_text: str) -> Chat:
    """The chat (system + user message) asking agent ``speaker`` (0 or 1) for its next act.

    The system message carries the context: first what both agents are told (setting, participants,
    relationship, the culture words, both public profiles, the answer format), then the agent's OWN identity,
    goal and secret; the user message carries the history and the request. The shared part is word for word the
    same for both agents and all samples of a scenario, so a prefix-caching backend (clca's local engine, vLLM)
    computes it once per scenario.
    """
    me = scenario.characters[speaker]
    other = scenario.characters[1 - speaker]
    p1, p2 = scenario.characters[0].name, scenario.characters[1].name
    parts = [
        "Here is the context of this interaction:",
        f"Scenario: {scenario.setting}",
        f"Participants: {p1} and {p2}",
    ]
    if scenario.relationship:
        parts.append(f"Relationship between {p1} and {p2}: {_relationship_words(scenario.relationship)}")
    if culture_text:
        parts.append(culture_text)
    parts += [f"Information about {c.name}:\n{_public_info(c)}" for c in scenario.characters]
    parts.append(
        "Each turn, the acting person chooses one action type: none, non-verbal, speak, leave.\n"
        "Choose leave as soon as you have achieved your social goal, or there is a clear outcome for it "
        "(success or failure).\n"
        "OUTPUT is what you say if you speak, the physical act if non-verbal, a closing sentence if you leave, "
        "and NONE if none.\n"
        "Reply with exactly two lines in this format, for example:\n"
        "ACTION: speak\n"
        "OUTPUT: Good evening! It is nice to see you."
    )
    parts += [
        f"You are {me.name}.",
        f"Your social goal: {me.goal or 'Unknown'}",
        f"Your secret (private, only you know it): {me.secret or 'None'}",
        f"{other.name}'s goal: Unknown",
        f"Imagine you are {me.name}. Your task is to act and speak like {me.name}"
        + (", a member of this culture," if culture_text else "")
        + f" with {me.name}'s social goal in mind.",
    ]
    system = "\n\n".join(parts)
    k = len(turns)
    # Everything fixed is in the system message and the history comes last, so an agent's prompt at its next
    # turn extends this one (only the final line changes): prefix-cache friendly for local and vLLM backends.
    user = (
        f"Conversation history:\n{render_history(scenario, turns)}\n\n"
        f"You are at Turn #{k}. You are {me.name}; it is your turn. Reply as {me.name}, in English:"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_RELATIONSHIPS = {
    "0": "strangers",
    "1": "people who know each other by name",
    "2": "acquaintances",
    "3": "friends",
    "4": "romantic partners",
    "5": "family members",
}


def _relationship_words(rel: str) -> str:
    return _RELATIONSHIPS.get(rel.strip(), rel.strip())


# --------------------------------------------------------------------------------------------------------------
# Action parsing
# --------------------------------------------------------------------------------------------------------------


class ParsedAction(BaseModel):
    """The outcome of parsing one raw agent output: an act, or ``ok=False`` with the reason."""

    model_config = ConfigDict(frozen=True)
    ok: bool
    action: Action = "none"
    text: str = ""
    error: str = ""


_ACTION_WORDS: dict[str, Action] = {
    "none": "none",
    "nothing": "none",
    "no action": "none",
    "wait": "none",
    "non-verbal": "non-verbal",
    "nonverbal": "non-verbal",
    "non verbal": "non-verbal",
    "non-verbal communication": "non-verbal",
    "action": "non-verbal",
    "gesture": "non-verbal",
    "speak": "speak",
    "speaks": "speak",
    "speaking": "speak",
    "say": "speak",
    "says": "speak",
    "talk": "speak",
    "reply": "speak",
    "respond": "speak",
    "leave": "leave",
    "leaves": "leave",
    "leaving": "leave",
    "exit": "leave",
    "end": "leave",
}
_ACTION_NUMBERS: dict[str, Action] = {"1": "none", "2": "non-verbal", "3": "speak", "4": "leave"}

_SPECIAL_TOKENS = re.compile(r"<\|[^|>]*\|>|</?s>|<end_of_turn>|<eos>")
_JSON_ACTION = re.compile(r"""["']?action_type["']?\s*:\s*["']([^"']+)["']""", re.I)
_JSON_ARG = re.compile(r"""["']?argument["']?\s*:\s*"((?:[^"\\]|\\.)*)"?""", re.I | re.S)
_ACTION_LABEL = re.compile(
    r"(?:^|\n)[ \t*#>-]*(?:\*\*)?\s*(?:your\s+)?action(?:[ _]type)?\s*(?:is)?\s*(?:\*\*)?\s*[:=：-]\s*(?:\*\*)?",
    re.I,
)
_OUTPUT_LABEL = re.compile(
    r"(?:^|\n|\s)[ \t*#>-]*(?:\*\*)?\s*(?:your\s+)?(?:output|argument|utterance|response)\s*(?:is)?\s*(?:\*\*)?\s*[:=：]\s*(?:\*\*)?",
    re.I,
)
_TURN_MARK = re.compile(r"\bTurn\s*#\s*\d+", re.I)


def normalize_action(word: str) -> Action | None:
    """Map a messy action word ("3. speak", "**Speak**", "Non-Verbal", "2") to an :data:`Action`, or None."""
    w = word.strip().strip("*\"'`[](){}<>.,;:!").strip().lower()
    if not w:
        return None
    m = re.match(r"^(\d)\s*[.):-]?\s*(.*)$", w)
    if m:
        rest = m.group(2).strip().strip("*\"'`[]().,;:!").strip()
        if rest:
            found = normalize_action(rest)
            if found is not None:
                return found
        return _ACTION_NUMBERS.get(m.group(1))
    w = re.sub(r"\s+", " ", w.replace("_", " "))
    if w in _ACTION_WORDS:
        return _ACTION_WORDS[w]
    if w.replace(" ", "-") in _ACTION_WORDS:
        return _ACTION_WORDS[w.replace(" ", "-")]
    first = re.split(r"[\s,.;:/|]+", w)[0]
    if first in _ACTION_WORDS:
        return _ACTION_WORDS[first]
    if first in ("non", "non-verbal"):
        return "non-verbal"
    return None


def _name_variants(name: str) -> list[str]:
    """Full name and first name (the forms a model uses when it starts speaking for someone)."""
    name = name.strip()
    if not name:
        return []
    out = [name]
    first = name.split()[0]
    if first != name and len(first) >= 2:
        out.append(first)
    return out


_ECHO_LINE = re.compile(
    r"turn\s*#|action types?\b|your (?:social )?goal|conversation history|no history available|it is your turn"
    r"|you are at turn|please only output|now reply as|your secret|here is the context|reply with exactly"
    r"|your turn\b|'s turn\b|your task\b",
    re.I,
)
_PROSE_REJECT = re.compile(
    r"\b(?:actions?|output|turn|goal|secret|history|interaction|conversation|summary|scenario|task|participants?)\b",
    re.I,
)


def _cut_other_speaker(text: str, other_name: str, own_name: str) -> str:
    """Keep the lines before the model starts another turn or echoes the prompt.

    A line is a cut point when it starts with either character's name followed by ``:``, ``said``,
    ``says``, ``- ACTION`` or ``[non-verbal]`` (the model writing the other's turn, or a second turn of its
    own), or when it echoes the prompt (``Turn #``, "action types", "your goal", "conversation history"...).
    The first line is checked for echoes too, so an output that merely repeats the prompt becomes empty.
    """
    speaker_pats = [
        re.compile(
            r"^[ \t*\"'(]*"
            + re.escape(name)
            + r"(?:\*\*)?\s*(?::|said\b|says\b|-\s*action|\[non-verbal\]|replies\b)",
            re.I,
        )
        for name in _name_variants(other_name) + _name_variants(own_name)
    ]
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _ECHO_LINE.search(line):
            break
        if i > 0 and kept and "".join(kept).strip() and any(p.search(line) for p in speaker_pats):
            break
        kept.append(line)
    return "\n".join(kept)


def _clean_text(text: str, own_name: str) -> str:
    """Strip labels, quotes, markdown and a leading "Name:" from an utterance."""
    t = text.strip()
    for name in _name_variants(own_name):
        t = re.sub(r"^[*\"']*" + re.escape(name) + r"[*\"']*\s*(?:said|says)?\s*:\s*", "", t, flags=re.I)
    t = t.strip().strip("*").strip()
    if t[:1] in '"“':
        m = re.match(r"^[\"“]([^\"”]+)[\"”]", t)
        t = m.group(1).strip() if m else t[1:].strip()  # the quoted utterance; drop what trails it
    elif len(t) >= 2 and t[0] == "'" and t[-1] == "'":
        t = t[1:-1].strip()
    t = re.sub(r"[ \t]+", " ", t)
    t = re.sub(r"\n{2,}", "\n", t).strip()
    return t


def parse_action(raw: str, *, own_name: str = "", other_name: str = "") -> ParsedAction:
    """Parse one agent output into an act, tolerating what real (small) models write.

    Accepted, in this order: a JSON-ish ``{"action_type": ..., "argument": ...}`` (Sotopia's format);
    ``ACTION: x`` / ``OUTPUT: y`` labels in any case, with markdown, numbered action types ("3. speak"),
    a missing OUTPUT label (the rest of the text is the output), or a missing ACTION label with an OUTPUT
    (taken as speak); a bare ``Name: "utterance"`` or a quoted utterance (speak). The output is cut where the
    model starts writing the other character's turn (a line starting with either name, or ``Turn #``) or a
    second ACTION block, and stripped of quotes and trailing junk. ``speak``/``non-verbal`` need a non-empty
    output; ``none`` and ``leave`` do not. Anything else is ``ok=False`` with the reason.
    """
    text = _SPECIAL_TOKENS.sub("", raw or "").replace("：", ":").replace("\r", "")
    text = re.sub(r"^\s*(?:assistant|<assistant>)\s*:?\s*\n", "", text.strip(), flags=re.I).strip()
    text = re.sub(r"^```(?:json)?\s*|\s*```\s*$", "", text).strip()
    if not text:
        return ParsedAction(ok=False, error="empty output")

    # 1) JSON-ish (Sotopia): {"action_type": "speak", "argument": "..."}
    ja = _JSON_ACTION.search(text)
    if ja:
        action = normalize_action(ja.group(1))
        if action is None:
            return ParsedAction(ok=False, error=f"unknown action type {ja.group(1)!r}")
        arg = _JSON_ARG.search(text)
        body = ""
        if arg:
            try:
                body = json.loads('"' + arg.group(1) + '"')
            except json.JSONDecodeError:
                body = arg.group(1)
        return _finish(action, _clean_text(body, own_name), own_name)

    # 2) ACTION / OUTPUT labels
    am = _ACTION_LABEL.search(text)
    if am:
        after = text[am.end() :]
        after_lines = after.split("\n", 1)
        action_line = after_lines[0]
        om_inline = _OUTPUT_LABEL.search(action_line)
        if om_inline:  # "ACTION: speak OUTPUT: hi" on one line
            action_word, body = action_line[: om_inline.start()], action_line[om_inline.end() :]
            body += "\n" + after_lines[1] if len(after_lines) > 1 else ""
        else:
            action_word = action_line
            rest = after_lines[1] if len(after_lines) > 1 else ""
            om = _OUTPUT_LABEL.search("\n" + rest)
            body = ("\n" + rest)[om.end() :] if om else rest
            if not om:
                # "ACTION: speak - Hello there" / "ACTION: speak, "Hello""
                split = re.match(r"^\s*([A-Za-z0-9. -]+?)\s*(?:[-–—,:]\s+|\s+(?=[\"“]))(.+)$", action_word)
                if split and normalize_action(split.group(1)) is not None and not rest.strip():
                    action_word, body = split.group(1), split.group(2)
        action = normalize_action(action_word)
        if action is None:
            return ParsedAction(ok=False, error=f"unknown action type {action_word.strip()[:40]!r}")
        body = _ACTION_LABEL.split(body, maxsplit=1)[0]  # a second ACTION block is junk
        body = _OUTPUT_LABEL.split(body, maxsplit=1)[0]  # so is a second OUTPUT label
        body = _cut_other_speaker("\n" + body, other_name, own_name)
        return _finish(action, _clean_text(body, own_name), own_name)

    # 3) OUTPUT label without ACTION: the model spoke
    om = _OUTPUT_LABEL.search("\n" + text)
    if om:
        body = _OUTPUT_LABEL.split(("\n" + text)[om.end() :], maxsplit=1)[0]
        body = _cut_other_speaker(body, other_name, own_name)
        return _finish("speak", _clean_text(body, own_name), own_name)

    # 4) no labels: 'Name: "..."', 'Name said: "..."', a quoted utterance, or plain prose
    body = _cut_other_speaker("\n" + text, other_name, own_name).strip()
    for name in _name_variants(own_name):
        m = re.match(
            r"^[*\"']*" + re.escape(name) + r"[*\"']*\s*(?:said|says)?\s*:\s*(.+)$", body, re.I | re.S
        )
        if m:
            return _finish("speak", _clean_text(m.group(1), own_name), own_name)
    speaks_as_other = r"[*\"']*\s*(?::|said\b|says\b|replies\b|\[non-verbal\])"
    if any(
        re.match(r"^[*\"']*" + re.escape(n) + speaks_as_other, body, re.I) for n in _name_variants(other_name)
    ):
        return ParsedAction(ok=False, error="the output speaks for the other character")
    first_line = body.split("\n", 1)[0]
    if body and not _PROSE_REJECT.search(first_line) and len(body.split()) >= 2:
        return _finish("speak", _clean_text(body, own_name), own_name)
    return ParsedAction(ok=False, error="no ACTION/OUTPUT found")


def _finish(action: Action, text: str, own_name: str) -> ParsedAction:
    """Apply the per-action rules on the (cleaned) output text."""
    if text.strip().upper() in ("NONE", "N/A", "<NONE>", "NULL", "[NONE]"):
        text = ""
    if action == "none":
        return ParsedAction(ok=True, action="none", text="")
    if action in ("speak", "non-verbal") and not text:
        return ParsedAction(ok=False, action=action, error=f"empty output for action {action}")
    if _ACTION_LABEL.search(text) or text.lstrip().startswith("<"):
        return ParsedAction(ok=False, action=action, error="output is a template placeholder or nested label")
    return ParsedAction(ok=True, action=action, text=text)


# --------------------------------------------------------------------------------------------------------------
# Episode state machine
# --------------------------------------------------------------------------------------------------------------


class EpisodeState(BaseModel):
    """An in-progress episode as saved in the checkpoint: the episode plus the failure counter."""

    model_config = ConfigDict(extra="forbid")
    episode: Episode
    consecutive_failures: int = 0

    @property
    def next_speaker(self) -> int:
        """Person 1 (0) opens; speakers alternate; a failed output is retried by the same agent."""
        turns = self.episode.turns
        return 0 if not turns else 1 - turns[-1].speaker

    @property
    def done(self) -> bool:
        return self.episode.stop_reason != "running"


def apply_output(
    state: EpisodeState, scenario: Scenario, raw: str, *, max_turns: int, max_consecutive_failures: int
) -> ParsedAction:
    """Advance ``state`` by the agent output ``raw`` and apply the stop rules. Returns the parse result."""
    ep = state.episode
    speaker = state.next_speaker
    me, other = scenario.characters[speaker], scenario.characters[1 - speaker]
    parsed = parse_action(raw, own_name=me.name, other_name=other.name)
    if parsed.ok:
        ep.turns.append(Turn(speaker=speaker, name=me.name, action=parsed.action, text=parsed.text, raw=raw))
        state.consecutive_failures = 0
        if parsed.action == "leave":
            ep.stop_reason = "leave"
        elif len(ep.turns) >= max_turns:
            ep.stop_reason = "max_turns"
    else:
        ep.parse_failures += 1
        state.consecutive_failures += 1
        ep.parse_errors.append(f"turn {len(ep.turns)}, {me.name}: {parsed.error}: {raw[:500]}")
        if state.consecutive_failures >= max_consecutive_failures:
            ep.stop_reason = "parse_failure"
    return parsed


# --------------------------------------------------------------------------------------------------------------
# The lock-step simulation
# --------------------------------------------------------------------------------------------------------------


class SimulationSummary(BaseModel):
    """What one ``simulate`` call did."""

    episodes_planned: int = 0  # episodes the selection asks for (scenarios × samples)
    already_done: int = 0  # found finished in episodes.jsonl and skipped
    resumed: int = 0  # taken up from the checkpoint mid-conversation
    started: int = 0  # started from scratch in this call
    finished: int = 0  # written to episodes.jsonl in this call
    rounds: int = 0
    generate_calls: int = 0
    outputs: int = 0  # agent outputs requested (turns + failed outputs)
    parse_failures: int = 0
    stop_reasons: dict[str, int] = Field(default_factory=dict)
    per_culture: dict[str, int] = Field(default_factory=dict)  # finished in this call, per culture
    avg_turns: float = 0.0
    elapsed_s: float = 0.0


def _canonical_culture(name: str) -> str:
    """Culture names compared case-insensitively, with aliases resolved ("UK" == "Great Britain") when known."""
    try:
        from clca.culture import resolve_country

        return resolve_country(name).lower()
    except Exception:  # unknown name or no data bundle: compare as written
        return name.strip().lower()


def episode_id(scenario_id: str, sample: int) -> str:
    return f"{scenario_id}#s{sample}"


def load_scenarios(run_dir: Path) -> list[Scenario]:
    """The run's ``scenarios.jsonl``; a missing or empty file is a one-line :class:`DataError`."""
    path = run_dir / SCENARIOS_FILE
    if not path.exists():
        raise DataError(
            f"{path} does not exist.",
            fix=f"run `clca scenarios --run {run_dir}` first (or put your own Scenario records there).",
        )
    scenarios = JsonlStore(path, Scenario).all()
    if not scenarios:
        raise DataError(f"{path} holds no scenarios.", fix=f"run `clca scenarios --run {run_dir}` first.")
    return scenarios


def _checkpoint_config(
    backend: Backend, params: GenerationParams, max_turns: int, max_consecutive_failures: int, seed: int
) -> dict[str, Any]:
    return {
        "model": backend.spec,
        "params": params.model_dump(mode="json"),
        "max_turns": max_turns,
        "max_consecutive_failures": max_consecutive_failures,
        "seed": seed,
        "prompt_version": PROMPT_VERSION,
    }


def _load_checkpoint(path: Path, config: dict[str, Any]) -> list[EpisodeState]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        states = [EpisodeState.model_validate(s) for s in data["episodes"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValidationError) as exc:
        raise DataError(
            f"{path} is not a valid role-play checkpoint ({type(exc).__name__}).",
            fix="delete it; its in-progress episodes will be restarted.",
        ) from None
    old = data.get("config", {})
    if old != config:
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise DataError(
            f"{path} holds in-progress episodes made with other settings ({', '.join(diff)}).",
            fix="rerun with the same options to finish them, or delete the checkpoint file to drop them.",
        )
    return states


def _save_checkpoint(path: Path, config: dict[str, Any], states: Sequence[EpisodeState]) -> None:
    write_json_atomic(path, {"config": config, "episodes": [s.model_dump(mode="json") for s in states]})


def _generate_round(
    backend: Backend,
    chats: list[Chat],
    seeds: list[int],
    params: GenerationParams,
    batch_size: int | None,
) -> tuple[list[str], int]:
    """Generate one output per chat: one call, or chunks of ``batch_size`` grouped by prompt length."""
    if not batch_size or batch_size >= len(chats):
        return backend.generate(chats, params, seeds=seeds), 1
    order = sorted(range(len(chats)), key=lambda i: -sum(len(m["content"]) for m in chats[i]))
    outs: list[str] = [""] * len(chats)
    calls = 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        res = backend.generate([chats[i] for i in idx], params, seeds=[seeds[i] for i in idx])
        calls += 1
        for i, o in zip(idx, res, strict=True):
            outs[i] = o
    return outs, calls


def simulate(
    backend: Backend,
    run_dir: str | Path,
    *,
    samples: int = 2,
    max_turns: int = 12,
    max_new_tokens: int = 160,
    temperature: float = 0.7,
    seed: int = 0,
    max_consecutive_failures: int = 2,
    cultures: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    on_round: Callable[[int, Sequence[EpisodeState]], None] | None = None,
) -> SimulationSummary:
    """Role-play ``samples`` episodes of every scenario in ``run_dir/scenarios.jsonl``, lock-step batched.

    ``cultures`` keeps only scenarios of those cultures; ``limit`` keeps the first ``limit`` scenarios (after
    the culture filter). Finished episodes already in ``episodes.jsonl`` are skipped; in-progress ones in the
    checkpoint are resumed (the checkpoint must have been written with the same model and settings).
    ``batch_size`` caps how many chats go into one ``generate`` call (default: the whole round).
    ``on_round(round_index, states)`` is called after each round's checkpoint is saved (for tests/monitoring).
    """
    if samples < 1 or max_turns < 1 or max_consecutive_failures < 1:
        raise DataError(
            f"invalid role-play settings (samples={samples}, max_turns={max_turns}, "
            f"max_consecutive_failures={max_consecutive_failures}).",
            fix="use values of at least 1.",
        )
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    scenarios = load_scenarios(run_dir)
    if cultures:
        wanted = {_canonical_culture(c) for c in cultures}
        scenarios = [s for s in scenarios if _canonical_culture(s.culture) in wanted]
    if limit is not None:
        scenarios = scenarios[:limit]
    by_id = {s.id: s for s in scenarios}

    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    config = _checkpoint_config(backend, params, max_turns, max_consecutive_failures, seed)
    store = JsonlStore(run_dir / EPISODES_FILE, Episode)
    ckpt_path = run_dir / CHECKPOINT_FILE
    done_ids = store.ids()
    checkpoint = _load_checkpoint(ckpt_path, config)
    summary = SimulationSummary()

    states: list[EpisodeState] = []
    kept_foreign: list[EpisodeState] = []  # in-progress episodes outside this selection: kept, not advanced
    for st in checkpoint:
        if st.episode.id in done_ids:
            continue
        if st.episode.scenario_id in by_id and st.episode.sample < samples:
            states.append(st)
            summary.resumed += 1
        else:
            kept_foreign.append(st)
    in_ckpt = {st.episode.id for st in states}
    for sc in scenarios:
        for k in range(samples):
            eid = episode_id(sc.id, k)
            summary.episodes_planned += 1
            if eid in done_ids:
                summary.already_done += 1
            elif eid not in in_ckpt:
                ep = Episode(
                    id=eid,
                    scenario_id=sc.id,
                    culture=sc.culture,
                    sample=k,
                    seed=seed * 1000 + k,
                    model=backend.spec,
                )
                states.append(EpisodeState(episode=ep))
                summary.started += 1

    culture_cache: dict[str, str] = {}

    def words(c: str) -> str:
        if c not in culture_cache:
            culture_cache[c] = culture_words(c)
        return culture_cache[c]

    for sc in scenarios:  # fail fast on a culture without a profile, before any model call
        words(sc.culture)

    finished_turns: list[int] = []
    stops: Counter[str] = Counter()
    per_culture: Counter[str] = Counter()

    prog = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        )
        prog.start()
        t_eps = prog.add_task("episodes done", total=len(states))
        t_rounds = prog.add_task("rounds", total=max_turns)
    try:
        active = [s for s in states if not s.done]
        while active:
            chats = [
                build_messages(
                    by_id[s.episode.scenario_id], s.next_speaker, s.episode.turns, words(s.episode.culture)
                )
                for s in active
            ]
            seeds = [s.episode.seed for s in active]
            outs, calls = _generate_round(backend, chats, seeds, params, batch_size)
            summary.generate_calls += calls
            summary.outputs += len(outs)
            for st, raw in zip(active, outs, strict=True):
                parsed = apply_output(
                    st,
                    by_id[st.episode.scenario_id],
                    raw,
                    max_turns=max_turns,
                    max_consecutive_failures=max_consecutive_failures,
                )
                if not parsed.ok:
                    summary.parse_failures += 1
            finished = [s for s in active if s.done]
            if (
                finished
            ):  # episodes.jsonl first, then the checkpoint without them: a crash between is harmless
                store.extend(s.episode for s in finished)
                for s in finished:
                    stops[s.episode.stop_reason] += 1
                    per_culture[s.episode.culture] += 1
                    finished_turns.append(len(s.episode.turns))
            active = [s for s in active if not s.done]
            _save_checkpoint(ckpt_path, config, active + kept_foreign)
            summary.rounds += 1
            if prog is not None:
                prog.update(t_eps, advance=len(finished))
                prog.update(t_rounds, completed=summary.rounds, total=max(max_turns, summary.rounds))
            if on_round is not None:
                on_round(summary.rounds, active)
    finally:
        if prog is not None:
            prog.stop()
    if not kept_foreign and ckpt_path.exists():
        ckpt_path.unlink()
    summary.finished = sum(stops.values())
    summary.stop_reasons = dict(stops)
    summary.per_culture = dict(per_culture)
    summary.avg_turns = sum(finished_turns) / len(finished_turns) if finished_turns else 0.0
    summary.elapsed_s = time.perf_counter() - t0
    return summary
