"""The run configuration: the stages' typed sections composed into one :class:`RunConfig`, read from YAML with
``--set`` overrides.

Each stage owns its section, beside the stage (TRL's ``sft_config.py`` next to ``sft_trainer.py``):
:class:`~clca.scenarios.config.ScenariosConfig`, :class:`~clca.roleplay.config.SimulateConfig`,
:class:`~clca.judge.config.JudgeConfig`, :class:`~clca.intents.config.IntentsConfig`,
:class:`~clca.training.config.MixConfig`, :class:`~clca.training.config.TrainSection`,
:class:`~clca.evaluation.config.EvalSettings`; this module adds the run-wide keys and the model roles
(:class:`ModelsConfig`). The same section model is used three ways: as a section of the YAML run config, as
the options of the stage's CLI command (generated from the model by :mod:`clca.cli_options`, so defaults and
ranges cannot disagree), and as the ``cfg`` argument of the stage's Python function
(``stage(backend, run_dir, cfg)``). Stage packages never import this module.

A config is validated completely when it loads: an unknown or ill-typed key anywhere (a typo inside
``mix:``, ``judge.rule`` or ``train.overrides`` included), an out-of-range number, an unknown model spec,
prompting style or training preset is one line naming the key and the fix, before any work starts.

Precedence: **values in the YAML file < ``--set key.sub=value`` overrides on the command line** (the
global ``--data-dir`` option counts as ``--set data_dir=...``). Defaults fill whatever neither gives.
Relative paths (``run_dir``, ``data_dir``, ``eval.survey``, ``cache``) are relative to the directory the
command is run from, like every other path on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clca.errors import ClcaError
from clca.evaluation.config import EvalSettings
from clca.intents.config import IntentsConfig
from clca.judge.config import JudgeConfig
from clca.options import DEFAULT_ACTOR, DEFAULT_BATCH_SIZE, DEFAULT_STUDENT, DEFAULT_TEACHER
from clca.roleplay.config import SimulateConfig
from clca.scenarios.config import ScenariosConfig
from clca.training.config import MixConfig, TrainSection


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _spec(value: str) -> str:
    from clca.errors import ModelError
    from clca.llm.spec import KNOWN_FORMS, parse_spec

    try:
        parse_spec(value)
    except ModelError as exc:
        raise ValueError(f"{str(exc).split(' Fix: ')[0]} Known forms: {KNOWN_FORMS}") from None
    return value


class ModelsConfig(_Section):
    """Model specs (see ``clca models list``): ``embedded:...``, ``hf:...``, ``openai:<model>@<url>``. The
    defaults are the stage commands' ``--model`` defaults (:mod:`clca.options`)."""

    teacher: str = Field(default=DEFAULT_TEACHER, description="Adapts scenarios; default judge and labeller.")
    actor: str = Field(default=DEFAULT_ACTOR, description="Role-plays both people.")
    student: str = Field(default=DEFAULT_STUDENT, description="The model that is adapted and evaluated.")
    judge: str | None = Field(default=None, description="The judge (default: the teacher).")
    intents: str | None = Field(default=None, description="The intent labeller (default: the teacher).")
    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        ge=1,
        le=4096,
        description="Requests per backend call (local: per forward).",
    )

    @field_validator("teacher", "actor", "student", "judge", "intents")
    @classmethod
    def _check_spec(cls, v: str | None) -> str | None:
        return None if v is None else _spec(v)

    @property
    def judge_spec(self) -> str:
        return self.judge or self.teacher

    @property
    def intents_spec(self) -> str:
        return self.intents or self.teacher


class Resources(_Section):
    """What one unit of a kind asks the scheduler for (``clca run --executor slurm``)."""

    gpus: int = Field(default=0, ge=0, le=64, description="GPUs per unit (on one node).")
    cpus: int = Field(default=2, ge=1, le=512, description="CPU cores per unit.")
    mem_gb: int = Field(default=8, ge=1, le=4096, description="Memory per unit in GB.")
    time_min: int = Field(
        default=60, ge=1, le=60 * 24 * 30, description="Wall-clock limit per unit in minutes."
    )
    partition: str | None = Field(default=None, description="SLURM partition (default: cluster.partition).")


