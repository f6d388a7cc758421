"""Tests of the two-agent role-play: prompt privacy, the action parser, stop rules, lock-step rounds, resume."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from clca.data.sotopia import load_seeds
from clca.errors import DataError
from clca.llm.base import Chat
from clca.llm.testing import ScriptedBackend
from clca.records import LiveEpisode, Scenario, Turn
from clca.render import transcript
from clca.roleplay import (
    RETRY_SEED_STEP,
    EpisodeState,
    apply_output,
    build_messages,
    culture_words,
    parse_action,
    simulate,
)
from clca.roleplay.config import SimulateConfig
from clca.rundir import RunDir

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def seeds(data_dir: Path) -> list[Scenario]:
    """The real Sotopia-derived seed scenarios (450 scenario x character-pair combinations)."""
    return load_seeds()


def _cultured(seeds: list[Scenario], n: int, culture: str = "China") -> list[Scenario]:
    return [s.model_copy(update={"culture": culture, "id": f"{culture[:2]}-{s.id}"}) for s in seeds[:n]]


def _write_scenarios(run: Path, scenarios: Sequence[Scenario]) -> RunDir:
    rd = RunDir(run)
    rd.scenario_store().extend(scenarios)
    return rd


def actor(garbage_every: int = 5) -> Callable[[Chat, int | None], str]:
    """A deterministic stand-in for a model: its reply depends only on the chat text and the seed.

    It reads whose turn it is and the turn number from the prompt. Some replies (chosen by a hash of the chat
    and the seed) are unparseable; agents leave at turn 3 or later when ``turn + seed`` is a multiple of 3.
    """

    def reply(chat: Chat, seed: int | None) -> str:
        assert seed is not None
        user = chat[-1]["content"]
        m = re.search(r"You are at Turn #(\d+)\. You are (.+?); it is your turn", user)
        assert m, user
        k, name = int(m.group(1)), m.group(2)
        h = int(hashlib.sha256((json.dumps(chat) + str(seed)).encode()).hexdigest(), 16)
        if garbage_every and h % garbage_every == 0:
            return "This is the beginning of the interaction, no history available."
        if k >= 3 and (k + seed) % 3 == 0:
            return f"ACTION: leave\nOUTPUT: Goodbye from {name}."
        return f"ACTION: speak\nOUTPUT: {name} at turn {k}, seed {seed}, h{h % 1000}."

    return reply


def Actor(garbage_every: int = 5, crash_after: int | None = None) -> ScriptedBackend:
    return ScriptedBackend(actor(garbage_every), spec="scripted:test", crash_after=crash_after)


def sim(**kw: object) -> SimulateConfig:
    return SimulateConfig.model_validate(kw)


# ------------------------------------------------------------------------------------------------ prompts


def test_prompt_shows_own_private_info_only(seeds: list[Scenario]) -> None:
    """Each agent sees its own goal and secret, never the other's (on real Sotopia-derived scenarios)."""
    words = culture_words("China")
    assert "Chinese" in words and len(words) > 80
    checked = 0
    history = [Turn(speaker=0, name="x", action="speak", text="Hello.")]
    for sc in _cultured(seeds, 60):
        for speaker in (0, 1):
            me, other = sc.characters[speaker], sc.characters[1 - speaker]
            for turns in ([], history) if speaker == 0 else (history,):
                text = "\n".join(m["content"] for m in build_messages(sc, speaker, turns, words))
                assert me.goal in text and me.secret in text
                assert words in text
                assert other.name in text and other.occupation in text and other.background in text
                if other.secret and other.secret not in (me.secret, me.goal, me.background, sc.setting):
                    assert other.secret not in text
                    checked += 1
                if other.goal and other.goal not in text.replace(me.goal, ""):
                    checked += 1
                elif other.goal and other.goal != me.goal:
                    pytest.fail(f"{sc.id}: the other agent's goal leaks into {me.name}'s prompt")
    assert checked >= 200  # the privacy assertions really ran


