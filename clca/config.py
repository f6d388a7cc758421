"""Every setting of clca in one typed model per stage, and the run configuration that holds them.

One section per stage (:class:`ScenariosConfig`, :class:`SimulateConfig`, :class:`JudgeConfig`,
:class:`IntentsConfig`, :class:`MixConfig`, :class:`TrainSection`, :class:`EvalSettings`). The same model is
used three ways: as a section of the YAML run config (:class:`RunConfig`), as the options of the stage's CLI
command (generated from the model by :mod:`clca.cli_options`, so defaults and ranges cannot disagree), and as
the ``cfg`` argument of the stage's Python function (``stage(backend, run_dir, cfg)``).

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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from clca.errors import ClcaError
from clca.records import Confidence


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
    """Model specs (see ``clca models list``): ``embedded:...``, ``hf:...``, ``openai:<model>@<url>``."""

    teacher: str = Field(
        default="embedded:smollm2-135m", description="Adapts scenarios; default judge and labeller."
    )
    actor: str = Field(default="embedded:smollm2-135m", description="Role-plays both people.")
    student: str = Field(
        default="embedded:smollm2-135m", description="The model that is adapted and evaluated."
    )
    judge: str | None = Field(default=None, description="The judge (default: the teacher).")
    intents: str | None = Field(default=None, description="The intent labeller (default: the teacher).")
    batch_size: int = Field(
        default=8, ge=1, le=4096, description="Requests per backend call (local: per forward)."
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


class ScenariosConfig(_Section):
    """How scenarios are made. ``source``: ``adapt`` (the teacher culture-adapts Sotopia seeds, the paper's
    first source), ``norms`` (new scenarios around Social Chemistry / NormBank norms, the paper's second),
    ``both`` (``norm_share`` from norms, the rest adapted; as in the paper) or ``seeds`` (the seeds as they
    are, tagged with the culture: no LLM; the culture then enters only through the role-play prompt)."""

    source: Literal["adapt", "norms", "both", "seeds"] = Field(
        default="adapt",
        description="adapt (Sotopia seeds), norms (new, around a norm), both, or seeds (no LLM).",
    )
    norm_share: float = Field(
        default=0.5, ge=0.0, le=1.0, description="With source both: share of norm-based scenarios."
    )
    names_first: bool = Field(
        default=True,
        description="Ask for the two new names first, then adapt the renamed scenario (small models otherwise "
        "copy the source names); false: one prompt as in the paper.",
    )
    per_culture: int = Field(default=20, ge=1, le=100_000, description="Seed scenarios per culture.")
    max_retries: int = Field(default=2, ge=0, le=20, description="Re-asks per unusable reply.")
    max_new_tokens: int = Field(default=1024, ge=16, le=32_768, description="Tokens per adapted scenario.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature.")


class SimulateConfig(_Section):
    """Role-play settings. One turn is a pair of utterances (person 1, then person 2), as in the paper."""

    samples: int = Field(default=2, ge=1, le=1000, description="Episodes per scenario (distinct seeds).")
    max_turns: int = Field(
        default=12, ge=1, le=500, description="Turn cap; one turn = person 1 then person 2."
    )
    max_new_tokens: int = Field(default=160, ge=8, le=32_768, description="Tokens per agent output.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    max_consecutive_failures: int = Field(
        default=2, ge=1, le=100, description="Stop an episode after this many unparseable outputs in a row."
    )


class FilterRule(_Section):
    """Which judgements drop an episode. Default: the CLCA paper's rule (drop on very-confident bad quality
    or a very-confident bad meta label; the alignment label is recorded, not used)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drop_quality_bad: frozenset[Confidence] = frozenset({"very confident"})
    drop_meta_bad: frozenset[Confidence] = frozenset({"very confident"})
    drop_not_aligned: frozenset[Confidence] = frozenset()
    keep_on_error: bool = True

    @field_serializer("drop_quality_bad", "drop_meta_bad", "drop_not_aligned")
    def _sorted(self, v: frozenset[str]) -> list[str]:
        return sorted(v)  # a stable order: the settings hash must not depend on set iteration

    def keep(
        self,
        *,
        quality: str | None,
        quality_confidence: str | None,
        meta: str | None,
        meta_confidence: str | None,
        alignment: str | None = None,
        alignment_confidence: str | None = None,
        error: str | None = None,
    ) -> bool:
        """True when the episode is kept. Parsed evidence for dropping always wins over a parse error."""
        if quality == "bad" and quality_confidence in self.drop_quality_bad:
            return False
        if meta == "bad" and meta_confidence in self.drop_meta_bad:
            return False
        if alignment == "not aligned" and alignment_confidence in self.drop_not_aligned:
            return False
        if error:
            return self.keep_on_error
        return True


