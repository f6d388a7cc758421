"""The run configuration: one YAML file in, one resolved YAML file out.

A :class:`RunConfig` holds everything ``clca run`` needs: where the run lives, the cultures, the models
(teacher for scenarios, judge and intents; actor for role-play; student to adapt), and one section per
stage. There is exactly one precedence rule: **values in the YAML file < ``--set key.sub=value`` overrides
on the command line** (the global ``--data-dir`` option counts as ``--set data_dir=...``). Defaults fill
whatever neither gives. Unknown keys are errors, so a typo never silently falls back to a default.

Relative paths (``run_dir``, ``data_dir``, ``eval.survey``, ``cache``) are relative to the directory the
command is run from, like every other path on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clca.errors import ClcaError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelsConfig(_Section):
    """Model specs (see ``clca models list``): ``embedded:...``, ``hf:...``, ``openai:<model>@<url>``."""

    teacher: str = "embedded:smollm2-135m"  # adapts scenarios; default judge and intent labeller
    actor: str = "embedded:smollm2-135m"  # role-plays both people
    student: str = "embedded:smollm2-135m"  # the model that is adapted and evaluated
    judge: str | None = None  # default: the teacher
    intents: str | None = None  # default: the teacher
    batch_size: int = Field(default=8, ge=1)  # local backends: requests per forward pass

    @property
    def judge_spec(self) -> str:
        return self.judge or self.teacher

    @property
    def intents_spec(self) -> str:
        return self.intents or self.teacher


class ScenariosConfig(_Section):
    """``source``: ``adapt`` (the teacher culture-adapts Sotopia seeds, as in the paper) or ``seeds`` (the
    seeds are used as they are, tagged with the culture: no LLM; for quick CPU runs and tests — the culture
    then enters only through the role-play system prompt). ``names_first``: with ``adapt``, ask for the two new
    names first and adapt the renamed scenario (default), or everything in one prompt as in the paper."""

    source: Literal["adapt", "seeds"] = "adapt"
    names_first: bool = True
    per_culture: int = Field(default=2, ge=1)
    max_retries: int = Field(default=2, ge=0)
    max_new_tokens: int = Field(default=1024, ge=16)
    temperature: float = Field(default=0.7, ge=0.0)


class SimulateConfig(_Section):
    samples: int = Field(default=2, ge=1)
    max_turns: int = Field(default=12, ge=1)
    max_new_tokens: int = Field(default=160, ge=8)
    temperature: float = Field(default=0.7, ge=0.0)
    max_consecutive_failures: int = Field(default=2, ge=1)


class JudgeConfig(_Section):
    """``rule``: a filter-rule name (``paper``: drop on very-confident bad quality or meta label; ``none``:
    keep every judged episode) or a mapping of the judge module's ``FilterRule`` fields."""

    rule: str | dict[str, Any] = "paper"
    max_new_tokens: int = Field(default=200, ge=8)


class IntentsConfig(_Section):
    enabled: bool = True  # False only makes sense with mix.ablation = dialogue_only
    max_new_tokens: int = Field(default=96, ge=8)


class TrainConfigSection(_Section):
    """``preset`` (``cpu`` or ``paper``) plus any ``TrainConfig`` field in ``overrides``."""

    preset: str = "cpu"
    overrides: dict[str, Any] = Field(default_factory=dict)


