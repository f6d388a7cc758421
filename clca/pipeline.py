"""The one-command CLCA pipeline: a generic stage runner over the stages of a :class:`RunConfig`.

:func:`plan_stages` lists the stages (scenarios -> simulate -> judge -> intents -> stats -> [translate, with
``eval.languages``] -> per culture mix + train + eval -> report), each with the settings it depends on
(chained to its upstream stages), the outputs the :class:`~clca.rundir.RunDir` names for it, and a one-line
body that calls the stage's function with its typed config. :func:`run_pipeline` runs them in order in one run directory:

* **Resumption.** Each stage function skips records it already wrote, and the manifest marks finished stages,
  so a rerun after a crash (or Ctrl-C) skips done stages in milliseconds and continues the interrupted one.
* **No silent mixing.** If a stage that already ran (done, running or failed) would now run with different
  settings, the pipeline stops with an error naming the changed keys. ``force_stages`` reruns a stage and
  everything after it: their old outputs are moved to ``superseded/<time>/``.
* **Plan.** :func:`plan` tells, per stage, whether it would run, be reused or be refused, without loading a
  model (``clca run CONFIG --plan``).
* **One writer.** The run directory's lock is held for the whole run.
* **Memory.** One model at a time: each stage loads its backend, uses it, and closes it.
* **Injection.** ``load_backend`` replaces how a spec becomes a backend (tests pass a scripted one).
"""

from __future__ import annotations

import gc
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from clca.config import RunConfig, write_resolved
from clca.errors import ClcaError, DataError
from clca.evaluation.config import TranslateSettings
from clca.llm.base import Backend
from clca.manifest import RunManifest, hash_inputs, now_iso
from clca.records import GENERIC
from clca.rundir import CONTROL, RunDir
from clca.settings import using_data_dir

#: the value of ``controls`` that adds the no-culture control adapter
CONTROL_NO_CULTURE = "no_culture"
#: how ``clca train --culture`` names the no-culture control

BackendLoader = Callable[[str], Backend]
#: a replacement stage body (tests, custom trainers): called with the context and the stage
StageBody = Callable[["StageContext", "Stage"], dict[str, int]]


@dataclass
class Stage:
    """One step of the pipeline: the settings it depends on, the paths it writes, and its body."""

    name: str
    settings: dict[str, Any]
    outputs: list[Path]
    run: Callable[[StageContext], dict[str, int]]
    always: bool = False  # rerun every time (cheap, derived only: the report)
    #: for a replacement body (``run_pipeline(replace=...)``) of a train stage: ``variant`` (a culture, or
    #: ``generic`` for the no-culture control) and ``train_seed``
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> str:
        return hash_inputs(self.settings)


@dataclass
class StageContext:
    """What a stage body needs: the config, the run directory, the manifest and a model loader."""

    cfg: RunConfig
    run: RunDir
    manifest: RunManifest
    loader: BackendLoader
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    #: what the stage's backends did (requests, retries by cause, cache hits, ...), added to its counts
    usage: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def model(self, role: str, spec: str) -> Iterator[Backend]:
        """Load ``spec``, record its fingerprint under ``role``, and release it afterwards."""
        backend = self.loader(spec)
        try:
            self.manifest.record_model(role, spec, backend.fingerprint, backend.manifest_info())
            yield backend
        finally:
            self.usage.update({f"llm.{k}": v for k, v in backend.usage().items()})
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
    notes: list[str] = field(default_factory=list)


def counts_of(summary: BaseModel, prefix: str = "") -> dict[str, int]:
    """The integer fields of a stage summary (nested ones as ``llm.retries``) for the manifest."""
    out: dict[str, int] = {}
    for k, v in summary:
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            out[prefix + k] = v
        elif isinstance(v, BaseModel):
            out.update(counts_of(v, f"{prefix}{k}."))
        elif isinstance(v, dict):
            out.update({f"{prefix}{k}[{kk}]": vv for kk, vv in v.items() if isinstance(vv, int)})
    return out


# ----------------------------------------------------------------------------------------------------------
# Stage bodies: one call each into the stage's module
# ----------------------------------------------------------------------------------------------------------


