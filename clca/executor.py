"""``clca run CONFIG --executor local:N | slurm``: the plan's independent units as separate jobs.

A **unit** is what one job does (:func:`plan_units`): ``generate`` (scenarios, role-play, judge, intents and stats:
the LLM-call stages, which scale through their model servers, not through jobs), ``translate`` (with
``eval.languages``: the teacher's translations, a unit of the generate kind that the evaluations wait for), one
``mix:<variant>`` per culture
and the no-culture control, one ``train:<variant>[@s<k>]`` per adapter, one ``eval:<tag>`` per evaluated model
(``eval:base`` too) and ``report``. A unit depends on the units of its stages' upstream stages (a training on its
mix, an evaluation on its training, the control's mix on every culture's mix); ``report`` on every other unit.

The driver (the ``clca run --executor`` process, light: it runs no model) checks the config and the run directory
as ``clca run`` does, then submits every unit whose dependencies are done, waits, and submits the next ones,
through `submitit <https://github.com/facebookincubator/submitit>`_: ``local:N`` runs up to N units at once as
local processes, ``slurm`` submits each as a SLURM job with its kind's resources (``cluster:`` in the config:
GPUs, CPUs, memory, time, partition, account). Each job runs :func:`run_unit`, i.e. the pipeline restricted to
the unit's stages, under the unit's lock (:meth:`clca.rundir.RunDir.unit_lock`), so units run side by side in
one run directory and a second job for the same unit is refused. Resumption is the pipeline's: a killed job
leaves its stage "running" in the manifest; the next ``clca run`` (with or without an executor) continues it and
nothing is written twice. Job logs: ``<cluster.jobs_dir or run_dir/jobs>/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from clca.config import Resources, RunConfig, load_config
from clca.errors import EXIT_SERVICE, ClcaError
from clca.pipeline import Stage, plan_stages, prepare
from clca.rundir import RunDir
from clca.settings import using_data_dir

UnitKind = Literal["generate", "mix", "train", "eval", "report"]
#: the stages that make up the generate unit
GENERATE_STAGES = ("scenarios", "simulate", "judge", "intents", "stats")
#: stages of the generate kind (its resources) that are units of their own
OWN_GENERATE_UNITS = ("translate",)


class Unit(BaseModel):
    """One job: its name, kind, stages (pipeline stage names), the units it waits for, and its resources."""

    name: str
    kind: UnitKind
    stages: list[str]
    deps: list[str]
    resources: Resources


def _kind(stage: str) -> UnitKind:
    group = stage.split(":")[0]
    if group in GENERATE_STAGES or group in OWN_GENERATE_UNITS:
        return "generate"
    if group in ("mix", "train", "eval", "report"):
        return group  # type: ignore[return-value]
    raise ValueError(f"stage {stage!r} belongs to no unit kind")


def plan_units(cfg: RunConfig, stages: Sequence[Stage] | None = None) -> list[Unit]:
    """The units of ``cfg``'s plan in a valid order (see the module doc)."""
    stages = list(stages) if stages is not None else plan_stages(cfg)
    unit_of: dict[str, str] = {}
    units: dict[str, Unit] = {}
    for st in stages:
        kind = _kind(st.name)
        name = "generate" if st.name.split(":")[0] in GENERATE_STAGES else st.name
        unit_of[st.name] = name
        res = getattr(cfg.cluster, kind)
        if res.partition is None and cfg.cluster.partition is not None:
            res = res.model_copy(update={"partition": cfg.cluster.partition})
        unit = units.setdefault(name, Unit(name=name, kind=kind, stages=[], deps=[], resources=res))
        unit.stages.append(st.name)
    for st in stages:
        unit = units[unit_of[st.name]]
        upstream = [unit_of[u] for u in st.settings.get("upstream", {}) if u in unit_of]
        for dep in upstream:
            if dep != unit.name and dep not in unit.deps:
                unit.deps.append(dep)
    if "report" in units:
        units["report"].deps = [u for u in units if u != "report"]
    return list(units.values())


def run_unit(config: str, overrides: list[str], unit: str, stages: list[str]) -> dict[str, Any]:
    """What one job runs: the pipeline restricted to ``stages``, as ``unit`` (in the job's own process).
    A user-facing error comes back as a value (its message, fix and exit code), so the driver can show it."""
    from clca.pipeline import run_pipeline

    try:
        cfg = load_config(config, overrides)
        res = run_pipeline(cfg, progress=False, only=stages, unit=unit)
    except ClcaError as exc:
        return {"ok": False, "error": str(exc), "exit_code": exc.exit_code}
    return {"ok": True, "stages": [s for s in res.stages if s["stage"] in stages]}


# ------------------------------------------------------------------------------------------------ executors


@dataclass
class Submitted:
    unit: Unit
    job: Any  # a submitit Job
    started: float = field(default_factory=time.monotonic)


def parse_executor(spec: str) -> tuple[Literal["local", "slurm"], int]:
    """``local:N`` (N units at once, default 2) or ``slurm``; a one-line error otherwise."""
    kind, _, n = spec.partition(":")
    if kind == "slurm" and not n:
        return "slurm", 0
    if kind == "local":
        try:
            parallel = int(n or 2)
        except ValueError:
            parallel = 0
        if parallel >= 1:
            return "local", parallel
    raise ClcaError(f"--executor {spec!r} is not local:N or slurm.", fix="write e.g. --executor local:2.")


