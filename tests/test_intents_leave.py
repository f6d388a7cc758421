"""Intents of ``leave`` turns (issue #24): the released intent loop labels every utterance of the stored
dialogue, the leaving speaker's closing output included, so clca labels the leave turn too (``intent-v3``);
an intents file or a pipeline stage of the version before is refused, never silently extended."""

from __future__ import annotations

from pathlib import Path

import pytest
from stage_helpers import Scripted, scenario

from clca.config import config_from_mapping
from clca.errors import DataError
from clca.intents import PROMPT_VERSION, label_intents
from clca.intents.config import IntentsConfig
from clca.manifest import RunManifest, hash_inputs
from clca.pipeline import plan, plan_stages
from clca.records import Action, Episode, Intent, Judgement, Turn
from clca.rundir import RunDir
from clca.training.mix import intent_messages

NAMES = ("Li Wei", "Zhang Min")


def _episode(eid: str, acts: list[tuple[Action, str]]) -> Episode:
    turns = [Turn(speaker=i % 2, name=NAMES[i % 2], action=a, text=t) for i, (a, t) in enumerate(acts)]
    return Episode(
        id=eid,
        scenario_id="china-s1",
        culture="China",
        sample=0,
        seed=0,
        model="scripted",
        turns=turns,
        stop_reason="leave",
    )


def _run(tmp_path: Path, *episodes: Episode) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.scenario_store().extend([scenario()])
    run.episode_store().extend(list(episodes))
    run.judgement_store().extend(
        [Judgement(id=e.id, episode_id=e.id, culture="China", model="m", keep=True) for e in episodes]
    )
    return run


ENDS_IN_LEAVE = [
    ("speak", "Hello Zhang, shall we settle the bill?"),
    ("non-verbal", "nods politely"),
    ("speak", "Let me pay for the tea, you paid for the train."),
    ("leave", "Thank you, elder brother. I must go now."),
]


def test_the_leave_utterance_gets_an_intent(tmp_path: Path, data_dir: Path) -> None:
    run = _run(tmp_path, _episode("china-s1:0", ENDS_IN_LEAVE))
    backend = Scripted()  # clca's stage_reply: "INTENT: ..." for the intent prompt
    s = label_intents(backend, run, IntentsConfig(max_retries=0), progress=False)
    assert (s.utterances, s.labelled, s.errors) == (4, 4, 0)
    recs = {r.turn_index: r for r in run.intents()}
    assert sorted(recs) == [0, 1, 2, 3]
    leave = recs[3]
    assert leave.id == "china-s1:0:3" and leave.speaker == 1 and leave.name == "Zhang Min"
    assert leave.intent and leave.intent.startswith("To keep a polite tone")
    assert leave.prompt_version == PROMPT_VERSION == "intent-v3"
    # the leave prompt: the whole conversation, ending in the closing sentence, asking for the leaver's intent
    user = backend.chats[3][1]["content"]
    history = user.split("\n\n", 1)[0].splitlines()
    assert history == [
        "Li Wei: Hello Zhang, shall we settle the bill?",
        "Zhang Min: [non-verbal] nods politely",
        "Li Wei: Let me pay for the tea, you paid for the train.",
        "Zhang Min: [leaves the conversation] Thank you, elder brother. I must go now.",
    ]
    assert "Please predict Zhang Min's intent in the last turn" in user


def test_a_silent_leave_is_labelled_and_a_none_turn_is_not(tmp_path: Path, data_dir: Path) -> None:
    acts: list[tuple[Action, str]] = [("speak", "Hello Zhang."), ("none", ""), ("leave", "")]
    run = _run(tmp_path, _episode("china-s1:0", acts))
    backend = Scripted()
    s = label_intents(backend, run, IntentsConfig(max_retries=0), progress=False)
    assert (s.utterances, s.labelled) == (2, 2)
    assert sorted(r.turn_index for r in run.intents()) == [0, 2]
    assert backend.chats[-1][1]["content"].startswith(
        "Li Wei: Hello Zhang.\nLi Wei: [leaves the conversation]\n\n"
    )


def test_the_mix_keeps_the_leave_intent(tmp_path: Path, data_dir: Path) -> None:
    """The training mix (read-only here) ends the intent example on the leave's intent."""
    ep = _episode("china-s1:0", ENDS_IN_LEAVE)
    msgs = intent_messages(ep, scenario(), {0: "To open.", 3: "To leave politely."}, "Chinese")
    assert msgs is not None
    assert msgs[-2] == {
        "role": "user",
        "content": "Zhang Min: [non-verbal] nods politely\n"
        "Li Wei: Let me pay for the tea, you paid for the train.\n"
        "Zhang Min: [leaves the conversation] Thank you, elder brother. I must go now.",
    }
    assert msgs[-1] == {"role": "assistant", "content": "Intent: To leave politely."}


def test_an_intents_file_of_the_version_before_is_refused(tmp_path: Path, data_dir: Path) -> None:
    run = _run(tmp_path, _episode("china-s1:0", ENDS_IN_LEAVE))
    old = Intent(
        id="china-s1:0:0",
        episode_id="china-s1:0",
        culture="China",
        turn_index=0,
        speaker=0,
        name="Li Wei",
        intent="To open.",
        prompt_version="intent-v2",
    )
    run.intent_store().extend([old])
    before = run.intents_file.read_text()
    backend = Scripted()
    with pytest.raises(DataError, match=r"intent-v2, not intent-v3.*Fix: move that file aside"):
        label_intents(backend, run, IntentsConfig(), progress=False)
    assert backend.chats == [] and run.intents_file.read_text() == before


def test_a_pipeline_run_with_the_version_before_is_stale(tmp_path: Path, data_dir: Path) -> None:
    """The intent prompt version feeds the intents stage's settings hash: a run directory whose intents stage
    ran with ``intent-v2`` is refused (changed: prompt) until that stage is forced."""
    cfg = config_from_mapping(
        {"run_dir": str(tmp_path / "run"), "cultures": ["China"], "models": {"teacher": "scripted:auto"}}
    )
    stages = plan_stages(cfg)
    man = RunManifest(RunDir(cfg.run_dir).manifest_file)
    for st in stages:
        rec = man.stage(st.name)
        rec.status, rec.settings, rec.inputs = "done", dict(st.settings), st.inputs
        if st.name == "intents":
            assert st.settings["prompt"] == PROMPT_VERSION
            rec.settings["prompt"] = "intent-v2"
            rec.inputs = hash_inputs(rec.settings)
            break
    man.save()
    rows = {r.stage: r for r in plan(cfg)}
    assert rows["judge"].action == "reuse"
    assert rows["intents"].action == "refused" and rows["intents"].changed == ["prompt"]
    assert rows["intents"].settings_hash != man.data.stages["intents"].inputs
    assert {r.stage: r for r in plan(cfg, {"intents"})}["intents"].action == "rerun (forced)"
