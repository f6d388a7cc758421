"""The one-command CLCA pipeline: scenarios → role-play → judge → intents → stats → mix + train → eval → report.

:func:`run_pipeline` runs the stages of a :class:`~clca.config.RunConfig` in order, in one run directory.

* **Resumption.** Each stage function skips records it already wrote, and the manifest marks finished stages,
  so a rerun after a crash (or Ctrl-C) skips done stages in milliseconds and continues the interrupted one
  where it stopped. Nothing is written twice.
* **No silent mixing.** Every stage has a hash of the settings it depends on, chained to its upstream stages
  (``scenarios`` → ``simulate`` → ...). If a stage that already ran (done, running or failed) would now run
  with different settings, the pipeline stops with an error naming the changed keys. ``force_stages`` reruns
  a stage and everything after it: their old outputs are moved to ``run_dir/superseded/<time>/``.
* **Memory.** One model at a time: each stage loads its backend, uses it, and closes it.
* **Per culture**: a mix and an adapter per culture (``adapters/<slug>``); evaluation of the base student
  (all cultures, every style) and of each adapted student (its own culture, every style), each in
  ``eval/<model_tag>/`` with model tags ``base`` and ``clca-<slug>``.
"""

from __future__ import annotations

import gc
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from clca.config import RunConfig, write_resolved
from clca.errors import ClcaError, DataError
from clca.llm.base import Backend
from clca.manifest import RunManifest, StageRecord, hash_inputs, now_iso
from clca.records import Episode, Judgement, Scenario
from clca.runs import JsonlStore

SCENARIOS_FILE = "scenarios.jsonl"
FAILURES_FILE = "scenario_failures.jsonl"
EPISODES_FILE = "episodes.jsonl"
JUDGEMENTS_FILE = "judgements.jsonl"
INTENTS_FILE = "intents.jsonl"


def slug(culture: str) -> str:
    """File-name form of a culture: ``Great Britain`` → ``great-britain`` (as :func:`clca.culture.slug`)."""
    return re.sub(r"[^0-9a-z]+", "-", culture.casefold()).strip("-") or "culture"


def adapter_tag(culture: str) -> str:
    return f"clca-{slug(culture)}"


@dataclass
class Stage:
    """One step of the pipeline with the settings it depends on and the paths it writes."""

    name: str
    settings: dict[str, Any]
    outputs: list[str]
    run: Callable[[PipelineContext, StageRecord], None]
    always: bool = False  # rerun every time (cheap, derived only: the report)

    @property
    def inputs(self) -> str:
        return hash_inputs(self.settings)


@dataclass
class PipelineContext:
    """What a stage needs: the config, the run directory, the manifest and a model loader."""

    cfg: RunConfig
    manifest: RunManifest
    progress: bool = True
    cache: Any = None  # CallCache | True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    @contextmanager
    def model(self, role: str, spec: str) -> Iterator[Backend]:
        """Load ``spec`` (through the call cache), record its fingerprint, and close it afterwards."""
        from clca.llm import registry

        backend = registry.load_backend(spec, cache=self.cache, batch_size=self.cfg.models.batch_size)
        try:
            self.manifest.record_model(role, spec, backend.fingerprint)
            yield backend
        finally:
            backend.close()
            del backend
            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except ImportError:  # pragma: no cover - torch is a dependency
                pass


@dataclass
class PipelineResult:
    run_dir: Path
    stages: list[dict[str, Any]]
    report: Path | None
    elapsed_s: float


# ----------------------------------------------------------------------------------------------------------
# Stage bodies (the only place that knows the stage modules' signatures)
# ----------------------------------------------------------------------------------------------------------


def _count_by_culture(
    path: Path, model: type[Any], pred: Callable[[Any], bool] = lambda r: True
) -> Counter[str]:
    return Counter(r.culture for r in JsonlStore(path, model).read() if pred(r))


