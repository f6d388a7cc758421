"""Helpers for the data-stage tests: a tiny hand-built run directory (the model is clca's ScriptedBackend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clca.llm.testing import ScriptedBackend as Scripted
from clca.records import Character, Episode, Scenario, Turn
from clca.rundir import RunDir

__all__ = ["Scripted", "episode", "make_run", "scenario"]


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


def make_run(root: Path) -> RunDir:
    """A run dir with two China scenarios and three finished episodes (one of them without utterances)."""
    run = RunDir(root / "run")
    run.scenario_store().extend([scenario(), scenario(sid="china-s2")])
    run.episode_store().extend(
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
