"""Helpers for the data-stage tests: a scripted backend and a tiny hand-built run directory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult
from clca.records import Character, Episode, Scenario, Turn
from clca.runs import JsonlStore


class Scripted(Backend):
    """A backend whose reply is computed from the chat by a function; records batch sizes and chats."""

    spec = "scripted"

    def __init__(self, reply: Callable[[Chat], str]) -> None:
        self.reply = reply
        self.batches: list[int] = []
        self.chats: list[Chat] = []

    @property
    def fingerprint(self) -> str:
        return "scripted"

    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        self.batches.append(len(chats))
        self.chats.extend(chats)
        return [self.reply(c) for c in chats]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        raise NotImplementedError


def scenario(culture: str = "China", sid: str = "china-s1") -> Scenario:
    return Scenario(
        id=sid,
        seed_id=sid.split("-", 1)[1],
        culture=culture,
        setting="Two friends meet in a teahouse in Suzhou to divide the costs of a shared trip.",
        relationship="friend",
        characters=[
            Character(
                first_name="Li",
                last_name="Wei",
                age=30,
                gender="Man",
                occupation="teacher",
                background="Li Wei teaches maths.",
                secret="SECRET-LI",
                goal="GOAL-LI",
            ),
            Character(
                first_name="Zhang",
                last_name="Min",
                age=28,
                gender="Woman",
                occupation="nurse",
                background="Zhang Min works nights.",
                secret="SECRET-ZHANG",
                goal="GOAL-ZHANG",
            ),
        ],
        model="scripted",
        prompt_version="adapt-v1",
    )


def episode(eid: str, sid: str = "china-s1", culture: str = "China", texts: Sequence[str] = ()) -> Episode:
    names = ["Li Wei", "Zhang Min"]
    turns = [
        Turn(
            speaker=i % 2,
            name=names[i % 2],
            action="speak" if not t.startswith("*") else "non-verbal",
            text=t.strip("*"),
        )
        for i, t in enumerate(texts)
    ]
    turns.append(Turn(speaker=len(texts) % 2, name=names[len(texts) % 2], action="leave", text=""))
    return Episode(
        id=eid,
        scenario_id=sid,
        culture=culture,
        sample=0,
        seed=0,
        model="scripted",
        turns=turns,
        stop_reason="leave",
    )


def make_run(root: Path) -> Path:
    """A run dir with two China scenarios and three finished episodes (one of them without utterances)."""
    run = root / "run"
    JsonlStore(run / "scenarios.jsonl", Scenario).extend([scenario(), scenario(sid="china-s2")])
    JsonlStore(run / "episodes.jsonl", Episode).extend(
        [
            episode(
                "china-s1:0",
                texts=[
                    "Hello Zhang, shall we settle the bill?",
                    "*nods politely*",
                    "Of course, elder brother.",
                ],
            ),
            episode(
                "china-s2:0",
                sid="china-s2",
                texts=["Nice tea.", "Yes, very nice tea.", "Yes, very nice tea."],
            ),
            episode("china-s1:1", texts=[]),
        ]
    )
    return run
