"""Run config: parsing, the one precedence rule (file < --set), one-line errors, shipped configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clca.config import apply_overrides, config_from_mapping, load_config, parse_override, write_resolved
from clca.errors import ClcaError
from clca.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text, encoding="utf-8")
    return p


MINIMAL = "run_dir: runs/x\ncultures: [China]\nsimulate:\n  samples: 3\n"


def test_defaults_and_file_values(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL))
    assert cfg.run_dir == Path("runs/x")
    assert cfg.cultures == ["China"]
    assert cfg.simulate.samples == 3
    assert cfg.simulate.max_turns == 12  # default
    assert cfg.models.judge_spec == cfg.models.teacher  # judge defaults to the teacher
    assert cfg.eval.styles == ["plain", "cultural"]


def test_overrides_beat_the_file(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, MINIMAL),
        [
            "simulate.samples=1",
            "cultures=[Japan, Germany]",
            "models.judge=openai:gpt-4o@https://x/v1",
            "train.overrides.max_steps=5",
            "eval.survey=my.jsonl",
        ],
    )
    assert cfg.simulate.samples == 1
    assert cfg.cultures == ["Japan", "Germany"]
    assert cfg.models.judge_spec == "openai:gpt-4o@https://x/v1"
    assert cfg.train.overrides == {"max_steps": 5}
    assert cfg.eval.survey == "my.jsonl"


def test_later_override_wins_and_input_is_not_mutated() -> None:
    data = {"simulate": {"samples": 2}}
    out = apply_overrides(data, ["simulate.samples=4", "simulate.samples=5"])
    assert out["simulate"]["samples"] == 5
    assert data["simulate"]["samples"] == 2


def test_override_values_are_yaml_typed() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=0.5") == (["a"], 0.5)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=Great Britain") == (["a"], "Great Britain")
    assert parse_override("a=x=y") == (["a"], "x=y")


@pytest.mark.parametrize("bad", ["nokey", "=3", "a..b=1"])
def test_malformed_override(bad: str) -> None:
    with pytest.raises(ClcaError, match=r"key\.sub=value"):
        parse_override(bad)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "  sampels: 2\n")
    with pytest.raises(ClcaError) as ei:
        load_config(path)
    msg = str(ei.value)
    assert str(path) in msg and "simulate.sampels" in msg and "unknown key" in msg and "Fix:" in msg
    assert "\n" not in msg


def test_bad_override_value_names_the_override(tmp_path: Path) -> None:
    with pytest.raises(ClcaError) as ei:
        load_config(_write(tmp_path, MINIMAL), ["simulate.samples=zero"])
    assert "--set simulate.samples" in str(ei.value)


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ClcaError, match=r"'run_dir'.*required"):
        load_config(_write(tmp_path, "cultures: [China]\n"))


def test_override_into_a_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ClcaError, match="is a value, not a section"):
        load_config(_write(tmp_path, MINIMAL), ["simulate.samples.x=1"])
    with pytest.raises(ClcaError, match=r"--set seed\.x"):
        load_config(_write(tmp_path, MINIMAL), ["seed.x=1"])


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClcaError, match=r"line [23].*not valid YAML"):
        load_config(_write(tmp_path, "run_dir: x\ncultures: [China\n"))
    with pytest.raises(ClcaError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ClcaError, match="top level must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_duplicate_culture_rejected(tmp_path: Path) -> None:
    with pytest.raises(ClcaError, match="listed twice"):
        load_config(_write(tmp_path, "run_dir: x\ncultures: [China, China]\n"))


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL), [f"run_dir={tmp_path / 'run'}", "seed=7"])
    out = write_resolved(cfg, RunDir(cfg.run_dir).config_file)
    assert out == tmp_path / "run" / "config.resolved.yaml"
    again = load_config(out)
    assert again == cfg
    assert yaml.safe_load(out.read_text())["simulate"]["max_turns"] == 12


@pytest.mark.parametrize("name", ["demo.yaml", "paper.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    """Both shipped configs parse, every section is typed, and the plan has every stage."""
    from clca.pipeline import plan_stages

    cfg = load_config(ROOT / "configs" / name)
    tc = cfg.train.resolve(model=cfg.models.student, seed=cfg.seed)
    assert tc.model == cfg.models.student
    names = [s.name for s in plan_stages(cfg)]
    assert names[:4] == ["scenarios", "simulate", "judge", "intents"] and names[-1] == "report"
    assert cfg.controls == ["no_culture"] and cfg.train.seeds is not None and len(cfg.train.seeds) >= 2
    for c in [*cfg.cultures, "no-culture"]:
        for k in cfg.train.seeds:
            assert f"train:{c}@s{k}" in names
    assert "mix:no-culture" in names and f"eval:control-no-culture-s{cfg.train.seeds[0]}" in names


def test_train_seeds_validation() -> None:
    base = {"run_dir": "r", "cultures": ["China"]}
    cfg = config_from_mapping({**base, "train": {"seeds": [3, 4]}})
    assert cfg.train.seed_list(0) == [3, 4]
    assert config_from_mapping(base).train.seed_list(7) == [7]
    assert config_from_mapping({**base, "train": {"overrides": {"seed": 5}}}).train.seed_list(7) == [5]
    with pytest.raises(ClcaError, match="seed is listed twice"):
        config_from_mapping({**base, "train": {"seeds": [1, 1]}})
    with pytest.raises(ClcaError, match=r"not train\.overrides\.seed"):
        config_from_mapping({**base, "train": {"seeds": [1], "overrides": {"seed": 2}}})
    with pytest.raises(ClcaError, match="controls"):
        config_from_mapping({**base, "controls": ["no_cultur"]})


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("mix:\n  ratio_intnt: 1\n", "mix.ratio_intnt"),
        ("judge:\n  rule: {drop_quality_bd: [confident]}\n", "judge.rule.drop_quality_bd"),
        ("judge:\n  rule: pape\n", "judge.rule"),
        ("train:\n  overrides:\n    lora_alph: 3\n", "overrides.lora_alph"),
        ("train:\n  preset: gpu\n", "train.preset"),
        ("train:\n  overrides:\n    lora_r: -1\n", "overrides.lora_r"),
        ("models:\n  teacher: emb:smol\n", "models.teacher"),
        ("eval:\n  styles: [plain, culturl]\n", "culturl"),
        ("eval:\n  questions: ''\n", "eval.questions"),
        ("scenarios:\n  per_culture: 0\n", "scenarios.per_culture"),
        ("simulate:\n  samples: 1000000000\n", "simulate.samples"),
        ("simulate:\n  temperature: 5\n", "simulate.temperature"),
        ("intents:\n  enabled: false\n", "dialogue_only"),
    ],
)
def test_any_bad_key_fails_at_load_with_one_line(tmp_path: Path, extra: str, where: str) -> None:
    """A typo or bad value in any section fails when the config loads, naming the key, in one line."""
    with pytest.raises(ClcaError) as ei:
        load_config(_write(tmp_path, "run_dir: x\ncultures: [China]\n" + extra))
    msg = str(ei.value)
    assert where in msg and "Fix:" in msg and "\n" not in msg


def test_filter_rule_forms(tmp_path: Path) -> None:
    from clca.judge.config import NAMED_RULES

    cfg = load_config(_write(tmp_path, "run_dir: x\ncultures: [China]\njudge:\n  rule: none\n"))
    assert cfg.judge.rule == NAMED_RULES["none"] and cfg.judge.rule_name == "none"
    cfg = load_config(
        _write(
            tmp_path, "run_dir: x\ncultures: [China]\njudge:\n  rule: {drop_not_aligned: [very confident]}\n"
        )
    )
    assert (
        cfg.judge.rule.drop_not_aligned == frozenset({"very confident"}) and cfg.judge.rule_name == "custom"
    )
    # the settings hash does not depend on set order
    assert cfg.judge.model_dump(mode="json")["rule"]["drop_quality_bad"] == ["very confident"]


def test_stage_cli_options_come_from_the_config_models() -> None:
    """Every field of a stage's config is an option of its command, with the same default."""
    import inspect

    import typer

    import clca.cli  # noqa: F401  (registers the commands)
    from clca.cli_app import app
    from clca.cli_options import option_name
    from clca.evaluation.config import EvalSettings, TranslateSettings
    from clca.intents.config import IntentsConfig
    from clca.judge.config import JudgeConfig
    from clca.roleplay.config import SimulateConfig
    from clca.scenarios.config import ScenariosConfig
    from clca.training.config import MixConfig

    commands = {c.name: c.callback for c in app.registered_commands}
    pairs = {
        "scenarios": ScenariosConfig,
        "simulate": SimulateConfig,
        "judge": JudgeConfig,
        "intents": IntentsConfig,
        "mix": MixConfig,
        "eval": EvalSettings,
        "translate": TranslateSettings,
    }
    for name, model in pairs.items():
        params = inspect.signature(commands[name]).parameters
        for field, info in model.model_fields.items():
            if name == "intents" and field == "enabled":
                continue
            assert field in params, f"clca {name} lacks {option_name(field)}"
            opt = params[field].annotation.__metadata__[0]
            assert isinstance(opt, typer.models.OptionInfo)
            default = params[field].default
            expected = info.get_default(call_default_factory=True)
            if isinstance(expected, list):
                expected = ",".join(map(str, expected))
            elif isinstance(expected, dict):  # a mapping's default is shown as JSON (eval.languages: {})
                expected = json.dumps(expected)
            elif field == "rule":
                expected = "paper"
            assert default == expected, (name, field)


