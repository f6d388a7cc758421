"""The lock-step two-agent simulation: ``clca simulate``.

Person 1 opens and speakers alternate. One **turn is a pair of utterances** (person 1, then person 2), as in
the CLCA paper's framework: an episode stops when an agent leaves, when ``max_turns`` turns (``2 *
max_turns`` acts) have been played, or when the same agent produced ``max_consecutive_failures`` unparseable
outputs in a row (an unparseable output is not a turn: the same agent is asked again at the next round, with a
**new seed**, so a call cache or a deterministic server can answer differently; the raw text is kept in
``Episode.parse_errors``, the stop reason is ``parse_failure``).

Lock-step batching: every unfinished episode (of every culture) advances by exactly one agent output per
*round*, and a round is ONE ``backend.generate`` call (or a few, when ``batch_size`` caps it). After every round
the state of all in-progress episodes is written atomically to the run's checkpoint; finished episodes are
appended to ``episodes.jsonl`` first and dropped from the checkpoint second, so a killed run resumes
mid-conversation and a rerun never duplicates an episode. Sample ``s`` of a scenario is episode
``{scenario_id}#s{s}`` with seed ``base_seed * 1000 + s``; its k-th re-ask after a failure uses
``seed + RETRY_SEED_STEP * k``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from clca.errors import DataError
from clca.llm.base import Backend, Chat, GenerationParams
from clca.records import GENERIC, CheckpointEntry, LiveEpisode, Scenario, Turn
from clca.roleplay.config import SimulateConfig
from clca.roleplay.parse import ParsedAction, parse_action
from clca.roleplay.prompts import PROMPT_VERSION, build_messages, culture_words
from clca.rundir import RunDir

RETRY_SEED_STEP = 100_003


class EpisodeState(CheckpointEntry):
    """An in-progress episode as saved in the checkpoint (the episode plus the failure counter), with the turn
    rules of the simulation."""

    @property
    def next_speaker(self) -> int:
        """Person 1 (0) opens; speakers alternate; a failed output is retried by the same agent."""
        turns = self.episode.turns
        return 0 if not turns else 1 - turns[-1].speaker

    @property
    def done(self) -> bool:
        return self.episode.done

    @property
    def request_seed(self) -> int:
        """The seed of the next request: the episode's seed, moved on by every consecutive failure."""
        return self.episode.seed + RETRY_SEED_STEP * self.consecutive_failures


def apply_output(
    state: EpisodeState, scenario: Scenario, raw: str, *, max_turns: int, max_consecutive_failures: int
) -> ParsedAction:
    """Advance ``state`` by the agent output ``raw`` and apply the stop rules (``max_turns`` counts pairs)."""
    ep = state.episode
    speaker = state.next_speaker
    me, other = scenario.characters[speaker], scenario.characters[1 - speaker]
    parsed = parse_action(raw, own_name=me.name, other_name=other.name)
    if parsed.ok:
        ep.turns.append(Turn(speaker=speaker, name=me.name, action=parsed.action, text=parsed.text, raw=raw))
        state.consecutive_failures = 0
        if parsed.action == "leave":
            ep.stop_reason = "leave"
        elif len(ep.turns) >= 2 * max_turns:
            ep.stop_reason = "max_turns"
    else:
        ep.parse_failures += 1
        state.consecutive_failures += 1
        ep.parse_errors.append(f"turn {len(ep.turns)}, {me.name}: {parsed.error}: {raw[:500]}")
        if state.consecutive_failures >= max_consecutive_failures:
            ep.stop_reason = "parse_failure"
    return parsed


class SimulationSummary(BaseModel):
    """What one ``simulate`` call did."""

    episodes_planned: int = 0  # episodes the selection asks for (scenarios x samples)
    already_done: int = 0  # found finished in episodes.jsonl and skipped
    resumed: int = 0  # taken up from the checkpoint mid-conversation
    started: int = 0  # started from scratch in this call
    finished: int = 0  # written to episodes.jsonl in this call
    rounds: int = 0
    generate_calls: int = 0
    outputs: int = 0  # agent outputs requested (turns + failed outputs)
    parse_failures: int = 0
    retries: int = 0  # requests re-asked (new seed) after an unparseable output
    stop_reasons: dict[str, int] = Field(default_factory=dict)
    per_culture: dict[str, int] = Field(default_factory=dict)  # finished in this call, per culture
    avg_turns: float = 0.0  # turns (pairs of utterances) per finished episode
    elapsed_s: float = 0.0


def episode_id(scenario_id: str, sample: int) -> str:
    return f"{scenario_id}#s{sample}"


def select_scenarios(
    scenarios: list[Scenario], cultures: Sequence[str] | None, limit: int | None, source: Path
) -> list[Scenario]:
    """The scenarios of ``cultures`` (canonical names compared), then the first ``limit``; an empty selection is
    an error naming the cultures the file has."""
    if cultures:
        from clca.culture import resolve_country

        wanted = {c if c == GENERIC else resolve_country(c) for c in cultures}
        have = sorted({s.culture for s in scenarios})
        picked = [s for s in scenarios if s.culture in wanted]
        if not picked:
            raise DataError(
                f"{source} has no scenario of {', '.join(sorted(wanted))}.",
                fix=f"choose among the cultures it has: {', '.join(have)}.",
            )
        scenarios = picked
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit {limit} selects no scenario.", fix="pass a limit of at least 1.")
        scenarios = scenarios[:limit]
    return scenarios