NAMED_RULES: dict[str, FilterRule] = {
    "paper": FilterRule(),
    "none": FilterRule(drop_quality_bad=frozenset(), drop_meta_bad=frozenset(), keep_on_error=True),
}


class JudgeConfig(_Section):
    """The judge. ``rule``: ``paper``, ``none`` (keep every judged episode), or a mapping of
    :class:`FilterRule` fields (on the command line as YAML, e.g. ``{drop_not_aligned: [very confident]}``)."""

    rule: FilterRule = Field(default_factory=FilterRule, description="paper, none, or a FilterRule mapping.")
    max_new_tokens: int = Field(default=200, ge=8, le=32_768, description="Tokens per judge answer.")
    max_retries: int = Field(default=2, ge=0, le=20, description="Re-asks (new seed) per unparseable answer.")

    @field_validator("rule", mode="before")
    @classmethod
    def _rule(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            if text in NAMED_RULES:
                return NAMED_RULES[text]
            if text.startswith("{"):
                try:
                    return yaml.safe_load(text)
                except yaml.YAMLError:
                    raise ValueError("not a valid YAML mapping") from None
            raise ValueError(
                f"unknown filter rule {text!r}; use paper, none or a mapping of FilterRule fields"
            )
        return v

    @property
    def rule_name(self) -> str:
        """``paper`` / ``none`` when the rule is one of those, else ``custom``."""
        return next((k for k, r in NAMED_RULES.items() if r == self.rule), "custom")


class IntentsConfig(_Section):
    enabled: bool = Field(
        default=True, description="Label intents (false only with mix.ablation: dialogue_only)."
    )
    max_new_tokens: int = Field(default=96, ge=8, le=32_768, description="Tokens per intent.")
    max_retries: int = Field(
        default=2, ge=0, le=20, description="Re-asks (new seed) per reply without INTENT:."
    )


Ablation = Literal["dialogue_only", "intent_only"]


class MixConfig(_Section):
    """The multi-task training mix of one culture (see :mod:`clca.training.mix`)."""

    ratio_dialogue_p1: float = Field(
        default=1.0, ge=0, le=1000, description="Share of the person-1 dialogue part."
    )
    ratio_dialogue_p2: float = Field(
        default=1.0, ge=0, le=1000, description="Share of the person-2 dialogue part."
    )
    ratio_intent: float = Field(default=1.0, ge=0, le=1000, description="Share of the intent part.")
    ablation: Ablation | None = Field(
        default=None, description="Leave a part out: dialogue_only or intent_only."
    )
    val_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="Share of episodes held out for validation."
    )
    require_judge: bool = Field(default=True, description="Use only episodes the judge kept.")
    max_examples: int | None = Field(default=None, gt=0, description="Cap on training examples.")

    @model_validator(mode="after")
    def _some_part(self) -> MixConfig:
        if not any(v > 0 for v in self.ratios().values()):
            raise ValueError("at least one part of the mix needs a ratio > 0")
        return self

    def ratios(self) -> dict[str, float]:
        """The effective ratio per part (``dialogue_p1``, ``dialogue_p2``, ``intent``) after the ablation."""
        r = {
            "dialogue_p1": self.ratio_dialogue_p1,
            "dialogue_p2": self.ratio_dialogue_p2,
            "intent": self.ratio_intent,
        }
        if self.ablation == "dialogue_only":
            r["intent"] = 0.0
        elif self.ablation == "intent_only":
            r["dialogue_p1"] = r["dialogue_p2"] = 0.0
        return r


class TrainSection(_Section):
    """``preset`` (``cpu`` or ``paper``) plus any :class:`~clca.training.presets.TrainConfig` field in
    ``overrides``; validated against ``TrainConfig`` when the config loads. ``seeds``: one adapter per seed
    (per culture and per control; the report's intervals include the variation between seeds); default: the
    run's seed."""

    preset: Literal["cpu", "paper"] = Field(default="cpu", description="Training preset: cpu or paper.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields to override.")
    seeds: list[int] | None = Field(
        default=None, min_length=1, max_length=50, description="Training seeds (one adapter each)."
    )

    @model_validator(mode="after")
    def _check(self) -> TrainSection:
        if self.seeds is not None:
            if "seed" in self.overrides:
                raise ValueError("give training seeds in train.seeds, not train.overrides.seed")
            if len(set(self.seeds)) != len(self.seeds):
                raise ValueError("a seed is listed twice in train.seeds")
        self.resolve(model="embedded:smollm2-135m", seed=0)
        return self

    def seed_list(self, run_seed: int) -> list[int]:
        """The training seeds: ``seeds``, or the run's seed."""
        return list(self.seeds) if self.seeds is not None else [int(self.overrides.get("seed", run_seed))]

    def resolve(self, *, model: str, seed: int) -> Any:
        """The :class:`~clca.training.presets.TrainConfig` for ``model`` and training ``seed``."""
        from clca.training.presets import TrainConfig, preset

        unknown = sorted(set(self.overrides) - set(TrainConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown key 'overrides.{unknown[0]}' (not a TrainConfig field)")
        try:
            return preset(self.preset, **{"model": model, **self.overrides, "seed": seed})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ()))
            raise ValueError(f"overrides.{loc}: {err.get('msg', 'invalid')}") from None