def test_history_uses_sotopia_wording(seeds: list[Scenario]) -> None:
    sc = seeds[0]
    a, b = sc.characters[0].name, sc.characters[1].name
    turns = [
        Turn(speaker=0, name=a, action="speak", text="Hi!"),
        Turn(speaker=1, name=b, action="non-verbal", text="waves"),
        Turn(speaker=0, name=a, action="none", text=""),
        Turn(speaker=1, name=b, action="leave", text=""),
    ]
    assert transcript(turns, style="sotopia").split("\n") == [
        f'Turn #0: {a} said: "Hi!"',
        f"Turn #1: {b} [non-verbal] waves",
        f"Turn #2: {a} did nothing",
        f"Turn #3: {b} left the conversation",
    ]
    user = build_messages(sc, 0, turns, "")[1]["content"]
    assert "You are at Turn #4" in user and f'Turn #0: {a} said: "Hi!"' in user


# ------------------------------------------------------------------------------------------------ parser

# (raw output, own name, other name, expected action or None for a failure, expected text)
# The first block is real SmolLM2-135M-Instruct output on our role-play prompts (temperature 0 and 0.7).
REAL_CASES: list[tuple[str, str, str, str | None, str]] = [
    (
        "This is the beginning of the interaction, no history available.\n\nYou are at Turn #0. It is Benjamin "
        "Jackson's turn.\nYour available action types are: none, non-verbal, speak, leave.\nChoose leave as soon "
        "as 1) you have achieved your social goal, or 2",
        "Benjamin Jackson",
        "Mia Davis",
        None,
        "",
    ),
    (
        'Your turn: Benjamin Jackson said: "Hi there, how are you doing today?"\n\nYour available action types '
        "are: none, non-verbal, speak, leave, and NONE\nYour action is: Speak\nYour output is:\nYour output is:\n"
        "Your output is:\nYour output is:",
        "Ethan Smith",
        "Benjamin Jackson",
        None,
        "",
    ),
    (
        'Your turn: Ethan Smith said: "Hi there, how are you doing today?"\n\nYour available action types are: '
        "none, non-verbal, speak, leave, and NONE\nYour action is: Speak\nYour output is: Hi there, how are you "
        "doing today?\nYour action is: Speak",
        "Ethan Smith",
        "Hendrick Heinz",
        "speak",
        "Hi there, how are you doing today?",
    ),
    (
        'Lena Goodwin: "Hi there, how are you doing today?"\n\nLena Goodwin: "I\'m doing great, thanks for '
        "asking.\"\n\nLena Goodwin: \"I'm so glad you're enjoying your trip to the beach. I'm going to the "
        'beach with you too."\n',
        "Lena Goodwin",
        "Lily Greenberg",
        "speak",
        "Hi there, how are you doing today?",
    ),
    (
        'Output: Ethan Smith says: "Hi there, how are you doing today?"',
        "Ethan Smith",
        "Hendrick Heinz",
        "speak",
        "Hi there, how are you doing today?",
    ),
    (
        'Benjamin Jackson said: "Hi there, how are you doing today?"\n\nYou are at Turn #2: You\'re at The '
        "Original Story. You are at The Original Story.",
        "Benjamin Jackson",
        "Mia Davis",
        "speak",
        "Hi there, how are you doing today?",
    ),
    ("What's your task?", "Hendrick Heinz", "Ethan Smith", None, ""),
    (
        "Here is a summary of the conversation:\n\nStart: You are asked to talk to Hendrick Heinz, a chocolate-"
        "loving chef named Ethan Smith.",
        "Ethan Smith",
        "Hendrick Heinz",
        None,
        "",
    ),
    (
        "You are at Turn #1.\nYour available action types are: none, non-verbal, speak, leave, and none.\nYou "
        "already have an unspoken action given by yourself.\nYour output is: I will leave.\nPlease only output "
        "the final action in English:",
        "Lily Greenberg",
        "Lena Goodwin",
        "speak",
        "I will leave.",
    ),
    (
        "I'm here to make you happy. Let's discuss what's going on in today's world. How has the world been "
        "impacted lately?",
        "Hendrick Heinz",
        "Ethan Smith",
        "speak",
        "I'm here to make you happy. Let's discuss what's going on in today's world. How has the world been "
        "impacted lately?",
    ),
    ("This is the end of the interaction.", "Lily Greenberg", "Lena Goodwin", None, ""),
    (
        "Output: Good evening! It is nice to see you.\n\nYour social goal is to act and speak in line with your "
        "culture's dimensions, and you are at Turn #1. You are Oliver Smith.\n\nIf you are",
        "Oliver Smith",
        "Samuel Anderson",
        "speak",
        "Good evening! It is nice to see you.",
    ),
    (
        "Here's a possible sequence of actions:\n\n- Speak\n- NONE\n- Repeat\n\nYour social goal: to be a good "
        "host",
        "Naomi Fletcher",
        "Leo Williams",
        None,
        "",
    ),
    (
        "Your turn is to speak, come to speak, speak in front of the audience.\nYour action is to speak, speak in "
        "front of the audience.\nYour output is to speak in front of the audience.",
        "Ethan Johnson",
        "Benjamin Jackson",
        None,
        "",
    ),
    (
        "Behavioral Action:\n\nYour social goal: Liam Johnson is your partner in crime.\nHere's the conversation "
        'history:\n\nTurn #0: Eli Dawson said: "Hi there, how are you doing today?"',
        "Liam Johnson",
        "Eli Dawson",
        None,
        "",
    ),
]