def _scenarios(ctx: StageContext) -> dict[str, int]:
    from clca.scenarios import make_scenarios

    c, m = ctx.cfg, ctx.cfg.models
    kw = {"cultures": c.cultures, "seed": c.seed, "batch_size": m.batch_size, "progress": ctx.progress}
    if c.scenarios.source == "seeds":
        summary = make_scenarios(None, ctx.run, c.scenarios, **kw)  # type: ignore[arg-type]
    else:
        with ctx.model("teacher", m.teacher) as backend:
            summary = make_scenarios(backend, ctx.run, c.scenarios, **kw)  # type: ignore[arg-type]
    extra: dict[str, int] = {}
    if CONTROL_NO_CULTURE in c.controls:
        from clca.scenarios import make_control_scenarios

        make_control_scenarios(ctx.run, c.scenarios, seed=c.seed)
    per = {s: 0 for s in c.cultures}
    for s in ctx.run.scenarios():
        per[s.culture] = per.get(s.culture, 0) + 1
    if CONTROL_NO_CULTURE in c.controls:
        extra[f"scenarios[{GENERIC}]"] = per.pop(GENERIC, 0)
    empty = [k for k in c.cultures if per.get(k, 0) == 0]
    if empty:
        raise ClcaError(
            f"no scenario could be made for {', '.join(empty)} (see {ctx.run.failures_file}).",
            fix="use a stronger teacher model (models.teacher) or raise scenarios.max_retries, then rerun.",
        )
    return counts_of(summary) | {f"scenarios[{k}]": v for k, v in per.items()} | extra


def _simulate(ctx: StageContext) -> dict[str, int]:
    from clca.roleplay import simulate

    c = ctx.cfg
    with ctx.model("actor", c.models.actor) as backend:
        summary = simulate(
            backend, ctx.run, c.simulate, seed=c.seed, cultures=variants(c), batch_size=c.models.batch_size,
            progress=ctx.progress,
        )  # fmt: skip
    return counts_of(summary)


def _judge(ctx: StageContext) -> dict[str, int]:
    from clca.judge import judge_episodes

    c = ctx.cfg
    with ctx.model("judge", c.models.judge_spec) as backend:
        summary = judge_episodes(
            backend, ctx.run, c.judge, batch_size=c.models.batch_size, progress=ctx.progress
        )
    kept = ctx.run.kept_episode_ids()
    per = {
        f"kept[{k}]": sum(1 for j in ctx.run.judgements() if j.culture == k and j.id in kept)
        for k in variants(c)
    }
    return counts_of(summary) | per


def _intents(ctx: StageContext) -> dict[str, int]:
    from clca.intents import label_intents

    c = ctx.cfg
    with ctx.model("intents", c.models.intents_spec) as backend:
        summary = label_intents(
            backend, ctx.run, c.intents, batch_size=c.models.batch_size, progress=ctx.progress
        )
    return counts_of(summary)


def _stats(ctx: StageContext) -> dict[str, int]:
    from clca.stats import compute_stats

    st = compute_stats(ctx.run)
    return {"leakage_flagged": len(st.leakage.flagged_episodes)}


def variants(cfg: RunConfig) -> list[str]:
    """The cultures of the run, then ``generic`` when the no-culture control is on."""
    return [*cfg.cultures, *([GENERIC] if CONTROL_NO_CULTURE in cfg.controls else [])]


def seed_tags(cfg: RunConfig) -> list[tuple[int, int | None]]:
    """(training seed, seed in folder names and tags): the tag is ``None`` when the run trains one seed."""
    seeds = cfg.train.seed_list(cfg.seed)
    return [(s, s if len(seeds) > 1 else None) for s in seeds]


def _mix(culture: str) -> Callable[[StageContext], dict[str, int]]:
    def body(ctx: StageContext) -> dict[str, int]:
        from clca.training.mix import build_control_mix, build_mix

        if culture not in {j.culture for j in ctx.run.judgements() if j.keep} and ctx.cfg.mix.require_judge:
            who = "the no-culture control" if culture == GENERIC else f"culture {culture!r}"
            raise ClcaError(
                f"{who} has 0 episodes kept by the judge in {ctx.run.judgements_file}, so there is nothing to "
                "train on.",
                fix="relax the filter (--set judge.rule=none) or generate more (raise simulate.samples or "
                "scenarios.per_culture), then rerun with --force-stage judge.",
            )
        if culture != GENERIC:
            return counts_of(build_mix(ctx.run, culture, ctx.cfg.mix, seed=ctx.cfg.seed))
        res = build_control_mix(
            ctx.run, ctx.cfg.cultures, ctx.cfg.mix, student=ctx.cfg.models.student, seed=ctx.cfg.seed
        )
        return counts_of(res) | {
            "target_examples": res.target_examples or 0,
            "target_tokens": res.target_tokens or 0,
        }

    return body


