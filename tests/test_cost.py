"""What a plan costs (clca.cost): the paper's and the demo's numbers against a hand calculation, the fallback
without a data bundle, and the rows in `clca run --plan --json`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from clca.config import RunConfig, load_config
from clca.cost import CostRow, estimate, total
from clca.settings import using_data_dir

ROOT = Path(__file__).resolve().parents[1]


def _rows(cfg: RunConfig) -> dict[str, CostRow]:
    return {r.stage: r for r in estimate(cfg)}


def _tokens(chat: Sequence[Mapping[str, object]]) -> int:
    """The documented rule, written out: characters / 4 (floor) + 4 per message."""
    return sum(len(str(m["content"])) for m in chat) // 4 + 4 * len(chat)


@pytest.fixture(scope="module")
def paper(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, dict[str, CostRow]]:
    run = tmp_path_factory.mktemp("paper")
    cfg = load_config(ROOT / "configs" / "paper.yaml", [f"run_dir={run}"])
    return cfg, _rows(cfg)


def test_paper_counts_match_a_hand_calculation(paper: tuple[RunConfig, dict[str, CostRow]]) -> None:
    _, rows = paper
    assert list(rows) == ["scenarios", "simulate", "judge", "intents", "train", "translate", "eval"]
    # scenarios: 5 cultures x 200 per culture, norm_share 0.5 -> 100 adapted + 100 norm-based; names_first false:
    # one call each; max_retries 2; max_new_tokens 1024 (default)
    sc = rows["scenarios"]
    assert sc.calls_min == 5 * (100 * 1 + 100) == 1000
    assert sc.calls_max == 1000 * (1 + 2) == 3000
    assert sc.generated_tokens_max == 3000 * 1024 == 3_072_000
    # role-play: 5 x 200 scenarios + the control's 200 seeds, 2 samples each; 12 turns = 24 acts, each asked at most
    # max_consecutive_failures (2) times; 256 new tokens per act
    episodes = (5 * 200 + 200) * 2
    assert episodes == 2400
    sim = rows["simulate"]
    assert sim.units["acts_max"] == 2 * 12 * episodes == 57_600
    assert sim.calls_min == episodes
    assert sim.calls_max == 2 * 12 * episodes * 2 == 115_200
    assert sim.generated_tokens_max == 115_200 * 256 == 29_491_200
    # judge: 3 questions per episode, each re-asked up to max_retries (default 2), 200 new tokens (default)
    jd = rows["judge"]
    assert (jd.calls_min, jd.calls_max) == (3 * episodes, 3 * episodes * (1 + 2)) == (7200, 21_600)
    assert jd.generated_tokens_max == 21_600 * 200 == 4_320_000
    # intents: at most one call per utterance (24 per episode), re-asked up to 2 times, 96 new tokens (default)
    it = rows["intents"]
    assert (it.calls_min, it.calls_max) == (0, episodes * 24 * 3) == (0, 172_800)
    assert it.generated_tokens_max == 172_800 * 96 == 16_588_800
    # train: per culture 400 episodes, 10% (40) held out -> 360; three equal parts of 360 examples = 1080;
    # paper preset: 3 epochs, max_length 2048 (a whole conversation, 24 x (256 + 16) tokens, is longer);
    # 5 cultures + the control, 3 seeds = 18 adapters
    tr = rows["train"]
    assert tr.units == {
        "adapters": 18,
        "train_episodes_per_culture": 360,
        "examples_per_adapter": 1080,
        "tokens_per_example_max": 2048,
    }
    assert tr.training_tokens == 18 * (1080 * 3) * 2048 == 119_439_360
    # translate (eval.languages: China zh, Germany de, Japan ja, Mexico es): per language 44 questions + the
    # paper_cultural style (paper_persona: the paper's released templates), max_retries 2, <= 1024 new tokens
    tl = rows["translate"]
    assert tl.units["languages"] == 4 and tl.calls_min == 4 * 45 == 180 and tl.calls_max == 540
    assert tl.generated_tokens_max == 540 * 1024
    # eval, the paper protocol: 19 models (base + 5 cultures x 3 seeds + the control x 3 seeds) x (5 cultures + 4
    # in their language) x 44 questions x (1000 persona prompts + 1 cultural prompt), greedy, one answer each,
    # <= 16 new tokens
    ev = rows["eval"]
    answers = 19 * (5 + 4) * 44 * (1000 + 1)
    assert answers == 7_531_524
    assert ev.units["models"] == 19 and ev.units["answers"] == answers
    assert ev.calls_min == ev.calls_max == answers
    assert ev.generated_tokens_max == answers * 16 == 120_504_384
    tot = total(list(rows.values()))
    assert tot.calls_min == 1000 + 2400 + 7200 + 0 + 0 + 180 + answers
    assert tot.calls_max == 3000 + 115_200 + 21_600 + 172_800 + 540 + answers
    assert tot.training_tokens == 119_439_360


def test_paper_prompt_tokens_match_the_rendered_prompts(
    paper: tuple[RunConfig, dict[str, CostRow]],
) -> None:
    """The prompt sizes, recomputed here from the real templates and the documented formulas."""
    from clca.culture import get_profile
    from clca.data.sotopia import load_norms, load_seeds, pick_seeds
    from clca.evaluation import load_survey
    from clca.evaluation.styles import resolve_styles
    from clca.roleplay.prompts import build_messages, culture_words
    from clca.scenarios import norm_chat, paper_adaptation_chat, pick_norms, repair_chat
    from clca.scenarios.norms import norm_repair_chat

    cfg, rows = paper
    seeds = load_seeds()
    adapted, norms = pick_seeds(seeds, 100, 0), pick_norms(load_norms(), 100, 0)
    profiles = [get_profile(c) for c in cfg.cultures]
    first = sum(_tokens(paper_adaptation_chat(s, p)) for p in profiles for s in adapted)
    first += sum(_tokens(norm_chat(x, p)) for p in profiles for x in norms)
    sc = rows["scenarios"]
    assert sc.units["first_prompt_tokens"] == first
    # a re-ask k adds k x (the reply, <= 1024, + the repair turn + 32 for the quoted error)
    g_adapt = max(_tokens(repair_chat([], "", "", s)) for s in adapted) + 32
    g_norm = _tokens(norm_repair_chat([], "", "")) + 32
    grow = 500 * (1024 + g_adapt) + 500 * (1024 + g_norm)
    assert sc.prompt_tokens_max == 3 * first + (1 + 2) * grow

    # role-play: the stand-ins are the first 200 picked seeds for every culture, and the control's 200 seeds
    picked = pick_seeds(seeds, 200, 0)
    base = sum(
        _tokens(build_messages(s, who, [], culture_words(p.country)))
        for p in profiles
        for s in picked
        for who in (0, 1)
    )
    base += sum(_tokens(build_messages(s, who, [], "")) for s in picked for who in (0, 1))
    sim = rows["simulate"]
    assert sim.units["base_tokens"] == base
    # F x (samples x T x sum(B1 + B2) + episodes x (M + h) x T(2T - 1))
    assert sim.prompt_tokens_max == 2 * (2 * 12 * base + 2400 * (256 + 16) * 12 * 23)
    jd = rows["judge"]
    # (1 + r) x (samples x sum(Bq + Ba + Bm) + episodes x (3 x 24 x (M + h) + 2 x 200 + 16))
    assert jd.prompt_tokens_max == 3 * (2 * jd.units["base_tokens"] + 2400 * (3 * 24 * 272 + 400 + 16))
    it = rows["intents"]
    # (1 + r) x (samples x 2T x sum(Bi) + episodes x (M + h) x T(2T + 1))
    assert it.prompt_tokens_max == 3 * (2 * 24 * it.units["base_tokens"] + 2400 * 272 * 12 * 25)

    # eval: each (culture, question) prompt rendered; persona prompts on the longest answer of each attribute
    from clca.data.wvb import PERSONA_FIELDS, Respondent
    from clca.data.wvs import load_codebook
    from clca.evaluation.prompts import render_messages

    items = load_survey("wvs7").select("Q1-Q41,Q43-Q45")
    assert len(items) == 44
    book = load_codebook()
    longest = {
        a: max((str(x) for v in vs for x in dict(book[v].get("choices") or {}).values()), key=len)  # type: ignore[call-overload]
        for a, vs in PERSONA_FIELDS.items()
    }
    persona = Respondent(id="p", country="", demographics=longest)
    styles = {s.name: s for s in resolve_styles(["paper_persona", "paper_cultural"])}
    # the cultures also asked in their language count their English prompts again (not Great Britain)
    asked = [*cfg.cultures, "China", "Germany", "Mexico", "Japan"]
    per_model = 1000 * sum(
        _tokens(render_messages(styles["paper_persona"], q, c, persona)) for c in asked for q in items
    ) + sum(_tokens(render_messages(styles["paper_cultural"], q, c)) for c in asked for q in items)
    assert rows["eval"].prompt_tokens_max == 19 * per_model

    # translate: the first prompts rendered; a re-ask shows the prompt, the reply (<= 1024) and the repair turn
    from clca.evaluation.translate import question_chat, style_chat

    first = sum(
        sum(_tokens(question_chat(q, code)) for q in items)
        + _tokens(style_chat(styles["paper_cultural"], code))
        for code in ("zh", "de", "ja", "es")
    )
    tl = rows["translate"]
    assert tl.units["first_prompt_tokens"] == first
    assert tl.prompt_tokens_max == 3 * first + 2 * 180 * (1024 + 64)


def test_demo_counts_match_a_hand_calculation(data_dir: Path, tmp_path: Path) -> None:
    cfg = load_config(ROOT / "configs" / "demo.yaml", [f"run_dir={tmp_path / 'demo'}"])
    rows = _rows(cfg)
    # scenarios: 2 cultures x 3 adapted seeds, names first (2 calls: names <= 96 tokens, adaptation <= 512), 3 re-asks
    sc = rows["scenarios"]
    assert (sc.calls_min, sc.calls_max) == (2 * 3 * 2, 2 * 3 * 2 * 4) == (12, 48)
    assert sc.generated_tokens_max == 4 * (6 * 512 + 6 * 96) == 14_592
    # role-play: 2 x 3 + the control's 3 scenarios, 2 samples; 3 turns = 6 acts, 2 tries each, 64 tokens
    sim = rows["simulate"]
    assert sim.units["episodes"] == (2 * 3 + 3) * 2 == 18
    assert (sim.calls_min, sim.calls_max) == (18, 18 * 6 * 2) == (18, 216)
    assert sim.generated_tokens_max == 216 * 64
    jd = rows["judge"]  # max_retries 0, 160 tokens
    assert (jd.calls_min, jd.calls_max, jd.generated_tokens_max) == (54, 54, 54 * 160)
    it = rows["intents"]  # max_retries 2 (default), 64 tokens
    assert (it.calls_min, it.calls_max, it.generated_tokens_max) == (0, 18 * 6 * 3, 324 * 64)
    # train: 8 steps x 4 examples x 1 accumulation, <= 384 tokens each; 2 cultures + the control, 2 seeds
    tr = rows["train"]
    assert tr.units["adapters"] == 6 and tr.units["examples_per_adapter"] == 3 * (6 - 1)
    assert tr.training_tokens == 6 * 8 * 4 * 384 == 73_728
    # eval, log-prob: 7 models (base + 3 variants x 2 seeds) x 2 cultures x 44 questions x (plain + cultural)
    ev = rows["eval"]
    assert ev.units["scored"] == ev.calls_max == 7 * 2 * 44 * 2 == 1232
    assert ev.units["answers"] == 0 and ev.generated_tokens_max == 0


def test_without_a_data_bundle_each_prompt_counts_a_stated_constant(tmp_path: Path) -> None:
    from clca.cost import FALLBACK_TOKENS

    cfg = load_config(ROOT / "configs" / "demo.yaml", [f"run_dir={tmp_path / 'r'}"])
    with using_data_dir(tmp_path / "no-bundle", source="a test"):
        rows = _rows(cfg)
    assert all("no data bundle" in r.basis or "no survey" in r.basis for r in rows.values())
    sc = rows["scenarios"]  # 6 adaptations, each with its names step
    assert sc.units["first_prompt_tokens"] == 6 * (FALLBACK_TOKENS["adaptation"] + FALLBACK_TOKENS["names"])
    assert rows["simulate"].units["base_tokens"] == 9 * FALLBACK_TOKENS["roleplay"]
    assert rows["eval"].units["questions"] == 41 + 3  # counted from the ranges Q1-Q41, Q43-Q45
    assert rows["eval"].prompt_tokens_max == 7 * 2 * 44 * 2 * FALLBACK_TOKENS["eval"]
    assert rows["train"].training_tokens == 73_728  # the same bound: max_length caps the examples
    # China also in Chinese: 44 questions + the plain and cultural styles to translate; 3 cultures' prompts
    cfg = load_config(
        ROOT / "configs" / "demo.yaml", [f"run_dir={tmp_path / 'r'}", "eval.languages={China: zh}"]
    )
    with using_data_dir(tmp_path / "no-bundle", source="a test"):
        rows = _rows(cfg)
    assert rows["translate"].units["first_prompt_tokens"] == (44 + 2) * FALLBACK_TOKENS["translate"]
    assert rows["eval"].prompt_tokens_max == 7 * (2 + 1) * 44 * 2 * FALLBACK_TOKENS["eval"]


def test_plan_json_carries_the_cost_rows(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clca.cli import main

    demo = str(ROOT / "configs" / "demo.yaml")
    assert main(["run", demo, "--plan", "--json", "--set", f"run_dir={tmp_path / 'd'}"]) == 0
    cost = json.loads(capsys.readouterr().out)["cost"]
    stages = [r["stage"] for r in cost["rows"]]
    assert stages == ["scenarios", "simulate", "judge", "intents", "train", "eval"]
    assert cost["total"]["calls_max"] == sum(r["calls_max"] for r in cost["rows"])
    assert "characters / 4" in cost["token_rule"]
    assert all(r["how"] for r in cost["rows"])
    assert (
        main(["run", demo, "--plan", "--json", "--only", "eval", "--set", f"run_dir={tmp_path / 'd'}"]) == 0
    )
    assert [r["stage"] for r in json.loads(capsys.readouterr().out)["cost"]["rows"]] == ["eval"]
    assert main(["run", demo, "--plan", "--set", f"run_dir={tmp_path / 'd'}"]) == 0
    out = capsys.readouterr().out
    assert "Cost, bounded from the config alone" in out and "characters / 4" in out
    assert not (tmp_path / "d").exists()