def _stage_scenarios(ctx: PipelineContext, rec: StageRecord) -> None:
    from clca import scenarios

    cfg = ctx.cfg
    if cfg.scenarios.source == "seeds":
        _write_seed_scenarios(cfg)
    else:
        with ctx.model("teacher", cfg.models.teacher) as backend:
            scenarios.adapt_scenarios(
                backend,
                ctx.run_dir,
                cfg.cultures,
                cfg.scenarios.per_culture,
                seed=cfg.seed,
                max_retries=cfg.scenarios.max_retries,
                progress=ctx.progress,
                batch_size=cfg.models.batch_size,
                temperature=cfg.scenarios.temperature,
                max_new_tokens=cfg.scenarios.max_new_tokens,
                data_dir=cfg.data_dir,
                names_first=cfg.scenarios.names_first,
            )
    per = _count_by_culture(ctx.run_dir / SCENARIOS_FILE, Scenario)
    rec.counts = {f"scenarios[{c}]": per.get(c, 0) for c in cfg.cultures}
    rec.counts["failures"] = len(JsonlStore(ctx.run_dir / FAILURES_FILE, _AnyRecord).ids())
    empty = [c for c in cfg.cultures if per.get(c, 0) == 0]
    if empty:
        raise ClcaError(
            f"no scenario could be adapted for {', '.join(empty)} (see {ctx.run_dir / FAILURES_FILE}).",
            fix="use a stronger teacher model (models.teacher) or raise scenarios.max_retries, then rerun.",
        )


def _write_seed_scenarios(cfg: RunConfig) -> None:
    """``scenarios.source: seeds``: the chosen Sotopia seeds, unadapted, once per culture (no LLM)."""
    from clca import scenarios

    store = JsonlStore(cfg.run_dir / SCENARIOS_FILE, Scenario)
    chosen = scenarios.pick_seeds(scenarios.load_seeds(cfg.data_dir), cfg.scenarios.per_culture, cfg.seed)
    store.extend(
        s.model_copy(
            update={"id": f"{slug(c)}-{s.seed_id}", "culture": c, "source": f"{s.source} (unadapted)"}
        )
        for c in cfg.cultures
        for s in chosen
    )


def _stage_simulate(ctx: PipelineContext, rec: StageRecord) -> None:
    from clca import roleplay

    cfg, sim = ctx.cfg, ctx.cfg.simulate
    with ctx.model("actor", cfg.models.actor) as backend:
        summary = roleplay.simulate(
            backend,
            ctx.run_dir,
            samples=sim.samples,
            max_turns=sim.max_turns,
            max_new_tokens=sim.max_new_tokens,
            temperature=sim.temperature,
            seed=cfg.seed,
            max_consecutive_failures=sim.max_consecutive_failures,
            cultures=cfg.cultures,
            batch_size=cfg.models.batch_size,
            progress=ctx.progress,
        )
    per = _count_by_culture(ctx.run_dir / EPISODES_FILE, Episode)
    rec.counts = {f"episodes[{c}]": per.get(c, 0) for c in cfg.cultures}
    rec.counts["parse_failures_this_call"] = int(getattr(summary, "parse_failures", 0))


def _filter_rule(cfg: RunConfig) -> Any:
    """``judge.rule``: ``paper`` (the default FilterRule), ``none`` (keep every episode), or FilterRule fields."""
    from pydantic import ValidationError

    from clca import judge

    rule = cfg.judge.rule
    if isinstance(rule, dict):
        try:
            return judge.FilterRule(**rule)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ()))
            raise ClcaError(
                f"config key 'judge.rule.{loc}': {err.get('msg', 'invalid')}.",
                fix="use FilterRule fields: drop_quality_bad, drop_meta_bad, drop_not_aligned, keep_on_error.",
            ) from None
    if rule == "paper":
        return judge.FilterRule()
    if rule == "none":
        return judge.FilterRule(drop_quality_bad=frozenset(), drop_meta_bad=frozenset(), keep_on_error=True)
    raise ClcaError(
        f"config key 'judge.rule': unknown filter rule {rule!r}.",
        fix="use 'paper', 'none', or a mapping of FilterRule fields.",
    )