def _train(variant: str, seed: int, out_dir: Path) -> Callable[[StageContext], dict[str, int]]:
    """Train the adapter of ``variant`` (a culture or ``generic``) with training seed ``seed`` into ``out_dir``."""

    def body(ctx: StageContext) -> dict[str, int]:
        from clca.rundir import AdapterDir
        from clca.training.train import train_adapter

        c = ctx.cfg
        tcfg = c.train.resolve(model=c.models.student, seed=seed)
        if c.train.launcher == "accelerate":
            launch_training(ctx, variant, seed, out_dir)
            res = AdapterDir(out_dir).result()
            if res is None:
                raise ClcaError(
                    f"the accelerate launch of {out_dir.name} ended without a train_result.json.",
                    fix="see its output above; rerun the same command to resume.",
                )
        else:
            res = train_adapter(
                ctx.run.mix_dir(variant, c.mix.ablation), out_dir, tcfg, progress=ctx.progress
            )
        return {k: n for k, n in counts_of(res).items() if k in ("steps", "train_examples", "train_tokens")}

    return body


def train_command(cfg: RunConfig, variant: str, seed: int, out_dir: Path) -> list[str]:
    """The ``clca train`` arguments that train ``variant``'s adapter with ``seed`` into ``out_dir`` exactly as the
    pipeline does (the accelerate launcher runs them in every process): the model is the one the run's training
    recipe resolves to (``train.overrides.model`` wins over ``models.student``, as in-process)."""
    model = cfg.train.resolve(model=cfg.models.student, seed=seed).model
    args = [
        "train", "--run", str(cfg.run_dir), "--culture", CONTROL if variant == GENERIC else variant,
        "--out", str(out_dir), "--preset", cfg.train.preset, "--model", model, "--seed", str(seed),
        "--no-build-mix", "--no-progress",
    ]  # fmt: skip
    if cfg.mix.ablation:
        args += ["--ablation", cfg.mix.ablation]
    if cfg.data_dir is not None:
        args += ["--data-dir", str(cfg.data_dir)]
    for key, value in cfg.train.overrides.items():
        if key in ("model", "seed") or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{key.replace('_', '-')}")
        elif isinstance(value, list):
            args += [flag, ",".join(map(str, value))]
        else:
            args += [flag, str(value)]
    return args


def launch_training(ctx: StageContext, variant: str, seed: int, out_dir: Path) -> None:
    """``accelerate launch --num_processes N -m clca train ...`` (:func:`train_command`), waited for; the child
    processes inherit this process's locks (they write the unit this process holds). The launch command is
    :func:`clca.training.train.accelerate_command` (several processes even without CUDA), and each process
    checks that it is one of N (``CLCA_TRAIN_PROCESSES``), so a launcher that starts fewer stops the training."""
    import os
    import subprocess

    from clca.locks import inherited_env
    from clca.training.train import PROCESSES_ENV, accelerate_command

    c = ctx.cfg
    cmd = accelerate_command(c.train.num_processes, c.train.accelerate_config)
    cmd += ["-m", "clca", *train_command(c, variant, seed, out_dir)]
    env = {**os.environ, **inherited_env(), PROCESSES_ENV: str(c.train.num_processes)}
    proc = subprocess.run(cmd, env=env, check=False)
    if proc.returncode != 0:
        raise ClcaError(
            f"`accelerate launch ... clca train` of {out_dir.name} exited with status {proc.returncode}.",
            fix="see its output above; rerun the same command to resume.",
        )


def _evaluate(ctx: StageContext, backend: Backend, model_tag: str, countries: list[str]) -> dict[str, int]:
    from clca.evaluation import EvalConfig, evaluate

    c = ctx.cfg
    ecfg = EvalConfig(
        **c.eval.model_dump(exclude={"translations"}),
        translations=translations_dir(c) if c.eval.languages else None,
        countries=countries,
        out_dir=ctx.run.eval_dir(model_tag),
        model_tag=model_tag,
        seed=c.seed,
        batch_size=c.models.batch_size,
    )
    from clca.progress import stage_progress

    with stage_progress(f"eval {model_tag}", enabled=ctx.progress) as prog:
        res = evaluate(backend, ecfg, progress=prog.update)
    return {"countries": len(countries), "new": res.n_new, "resumed": res.n_skipped}


def _eval_base(ctx: StageContext) -> dict[str, int]:
    spec = ctx.cfg.eval.server or ctx.cfg.models.student  # the served base model, or the local student
    with ctx.model("student", spec) as backend:
        return _evaluate(ctx, backend, "base", list(ctx.cfg.cultures))


def _eval_adapted(adapter: Path, tag: str) -> Callable[[StageContext], dict[str, int]]:
    """Load the adapter once (or ask the server for it by its tag) and evaluate it on every culture of the run
    (the cross-culture matrix)."""

    def body(ctx: StageContext) -> dict[str, int]:
        from clca.llm.spec import served_spec

        server = ctx.cfg.eval.server
        spec = served_spec(server, tag) if server else f"{ctx.cfg.models.student}+adapter={adapter}"
        with ctx.model(tag, spec) as backend:
            return _evaluate(ctx, backend, tag, list(ctx.cfg.cultures))

    return body