PAPER_STYLES = ["paper_persona", "paper_cultural"]


class EvalSettings(_Section):
    """How the survey is asked and scored (the ``eval:`` section; :class:`clca.evaluation.EvalConfig` adds
    where and for which model).

    ``protocol``: ``logprob`` (clca's default: the styles' answer distributions from option log-probs) or
    ``paper`` (the CLCA paper's protocol: the persona prompt of its Table 20 for ``personas`` respondents per
    culture from WorldValuesBench files (``respondents``) and its cultural-prompting baseline, greedy generation,
    parsed answers with a safeguard bucket; styles ``paper_persona`` and ``paper_cultural``, mode ``generate``,
    temperature 0, one sample, unless set otherwise). Without respondent files a run stops before any work,
    or uses the ``logprob`` protocol when ``fallback_to_logprob`` is true.
    """

    protocol: Literal["logprob", "paper"] = Field(
        default="logprob",
        description="logprob (option log-probs) or paper (persona prompts, greedy, parsed).",
    )
    fallback_to_logprob: bool = Field(
        default=False,
        description="protocol paper without respondent files: use the logprob protocol instead.",
    )

    questions: str = Field(
        default="Q1-Q41,Q43-Q45", description='Question ids and ranges: "Q1-Q41,Q43-Q45", "Q7,Q10", "all".'
    )
    styles: list[str] = Field(
        default_factory=lambda: ["plain", "cultural"],
        description="Prompting styles: plain, cultural, persona, anthropological, or a --style-file's name.",
    )
    style_files: list[Path] = Field(default_factory=list, description="Extra style YAML files.")
    mode: Literal["logprob", "generate"] = Field(
        default="logprob", description="logprob (option scoring) or generate (parse answers, like the paper)."
    )
    survey: str = Field(
        default="wvs7", description="wvs7 (the data bundle), a WVS-format .jsonl or a GlobalOpinionQA CSV."
    )
    respondents: Path | None = Field(
        default=None,
        description="WorldValuesBench dir (full_value_qa.tsv, full_demographic_qa.tsv) for persona.",
    )
    personas: int = Field(
        default=20, ge=1, le=100_000, description="Respondents sampled per country (persona style)."
    )
    samples: int = Field(default=1, ge=1, le=10_000, description="Generation mode: answers per prompt.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Generation mode: 0 = greedy.")
    max_new_tokens: int = Field(default=16, ge=1, le=4096, description="Generation mode: tokens per answer.")
    bootstrap: int = Field(default=1000, ge=10, le=1_000_000, description="Bootstrap resamples for the CIs.")
    check_sampling: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="Log-prob mode: also sample N answers per prompt (temperature 1) and compare their histogram "
        "with the scored distribution (calibration.jsonl).",
    )

    @field_validator("questions")
    @classmethod
    def _questions(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('empty question selection; write "all" for every question')
        return v.strip()

    @field_validator("styles", mode="before")
    @classmethod
    def _split_styles(cls, v: object) -> object:
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _known_styles(self) -> EvalSettings:
        from clca.evaluation.styles import resolve_styles

        if self.protocol == "paper":
            given = self.model_fields_set
            if "mode" in given and self.mode != "generate":
                raise ValueError("the paper protocol generates answers (mode: generate)")
            self.mode = "generate"
            if "styles" not in given:
                self.styles = list(PAPER_STYLES)
            if "temperature" not in given:
                self.temperature = 0.0
            if "samples" not in given:
                self.samples = 1
            if "paper_persona" not in self.styles:
                raise ValueError("the paper protocol needs the paper_persona style")

        if not self.styles:
            raise ValueError("list at least one prompting style, e.g. [plain, cultural]")
        self.styles = list(dict.fromkeys(self.styles))
        try:
            resolve_styles(self.styles, [str(p) for p in self.style_files])
        except ClcaError as exc:
            raise ValueError(str(exc).split(" Fix:")[0]) from None
        return self


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
    # an override at or above the key is its origin; one below it only when it changed the key's type
    below = err.get("type") != "value_error"
    hits = [
        o for o in overridden if loc == o or loc.startswith(o + ".") or (below and o.startswith(loc + "."))
    ]
    origin = f"--set {hits[0]}" if hits else source
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
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
