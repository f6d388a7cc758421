"""Seeds, JSON extraction/repair, source-name rejection, batching, resume; one tiny real-model run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult
from clca.records import Scenario, ScenarioFailure
from clca.runs import JsonlStore
from clca.scenarios import (
    adapt_scenarios,
    adaptation_chat,
    load_seeds,
    parse_names,
    pick_seeds,
    rename,
    source_names,
    strip_tags,
    validate_adaptation,
)


class Scripted(Backend):
    """A backend whose reply is computed from the chat by a function (records every batch)."""

    spec = "scripted"

    def __init__(self, reply: Callable[[Chat], str]) -> None:
        self.reply = reply
        self.batches: list[int] = []

    @property
    def fingerprint(self) -> str:
        return "scripted"

    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        self.batches.append(len(chats))
        return [self.reply(c) for c in chats]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        raise NotImplementedError


def _scenario_json_from(chat: Chat, culture_name: str = "Wei") -> dict[str, object]:
    """Build a valid adaptation from the seed JSON inside the prompt (renaming everyone)."""
    text = chat[1]["content"]
    seed = json.loads(text[text.index("Scenario (JSON):\n") + 17 : text.rindex("}") + 1])
    for i, c in enumerate(seed["characters"]):
        c["first_name"], c["last_name"] = f"{culture_name}{'ab'[i]}", "Zhang"
        for k in ("background", "personality", "secret", "goal"):
            c[k] = f"{k} of person {i} in Suzhou"
    seed["setting"] = "A teahouse in Suzhou."
    return seed


def test_seeds_load_90_envs_tags_stripped(data_dir: Path) -> None:
    seeds = load_seeds(data_dir)
    assert len(seeds) == 450
    assert len({s.seed_id.rsplit("-", 1)[0] for s in seeds}) == 90
    assert len({s.id for s in seeds}) == 450
    for s in seeds:
        assert s.culture == "generic" and s.setting
        for c in s.characters:
            assert "<" not in c.goal and ">" not in c.goal
            assert c.first_name and c.occupation
    goals = [c.goal for s in seeds for c in s.characters]
    assert any("Extra information: Books give you 5 points each" in g for g in goals)
    assert any(g.startswith("To watch a comedy film with your friend. Hint:") for g in goals)


def test_strip_tags_nested() -> None:
    g = "Keep stability (<extra_info>Extra information: only $2000.<clarification_hint>Hint: don't lend all.</clarification_hint></extra_info>)"
    assert strip_tags(g) == "Keep stability. Extra information: only $2000. Hint: don't lend all."


def test_pick_seeds_spread_and_deterministic(data_dir: Path) -> None:
    seeds = load_seeds(data_dir)
    a = pick_seeds(seeds, 100, seed=3)
    assert [s.id for s in a] == [s.id for s in pick_seeds(seeds, 100, seed=3)]
    envs = [s.seed_id.rsplit("-", 1)[0] for s in a]
    assert len(set(envs[:90])) == 90  # one pair per environment before any second one
    assert [s.id for s in pick_seeds(seeds, 5, seed=4)] != [s.id for s in a[:5]]


@pytest.mark.parametrize(
    "text",
    [
        'Sure! Here it is:\n```json\n{"a": 1, "b": [1, 2,],}\n```\nHope that helps.',
        'The adapted scenario is {"a": 1, "b": [1, 2]} as requested.',
        '```\n{\'a\': 1}\n```\n{"a": 1, "b": [1, 2]}',
        '{"a": 1, "b": [1, 2], "c": "brace } in string"}',
        "{\u201ca\u201d: 1, \u201cb\u201d: [1, 2]}",
    ],
)
def test_extract_json_messy(text: str) -> None:
    obj = extract_json(text)
    assert obj["a"] == 1
    if "b" in obj:
        assert obj["b"] == [1, 2]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("no json here", "no JSON object"),
        ('{"a": 1, "b": "cut', "cut off"),
        ("{a: 1}", "invalid JSON"),
    ],
)
def test_extract_json_errors(text: str, reason: str) -> None:
    with pytest.raises(JsonTextError, match=reason):
        extract_json(text)


def test_validation_rejects_source_names_and_empty_fields(data_dir: Path) -> None:
    from clca.culture import get_profile

    seed = load_seeds(data_dir)[0]
    chat = adaptation_chat(seed, get_profile("China", data_dir))
    good = _scenario_json_from(chat)
    assert validate_adaptation(json.dumps(good), seed).characters[0].first_name == "Weia"
    leaked = json.loads(json.dumps(good))
    leaked["characters"][1]["background"] = f"Friend of {seed.characters[0].first_name}."
    with pytest.raises(ValueError, match="original name"):
        validate_adaptation(json.dumps(leaked), seed)
    empty = json.loads(json.dumps(good))
    empty["characters"][0]["secret"] = "  "
    with pytest.raises(ValueError, match=r"characters\[0\]\.secret is empty"):
        validate_adaptation(json.dumps(empty), seed)
    one = json.loads(json.dumps(good))
    one["characters"] = one["characters"][:1]
    with pytest.raises(ValueError, match="schema error at characters"):
        validate_adaptation("```json\n" + json.dumps(one) + "\n```", seed)


def test_adapt_repairs_then_records_failures_and_resumes(tmp_path: Path, data_dir: Path) -> None:
    """First reply is messy-but-fixable or broken; a repair turn fixes some; the rest become failures."""

    def reply(chat: Chat) -> str:
        n_repairs = sum(1 for m in chat if m["role"] == "assistant")
        setting_line = chat[1]["content"]
        broken = "Great Britain" in setting_line.split("\n", 1)[0]
        if broken:  # never produces valid JSON for Great Britain
            return (
                "I am sorry, I cannot do that."
                if n_repairs == 0
                else '{"setting": "London", "characters": []}'
            )
        if n_repairs == 0:  # first try keeps a source name -> repair prompt
            seed_names = setting_line.split("do not keep the original names (", 1)[1].split(")", 1)[0]
            bad = _scenario_json_from(chat)
            bad["setting"] = f"{seed_names.split(', ')[0]} meets a friend."
            return "Here you go:\n```json\n" + json.dumps(bad) + "\n```"
        assert "original name" in chat[-1]["content"]
        return "Sure.\n" + json.dumps(_scenario_json_from(chat)).replace("}]", "},]")

    backend = Scripted(reply)
    run = tmp_path / "run"
    summ = adapt_scenarios(
        backend,
        run,
        ["China", "UK"],
        3,
        seed=1,
        max_retries=1,
        progress=False,
        batch_size=4,
        data_dir=data_dir,
        names_first=False,
    )
    assert (summ.requested, summ.written, summ.failed, summ.skipped) == (6, 3, 3, 0)
    assert backend.batches == [4, 4, 2, 2]  # one batch per round per chunk
    scen = JsonlStore(run / "scenarios.jsonl", Scenario).all()
    fails = JsonlStore(run / "scenario_failures.jsonl", ScenarioFailure).all()
    assert {s.culture for s in scen} == {"China"} and {f.culture for f in fails} == {"Great Britain"}
    assert all(
        s.id == f"china-{s.seed_id}" and s.prompt_version == "adapt-v1" and s.model == "scripted"
        for s in scen
    )
    assert all(len(f.raw) == 2 and "characters" in f.reason for f in fails)
    before = (run / "scenarios.jsonl").read_text(), (run / "scenario_failures.jsonl").read_text()
    again = adapt_scenarios(
        backend, run, ["China", "Great Britain"], 3, seed=1, max_retries=1, progress=False, data_dir=data_dir
    )
    assert (again.skipped, again.written, again.llm_calls) == (6, 0, 0)
    assert ((run / "scenarios.jsonl").read_text(), (run / "scenario_failures.jsonl").read_text()) == before


def test_resume_after_crash_same_file(tmp_path: Path, data_dir: Path) -> None:
    """Kill after the first chunk (exception in the backend), rerun: same final file as an uninterrupted run."""

    calls = {"n": 0}

    def reply(chat: Chat) -> str:
        return json.dumps(_scenario_json_from(chat))

    class Crashing(Scripted):
        def generate(
            self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
        ) -> list[str]:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return super().generate(chats, params, seeds)

    kw = {
        "seed": 0,
        "max_retries": 0,
        "progress": False,
        "batch_size": 2,
        "data_dir": data_dir,
        "names_first": False,
    }
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        adapt_scenarios(Crashing(reply), run_a, ["Japan"], 5, **kw)  # type: ignore[arg-type]
    assert len(JsonlStore(run_a / "scenarios.jsonl", Scenario).all()) == 2
    adapt_scenarios(Scripted(reply), run_a, ["Japan"], 5, **kw)  # type: ignore[arg-type]
    adapt_scenarios(Scripted(reply), run_b, ["Japan"], 5, **kw)  # type: ignore[arg-type]
    assert (run_a / "scenarios.jsonl").read_text() == (run_b / "scenarios.jsonl").read_text()
    assert len((run_a / "scenarios.jsonl").read_text().splitlines()) == 5


@pytest.mark.slow
def test_adapt_real_embedded_model(tmp_path: Path, data_dir: Path, call_cache_path: Path) -> None:
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend

    backend = load_backend("embedded:smollm2-135m", cache=CallCache(call_cache_path))
    run = tmp_path / "run"
    summ = adapt_scenarios(
        backend, run, ["China"], 2, max_retries=1, progress=False, max_new_tokens=16, data_dir=data_dir
    )
    assert summ.requested == 2 and summ.written + summ.failed == 2
    ok = JsonlStore(run / "scenarios.jsonl", Scenario).ids()
    bad = {f.id: f for f in JsonlStore(run / "scenario_failures.jsonl", ScenarioFailure).all()}
    assert len(ok | set(bad)) == 2 and not ok & set(bad)
    for f in bad.values():  # names step (1-2 replies) and/or adaptation step (up to 2)
        assert f.reason and 2 <= len(f.raw) <= 4 and f.model == backend.spec


# ------------------------------------------------------------------------------------------- names first
def test_parse_names_and_rename(data_dir: Path) -> None:
    seed = next(s for s in load_seeds(data_dir) if "Finnegan" in s.characters[0].first_name)
    ok = '{"person1": {"first_name": "Wei", "last_name": "Zhang"}, "person2": {"first_name": "Fang", "last_name": "Li"}}'
    assert parse_names("Sure:\n```json\n" + ok + "\n```", seed) == [("Wei", "Zhang"), ("Fang", "Li")]
    bad = {
        ok.replace("Zhang", seed.characters[1].last_name): "original name",
        ok.replace('"Wei", "last_name": "Zhang"', '"John", "last_name": "Doe"'): "placeholder",
        ok.replace('"Fang", "last_name": "Li"', '"Wei", "last_name": "Zhang"'): "same name",
        ok.replace('"Li"', '"Li 2"'): "unusable name",
        '{"person1": {"first_name": "Wei"}}': "no names JSON",
        '{"person1": {"first_name": "张", "last_name": "三"}, "person2": {"first_name": "李", "last_name": "华"}}': (
            "placeholder"
        ),
    }
    for raw, reason in bad.items():
        with pytest.raises(ValueError, match=reason):
            parse_names(raw, seed)
    # a non-Latin script is accepted (the prompt asks for Latin letters; a weak model may not comply)
    assert parse_names(ok.replace('"Wei"', '"伟"'), seed)[0] == ("伟", "Zhang")

    renamed = rename(seed, [("Wei", "Zhang"), ("Fang", "Li")])
    text = json.dumps(renamed.model_dump(mode="json"), ensure_ascii=False)
    for name in source_names(seed):
        assert name not in text
    assert [c.name for c in renamed.characters] == ["Wei Zhang", "Fang Li"]
    original = json.dumps(seed.model_dump(mode="json"), ensure_ascii=False)
    assert (
        text.count("Wei") >= original.count("Finnegan")
        and renamed.characters[0].age == seed.characters[0].age
    )


def test_names_first_adaptation_with_repairs(tmp_path: Path, data_dir: Path) -> None:
    """Names step (with a placeholder repaired), then the renamed scenario; copies are kept as names-only."""
    prompts: list[str] = []

    def reply(chat: Chat) -> str:
        first = chat[1]["content"]
        prompts.append(chat[-1]["content"])
        if "Invent a realistic full name" in first:
            if "Germany" in first and "Not these" not in first:  # the first German names are placeholders
                return '{"person1": {"first_name": "Max", "last_name": "Mustermann"}, "person2": {"first_name": "Anna", "last_name": "Becker"}}'
            return '{"person1": {"first_name": "Jonas", "last_name": "Weber"}, "person2": {"first_name": "Lea", "last_name": "Hoffmann"}}'
        shown = json.loads(first[first.index("Scenario (JSON):\n") + 17 : first.rindex("}") + 1])
        if "China" in first.split("\n", 1)[0]:  # changes the setting; Germany copies the scenario back
            shown["setting"] = "A teahouse in Chengdu."
        return json.dumps(shown)

    run = tmp_path / "run"
    summ = adapt_scenarios(
        Scripted(reply), run, ["China", "Germany"], 2, max_retries=1, progress=False, data_dir=data_dir
    )
    assert (summ.written, summ.failed, summ.names_only, summ.retries) == (4, 0, 2, 2)  # 2 German repairs
    scen = {s.id: s for s in JsonlStore(run / "scenarios.jsonl", Scenario).all()}
    seeds = {s.seed_id: s for s in load_seeds(data_dir)}
    for s in scen.values():
        assert [c.name for c in s.characters] == ["Jonas Weber", "Lea Hoffmann"]
        assert s.adapted_fields == (["setting"] if s.culture == "China" else [])
        assert s.prompt_version == "adapt-v2"
        blob = json.dumps(s.model_dump(mode="json"))
        assert not any(n in blob for n in source_names(seeds[s.seed_id]))
    adapt_prompts = [p for p in prompts if "Scenario (JSON)" in p]
    assert adapt_prompts and all("keep the names Jonas Weber and Lea Hoffmann" in p for p in adapt_prompts)
    used = {n for s in scen.values() for n in source_names(seeds[s.seed_id])}
    for p in adapt_prompts:  # the original names never reach the adaptation prompt
        assert not [n for n in used if re.search(rf"\b{re.escape(n)}\b", p)]
    assert any("Not these: Max Mustermann, Anna Becker." in p for p in prompts)  # the retry names the rejects