# Format variants seen in Sotopia / CLCA logs of larger models.
FORMAT_CASES: list[tuple[str, str, str, str | None, str]] = [
    (
        "ACTION: speak\nOUTPUT: Nice to meet you, Li Wei.",
        "Zhang Min",
        "Li Wei",
        "speak",
        "Nice to meet you, Li Wei.",
    ),
    ('Action: Speak\nOutput: "I\'d love some tea."', "Zhang Min", "Li Wei", "speak", "I'd love some tea."),
    ("action: 3. speak\noutput: Sure.", "Zhang Min", "Li Wei", "speak", "Sure."),
    ("ACTION: 2\nOUTPUT: bows slightly", "Zhang Min", "Li Wei", "non-verbal", "bows slightly"),
    (
        "ACTION: Non-Verbal\nOUTPUT: *smiles and pours tea*",
        "Zhang Min",
        "Li Wei",
        "non-verbal",
        "smiles and pours tea",
    ),
    ("ACTION: none\nOUTPUT: NONE", "Zhang Min", "Li Wei", "none", ""),
    (
        "ACTION: leave\nOUTPUT: Goodbye, see you next week.",
        "Zhang Min",
        "Li Wei",
        "leave",
        "Goodbye, see you next week.",
    ),
    ("ACTION: leave", "Zhang Min", "Li Wei", "leave", ""),
    (
        '{"action_type": "speak", "argument": "Shall we split the books?"}',
        "Zhang Min",
        "Li Wei",
        "speak",
        "Shall we split the books?",
    ),
    ("```json\n{'action_type': 'leave', 'argument': ''}\n```", "Zhang Min", "Li Wei", "leave", ""),
    ("**ACTION:** speak\n**OUTPUT:** Of course!", "Zhang Min", "Li Wei", "speak", "Of course!"),
    ("ACTION: speak OUTPUT: Fine by me.", "Zhang Min", "Li Wei", "speak", "Fine by me."),
    (
        "ACTION: speak\nYes, I agree with that plan.",
        "Zhang Min",
        "Li Wei",
        "speak",
        "Yes, I agree with that plan.",
    ),
    (
        "ACTION: speak\nOUTPUT: How about I take the books?\nLi Wei: No way, I want them.\nZhang Min: Fine.",
        "Zhang Min",
        "Li Wei",
        "speak",
        "How about I take the books?",
    ),
    (
        "ACTION: speak\nOUTPUT: Agreed.\nACTION: leave\nOUTPUT: Bye.",
        "Zhang Min",
        "Li Wei",
        "speak",
        "Agreed.",
    ),
    (
        'ACTION: speak\nOUTPUT: Sounds good.\nTurn #3: Li Wei said: "ok"',
        "Zhang Min",
        "Li Wei",
        "speak",
        "Sounds good.",
    ),
    ("ACTION: dance\nOUTPUT: spins", "Zhang Min", "Li Wei", None, ""),
    ("ACTION: speak\nOUTPUT:", "Zhang Min", "Li Wei", None, ""),
    ("ACTION: speak\nOUTPUT: <your_output>", "Zhang Min", "Li Wei", None, ""),
    ("", "Zhang Min", "Li Wei", None, ""),
    ('Li Wei: "I will take everything."', "Zhang Min", "Li Wei", None, ""),
    (
        "Li Wei, shall we split the books?",
        "Zhang Min",
        "Li Wei",
        "speak",
        "Li Wei, shall we split the books?",
    ),
    ("ACTION：speak\nOUTPUT：你好 — hello!<|im_end|>", "Zhang Min", "Li Wei", "speak", "你好 — hello!"),
]