def translations_dir(cfg: RunConfig) -> Path:
    """Where the run's translation files are: ``eval.translations``, else ``run_dir/translations``."""
    return cfg.eval.translations or RunDir(cfg.run_dir).translations_dir


def run_languages(cfg: RunConfig) -> dict[str, str]:
    """The run's cultures evaluated in another language too (culture -> code; ``eval.languages`` entries for
    cultures the run does not have are left out)."""
    from clca.evaluation.translate import languages_for

    return languages_for(cfg.eval.languages, cfg.cultures)[0]


def translate_settings(cfg: RunConfig) -> TranslateSettings | None:
    """What the ``translate`` stage translates: the run's languages, the evaluation's questions and styles
    (``None``: no culture is evaluated in another language)."""
    langs = list(dict.fromkeys(run_languages(cfg).values()))
    if not langs:
        return None
    ev = cfg.eval
    return TranslateSettings(
        languages=langs,
        questions=ev.questions,
        styles=ev.styles,
        style_files=ev.style_files,
        survey=ev.survey,
    )


def _translate(ctx: StageContext) -> dict[str, int]:
    from clca.evaluation import load_survey
    from clca.evaluation.styles import resolve_styles
    from clca.evaluation.translate import translate
    from clca.progress import stage_progress

    c = ctx.cfg
    ts = translate_settings(c)
    assert ts is not None
    items = load_survey(ts.survey).select(ts.questions)
    styles = resolve_styles(ts.styles, [str(p) for p in ts.style_files])
    with (
        ctx.model("teacher", c.models.teacher) as backend,
        stage_progress("translate", enabled=ctx.progress) as prog,
    ):
        summary = translate(
            backend, translations_dir(c), ts, items, styles, model=c.models.teacher, seed=c.seed,
            batch_size=c.models.batch_size, progress=prog.update,
        )  # fmt: skip
    return counts_of(summary)


def _report(ctx: StageContext) -> dict[str, int]:
    from clca.report.pipeline_report import build_report

    ctx.extra["report"] = build_report(ctx.run)
    return {}


# ----------------------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------------------


def _eval_settings_exclude(ev: Any) -> set[str]:
    """Evaluation settings that do not change what an evaluation writes, so they stay out of its settings hash
    (a run evaluated before they existed is not refused): ``server`` when unset, and ``parser`` when no answer
    is parsed (log-prob scoring without the sampling check)."""
    out: set[str] = set()
    if not ev.server:
        out.add("server")
    if ev.mode == "logprob" and not ev.check_sampling:
        out.add("parser")
    return out


