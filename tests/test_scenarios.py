"""Seeds, JSON extraction/repair, source-name rejection, batching, resume; one tiny real-model run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clca.data.sotopia import load_norms, load_seeds, pick_seeds, strip_tags
from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Chat
from clca.llm.testing import ScriptedBackend as Scripted
from clca.rundir import RunDir
from clca.scenarios import (
    ScenariosConfig,
    adaptation_chat,
    make_control_scenarios,
    make_scenarios,
    parse_names,
    pick_norms,
    rename,
    scenario_id,
    source_names,
    split_counts,
    validate_adaptation,
    validate_norm_scenario,
)


def _make(
    backend: object,
    run: Path,
    cultures: list[str],
    n: int,
    *,
    seed: int = 0,
    batch_size: int = 64,
    **cfg: object,
):  # type: ignore[no-untyped-def]
    return make_scenarios(
        backend,  # type: ignore[arg-type]
        RunDir(run),
        ScenariosConfig.model_validate({"per_culture": n, **cfg}),
        cultures=cultures,
        seed=seed,
        batch_size=batch_size,
        progress=False,
    )


def _seed_json(chat: Chat) -> dict[str, object]:
    """The seed scenario shown in an adaptation prompt (clca's "Scenario (JSON):" form or the paper's
    "Input: ... Output:" form)."""
    text = next(m["content"] for m in chat if m["role"] == "user")
    if "Scenario (JSON):\n" in text:
        return json.loads(text[text.index("Scenario (JSON):\n") + 17 : text.rindex("}") + 1])  # type: ignore[no-any-return]
    return json.loads(text[text.index("Input: ") + 7 : text.rindex(" Output:")])  # type: ignore[no-any-return]


def _scenario_json_from(chat: Chat, culture_name: str = "Wei") -> dict[str, object]:
    """Build a valid adaptation from the seed JSON inside the prompt (renaming everyone)."""
    seed = _seed_json(chat)
    for i, c in enumerate(seed["characters"]):
        c["first_name"], c["last_name"] = f"{culture_name}{'ab'[i]}", "Zhang"
        for k in ("background", "personality", "secret", "goal"):
            c[k] = f"{k} of person {i} in Suzhou"
    seed["setting"] = "A teahouse in Suzhou."
    return seed


def test_seeds_load_90_envs_tags_stripped(data_dir: Path) -> None:
    seeds = load_seeds()
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
    seeds = load_seeds()
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

    seed = load_seeds()[0]
    chat = adaptation_chat(seed, get_profile("China"))
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
        first = next(m["content"] for m in chat if m["role"] == "user")
        assert first.startswith("Here is a generic social interaction.")  # the paper's Table 19 prompt
        broken = "occur within Great Britain?" in first
        if broken:  # never produces valid JSON for Great Britain
            return (
                "I am sorry, I cannot do that."
                if n_repairs == 0
                else '{"setting": "London", "characters": []}'
            )
        if n_repairs == 0:  # first try keeps a source name -> repair prompt
            source = _seed_json(chat)["characters"][0]["first_name"]  # type: ignore[index]
            bad = _scenario_json_from(chat)
            bad["setting"] = f"{source} meets a friend."
            return "Here you go:\n```json\n" + json.dumps(bad) + "\n```"
        assert "original name" in chat[-1]["content"]
        return "Sure.\n" + json.dumps(_scenario_json_from(chat)).replace("}]", "},]")

    backend = Scripted(reply)
    run = tmp_path / "run"
    summ = _make(
        backend, run, ["China", "Great Britain"], 3, seed=1, batch_size=4, max_retries=1, names_first=False
    )
    assert (summ.requested, summ.written, summ.failed, summ.skipped) == (6, 3, 3, 0)
    assert backend.batches == [4, 4, 2, 2]  # one batch per round per chunk
    scen = RunDir(run).scenarios()
    fails = RunDir(run).scenario_failures()
    assert {s.culture for s in scen} == {"China"} and {f.culture for f in fails} == {"Great Britain"}
    assert all(
        s.id == f"china-{s.seed_id}" and s.prompt_version == "adapt-paper-v1" and s.model == "scripted"
        for s in scen
    )
    assert all(len(f.raw) == 2 and "characters" in f.reason for f in fails)
    before = (run / "scenarios.jsonl").read_text(), (run / "scenario_failures.jsonl").read_text()
    again = _make(backend, run, ["China", "Great Britain"], 3, seed=1, max_retries=1)
    assert (again.skipped, again.written, again.llm.calls) == (6, 0, 0)
    assert ((run / "scenarios.jsonl").read_text(), (run / "scenario_failures.jsonl").read_text()) == before


def test_resume_after_crash_same_file(tmp_path: Path, data_dir: Path) -> None:
    """Kill after the first chunk (exception in the backend), rerun: same final file as an uninterrupted run."""

    def reply(chat: Chat) -> str:
        return json.dumps(_scenario_json_from(chat))

    kw = {"seed": 0, "batch_size": 2, "max_retries": 0, "names_first": False}
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _make(Scripted(reply, crash_after=1), run_a, ["Japan"], 5, **kw)  # type: ignore[arg-type]
    assert len(RunDir(run_a).scenarios()) == 2
    _make(Scripted(reply), run_a, ["Japan"], 5, **kw)  # type: ignore[arg-type]
    _make(Scripted(reply), run_b, ["Japan"], 5, **kw)  # type: ignore[arg-type]
    assert (run_a / "scenarios.jsonl").read_text() == (run_b / "scenarios.jsonl").read_text()
    assert len((run_a / "scenarios.jsonl").read_text().splitlines()) == 5


@pytest.mark.slow
def test_adapt_real_embedded_model(tmp_path: Path, data_dir: Path, call_cache_path: Path) -> None:
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend

    backend = load_backend("embedded:smollm2-135m", cache=CallCache(call_cache_path))
    run = tmp_path / "run"
    summ = _make(backend, run, ["China"], 2, max_retries=1, max_new_tokens=16)
    assert summ.requested == 2 and summ.written + summ.failed == 2
    ok = RunDir(run).scenario_store().ids()
    bad = {f.id: f for f in RunDir(run).scenario_failures()}
    assert len(ok | set(bad)) == 2 and not ok & set(bad)
    for f in bad.values():  # names step (1-2 replies) and/or adaptation step (up to 2)
        assert f.reason and 2 <= len(f.raw) <= 4 and f.model == backend.spec


# ------------------------------------------------------------------------------------------- names first
def test_parse_names_and_rename(data_dir: Path) -> None:
    seed = next(s for s in load_seeds() if "Finnegan" in s.characters[0].first_name)
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
    summ = _make(Scripted(reply), run, ["China", "Germany"], 2, max_retries=1)
    assert (summ.written, summ.failed, summ.names_only, summ.llm.retries) == (4, 0, 2, 2)  # 2 German repairs
    scen = {s.id: s for s in RunDir(run).scenarios()}
    seeds = {s.seed_id: s for s in load_seeds()}
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


# ------------------------------------------------------------------------------------------- other sources
def test_norm_based_scenarios_with_provenance(tmp_path: Path, data_dir: Path) -> None:
    """source: norms builds new scenarios around Social Chemistry norms first, with the norm as provenance;
    an unusable reply is repaired, then recorded as a failure."""
    norms = load_norms()
    assert [n.source for n in norms[:266]] == ["social_chem"] * 266 and norms[266].source == "normbank"
    good = json.dumps(
        {
            "setting": "A family dinner in Osaka.",
            "relationship": "family",
            "characters": [
                {"first_name": f, "last_name": "Sato", "age": 40, "gender": "Woman", "pronoun": "she/her",
                 "occupation": "nurse", "background": "b", "personality": "p", "secret": "s", "goal": "g"}
                for f in ("Yui", "Aiko")
            ],
        }
    )  # fmt: skip
    seen: list[str] = []

    def reply(chat: Chat) -> str:
        seen.append(chat[1]["content"])
        if len(chat) == 2 and "Japan" in chat[1]["content"] and len(seen) == 1:
            return "Sorry, no."
        return good if "Japan" in chat[1]["content"] else '{"setting": ""}'

    run = tmp_path / "run"
    summ = _make(Scripted(reply), run, ["Japan", "China"], 2, source="norms", max_retries=1)
    assert (summ.written, summ.failed, summ.llm.retries) == (2, 2, 3)
    scen = RunDir(run).scenarios()
    assert {s.culture for s in scen} == {"Japan"}
    for s in scen:
        assert s.norm_id and s.norm_id.startswith("social_chem:") and s.norm
        assert s.id == f"japan-norm-{s.norm_id.split(':')[1]}" and s.seed_id == s.norm_id
        assert s.source == "sotopia-pi:social_chem" and s.prompt_version == "norm-v1"
        assert s.relationship == "family member" and s.norm in " ".join(seen)
    fails = RunDir(run).scenario_failures()
    assert {f.culture for f in fails} == {"China"} and all("characters" in f.reason for f in fails)
    obj = json.loads(good)
    obj["characters"][0].update(first_name="John", last_name="Doe")
    with pytest.raises(ValueError, match="placeholder"):
        validate_norm_scenario(json.dumps(obj))
    obj["characters"][0].update(first_name="Aiko", last_name="Sato")
    with pytest.raises(ValueError, match="same name"):
        validate_norm_scenario(json.dumps(obj))
    obj["relationship"] = "enemies"
    with pytest.raises(ValueError, match="relationship"):
        validate_norm_scenario(json.dumps(obj))


def test_both_sources_split_and_seeds_source(tmp_path: Path, data_dir: Path) -> None:
    assert split_counts(ScenariosConfig(per_culture=5, source="both", norm_share=0.4)) == (3, 2)
    assert split_counts(ScenariosConfig(per_culture=5, source="norms")) == (0, 5)
    run = tmp_path / "run"
    summ = _make(Scripted(), run, ["Japan"], 4, source="both")
    assert summ.written == 4 and summ.failed == 0
    kinds = sorted(s.prompt_version for s in RunDir(run).scenarios())
    assert kinds == ["adapt-v2", "adapt-v2", "norm-v1", "norm-v1"]
    seeds_run = tmp_path / "seeds"
    s2 = _make(None, seeds_run, ["Japan", "China"], 3, source="seeds")
    assert s2.written == 6 and {s.source for s in RunDir(seeds_run).scenarios()} == {"sotopia (unadapted)"}


def test_scenario_ids_follow_one_rule(tmp_path: Path, data_dir: Path) -> None:
    """Seeds, adaptations and the no-culture control: ``{culture slug}-{seed_id}``; norms:
    ``{culture slug}-norm-{pk}``; the stage writes exactly these ids."""
    seed, norm = load_seeds()[0], load_norms()[0]
    assert scenario_id("Great Britain", seed) == f"great-britain-{seed.seed_id}"
    assert scenario_id("generic", seed) == f"generic-{seed.seed_id}"
    assert scenario_id("Japan", norm) == f"japan-norm-{norm.pk}"
    run = tmp_path / "run"
    _make(Scripted(), run, ["Great Britain"], 2, source="both", norm_share=0.5)
    assert make_control_scenarios(RunDir(run), ScenariosConfig(per_culture=1)) == 1
    seed0, norm0 = pick_seeds(load_seeds(), 1, 0)[0], pick_norms(load_norms(), 1, 0)[0]
    expected = {
        scenario_id(c, x) for c, x in [("Great Britain", seed0), ("Great Britain", norm0), ("generic", seed0)]
    }
    assert RunDir(run).scenario_store().ids() == expected


def test_cli_scenarios_offers_every_source(tmp_path: Path, data_dir: Path) -> None:
    from clca.cli import main

    run = tmp_path / "run"
    assert (
        main(
            ["scenarios", "--run", str(run), "--cultures", "China", "--source", "seeds", "--per-culture", "2"]
        )
        == 0
    )
    assert len(RunDir(run).scenarios()) == 2
    argv = ["scenarios", "--run", str(run), "--cultures", "China", "--model", "scripted:auto", "--source", "norms",
            "--per-culture", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert len(RunDir(run).scenarios()) == 3


def test_one_step_prompt_is_the_papers_table_19(data_dir: Path) -> None:
    from clca.culture import get_profile
    from clca.scenarios import paper_adaptation_chat

    seed = load_seeds()[3]
    chat = paper_adaptation_chat(seed, get_profile("Japan"))
    assert [m["role"] for m in chat] == ["user"]
    table19 = (
        "Here is a generic social interaction. Could you update the name, occupation, setting, goals, and "
        "secrets to make the information logically coherent so that it represents a believable scenario that "
        "could occur within Japan? Please change all participants' names to diverse Japan names with diverse "
        "occupations. The goals and secrets should be relevant to the interaction setting and play a key role in "
        "inciting or resolving conflicts in this interaction. Return the data using the same JSON schema in "
        "English without any explanation. Input: "
    )
    text = chat[0]["content"]
    assert text.startswith(table19) and text.endswith(" Output:")
    shown = json.loads(text[len(table19) : -len(" Output:")])
    assert [c["first_name"] for c in shown["characters"]] == [c.first_name for c in seed.characters]