@pytest.mark.parametrize(("raw", "own", "other", "action", "text"), REAL_CASES + FORMAT_CASES)
def test_parse_action(raw: str, own: str, other: str, action: str | None, text: str) -> None:
    got = parse_action(raw, own_name=own, other_name=other)
    if action is None:
        assert not got.ok and got.error, got
    else:
        assert got.ok, got
        assert (got.action, got.text) == (action, text)


# ------------------------------------------------------------------------------------------------ stop rules


def _state(sc: Scenario) -> EpisodeState:
    ep = LiveEpisode(id="e#s0", scenario_id=sc.id, culture=sc.culture, sample=0, seed=0, model="m")
    return EpisodeState(episode=ep)


def test_stop_on_leave_and_alternation(seeds: list[Scenario]) -> None:
    sc = seeds[0]
    st = _state(sc)
    assert st.next_speaker == 0
    apply_output(st, sc, "ACTION: speak\nOUTPUT: hi", max_turns=12, max_consecutive_failures=2)
    assert st.next_speaker == 1 and not st.done
    apply_output(st, sc, "ACTION: leave\nOUTPUT: bye", max_turns=12, max_consecutive_failures=2)
    assert st.done and st.episode.stop_reason == "leave"
    assert [t.speaker for t in st.episode.turns] == [0, 1]
    assert st.episode.turns[1].name == sc.characters[1].name and st.episode.turns[1].raw.startswith("ACTION")


def test_stop_on_turn_cap(seeds: list[Scenario]) -> None:
    sc = seeds[0]
    st = _state(sc)
    for _ in range(4):  # max_turns counts pairs: 2 turns = 4 acts
        assert not st.done
        apply_output(st, sc, "ACTION: none\nOUTPUT: NONE", max_turns=2, max_consecutive_failures=2)
    assert st.done and st.episode.stop_reason == "max_turns" and len(st.episode.turns) == 4


def test_parse_failure_is_retried_then_recorded(seeds: list[Scenario]) -> None:
    sc = seeds[0]
    st = _state(sc)
    apply_output(st, sc, "ACTION: speak\nOUTPUT: hi", max_turns=12, max_consecutive_failures=2)
    apply_output(st, sc, "gibberish about the action types", max_turns=12, max_consecutive_failures=2)
    assert not st.done and st.next_speaker == 1  # the same agent is asked again
    apply_output(st, sc, "ACTION: speak\nOUTPUT: hello", max_turns=12, max_consecutive_failures=2)
    assert st.consecutive_failures == 0 and st.next_speaker == 0
    apply_output(st, sc, "Your turn.", max_turns=12, max_consecutive_failures=2)
    assert not st.done
    apply_output(st, sc, "ACTION: dance", max_turns=12, max_consecutive_failures=2)
    ep = st.episode
    assert st.done and ep.stop_reason == "parse_failure"
    assert ep.parse_failures == 3 and len(ep.parse_errors) == 3 and len(ep.turns) == 2
    assert "dance" in ep.parse_errors[-1] and sc.characters[0].name in ep.parse_errors[-1]


# ------------------------------------------------------------------------------------------------ simulate