def _stage_judge(ctx: PipelineContext, rec: StageRecord) -> None:
    from clca import judge

    cfg = ctx.cfg
    rule = _filter_rule(cfg)
    with ctx.model("judge", cfg.models.judge_spec) as backend:
        judge.judge_episodes(
            backend,
            ctx.run_dir,
            rule=rule,
            progress=ctx.progress,
            batch_size=cfg.models.batch_size,
            max_new_tokens=cfg.judge.max_new_tokens,
            data_dir=cfg.data_dir,
        )
    judged = _count_by_culture(ctx.run_dir / JUDGEMENTS_FILE, Judgement)
    kept = kept_by_culture(ctx.run_dir)
    for c in cfg.cultures:
        rec.counts[f"judged[{c}]"] = judged.get(c, 0)
        rec.counts[f"kept[{c}]"] = kept.get(c, 0)


def kept_by_culture(run_dir: Path) -> Counter[str]:
    """Episodes the judge kept, per culture."""
    return _count_by_culture(run_dir / JUDGEMENTS_FILE, Judgement, lambda j: bool(j.keep))


def _stage_intents(ctx: PipelineContext, rec: StageRecord) -> None:
    from clca import intents

    with ctx.model("intents", ctx.cfg.models.intents_spec) as backend:
        intents.label_intents(
            backend,
            ctx.run_dir,
            progress=ctx.progress,
            batch_size=ctx.cfg.models.batch_size,
            max_new_tokens=ctx.cfg.intents.max_new_tokens,
            data_dir=ctx.cfg.data_dir,
        )
    rec.counts["intents"] = len(JsonlStore(ctx.run_dir / INTENTS_FILE, _AnyRecord).ids())


def _stage_stats(ctx: PipelineContext, rec: StageRecord) -> None:
    from clca import leakage, stats

    stats.compute_stats(ctx.run_dir, data_dir=ctx.cfg.data_dir)
    flagged = leakage.flagged_episode_ids(ctx.run_dir, data_dir=ctx.cfg.data_dir)
    rec.counts["leakage_flagged"] = len(flagged)


def _require_kept(ctx: PipelineContext, culture: str) -> None:
    kept = kept_by_culture(ctx.run_dir).get(culture, 0)
    if kept == 0:
        raise ClcaError(
            f"culture {culture!r} has 0 episodes kept by the judge in {ctx.run_dir / JUDGEMENTS_FILE}, "
            "so there is nothing to train on.",
            fix="relax the filter (--set judge.rule=none) or generate more (raise simulate.samples or "
            "scenarios.per_culture), then rerun with --force-stage judge.",
        )


def _mix_config(cfg: RunConfig) -> Any:
    from pydantic import ValidationError

    from clca.training import mix

    try:
        return mix.MixConfig(**{"seed": cfg.seed, **cfg.mix})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(section)"
        raise ClcaError(
            f"config key 'mix.{loc}': {err.get('msg', 'invalid')}.",
            fix="use MixConfig fields (ratio_dialogue_p1, ratio_dialogue_p2, ratio_intent, ablation, "
            "val_fraction, require_judge, seed, max_examples).",
        ) from None


def mix_dir(cfg: RunConfig, culture: str) -> Path:
    from clca.training import mix

    return Path(mix.mix_dir(cfg.run_dir, culture, cfg.mix.get("ablation")))


def _stage_mix(culture: str) -> Callable[[PipelineContext, StageRecord], None]:
    def body(ctx: PipelineContext, rec: StageRecord) -> None:
        from clca.training import mix

        _require_kept(ctx, culture)
        result = mix.build_mix(ctx.run_dir, culture, _mix_config(ctx.cfg))
        rec.counts["train_examples"] = int(result.train_examples)
        rec.counts["validation_examples"] = int(result.validation_examples)
        rec.counts["episodes_used"] = int(result.episodes_used)

    return body


def adapter_dir(cfg: RunConfig, culture: str) -> Path:
    from clca.training import train

    return Path(train.adapter_dir(cfg.run_dir, culture, cfg.mix.get("ablation")))


