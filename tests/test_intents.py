"""Intents: parser, cultural heuristic, only kept episodes, public info only, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from stage_helpers import Scripted, make_run

from clca.culture import get_profile
from clca.intents import is_cultural, label_intents, parse_intent
from clca.llm.base import Chat
from clca.records import Intent, Judgement
from clca.runs import JsonlStore


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
    cn = get_profile("China", data_dir)
    assert is_cultural("To avoid losing face in front of his friend.", cn)
    assert is_cultural("To show respect to an elder, as Chinese etiquette expects.", cn)
    assert is_cultural("To follow the custom of paying for guests in China.", cn)
    assert is_cultural("To keep social harmony.", None)
    assert not is_cultural("To ask for the price of the tea.", cn)
    assert not is_cultural("To get a customer discount.", cn)  # 'customer' is not 'custom'


def _reply(chat: Chat) -> str:
    last_line = chat[1]["content"].split("Conversation so far:\n", 1)[1].split("\n\n", 1)[0].splitlines()[-1]
    if "elder brother" in last_line:
        return "INTENT: To show deference to an older friend, as Chinese norms expect."
    if "nods" in last_line:
        return "I am not sure."
    return "INTENT: To open the conversation about the bill."


def test_label_intents_kept_only_and_resume(tmp_path: Path, data_dir: Path) -> None:
    run = make_run(tmp_path)
    JsonlStore(run / "judgements.jsonl", Judgement).extend(
        [
            Judgement(id="china-s1:0", episode_id="china-s1:0", culture="China", model="m", keep=True),
            Judgement(id="china-s2:0", episode_id="china-s2:0", culture="China", model="m", keep=False),
            Judgement(id="china-s1:1", episode_id="china-s1:1", culture="China", model="m", keep=False),
        ]
    )
    backend = Scripted(_reply)
    s = label_intents(backend, run, progress=False, batch_size=2, data_dir=data_dir)
    assert (s.episodes, s.utterances, s.labelled, s.cultural, s.errors) == (1, 3, 3, 1, 1)
    assert backend.batches == [2, 1]
    for chat in backend.chats:
        text = "\n".join(m["content"] for m in chat)
        assert "SECRET" not in text and "GOAL-" not in text and "Li Wei teaches maths." in text
    recs = {r.id: r for r in JsonlStore(run / "intents.jsonl", Intent).all()}
    assert set(recs) == {"china-s1:0:0", "china-s1:0:1", "china-s1:0:2"}
    assert recs["china-s1:0:2"].cultural and recs["china-s1:0:2"].speaker == 0
    assert recs["china-s1:0:1"].intent is None and recs["china-s1:0:1"].error
    # history stops at the labelled utterance
    first = backend.chats[0][1]["content"]
    assert "Hello Zhang" in first and "elder brother" not in first
    before = (run / "intents.jsonl").read_text()
    again = label_intents(backend, run, progress=False, data_dir=data_dir)
    assert (again.skipped, again.labelled) == (3, 0) and (run / "intents.jsonl").read_text() == before


def test_intents_resume_after_crash_same_file(tmp_path: Path, data_dir: Path) -> None:
    from collections.abc import Sequence

    from clca.llm.base import GenerationParams

    class Crashing(Scripted):
        def generate(
            self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
        ) -> list[str]:
            if len(self.batches) == 2:
                raise KeyboardInterrupt
            return super().generate(chats, params, seeds)

    runs = []
    for name in ("a", "b"):
        run = make_run(tmp_path / name)
        JsonlStore(run / "judgements.jsonl", Judgement).extend(
            [
                Judgement(id=i, episode_id=i, culture="China", model="m", keep=True)
                for i in ("china-s1:0", "china-s2:0")
            ]
        )
        runs.append(run)
    with pytest.raises(KeyboardInterrupt):
        label_intents(Crashing(_reply), runs[0], progress=False, batch_size=2, data_dir=data_dir)
    assert len(JsonlStore(runs[0] / "intents.jsonl", Intent).all()) == 4
    for run in runs:
        label_intents(Scripted(_reply), run, progress=False, batch_size=2, data_dir=data_dir)
    assert (runs[0] / "intents.jsonl").read_text() == (runs[1] / "intents.jsonl").read_text()
    assert len((runs[0] / "intents.jsonl").read_text().splitlines()) == 6