def test_lockstep_rounds_one_call_each(tmp_path: Path, seeds: list[Scenario]) -> None:
    run = _write_scenarios(tmp_path / "run", _cultured(seeds, 3))
    be = Actor(garbage_every=0)
    summary = simulate(be, run, sim(samples=2, max_turns=2), progress=False)
    eps = run.episode_store().all()
    assert len(eps) == 6 == summary.finished
    assert sorted(e.id for e in eps) == sorted(f"Ch-{s.id}#s{k}" for s in seeds[:3] for k in range(2))
    assert {e.seed for e in eps} == {0, 1}
    assert be.batches[0] == 6 and len(be.batches) == summary.rounds == summary.generate_calls
    assert all(
        b >= a for a, b in zip(be.batches[1:], be.batches, strict=False)
    )  # rounds shrink as episodes end
    assert sum(be.batches) == summary.outputs
    assert {e.stop_reason for e in eps} == {"leave", "max_turns"}
    assert all(len(e.turns) <= 4 for e in eps) and any(len(e.turns) == 4 for e in eps)  # 2 pairs
    assert not run.checkpoint_file.exists()
    # both samples of a scenario differ (distinct seeds)
    by = {e.id: e for e in eps}
    s0 = by[f"Ch-{seeds[0].id}#s0"].turns[0].text
    s1 = by[f"Ch-{seeds[0].id}#s1"].turns[0].text
    assert s0 != s1 and "seed 0" in s0 and "seed 1" in s1
    # rerun: nothing new, no duplicates, no model call
    be2 = Actor()
    again = simulate(be2, run, sim(samples=2, max_turns=2), progress=False)
    assert again.already_done == 6 and again.finished == 0 and be2.calls == []
    assert len(run.episodes_file.read_text().splitlines()) == 6


def test_max_turns_two_is_four_utterances(tmp_path: Path, seeds: list[Scenario]) -> None:
    """One turn is a pair: max_turns 2 yields 4 utterances when nobody leaves."""
    run = _write_scenarios(tmp_path / "run", _cultured(seeds, 2))
    be = ScriptedBackend(lambda chat: "ACTION: speak\nOUTPUT: Hello there.")
    s = simulate(be, run, sim(samples=1, max_turns=2), progress=False)
    eps = run.episode_store().all()
    assert [len(e.turns) for e in eps] == [4, 4] and s.avg_turns == 2.0
    assert {e.stop_reason for e in eps} == {"max_turns"}


def test_retry_after_a_parse_failure_uses_a_new_seed(tmp_path: Path, seeds: list[Scenario]) -> None:
    """An unparseable output is re-asked with a new seed, so a cache or a deterministic server can answer
    differently and max_consecutive_failures means what it says."""
    run = _write_scenarios(tmp_path / "run", _cultured(seeds, 1))

    def flaky(chat: Chat, seed: int | None) -> str:
        return "Hmm." if seed == 0 else "ACTION: leave\nOUTPUT: Bye."

    be = ScriptedBackend(flaky)
    s = simulate(be, run, sim(samples=1, max_turns=3, max_consecutive_failures=3), progress=False)
    ep = run.episode_store().all()[0]
    assert [c[2] for c in be.calls] == [[0], [RETRY_SEED_STEP]]
    assert ep.stop_reason == "leave" and ep.parse_failures == 1 and s.retries == 1


def test_batch_size_chunks_a_round(tmp_path: Path, seeds: list[Scenario]) -> None:
    run = _write_scenarios(tmp_path / "run", _cultured(seeds, 5))
    be = Actor(garbage_every=0)
    simulate(be, run, sim(samples=1, max_turns=1), batch_size=2, progress=False)
    assert be.batches[:3] == [2, 2, 1]


def test_resume_after_crash_gives_same_file(tmp_path: Path, seeds: list[Scenario]) -> None:
    scen = _cultured(seeds, 4) + _cultured(seeds[10:], 2, "Japan")
    ref = _write_scenarios(tmp_path / "ref", scen)
    crashed = _write_scenarios(tmp_path / "crash", scen)
    cfg = sim(samples=2, max_turns=2, max_consecutive_failures=2)
    simulate(Actor(), ref, cfg, progress=False)
    reasons = {e.stop_reason for e in ref.episode_store().all()}
    assert reasons == {"leave", "max_turns", "parse_failure"}  # the scripted model exercises every stop rule

    with pytest.raises(RuntimeError, match="simulated crash"):
        simulate(Actor(crash_after=3), crashed, cfg, progress=False)
    ckpt = json.loads(crashed.checkpoint_file.read_text())
    mid = [e for e in ckpt["episodes"] if e["episode"]["turns"]]
    assert mid, "the crash should leave episodes in progress, mid-conversation"
    summary = simulate(Actor(), crashed, cfg, progress=False)
    assert summary.resumed == len(ckpt["episodes"]) and summary.started == 0
    assert crashed.episodes_file.read_text() == ref.episodes_file.read_text()
    assert not crashed.checkpoint_file.exists()


