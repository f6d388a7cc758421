"""Intents: parser, cultural heuristic, only kept episodes, public info only, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from stage_helpers import Scripted, make_run

from clca.culture import get_profile
from clca.intents import PROMPT_VERSION, is_cultural, label_intents, parse_intent
from clca.intents.config import IntentsConfig
from clca.llm.base import Chat
from clca.records import Judgement


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INTENT: To settle the bill politely.", "To settle the bill politely."),
        ("Sure!\n**Intent:** to show respect for his elder", "to show respect for his elder"),
        ("intent - greet the friend\n\nExplanation: none", "greet the friend"),
        (
            "INTENT: To agree,\nout of deference to seniority.\nReason: x",
            "To agree, out of deference to seniority.",
        ),
        ("Intention: to apologise", "to apologise"),
        ("He wants to pay.", None),
        ("", None),
    ],
)
def test_parse_intent(text: str, expected: str | None) -> None:
    assert parse_intent(text) == expected


def test_is_cultural(data_dir: Path) -> None:
    cn = get_profile("China")
    assert is_cultural("To avoid losing face in front of his friend.", cn)
    assert is_cultural("To show respect to an elder, as Chinese etiquette expects.", cn)
    assert is_cultural("To follow the custom of paying for guests in China.", cn)
    assert is_cultural("To keep social harmony.", None)
    assert not is_cultural("To ask for the price of the tea.", cn)
    assert not is_cultural("To get a customer discount.", cn)  # 'customer' is not 'custom'


def _reply(chat: Chat) -> str:
    last_line = chat[1]["content"].split("\n\n", 1)[0].splitlines()[-1]
    if "elder brother" in last_line:
        return "INTENT: To show deference to an older friend, as Chinese norms expect."
    if "nods" in last_line:
        return "I am not sure."
    return "INTENT: To open the conversation about the bill."


def test_label_intents_kept_only_and_resume(tmp_path: Path, data_dir: Path) -> None:
    run = make_run(tmp_path)
    run.judgement_store().extend(
        [
            Judgement(id="china-s1:0", episode_id="china-s1:0", culture="China", model="m", keep=True),
            Judgement(id="china-s2:0", episode_id="china-s2:0", culture="China", model="m", keep=False),
            Judgement(id="china-s1:1", episode_id="china-s1:1", culture="China", model="m", keep=False),
        ]
    )
    backend = Scripted(_reply)
    s = label_intents(backend, run, IntentsConfig(max_retries=1), progress=False, batch_size=2)
    # three utterances and the closing leave
    assert (s.episodes, s.utterances, s.labelled, s.cultural, s.errors) == (1, 4, 4, 1, 1)
    assert backend.batches == [2, 1, 2]  # the reply without INTENT: is re-asked once (new seed)
    for chat in backend.chats:
        text = "\n".join(m["content"] for m in chat)
        assert "SECRET" not in text and "GOAL-" not in text and "Li Wei teaches maths." in text
        # the paper's prompts, with the relationship phrase
        assert "you are an expert in Chinese culture" in text and "Li Wei and Zhang Min are friends." in text
        assert "Please follow the schema: INTENT: <intent>" in text
    recs = {r.id: r for r in run.intents()}
    assert set(recs) == {"china-s1:0:0", "china-s1:0:1", "china-s1:0:2", "china-s1:0:3"}
    assert recs["china-s1:0:2"].cultural and recs["china-s1:0:2"].speaker == 0
    assert recs["china-s1:0:1"].intent is None and recs["china-s1:0:1"].error
    assert recs["china-s1:0:1"].attempts == 2 and recs["china-s1:0:0"].prompt_version == PROMPT_VERSION
    # history stops at the labelled utterance
    first = backend.chats[0][1]["content"]
    assert "Hello Zhang" in first and "elder brother" not in first
    before = run.intents_file.read_text()
    again = label_intents(backend, run, IntentsConfig(), progress=False)
    assert (again.skipped, again.labelled) == (4, 0) and run.intents_file.read_text() == before


def test_intents_resume_after_crash_same_file(tmp_path: Path, data_dir: Path) -> None:
    runs = []
    for name in ("a", "b"):
        run = make_run(tmp_path / name)
        run.judgement_store().extend(
            [
                Judgement(id=i, episode_id=i, culture="China", model="m", keep=True)
                for i in ("china-s1:0", "china-s2:0")
            ]
        )
        runs.append(run)
    cfg = IntentsConfig(max_retries=0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        label_intents(Scripted(_reply, crash_after=2), runs[0], cfg, progress=False, batch_size=2)
    assert len(runs[0].intents()) == 4
    for run in runs:
        label_intents(Scripted(_reply), run, cfg, progress=False, batch_size=2)
    assert runs[0].intents_file.read_text() == runs[1].intents_file.read_text()
    assert len(runs[0].intents_file.read_text().splitlines()) == 8