def _checkpoint_config(
    backend: Backend, params: GenerationParams, cfg: SimulateConfig, seed: int
) -> dict[str, Any]:
    return {
        "model": backend.spec,
        "params": params.model_dump(mode="json"),
        "max_turns": cfg.max_turns,
        "turn_unit": "pair",
        "max_consecutive_failures": cfg.max_consecutive_failures,
        "seed": seed,
        "prompt_version": PROMPT_VERSION,
    }


def _load_checkpoint(run: RunDir, config: dict[str, Any]) -> list[EpisodeState]:
    if not run.checkpoint_file.exists():
        return []
    old, entries = run.checkpoint()
    path = run.checkpoint_file
    states = [EpisodeState.model_validate(e.model_dump()) for e in entries]
    if old != config:
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise DataError(
            f"{path} holds in-progress episodes made with other settings ({', '.join(diff)}).",
            fix="rerun with the same options to finish them, or delete the checkpoint file to drop them.",
        )
    return states


def _generate_round(
    backend: Backend, chats: list[Chat], seeds: list[int], params: GenerationParams, batch_size: int | None
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
    run: RunDir,
    cfg: SimulateConfig,
    *,
    seed: int = 0,
    cultures: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    on_round: Callable[[int, Sequence[EpisodeState]], None] | None = None,
) -> SimulationSummary:
    """Role-play ``cfg.samples`` episodes of every scenario of ``run`` (or the selection), lock-step batched.

    Finished episodes already in ``episodes.jsonl`` are skipped; in-progress ones in the checkpoint are
    resumed (the checkpoint must have been written with the same model and settings). ``batch_size`` caps how
    many chats go into one ``generate`` call (default: the whole round). ``on_round(round_index, states)`` is
    called after each round's checkpoint is saved (for tests and monitoring).
    """
    t0 = time.perf_counter()
    scenarios = select_scenarios(run.require_scenarios(), cultures, limit, run.scenarios_file)
    by_id = {s.id: s for s in scenarios}
    culture_text = {c: culture_words(c) for c in sorted({s.culture for s in scenarios})}  # fails fast
    params = GenerationParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=seed)
    config = _checkpoint_config(backend, params, cfg, seed)
    store = run.episode_store()
    done_ids = store.ids()
    checkpoint = _load_checkpoint(run, config)
    summary = SimulationSummary()

    states: list[EpisodeState] = []
    kept_foreign: list[EpisodeState] = []  # in-progress episodes outside this selection: kept, not advanced
    for st in checkpoint:
        if st.episode.id in done_ids:
            continue
        if st.episode.scenario_id in by_id and st.episode.sample < cfg.samples:
            states.append(st)
            summary.resumed += 1
        else:
            kept_foreign.append(st)
    in_ckpt = {st.episode.id for st in states}
    for sc in scenarios:
        for k in range(cfg.samples):
            eid = episode_id(sc.id, k)
            summary.episodes_planned += 1
            if eid in done_ids:
                summary.already_done += 1
            elif eid not in in_ckpt:
                ep = LiveEpisode(
                    id=eid,
                    scenario_id=sc.id,
                    culture=sc.culture,
                    sample=k,
                    seed=seed * 1000 + k,
                    model=backend.spec,
                    prompt_version=PROMPT_VERSION,
                )
                states.append(EpisodeState(episode=ep))
                summary.started += 1

    finished_turns: list[float] = []
    stops: Counter[str] = Counter()
    per_culture: Counter[str] = Counter()
    from clca.progress import stage_progress

    with stage_progress("Role-play episodes", total=len(states), enabled=progress) as advance:
        active = [s for s in states if not s.done]
        while active:
            chats = [
                build_messages(
                    by_id[s.episode.scenario_id],
                    s.next_speaker,
                    s.episode.turns,
                    culture_text[s.episode.culture],
                )
                for s in active
            ]
            summary.retries += sum(1 for s in active if s.consecutive_failures)
            outs, calls = _generate_round(
                backend, chats, [s.request_seed for s in active], params, batch_size
            )
            summary.generate_calls += calls
            summary.outputs += len(outs)
            for st, raw in zip(active, outs, strict=True):
                parsed = apply_output(
                    st,
                    by_id[st.episode.scenario_id],
                    raw,
                    max_turns=cfg.max_turns,
                    max_consecutive_failures=cfg.max_consecutive_failures,
                )
                if not parsed.ok:
                    summary.parse_failures += 1
            finished = [s for s in active if s.done]
            if (
                finished
            ):  # episodes.jsonl first, then the checkpoint without them: a crash between is harmless
                store.extend(s.episode.finished() for s in finished)
                for s in finished:
                    stops[s.episode.stop_reason] += 1
                    per_culture[s.episode.culture] += 1
                    finished_turns.append(len(s.episode.turns) / 2)
            active = [s for s in active if not s.done]
            run.write_checkpoint(config, active + kept_foreign)
            summary.rounds += 1
            advance(len(finished))
            if on_round is not None:
                on_round(summary.rounds, active)
    if not kept_foreign and run.checkpoint_file.exists():
        run.checkpoint_file.unlink()
    summary.finished = sum(stops.values())
    summary.stop_reasons = dict(stops)
    summary.per_culture = dict(per_culture)
    summary.avg_turns = sum(finished_turns) / len(finished_turns) if finished_turns else 0.0
    summary.elapsed_s = time.perf_counter() - t0
    return summary
