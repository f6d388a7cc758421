"""Seeds, JSON extraction/repair, source-name rejection, batching, resume; one tiny real-model run."""

from __future__ import annotations

import json
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
    pick_seeds,
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
    )
    assert (summ.requested, summ.written, summ.failed, summ.skipped) == (6, 3, 3, 0)
    assert backend.batches == [4, 4, 2, 2]  # one batch per round per chunk
    scen = JsonlStore(run / "scenarios.jsonl", Scenario).all()
    fails = JsonlStore(run / "scenario_failures.jsonl", ScenarioFailure).all()
    assert {s.culture for s in scen} == {"China"} and {f.culture for f in fails} == {"Great Britain"}
    assert all(s.id == f"china-{s.seed_id}" and s.prompt_version and s.model == "scripted" for s in scen)
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

    kw = {"seed": 0, "max_retries": 0, "progress": False, "batch_size": 2, "data_dir": data_dir}
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
    for f in bad.values():
        assert f.reason and len(f.raw) == 2 and f.model == backend.spec