def _submitit_executor(kind: str, folder: Path, unit: Unit, cfg: RunConfig) -> Any:
    import submitit

    if kind == "local":
        local = submitit.LocalExecutor(folder=str(folder))
        local.update_parameters(timeout_min=unit.resources.time_min)
        return local
    ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    r = unit.resources
    params: dict[str, Any] = {
        "timeout_min": r.time_min,
        "cpus_per_task": r.cpus,
        "mem_gb": r.mem_gb,
        "name": f"clca-{unit.name}",
        "slurm_setup": list(cfg.cluster.setup),
    }
    if r.gpus:
        params["gpus_per_node"] = r.gpus
    if r.partition:
        params["slurm_partition"] = r.partition
    extra = {k: v for k, v in (("account", cfg.cluster.account), ("qos", cfg.cluster.qos)) if v}
    if extra:
        params["slurm_additional_parameters"] = extra
    ex.update_parameters(**params)
    return ex


def run_units(
    config: str | Path,
    overrides: list[str],
    executor: str,
    *,
    on_event: Callable[[str, str], None] | None = None,
    poll_s: float = 1.0,
) -> list[dict[str, Any]]:
    """Drive the units of ``config`` (with ``overrides``) through ``executor`` (see the module doc); returns one
    row per unit (name, kind, state, seconds, job id, log). A unit that fails stops new submissions; the others
    finish; then a one-line error names the unit, its message and its log (exit code 3, or the unit's own)."""
    from clca.config import write_resolved
    from clca.manifest import RunManifest
    from clca.pipeline import _record_data_files, check_consistency

    kind, parallel = parse_executor(executor)
    base = load_config(config, overrides)
    with using_data_dir(base.data_dir, source="data_dir in the run config"):
        cfg, notes = prepare(base)
        stages = plan_stages(cfg)
        units = plan_units(cfg, stages)
        run = RunDir(cfg.run_dir)
        with run.lock("clca run --executor (driver)", shared=True):
            manifest = RunManifest(run.manifest_file)
            check_consistency(cfg, manifest, stages, set())
            write_resolved(cfg, run.config_file)
            manifest.set_run_wide(seeds={"seed": cfg.seed}, notes=notes)
            for st in stages:
                manifest.declare(st.name)
            _record_data_files(manifest, cfg)
            manifest.save()
            folder = cfg.cluster.jobs_dir or (Path(cfg.run_dir) / "jobs")
            done: set[str] = set()
            rows: dict[str, dict[str, Any]] = {
                u.name: {
                    "unit": u.name,
                    "kind": u.kind,
                    "state": "pending",
                    "seconds": None,
                    "job": None,
                    "log": None,
                }
                for u in units
            }
            recorded = RunManifest(run.manifest_file)
            for u in units:  # units whose stages are all done already (a rerun); the report always runs
                if u.kind != "report" and all(recorded.is_done(s) for s in u.stages):
                    done.add(u.name)
                    rows[u.name]["state"] = "done earlier"
            running: dict[str, Submitted] = {}
            failure: tuple[Unit, str, int, str | None] | None = None
            while True:
                if failure is None:
                    limit = parallel if kind == "local" else len(units)
                    for u in units:
                        if len(running) >= limit:
                            break
                        if u.name in done or u.name in running or rows[u.name]["state"] == "failed":
                            continue
                        if all(d in done for d in u.deps):
                            ex = _submitit_executor(kind, folder, u, cfg)
                            job = ex.submit(run_unit, str(config), list(overrides), u.name, u.stages)
                            running[u.name] = Submitted(u, job)
                            rows[u.name].update(state="running", job=str(job.job_id))
                            if on_event:
                                on_event(u.name, "start")
                if not running:
                    break
                time.sleep(poll_s)
                for name, sub in list(running.items()):
                    if not sub.job.done():
                        continue
                    del running[name]
                    row = rows[name]
                    row["seconds"] = round(time.monotonic() - sub.started, 1)
                    row["log"] = str(sub.job.paths.stderr)
                    try:
                        out = sub.job.result()
                    except Exception as exc:  # the job died (killed, out of memory, a traceback)
                        out = {"ok": False, "error": f"the job failed: {str(exc).strip().splitlines()[-1]}",
                               "exit_code": EXIT_SERVICE}  # fmt: skip
                    if out.get("ok"):
                        done.add(name)
                        row["state"] = "done"
                        if on_event:
                            on_event(name, "done")
                    else:
                        row["state"] = "failed"
                        if failure is None:
                            failure = (
                                sub.unit,
                                str(out.get("error")),
                                int(out.get("exit_code", EXIT_SERVICE)),
                                row["log"],
                            )
                        if on_event:
                            on_event(name, "failed")
            if failure is not None:
                unit, msg, code, log = failure
                err = ClcaError(
                    f"unit {unit.name} failed: {msg.split(' Fix: ')[0]}",
                    fix=(msg.split(" Fix: ", 1)[1] if " Fix: " in msg else f"see its log {log}")
                    + "; then rerun the same command: done units are kept, the failed one resumes.",
                )
                err.exit_code = code
                raise err
    return list(rows.values())