def _train_config(cfg: RunConfig) -> Any:
    from pydantic import ValidationError

    from clca.training import presets

    try:
        return presets.preset(
            cfg.train.preset, **{"model": cfg.models.student, "seed": cfg.seed, **cfg.train.overrides}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise ClcaError(
            f"config key 'train.overrides.{loc}': {err.get('msg', 'invalid')}.",
            fix="use TrainConfig field names (see clca/training/presets.py) in train.overrides.",
        ) from None


def _stage_train(culture: str) -> Callable[[PipelineContext, StageRecord], None]:
    def body(ctx: PipelineContext, rec: StageRecord) -> None:
        from clca.training import train

        result = train.train_adapter(
            mix_dir(ctx.cfg, culture),
            adapter_dir(ctx.cfg, culture),
            _train_config(ctx.cfg),
            progress=ctx.progress,
        )
        for key in ("steps", "train_examples", "train_tokens"):
            val = getattr(result, key, None)
            if isinstance(val, int):
                rec.counts[key] = val

    return body


def eval_dir(run_dir: Path, model_tag: str) -> Path:
    return run_dir / "eval" / model_tag


def _evaluate(ctx: PipelineContext, backend: Backend, model_tag: str, countries: list[str]) -> Any:
    from clca import evaluation

    cfg = ctx.cfg
    ecfg = evaluation.EvalConfig(
        countries=countries,
        questions=cfg.eval.questions,
        styles=cfg.eval.styles,
        mode=cfg.eval.mode,
        survey=str(cfg.eval.survey) if cfg.eval.survey is not None else "wvs7",
        out_dir=eval_dir(ctx.run_dir, model_tag),
        model_tag=model_tag,
        seed=cfg.seed,
        n_bootstrap=cfg.eval.bootstrap,
        batch_size=cfg.models.batch_size,
        report=False,
    )
    with _progress_bar(f"eval {model_tag}", ctx.progress) as tick:
        return evaluation.evaluate(backend, ecfg, progress=tick)


@contextmanager
def _progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar fed by ``(done, total)`` callbacks (None when progress is off)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task(label, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick


def _stage_eval_base(ctx: PipelineContext, rec: StageRecord) -> None:
    with ctx.model("student", ctx.cfg.models.student) as backend:
        _evaluate(ctx, backend, "base", list(ctx.cfg.cultures))
    rec.counts["countries"] = len(ctx.cfg.cultures)


def _stage_eval_adapted(culture: str) -> Callable[[PipelineContext, StageRecord], None]:
    def body(ctx: PipelineContext, rec: StageRecord) -> None:
        spec = f"{ctx.cfg.models.student}+adapter={adapter_dir(ctx.cfg, culture)}"
        with ctx.model(adapter_tag(culture), spec) as backend:
            _evaluate(ctx, backend, adapter_tag(culture), [culture])
        rec.counts["countries"] = 1

    return body


def _stage_report(ctx: PipelineContext, rec: StageRecord) -> None:
    from clca.report.pipeline_report import build_report

    ctx.extra["report"] = build_report(ctx.run_dir, data_dir=ctx.cfg.data_dir)


class _AnyRecord(BaseModel):
    """Any record with an id (to count lines of files whose exact schema belongs to another stage)."""

    model_config = ConfigDict(extra="allow")
    id: str


# ----------------------------------------------------------------------------------------------------------
# Planning and running
# ----------------------------------------------------------------------------------------------------------


def plan_stages(cfg: RunConfig) -> list[Stage]:
    """The ordered stages for ``cfg`` with their chained input settings."""
    stages: list[Stage] = []

    def add(
        name: str, settings: dict[str, Any], outputs: list[str], run: Any, after: list[Stage], **kw: Any
    ) -> Stage:
        full = {**settings, "upstream": {s.name: s.inputs for s in after}}
        st = Stage(name, full, outputs, run, **kw)
        stages.append(st)
        return st

    m = cfg.models
    sc = add(
        "scenarios",
        {"cultures": cfg.cultures, "seed": cfg.seed, "teacher": m.teacher, **cfg.scenarios.model_dump()},
        [SCENARIOS_FILE, FAILURES_FILE],
        _stage_scenarios,
        [],
    )
    sim = add(
        "simulate",
        {"actor": m.actor, "seed": cfg.seed, **cfg.simulate.model_dump()},
        [EPISODES_FILE, "roleplay_checkpoint.json"],
        _stage_simulate,
        [sc],
    )
    jd = add(
        "judge", {"judge": m.judge_spec, **cfg.judge.model_dump()}, [JUDGEMENTS_FILE], _stage_judge, [sim]
    )
    upstream = [jd]
    if cfg.intents.enabled:
        it = add(
            "intents",
            {"intents": m.intents_spec, **cfg.intents.model_dump()},
            [INTENTS_FILE],
            _stage_intents,
            [jd],
        )
        upstream = [it]
    st = add("stats", {}, ["stats.json", "leakage.jsonl"], _stage_stats, upstream)
    ev_base = add(
        "eval:base",
        {
            "student": m.student,
            "cultures": cfg.cultures,
            "seed": cfg.seed,
            **cfg.eval.model_dump(mode="json"),
        },
        ["eval/base"],
        _stage_eval_base,
        [],
    )
    for c in cfg.cultures:
        abl = cfg.mix.get("ablation")
        mx = add(
            f"mix:{c}",
            {"mix": cfg.mix, "seed": cfg.seed},
            [f"mix/{slug(c)}" + (f"--{abl}" if abl else "")],
            _stage_mix(c),
            [st],
        )
        tr = add(
            f"train:{c}",
            {"student": m.student, **cfg.train.model_dump()},
            [f"adapters/{slug(c)}" + (f"--{abl}" if abl else "")],
            _stage_train(c),
            [mx],
        )
        add(
            f"eval:{adapter_tag(c)}",
            {k: v for k, v in ev_base.settings.items() if k not in ("cultures", "upstream")},
            [f"eval/{adapter_tag(c)}"],
            _stage_eval_adapted(c),
            [tr],
        )
    add("report", {}, ["report"], _stage_report, [], always=True)
    return stages


def _diff_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _diff_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}")
    return keys


def _supersede(run_dir: Path, outputs: list[str], stamp: str) -> None:
    for rel in outputs:
        src = run_dir / rel
        if src.exists():
            dst = run_dir / "superseded" / stamp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))


