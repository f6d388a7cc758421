"""The scripted backend answers structured requests from their JSON schema: valid, deterministic, faithful to
the JSON the prompt shows, with plausible new names (never placeholders, never the source names)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from clca.culture import get_profile
from clca.data.sotopia import load_norms, load_seeds, pick_seeds
from clca.llm.base import Chat, GenerationParams
from clca.llm.testing import _NAME_POOLS, ScriptedBackend, load_scripted, schema_reply, stage_reply
from clca.records import RELATIONSHIPS
from clca.scenarios import (
    PLACEHOLDER_NAMES,
    AdaptedScenario,
    NormScenario,
    adaptation_chat,
    changed_fields,
    names_chat,
    norm_chat,
    paper_adaptation_chat,
    parse_names,
    rename,
    source_names,
    validate_adaptation,
    validate_norm_scenario,
)
from clca.scenarios.names import _Names

ADAPTED = AdaptedScenario.model_json_schema()
NAMES = _Names.model_json_schema()


def _names_of(adapted: AdaptedScenario) -> list[str]:
    return [f"{c.first_name} {c.last_name}" for c in adapted.characters]


def test_names_step_answer_is_valid_deterministic_and_never_a_placeholder_or_source(data_dir: Path) -> None:
    seeds = pick_seeds(load_seeds(), 20, seed=0)
    for culture in ("China", "Germany", "Peru"):  # Peru: no pool of its own, the international one
        profile = get_profile(culture)
        for seed in seeds:
            chat = names_chat(seed, profile)
            raw = stage_reply(chat, 0, NAMES)
            assert raw == stage_reply(chat, 0, NAMES)  # deterministic in (prompt, seed)
            _Names.model_validate_json(raw)
            pairs = parse_names(raw, seed)  # no placeholder, no source name, two different people
            assert pairs[0][0] != pairs[1][0] and pairs[0][1] != pairs[1][1]
            assert not {w.lower() for p in pairs for w in p} & {n.lower() for n in source_names(seed)}
    chat = names_chat(seeds[0], get_profile("Japan"))
    assert len({stage_reply(chat, s, NAMES) for s in range(8)}) > 1  # the seed varies the names


def test_names_retry_avoids_the_rejected_names(data_dir: Path) -> None:
    seed = load_seeds()[0]
    chat = names_chat(seed, get_profile("Japan"))
    first = parse_names(stage_reply(chat, 0, NAMES), seed)
    rejected = "; ".join(f"{f} {s}" for f, s in first)
    retry: Chat = [chat[0], {"role": "user", "content": f"{chat[1]['content']}\nNot these: {rejected}."}]
    again = parse_names(stage_reply(retry, 0, NAMES), seed)
    assert not {w for p in again for w in p} & {w for p in first for w in p}


def test_names_first_adaptation_keeps_the_prompts_scenario_and_mentions_the_culture(data_dir: Path) -> None:
    seed = load_seeds()[5]
    shown = rename(seed, [("Takumi", "Sato"), ("Yui", "Kato")])
    chat = adaptation_chat(shown, get_profile("Japan"), keep_names=True)
    raw = stage_reply(chat, 3, ADAPTED)
    adapted = validate_adaptation(raw, seed)
    assert _names_of(adapted) == ["Takumi Sato", "Yui Kato"]  # "keep the names"
    assert adapted.setting.startswith(shown.setting.rstrip(".")) and "Japan" in adapted.setting
    for a, c in zip(adapted.characters, shown.characters, strict=True):
        assert (a.age, a.gender, a.pronoun, a.personality) == (c.age, c.gender, c.pronoun, c.personality)
        assert a.occupation.startswith(c.occupation)
    # the fields the prompt asks to adapt changed; personality (not asked) did not
    assert changed_fields(shown, adapted) == ["setting", "occupation", "background", "goal", "secret"]


@pytest.mark.parametrize("prompt", ["paper", "clca"])
def test_adaptation_asking_for_new_names_replaces_them_everywhere(prompt: str, data_dir: Path) -> None:
    for seed in pick_seeds(load_seeds(), 15, seed=2):
        profile = get_profile("China")
        chat = paper_adaptation_chat(seed, profile) if prompt == "paper" else adaptation_chat(seed, profile)
        adapted = validate_adaptation(stage_reply(chat, 0, ADAPTED), seed)  # no source name anywhere
        names = _names_of(adapted)
        assert len(set(names)) == 2 and not {n.lower() for n in names} & PLACEHOLDER_NAMES
        for a, c in zip(adapted.characters, seed.characters, strict=True):
            assert (a.age, a.gender, a.pronoun) == (c.age, c.gender, c.pronoun)  # the prompt's JSON values


def test_norm_scenario_is_synthesised_valid_and_plausible(data_dir: Path) -> None:
    for norm in load_norms()[:10]:
        chat = norm_chat(norm, get_profile("Nigeria"))
        raw = stage_reply(chat, 1, NormScenario.model_json_schema())
        sc = validate_norm_scenario(raw)
        assert sc.relationship in RELATIONSHIPS and "Nigeria" in sc.setting
        for c in sc.characters:
            assert (
                c.age is not None
                and 18 <= c.age <= 100
                and all(str(v).strip() for v in c.model_dump().values())
            )
            assert c.pronoun == {"Woman": "she/her", "Man": "he/him"}[c.gender]
            assert c.first_name in c.background  # the synthesised texts are about this person


class _Quality(BaseModel):
    quality: Literal["good", "bad"] = Field(title="Quality")
    confidence: Literal["very confident", "confident", "not sure"] = Field(title="Confidence")


def test_a_label_stage_asked_for_json_answers_its_labels() -> None:
    """A judge-like request with a schema gets the values its free-text answer gives, as JSON."""
    chat: Chat = [{"role": "user", "content": "Judge it.\nQuality: <good|bad>\nConfidence: <...>"}]
    assert stage_reply(chat) == "Quality: good\nConfidence: very confident"
    answer = _Quality.model_validate_json(stage_reply(chat, None, _Quality.model_json_schema()))
    assert (answer.quality, answer.confidence) == ("good", "very confident")


class _Item(BaseModel):
    label: str
    size: int = Field(ge=3, le=5)
    tags: list[Literal["x", "y", "z"]] = Field(min_length=1, max_length=3)


class _Order(BaseModel):
    customer: str
    priority: Literal["low", "high"]
    note: str | None = None
    paid: bool
    items: list[_Item] = Field(min_length=2)
    ratio: float = Field(gt=0, lt=1)


def test_any_schema_gets_a_valid_instance_with_the_prompts_values() -> None:
    schema = _Order.model_json_schema()
    shown = {"customer": "Ada Park", "priority": "HIGH", "items": [{"label": "tea", "size": 9}], "paid": True}
    chat: Chat = [{"role": "user", "content": f"Complete this order: {json.dumps(shown)} Thanks."}]
    order = _Order.model_validate_json(schema_reply(chat, schema, 4))
    assert (order.customer, order.priority, order.paid) == ("Ada Park", "high", True)  # enum read loosely
    assert order.items[0].label == "tea" and order.items[0].size in (3, 4, 5)  # 9 is out of range
    assert len(order.items) == 2 and order.items[1].label  # minItems filled in
    assert schema_reply(chat, schema, 4) == schema_reply(chat, schema, 4)
    bare = _Order.model_validate_json(schema_reply([{"role": "user", "content": "An order."}], schema))
    assert bare.customer and bare.items[0].tags


def test_backend_passes_the_schema_to_replies_that_take_it() -> None:
    seen: list[object] = []

    def three(chat: Chat, seed: int | None, schema: object) -> str:
        seen.append((seed, schema))
        return "{}"

    params = GenerationParams(json_schema=NAMES)
    ScriptedBackend(three).generate([[{"role": "user", "content": "x"}]], params, seeds=[5])
    assert seen == [(5, NAMES)]
    # a one-argument reply (a test's own judge) still gets only the chat
    assert ScriptedBackend(lambda chat: "fixed").generate([[{"role": "user", "content": "x"}]], params) == [
        "fixed"
    ]


def test_scripted_auto_is_deterministic(data_dir: Path) -> None:
    chats = [names_chat(s, get_profile("Japan")) for s in load_seeds()[:4]]
    params = GenerationParams(json_schema=NAMES)
    a = load_scripted("auto").generate(chats, params, seeds=[0, 0, 1, 1])
    assert a == load_scripted("auto").generate(chats, params, seeds=[0, 0, 1, 1])


def test_name_pools_hold_no_sotopia_name_and_no_placeholder(data_dir: Path) -> None:
    sotopia = {n.lower() for s in load_seeds() for n in source_names(s)}
    for women, men, lasts in _NAME_POOLS.values():
        words = {w.lower() for n in (*women, *men, *lasts) for w in re.findall(r"\w+", n)}
        assert not words & sotopia
        pairs = {f"{f} {s}".lower() for f in (*women, *men) for s in lasts}
        assert not (pairs | {" ".join(reversed(p.split(" ", 1))) for p in pairs}) & PLACEHOLDER_NAMES
        assert len(set(women) | set(men)) == len(women) + len(men)