def plan_stages(cfg: RunConfig) -> list[Stage]:
    """The ordered stages for ``cfg`` with their chained settings and their outputs."""
    from clca.intents import PROMPT_VERSION as INTENT_PROMPT
    from clca.judge import PROMPT_VERSION as JUDGE_PROMPT
    from clca.roleplay.prompts import PROMPT_VERSION as ROLEPLAY_PROMPT

    run = RunDir(cfg.run_dir)
    stages: list[Stage] = []

    def add(
        name: str, settings: dict[str, Any], outputs: list[Path], body: Any, after: list[Stage], **kw: Any
    ) -> Stage:
        st = Stage(name, {**settings, "upstream": {s.name: s.inputs for s in after}}, outputs, body, **kw)
        stages.append(st)
        return st

    m = cfg.models
    control = {"controls": list(cfg.controls)} if cfg.controls else {}  # absent: hashes as before controls
    sc = add(
        "scenarios",
        {
            "cultures": cfg.cultures,
            "seed": cfg.seed,
            "teacher": m.teacher,
            **control,
            **cfg.scenarios.model_dump(),
        },
        [run.scenarios_file, run.failures_file],
        _scenarios,
        [],
    )
    sim = add(
        "simulate",
        {
            "actor": m.actor,
            "seed": cfg.seed,
            "prompt": ROLEPLAY_PROMPT,
            **control,
            **cfg.simulate.model_dump(),
        },
        [run.episodes_file, run.checkpoint_file],
        _simulate,
        [sc],
    )
    jd = add(
        "judge",
        {"judge": m.judge_spec, "prompt": JUDGE_PROMPT, **cfg.judge.model_dump(mode="json")},
        [run.judgements_file],
        _judge,
        [sim],
    )
    upstream = [jd]
    if cfg.intents.enabled:
        upstream = [
            add(
                "intents",
                {"intents": m.intents_spec, "prompt": INTENT_PROMPT, **cfg.intents.model_dump()},
                [run.intents_file],
                _intents,
                [jd],
            )
        ]
    st = add("stats", {}, [run.stats_file, run.leakage_file], _stats, upstream)
    translated: list[Stage] = []  # the translate stage, when a culture is evaluated in another language too
    ts = translate_settings(cfg)
    if ts is not None:
        from clca.evaluation.translate import PROMPT_VERSION as TRANSLATE_PROMPT
        from clca.rundir import TranslationDir

        folder = TranslationDir(translations_dir(cfg))
        inside = folder.path.resolve().is_relative_to(
            run.path.resolve()
        )  # outputs moved aside by --force-stage
        translated.append(
            add(
                "translate",
                {"teacher": m.teacher, "prompt": TRANSLATE_PROMPT, **ts.model_dump(mode="json")},
                [folder.machine_file(lang) for lang in ts.languages] if inside else [],
                _translate,
                [],
            )
        )
    ev_base = add(
        "eval:base",
        {
            "student": m.student,
            "cultures": cfg.cultures,
            "seed": cfg.seed,
            **cfg.eval.model_dump(mode="json", exclude=_eval_settings_exclude(cfg.eval)),
        },
        [run.eval_dir("base")],
        _eval_base,
        translated,
    )
    abl = cfg.mix.ablation
    eval_settings = {k: v for k, v in ev_base.settings.items() if k != "upstream"}
    # one seed and no train.seeds: the settings as before seeds existed; otherwise each stage's own seed
    train_settings = {
        "student": m.student,
        **cfg.train.model_dump(mode="json", exclude={"seeds", *cfg.train.LAUNCH_FIELDS}),
    }
    mixes: list[Stage] = []
    for v in variants(cfg):
        name = RunDir.variant(v) if v == GENERIC else v
        mix_settings: dict[str, Any] = {"mix": cfg.mix.model_dump(), "seed": cfg.seed}
        if v == GENERIC:  # matched to the cultures' mixes, counted with the student's tokenizer
            mix_settings |= {"match": "mean volume of the cultures' mixes", "student": m.student}
        mx = add(
            f"mix:{name}",
            mix_settings,
            [run.mix_dir(v, abl)],
            _mix(v),
            [st, *mixes] if v == GENERIC else [st],
        )
        mixes.append(mx)
        for train_seed, tag_seed in seed_tags(cfg):
            adapter = run.adapter_dir(v, abl, tag_seed)
            tr = add(
                f"train:{name}" + (f"@s{tag_seed}" if tag_seed is not None else ""),
                train_settings | ({"train_seed": train_seed} if cfg.train.seeds is not None else {}),
                [adapter],
                _train(v, train_seed, adapter),
                [mx],
                meta={"variant": v, "train_seed": train_seed},
            )
            tag = RunDir.model_tag(v, tag_seed)
            add(
                f"eval:{tag}",
                eval_settings,
                [run.eval_dir(tag)],
                _eval_adapted(adapter, tag),
                [tr, *translated],
            )
    add("report", {}, [run.report_dir], _report, [], always=True)
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


Action = Literal["run", "resume", "reuse", "rerun (forced)", "refused"]


class PlannedStage(BaseModel):
    """One row of ``clca run --plan``."""

    stage: str
    status: str  # pending | running | done | failed (from the manifest)
    settings_hash: str
    action: Action
    changed: list[str] = []  # for "refused": the settings that differ from the recorded ones
    outputs: list[str]


def _match(name: str, wanted: set[str]) -> bool:
    return name in wanted or name.split(":")[0] in wanted


def plan(
    cfg: RunConfig, force: set[str] | None = None, stages: list[Stage] | None = None
) -> list[PlannedStage]:
    """What :func:`run_pipeline` would do per stage, reading only the config and the manifest."""
    force = set(force or ())
    stages = stages if stages is not None else plan_stages(cfg)
    run = RunDir(cfg.run_dir)
    names = [s.name for s in stages]
    unknown = sorted(f for f in force if not any(_match(n, {f}) for n in names))
    if unknown:
        raise ClcaError(
            f"--force-stage {', '.join(unknown)}: no such stage.", fix=f"use one of: {', '.join(names)}."
        )
    manifest = run.manifest()
    first = next((i for i, s in enumerate(stages) if _match(s.name, force)), None)
    out: list[PlannedStage] = []
    for i, st in enumerate(stages):
        rec = manifest.stages.get(st.name) if manifest is not None else None
        status = rec.status if rec is not None else "pending"
        changed: list[str] = []
        action: Action
        if first is not None and i >= first and status != "pending":
            action = "rerun (forced)"
        elif st.always or rec is None or status == "pending":
            action = "run"
        elif rec.inputs != st.inputs:
            action = "refused"
            changed = _diff_keys(rec.settings, st.settings) or ["(settings)"]
        elif status == "done":
            action = "reuse"
        else:
            action = "resume"
        out.append(
            PlannedStage(
                stage=st.name,
                status=status,
                settings_hash=st.inputs,
                action=action,
                changed=changed,
                outputs=[run.rel(p) for p in st.outputs],
            )
        )
    return out