class EvalConfigSection(_Section):
    questions: str = "Q1-Q41,Q43-Q45"
    styles: list[str] = Field(default_factory=lambda: ["plain", "cultural"])
    mode: Literal["logprob", "generate"] = "logprob"
    survey: Path | None = None  # default: the bundle's WVS wave-7 distributions
    bootstrap: int = Field(default=1000, ge=0)

    @field_validator("styles")
    @classmethod
    def _styles(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one prompting style, e.g. [plain, cultural]")
        return list(dict.fromkeys(v))


class RunConfig(_Section):
    """Everything one ``clca run`` needs. See ``configs/demo.yaml`` for a commented example."""

    run_dir: Path
    data_dir: Path | None = None
    seed: int = 0
    cultures: list[str] = Field(min_length=1)
    cache: Path | None = None  # LLM call cache (SQLite); default <CLCA_CACHE_DIR>/llm_cache.sqlite
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    scenarios: ScenariosConfig = Field(default_factory=ScenariosConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    intents: IntentsConfig = Field(default_factory=IntentsConfig)
    mix: dict[str, Any] = Field(default_factory=dict)  # fields of clca.training.mix.MixConfig
    train: TrainConfigSection = Field(default_factory=TrainConfigSection)
    eval: EvalConfigSection = Field(default_factory=EvalConfigSection)

    @field_validator("cultures")
    @classmethod
    def _cultures(cls, v: list[str]) -> list[str]:
        cleaned = [c.strip() for c in v]
        if any(not c for c in cleaned):
            raise ValueError("culture names must not be empty")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a culture is listed twice")
        return cleaned

    def dump(self) -> dict[str, Any]:
        """Plain-data form (paths as strings) for YAML and hashing."""
        return self.model_dump(mode="json")


RESOLVED_NAME = "config.resolved.yaml"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``key.sub=value`` into the key path and the value (parsed as a YAML scalar/list/mapping)."""
    key, sep, raw = text.partition("=")
    path = [p.strip() for p in key.split(".")]
    if not sep or not key.strip() or any(not p for p in path):
        raise ClcaError(
            f"--set {text!r} is not of the form key.sub=value.",
            fix="write e.g. --set simulate.samples=1 or --set cultures=[China,Japan].",
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to the raw mapping from the YAML file (a new mapping is returned)."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node: Any = out
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ClcaError(
                    f"--set {text!r}: {'.'.join(path[: i + 1])} is a value, not a section.",
                    fix=f"set {'.'.join(path[: i + 1])}=... directly.",
                )
            node = nxt
        node[path[-1]] = value
    return out


def _describe(exc: ValidationError, source: str, overridden: set[str]) -> ClcaError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    hits = [o for o in overridden if loc == o or loc.startswith(o + ".") or o.startswith(loc + ".")]
    origin = f"--set {hits[0]}" if hits else source
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        fix = f"remove or rename '{loc}' (see configs/demo.yaml for every key)."
        msg = "unknown key"
    elif err.get("type") == "missing":
        fix = f"add '{loc}' to the config or pass --set {loc}=..."
        msg = "required key is missing"
    else:
        fix = f"correct the value of '{loc}'."
    more = f" ({len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return ClcaError(f"{origin}: key '{loc}': {msg}{more}.", fix=fix)


def config_from_mapping(
    data: dict[str, Any], *, source: str = "config", overrides: list[str] | None = None
) -> RunConfig:
    """Validate a raw mapping (plus overrides) into a :class:`RunConfig` with one-line errors."""
    overrides = list(overrides or [])
    merged = apply_overrides(data, overrides)
    overridden = {".".join(parse_override(o)[0]) for o in overrides}
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise _describe(exc, source, overridden) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config and apply ``--set`` overrides (file < overrides)."""
    path = Path(path)
    if not path.is_file():
        raise ClcaError(
            f"config file {path} does not exist.", fix="pass a YAML file such as configs/demo.yaml."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ClcaError(f"{path}{where}: not valid YAML.", fix="correct the YAML syntax there.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ClcaError(
            f"{path}: the top level must be a mapping of keys.", fix="start from configs/demo.yaml."
        )
    return config_from_mapping(data, source=str(path), overrides=overrides)


def write_resolved(cfg: RunConfig) -> Path:
    """Write the fully resolved config (defaults filled in) to ``run_dir/config.resolved.yaml``."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    out = cfg.run_dir / RESOLVED_NAME
    tmp = out.with_suffix(".yaml.tmp")
    tmp.write_text(
        "# Resolved by clca: the config file, then --set overrides, then defaults.\n"
        + yaml.safe_dump(cfg.dump(), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    tmp.replace(out)
    return out