def test_checkpoint_with_other_settings_is_refused(tmp_path: Path, seeds: list[Scenario]) -> None:
    run = _write_scenarios(tmp_path / "run", _cultured(seeds, 2))
    with pytest.raises(RuntimeError):
        simulate(Actor(crash_after=1), run, sim(samples=1, max_turns=3), progress=False)
    with pytest.raises(DataError, match="max_turns"):
        simulate(Actor(), run, sim(samples=1, max_turns=2), progress=False)


def test_culture_filter_limit_and_missing_file(tmp_path: Path, seeds: list[Scenario]) -> None:
    with pytest.raises(DataError, match=r"scenarios\.jsonl"):
        simulate(Actor(), RunDir(tmp_path / "none"), sim(), progress=False)
    run = _write_scenarios(tmp_path / "run", _cultured(seeds, 3) + _cultured(seeds, 3, "Japan"))
    be = Actor()
    s = simulate(be, run, sim(samples=1, max_turns=1), cultures=["japan"], limit=2, progress=False)
    assert s.episodes_planned == 2 and s.per_culture == {"Japan": 2}
    assert all("Japanese culture" in c[0]["content"] for c in be.chats)
    with pytest.raises(DataError, match=r"no scenario of Germany.*China, Japan"):
        simulate(Actor(), run, sim(), cultures=["Germany"], progress=False)
    with pytest.raises(DataError, match="unknown culture"):
        simulate(Actor(), run, sim(), cultures=["Narnia"], progress=False)


def test_cli_missing_scenarios_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clca.cli import main

    assert main(["simulate", "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "scenarios.jsonl" in err and "clca scenarios" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ real model


@pytest.mark.slow
def test_real_model_end_to_end(tmp_path: Path, seeds: list[Scenario]) -> None:
    """2 scenarios × 1 sample × 3 turns on the embedded SmolLM2 through the CLI, then a rerun that skips them."""
    from clca.cli import main

    run = tmp_path / "run"
    _write_scenarios(run, _cultured(seeds, 2))
    argv = [
        "simulate", "--run", str(run), "--model", "embedded:smollm2-135m", "--samples", "1",
        "--max-turns", "2", "--max-new-tokens", "24", "--temperature", "0.7", "--no-cache",
    ]  # fmt: skip
    assert main(argv) == 0
    eps = RunDir(run).episode_store().all()
    assert sorted(e.id for e in eps) == sorted(f"Ch-{s.id}#s0" for s in seeds[:2])
    for e in eps:
        assert e.model == "embedded:smollm2-135m" and e.culture == "China"
        assert e.stop_reason in ("leave", "max_turns", "parse_failure")
        assert len(e.turns) + e.parse_failures >= 1 and len(e.turns) <= 4
        assert all(t.raw for t in e.turns) and len(e.parse_errors) == e.parse_failures
        assert [t.speaker for t in e.turns] == [k % 2 for k in range(len(e.turns))]
    assert not RunDir(run).checkpoint_file.exists()
    assert main(argv) == 0  # rerun: already done, nothing appended
    assert len(RunDir(run).episodes_file.read_text().splitlines()) == 2


def test_both_agents_prompts_share_the_scenario_context(seeds: list[Scenario]) -> None:
    """Everything both agents are told comes first, word for word, so a prefix cache computes it once."""
    words = culture_words("China")
    for sc in _cultured(seeds, 10):
        a = build_messages(sc, 0, [], words)[0]["content"]
        b = build_messages(sc, 1, [], words)[0]["content"]
        common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        shared = a[:common]
        assert shared.endswith("ACTION: speak\nOUTPUT: Good evening! It is nice to see you.\n\nYou are ")
        assert common > 0.7 * min(len(a), len(b))
        for c in sc.characters:  # private fields only after the shared part
            assert c.secret not in shared or c.secret in sc.setting