def select_stages(cfg: RunConfig, only: list[str], stages: list[Stage] | None = None) -> list[Stage]:
    """The stages ``--only`` names (a name, or the group before ``:``: ``eval`` is every eval stage); an unknown
    name is a one-line error listing the names."""
    stages = stages if stages is not None else plan_stages(cfg)
    names = [s.name for s in stages]
    bad = [o for o in only if not any(_match(n, {o}) for n in names)]
    if bad:
        groups = list(dict.fromkeys(n.split(":")[0] for n in names))
        raise ClcaError(
            f"--only {', '.join(bad)}: no such stage.",
            fix=f"use stage names ({', '.join(groups)}) or full names such as {names[-2]}.",
        )
    return [s for s in stages if _match(s.name, set(only))]


def _supersede(run: RunDir, outputs: list[Path], stamp: str) -> None:
    for src in outputs:
        if src.exists():
            dst = run.superseded_dir(stamp) / run.rel(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))


def _refuse(cfg: RunConfig, rows: list[PlannedStage]) -> None:
    refused = next((r for r in rows if r.action == "refused"), None)
    if refused is not None:
        raise ClcaError(
            f"run directory {cfg.run_dir}: stage '{refused.stage}' already ran ({refused.status}) with other "
            f"settings (changed: {', '.join(refused.changed)}); a run directory never mixes settings.",
            fix=f"use a new run_dir, restore the old settings (see {RunDir(cfg.run_dir).config_file}), "
            f"or rerun it and everything after it with --force-stage {refused.stage}.",
        )


def check_consistency(
    cfg: RunConfig, manifest: RunManifest, stages: list[Stage], force: set[str]
) -> list[PlannedStage]:
    """Refuse settings that differ from those a stage already ran with; reset forced stages and later ones."""
    rows = plan(cfg, force, stages)
    _refuse(cfg, rows)
    stamp = now_iso().replace(":", "-")
    run = RunDir(cfg.run_dir)
    for st, row in zip(stages, rows, strict=True):
        if row.action == "rerun (forced)":
            _supersede(run, st.outputs, stamp)
            manifest.reset(st.name)
    return rows


# ----------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------


class Problem(BaseModel):
    """One thing a run config needs that is not there (a row of ``clca run --plan``): what, and the fix."""

    what: str
    fix: str

    @classmethod
    def of(cls, exc: ClcaError) -> Problem:
        return cls(what=exc.message, fix=exc.fix or "")