class ClusterConfig(_Section):
    """How ``clca run CONFIG --executor local:N | slurm`` runs the plan's units (:mod:`clca.executor`): the
    resources of each unit kind, and the SLURM settings shared by all. Units: ``generate`` (scenarios, role-play,
    judge, intents, stats: LLM calls, usually to servers), ``mix`` (one per culture and the control), ``train``
    and ``eval`` (one per adapter; ``eval:base`` too), ``report``."""

    generate: Resources = Field(
        default_factory=lambda: Resources(cpus=4, mem_gb=16, time_min=24 * 60),
        description="The generation stages (scenarios ... stats) as one unit.",
    )
    mix: Resources = Field(default_factory=Resources, description="One training mix.")
    train: Resources = Field(
        default_factory=lambda: Resources(gpus=1, cpus=8, mem_gb=64, time_min=12 * 60),
        description="One adapter's training.",
    )
    eval: Resources = Field(
        default_factory=lambda: Resources(gpus=1, cpus=8, mem_gb=64, time_min=12 * 60),
        description="One model's evaluation.",
    )
    report: Resources = Field(default_factory=Resources, description="The report.")
    partition: str | None = Field(default=None, description="SLURM partition of every unit kind without one.")
    account: str | None = Field(default=None, description="SLURM account.")
    qos: str | None = Field(default=None, description="SLURM quality of service.")
    setup: list[str] = Field(
        default_factory=list,
        description="Shell lines each SLURM job runs first (e.g. 'source .venv/bin/activate', module loads).",
    )
    jobs_dir: Path | None = Field(
        default=None, description="Where job scripts and logs go (default: run_dir/jobs)."
    )


Control = Literal["no_culture"]


class RunConfig(_Section):
    """Everything one ``clca run`` needs. See ``configs/demo.yaml`` for a commented example.

    ``controls``: ``no_culture`` adds a control adapter trained the same way on the same volume of data
    (examples and tokens) without culture: the unadapted Sotopia seeds, no culture profile in the role-play,
    judge and intent prompts. Every adapter (each culture's and the control) is evaluated on every culture.
    """

    run_dir: Path
    data_dir: Path | None = None
    seed: int = 0
    cultures: list[str] = Field(min_length=1, max_length=200)
    controls: list[Control] = Field(default_factory=list, max_length=1)
    cache: Path | None = None  # LLM call cache (SQLite); default <CLCA_CACHE_DIR>/llm_cache.sqlite
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    scenarios: ScenariosConfig = Field(default_factory=ScenariosConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    intents: IntentsConfig = Field(default_factory=IntentsConfig)
    mix: MixConfig = Field(default_factory=MixConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)

    @field_validator("cultures")
    @classmethod
    def _cultures(cls, v: list[str]) -> list[str]:
        cleaned = [c.strip() for c in v]
        if any(not c for c in cleaned):
            raise ValueError("culture names must not be empty")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a culture is listed twice")
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if not self.intents.enabled and self.mix.ratios()["intent"] > 0:
            raise ValueError(
                "intents.enabled is false but the mix has an intent part; set mix.ablation: dialogue_only"
            )
        return self

    def dump(self) -> dict[str, Any]:
        """Plain-data form (paths as strings) for YAML and hashing."""
        return self.model_dump(mode="json")


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


def describe_error(
    exc: ValidationError, source: str, overridden: set[str] | frozenset[str] = frozenset()
) -> ClcaError:
    """A one-line :class:`ClcaError` for the first problem of a config validation error."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    # an override at or above the key is its origin; one below it when it changed the key's type, or when the
    # section's own check names it (``train.overrides.lr`` in "unknown key 'overrides.lr'")
    below = err.get("type") != "value_error"
    hits = [
        o
        for o in sorted(overridden)
        if loc == o
        or loc.startswith(o + ".")
        or (o.startswith(loc + ".") and (below or o.removeprefix(loc + ".") in msg))
    ]
    origin = f"--set {hits[0]}" if hits else source
    if err.get("type") == "extra_forbidden":
        fix = f"remove or rename '{loc}' (see configs/demo.yaml and docs/pipeline.md for every key)."
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
        raise describe_error(exc, source, overridden) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config and apply ``--set`` overrides (file < overrides)."""
    path = Path(path)
    if not path.is_file():
        raise ClcaError(
            f"config file {path} does not exist.", fix="pass a YAML file such as configs/demo.yaml."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ClcaError(f"{path} is not UTF-8 text.", fix="save the config as UTF-8.") from None
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


def write_resolved(cfg: RunConfig, path: Path) -> Path:
    """Write the fully resolved config (defaults filled in) to ``path`` (the run's ``config.resolved.yaml``)."""
    from clca.runs import tmp_path

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    tmp.write_text(
        "# Resolved by clca: the config file, then --set overrides, then defaults.\n"
        + yaml.safe_dump(cfg.dump(), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    tmp.replace(path)
    return path