def check_consistency(cfg: RunConfig, manifest: RunManifest, stages: list[Stage], force: set[str]) -> None:
    """Refuse settings that differ from those a stage already ran with; reset forced stages and later ones."""
    names = [s.name for s in stages]
    unknown = sorted(force - set(names) - {s.split(":")[0] for s in names})
    if unknown:
        raise ClcaError(
            f"--force-stage {', '.join(unknown)}: no such stage.", fix=f"use one of: {', '.join(names)}."
        )
    first = next((i for i, s in enumerate(stages) if s.name in force or s.name.split(":")[0] in force), None)
    stamp = now_iso().replace(":", "-")
    for i, st in enumerate(stages):
        rec = manifest.data.stages.get(st.name)
        if first is not None and i >= first:
            if rec is not None and rec.status != "pending":
                _supersede(cfg.run_dir, st.outputs, stamp)
                manifest.reset(st.name)
            continue
        if st.always or rec is None or rec.status == "pending" or rec.inputs == st.inputs:
            continue
        changed = _diff_keys(rec.settings, st.settings) or ["(settings)"]
        raise ClcaError(
            f"run directory {cfg.run_dir}: stage '{st.name}' already ran ({rec.status}) with other settings "
            f"(changed: {', '.join(changed)}); a run directory never mixes settings.",
            fix=f"use a new run_dir, restore the old settings (see {cfg.run_dir}/config.resolved.yaml), "
            f"or rerun it and everything after it with --force-stage {st.name}.",
        )