def preflight(cfg: RunConfig) -> tuple[RunConfig, list[str], list[Problem]]:
    """Everything that would otherwise fail hours into a run, checked before any work, ALL of it: the data
    bundle's files, the cultures' names, respondent files for persona prompts (or the paper protocol's fallback
    to the log-prob one when the config says so), a human side for every culture (the survey file, or under the
    paper protocol the respondent files), the questions. Returns the config to run, notes for the user, and the
    problems (none: the run can start)."""
    from clca.culture import resolve_country
    from clca.data.layout import DataBundle
    from clca.errors import DataError
    from clca.evaluation import load_survey
    from clca.evaluation.styles import resolve_styles

    notes: list[str] = []
    problems: list[Problem] = []
    try:
        bundle = DataBundle.current()
        for rel in DataBundle.RUN_INPUTS:
            try:
                bundle.file(rel)
            except DataError as exc:
                problems.append(Problem.of(exc))
    except DataError as exc:
        problems.append(Problem.of(exc))
        return cfg, notes, problems  # without a bundle nothing else can be checked
    canon: list[str] = []
    for c in cfg.cultures:
        try:
            canon.append(resolve_country(c))
        except ClcaError as exc:
            problems.append(Problem.of(exc))
    if len(set(canon)) != len(canon):
        problems.append(
            Problem(
                what=f"cultures {cfg.cultures} name the same culture twice ({canon}).", fix="list each once."
            )
        )
    cfg = cfg.model_copy(update={"cultures": list(dict.fromkeys(canon))})

    if cfg.eval.languages:
        notes += languages_note(cfg)

    respondents: dict[str, int] = {}  # culture (lower case) -> respondents in the files
    styles = resolve_styles(cfg.eval.styles, [str(p) for p in cfg.eval.style_files])
    if any(s.needs_persona for s in styles):
        from clca.data.wvb import VALUE_FILE, load_respondents

        resp = cfg.eval.respondents
        if resp is None or not (resp / VALUE_FILE).is_file():
            where = "eval.respondents is not set" if resp is None else f"{resp} holds no {VALUE_FILE}"
            if cfg.eval.protocol == "paper" and cfg.eval.fallback_to_logprob:
                from clca.evaluation.config import EvalSettings

                keep = cfg.eval.model_dump(
                    exclude={"protocol", "styles", "mode", "temperature", "samples", "parser"}
                )
                fallback = EvalSettings.model_validate({**keep, "protocol": "logprob"})
                notes.append(
                    f"eval.protocol paper needs WorldValuesBench respondent files ({where}); "
                    "evaluating with the logprob protocol (plain, cultural) instead, as eval.fallback_to_logprob says."
                )
                cfg = cfg.model_copy(update={"eval": fallback})
            else:
                problems.append(
                    Problem(
                        what=f"the persona prompts of the evaluation need WorldValuesBench respondent files, but "
                        f"{where}.",
                        fix="set eval.respondents to a folder with full_value_qa.tsv and full_demographic_qa.tsv "
                        "(respondent-level WVS files may not be redistributed: get them from WorldValuesBench), or "
                        "set eval.fallback_to_logprob: true, or use other styles.",
                    )
                )
        else:
            try:
                found = load_respondents(resp)
                respondents = {k.lower(): len(v) for k, v in found.items()}
            except ClcaError as exc:
                problems.append(Problem.of(exc))
            else:
                for c in cfg.cultures:
                    if c.lower() not in respondents:
                        problems.append(
                            Problem(
                                what=f"no respondent of {c} in {resp} (eval.respondents).",
                                fix="add the culture's WorldValuesBench rows to those files, or remove it from "
                                "cultures.",
                            )
                        )

    try:
        survey = load_survey(cfg.eval.survey)
    except ClcaError as exc:
        problems.append(Problem.of(exc))
        return cfg, notes, problems
    have = {c.lower() for c in survey.countries()}
    from_files = cfg.eval.protocol == "paper"  # the paper's survey side is counted over the respondent files
    missing = [
        c for c in cfg.cultures if c.lower() not in have and not (from_files and c.lower() in respondents)
    ]
    for c in missing:
        problems.append(
            Problem(
                what=f"the evaluation survey ({cfg.eval.survey}) has no answers for {c}, so the run could not "
                "measure its adaptation.",
                fix="set eval.survey to a survey file that covers it (e.g. a WVS wave-7 country file with it), or "
                "evaluate with the paper protocol on respondent files that include it, or remove it from cultures.",
            )
        )
    try:
        survey.select(cfg.eval.questions)
    except ClcaError as exc:
        problems.append(Problem.of(exc))
    return cfg, notes, problems


def languages_note(cfg: RunConfig) -> list[str]:
    """The plan's lines about the multilingual evaluation: which cultures are also evaluated in which language,
    by whose translations, and the ``eval.languages`` entries the run ignores."""
    from clca.evaluation.styles import translated_name
    from clca.evaluation.translate import language_name, languages_for, released_file

    langs, ignored = languages_for(cfg.eval.languages, cfg.cultures)
    out = [n.replace("not evaluated", "not a culture of this run") for n in ignored]
    if langs:
        released = sorted(
            {
                translated_name(style, code)
                for code in set(langs.values())
                if (tf := released_file(code)) is not None
                for style in tf.styles
                if style in cfg.eval.styles
            }
        )
        out.append(
            "multilingual evaluation (eval.languages): "
            + ", ".join(f"{c} also in {code} ({language_name(code)})" for c, code in langs.items())
            + f"; styles {', '.join(cfg.eval.styles)} and the questions translated by the teacher "
            f"({cfg.models.teacher}) into {translations_dir(cfg)} (the translate stage; a <code>.reviewed.yaml "
            "there wins entry by entry)"
            + (f"; {', '.join(released)} from the paper's released templates" if released else "")
        )
    return out


def prepare(cfg: RunConfig) -> tuple[RunConfig, list[str]]:
    """The canonical, preflight-checked config and notes for the user (the data directory must be in effect);
    the first problem is a one-line error that says how many more there are (``clca run --plan`` lists them)."""
    cfg, notes, problems = preflight(cfg)
    if problems:
        more = (
            f" ({len(problems) - 1} more problem(s): `clca run CONFIG --plan` lists them all)"
            if len(problems) > 1
            else ""
        )
        raise ClcaError(problems[0].what + more, fix=problems[0].fix)
    return cfg, notes