def test_paper_config_is_the_paper() -> None:
    cfg = load_config(ROOT / "configs" / "paper.yaml")
    assert cfg.cultures == ["Great Britain", "China", "Germany", "Mexico", "Japan"]
    assert cfg.simulate.samples == 2
    assert cfg.models.teacher.startswith("openai:gpt-4o@")  # scenario adaptation: "a GPT-4 model"
    assert cfg.models.actor.startswith("openai:meta-llama/Llama-3.1-70B-Instruct@")
    assert cfg.models.intents_spec.startswith("openai:meta-llama/Llama-3.1-70B-Instruct@")
    assert cfg.models.judge_spec.startswith("openai:gpt-4o@")
    assert cfg.train.preset == "paper"
    assert cfg.eval.questions == "Q1-Q41,Q43-Q45"
    assert cfg.judge.rule_name == "paper"
    assert (cfg.scenarios.source, cfg.scenarios.names_first) == ("both", False)
    assert cfg.eval.protocol == "paper" and cfg.eval.personas == 1000
    assert cfg.eval.styles == ["paper_persona", "paper_cultural"] and cfg.eval.mode == "generate"
    # the multilingual evaluation (§6.4): every culture but the UK also in its language
    assert cfg.eval.languages == {"China": "zh", "Germany": "de", "Japan": "ja", "Mexico": "es"}