def run_pipeline(
    cfg: RunConfig,
    *,
    progress: bool = True,
    force_stages: list[str] | tuple[str, ...] = (),
    only: list[str] | None = None,
    on_stage: Callable[[str, str], None] | None = None,
) -> PipelineResult:
    """Run (or resume) every stage of ``cfg``; returns the stage table and the report path.

    ``only`` limits the run to stages whose name (or name before ``:``) is listed. ``on_stage(name, event)``
    is called with events ``skip``, ``start``, ``done`` (for progress display and tests).
    """
    t0 = time.perf_counter()
    from clca import settings as clca_settings

    if cfg.data_dir is not None:
        clca_settings.set_data_dir(cfg.data_dir)
    cfg = canonical_config(cfg)
    preflight(cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    manifest = RunManifest(cfg.run_dir)
    stages = plan_stages(cfg)
    check_consistency(cfg, manifest, stages, set(force_stages))
    write_resolved(cfg)
    manifest.data.seeds = {"seed": cfg.seed}
    for st in stages:
        manifest.stage(st.name)
    _record_data_files(manifest, cfg)
    manifest.save()

    cache: Any = True
    if cfg.cache is not None:
        from clca.llm.cache import CallCache

        cache = CallCache(cfg.cache)
    ctx = PipelineContext(cfg=cfg, manifest=manifest, progress=progress, cache=cache)
    for st in stages:
        if only is not None and st.name not in only and st.name.split(":")[0] not in only:
            continue
        if not st.always and manifest.is_done(st.name, st.inputs):
            if on_stage:
                on_stage(st.name, "skip")
            continue
        if on_stage:
            on_stage(st.name, "start")
        with manifest.running(st.name, st.inputs, st.settings) as rec:
            st.run(ctx, rec)
        if on_stage:
            on_stage(st.name, "done")
    report = ctx.extra.get("report")
    return PipelineResult(
        run_dir=cfg.run_dir,
        stages=manifest.summary(),
        report=Path(report) if report is not None else None,
        elapsed_s=time.perf_counter() - t0,
    )


def canonical_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with culture names in their canonical spelling ("UK" → "Great Britain"); unknown → DataError."""
    from clca.culture import resolve_country

    canon = [resolve_country(c, cfg.data_dir) for c in cfg.cultures]
    if len(set(canon)) != len(canon):
        raise ClcaError(
            f"cultures {cfg.cultures} name the same culture twice ({canon}).", fix="list each culture once."
        )
    return cfg.model_copy(update={"cultures": canon})


def preflight(cfg: RunConfig) -> None:
    """Checks that would otherwise fail hours into a run: the eval survey must cover every culture."""
    from clca.evaluation import load_survey

    spec = str(cfg.eval.survey) if cfg.eval.survey is not None else "wvs7"
    survey = load_survey(spec)
    have = {c.lower() for c in survey.countries()}
    missing = [c for c in cfg.cultures if c.lower() not in have]
    if missing:
        raise ClcaError(
            f"the evaluation survey ({spec}) has no answers for {', '.join(missing)}, so the run could not "
            "measure the adaptation.",
            fix="set eval.survey to a survey file that covers them (e.g. a WVS wave-7 country file with "
            "Mexico), or remove them from cultures.",
        )
    from clca.data.survey import parse_question_spec

    parse_question_spec(cfg.eval.questions, survey.question_ids(), survey=survey.name)


def _record_data_files(manifest: RunManifest, cfg: RunConfig) -> None:
    """Hash the data bundle files the pipeline reads (once per run directory)."""
    from clca.settings import data_dir

    try:
        base = data_dir(cfg.data_dir)
    except DataError:
        return
    rels = [
        "wvs7/country_distributions.jsonl",
        "culture/hofstede_2015.csv",
        "culture/inglehart_welzel_2022.csv",
        "sotopia/environment_profiles.jsonl",
        "sotopia/agent_profiles.jsonl",
        "sotopia/relationship_profiles.jsonl",
        "sotopia/env_agent_combo_storages.jsonl",
    ]
    for rel in rels:
        manifest.record_data_file(base / rel)
    if cfg.eval.survey is not None:
        manifest.record_data_file(Path(cfg.eval.survey))