def _record_data_files(manifest: RunManifest, cfg: RunConfig) -> None:
    """Hash the data bundle files the pipeline reads (once per run directory)."""
    from clca.data.editions import inglehart_welzel_edition
    from clca.data.layout import DataBundle
    from clca.settings import data_dir

    try:
        bundle = DataBundle(data_dir())
    except DataError:
        return
    for path in bundle.run_input_paths():
        manifest.record_data_file(path)
    try:
        edition = inglehart_welzel_edition(bundle)
    except DataError:
        return
    manifest.data.data_editions["inglehart_welzel"] = {k: str(v) for k, v in edition.model_dump().items()}
    survey = Path(cfg.eval.survey)
    if survey.is_file():
        manifest.record_data_file(survey)


def default_loader(cfg: RunConfig) -> BackendLoader:
    """Specs -> cached backends, with the run's call cache and batch size."""
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend

    cache: CallCache | bool = CallCache(cfg.cache) if cfg.cache is not None else True
    return lambda spec: load_backend(spec, cache=cache, batch_size=cfg.models.batch_size)


def run_pipeline(
    cfg: RunConfig,
    *,
    progress: bool = True,
    force_stages: list[str] | tuple[str, ...] = (),
    only: list[str] | None = None,
    on_stage: Callable[[str, str], None] | None = None,
    load_backend: BackendLoader | None = None,
    replace: dict[str, StageBody] | None = None,
    unit: str | None = None,
) -> PipelineResult:
    """Run (or resume) every stage of ``cfg``; returns the stage table and the report path.

    ``unit``: run as one unit of ``clca run --executor`` (:mod:`clca.executor`): only the ``only`` stages, under
    the unit's lock and the run directory's shared lock (units run side by side), without the run-wide
    bookkeeping (seeds, notes) that the process driving the units writes.

    ``only`` limits the run to stages whose name (or name before ``:``) is listed; an unknown name is an error.
    ``on_stage(name, event)`` is called with events ``skip``, ``start``, ``done`` (and ``note`` with a note). ``load_backend`` turns a
    model spec into a backend (default: :func:`clca.llm.registry.load_backend` with the run's cache).
    ``replace`` maps a stage group name (``train``, ``simulate``, ...) to a body run instead of the built-in one
    (the injection seam for tests and custom trainers; the stage keeps its settings, outputs and bookkeeping).
    """
    t0 = time.perf_counter()
    with using_data_dir(cfg.data_dir, source="data_dir in the run config"):
        cfg, notes = prepare(cfg)
        run = RunDir(cfg.run_dir)
        stages = plan_stages(cfg)
        if only is not None:
            select_stages(cfg, only, stages)  # an unknown name fails before the run directory is touched
        _refuse(
            cfg, plan(cfg, set(force_stages), stages)
        )  # every refusal before the run directory is touched
        lock = run.unit_lock(unit, f"clca run, unit {unit}") if unit is not None else run.lock("clca run")
        with lock:
            manifest = RunManifest(run.manifest_file)
            check_consistency(cfg, manifest, stages, set(force_stages))
            write_resolved(cfg, run.config_file)
            if unit is None:
                manifest.set_run_wide(seeds={"seed": cfg.seed}, notes=notes)
                for note in notes:
                    if on_stage:
                        on_stage(note, "note")
            for st in stages:
                manifest.declare(st.name)
            _record_data_files(manifest, cfg)
            manifest.save()
            ctx = StageContext(
                cfg=cfg,
                run=run,
                manifest=manifest,
                loader=load_backend or default_loader(cfg),
                progress=progress,
            )
            for st in stages:
                if only is not None and not _match(st.name, set(only)):
                    continue
                if not st.always and manifest.is_done(st.name, st.inputs):
                    if on_stage:
                        on_stage(st.name, "skip")
                    continue
                if on_stage:
                    on_stage(st.name, "start")
                body = (replace or {}).get(st.name.split(":")[0])
                ctx.usage.clear()
                with manifest.running(st.name, st.inputs, st.settings) as rec:
                    try:
                        rec.counts = body(ctx, st) if body is not None else st.run(ctx)
                    finally:
                        rec.counts = {**rec.counts, **ctx.usage}
                if on_stage:
                    on_stage(st.name, "done")
    report = ctx.extra.get("report")
    return PipelineResult(
        run_dir=cfg.run_dir,
        stages=manifest.summary(),
        report=Path(report) if report is not None else None,
        elapsed_s=time.perf_counter() - t0,
        notes=notes,
    )
