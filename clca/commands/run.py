"""``clca run CONFIG``: the whole pipeline, resumable; ``--plan`` shows what it would do without loading a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from clca import settings
from clca.cli_app import app
from clca.errors import ClcaError

if TYPE_CHECKING:
    from clca.cost import CostRow


@app.command("run")
def run_cmd(
    config: Annotated[Path, typer.Argument(help="Run config YAML, e.g. configs/demo.yaml.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config key: --set simulate.samples=1 (repeatable; beats the file)."
        ),
    ] = None,
    force_stage: Annotated[
        list[str] | None,
        typer.Option(
            "--force-stage",
            help="Rerun this stage and every later one (old outputs move to run_dir/superseded/); comma-separated "
            "or repeated.",
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only these stages: comma-separated or repeated (e.g. scenarios,simulate or eval).",
        ),
    ] = None,
    plan_only: Annotated[
        bool,
        typer.Option("--plan", help="Show the resolved config and what each stage would do; load no model."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --plan: print the plan as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="Run the plan's units as separate jobs: local:N (N at once, local processes) or slurm "
            "(one SLURM job per unit, resources from the config's cluster: section). See docs/cluster.md.",
        ),
    ] = None,
) -> None:
    """Run scenarios → simulate → judge → intents → stats → mix + train → eval → report; resumes done stages.

    Precedence of settings: --set beats --data-dir, which beats CLCA_DATA_DIR, which beats the config file;
    defaults fill the rest."""
    from clca.config import load_config
    from clca.pipeline import run_pipeline

    if as_json and not plan_only:
        raise ClcaError(
            "--json prints a plan; it does nothing without --plan.", fix="add --plan, or drop --json."
        )
    overrides = list(set_ or [])
    explicit = settings.data_dir_override()
    given = any(o.partition("=")[0].strip() == "data_dir" for o in overrides)
    if explicit is not None and not given:  # --data-dir (or CLCA_DATA_DIR) beats the config file
        overrides.append(f"data_dir={explicit}")
    cfg = load_config(config, overrides)
    stages = _names(only) or None
    forced = _names(force_stage)
    if plan_only:
        _print_plan(cfg, forced, as_json, stages)
        return
    if executor is not None:
        _run_units(config, overrides, executor, forced, stages)
        return
    console = Console(stderr=True)

    def on_stage(name: str, event: str) -> None:
        if event == "note":
            console.print(f"[yellow]note: {name}[/yellow]")
        elif event == "skip":
            console.print(f"[dim]✓ {name}: done earlier, skipped[/dim]")
        elif event == "start":
            console.print(f"[bold]▶ {name}[/bold]")

    result = run_pipeline(
        cfg,
        progress=not no_progress,
        force_stages=forced,
        only=stages,
        on_stage=on_stage,
    )
    table = Table(title=f"clca run — {cfg.run_dir}")
    for col in ("stage", "status", "seconds", "counts"):
        table.add_column(col)
    for st in result.stages:
        counts = ", ".join(f"{k}={v}" for k, v in st["counts"].items())
        secs = "" if st["duration_s"] is None else f"{st['duration_s']:.1f}"
        table.add_row(st["stage"], st["status"], secs, counts[:80])
    Console().print(table)
    if result.report is not None:
        Console().print(f"report: {result.report}")


def _run_units(
    config: Path, overrides: list[str], executor: str, forced: list[str], only: list[str] | None
) -> None:
    """``clca run --executor``: the units as jobs (:mod:`clca.executor`), then a table of them."""
    from clca.executor import parse_executor, run_units

    parse_executor(executor)  # a bad value fails before anything else
    if forced or only:
        raise ClcaError(
            "--force-stage and --only are not combined with --executor.",
            fix="run `clca run CONFIG --force-stage ...` (or --only) first, then the executor for the rest.",
        )
    console = Console(stderr=True)

    def on_event(name: str, event: str) -> None:
        style = {"start": "bold", "done": "green", "failed": "red"}[event]
        console.print(f"[{style}]{event} {name}[/{style}]")

    rows = run_units(config, overrides, executor, on_event=on_event)
    table = Table(title=f"clca run --executor {executor}")
    for col in ("unit", "kind", "state", "seconds", "job", "log"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["unit"], r["kind"], r["state"], "" if r["seconds"] is None else str(r["seconds"]),
                      r["job"] or "", r["log"] or "")  # fmt: skip
    Console().print(table)


def _names(values: list[str] | None) -> list[str]:
    """Stage names from repeated options, each of which may be a comma-separated list."""
    return [n.strip() for text in values or [] for n in text.split(",") if n.strip()]


def _print_plan(cfg: object, force: list[str], as_json: bool, only: list[str] | None) -> None:
    """The resolved config, every preflight problem (a row each: what is missing, the fix), what each stage
    would do and what it would cost (:mod:`clca.cost`); exits 2 when there is a problem (the run could not
    start)."""
    from clca.config import RunConfig
    from clca.cost import TOKEN_RULE, estimate, total
    from clca.executor import plan_units
    from clca.pipeline import plan, preflight, select_stages
    from clca.settings import using_data_dir

    assert isinstance(cfg, RunConfig)
    with using_data_dir(cfg.data_dir, source="data_dir in the run config"):
        cfg, notes, problems = preflight(cfg)
        rows = plan(cfg, set(force))
        costs = estimate(cfg)
    if only is not None:
        keep = {s.name for s in select_stages(cfg, only)}
        rows = [r for r in rows if r.stage in keep]
        groups = {name.split(":")[0] for name in keep}
        costs = [c for c in costs if c.stage in groups or (c.stage == "train" and "mix" in groups)]
    units = plan_units(cfg)
    cost_total = total(costs)
    if as_json:
        doc = {
            "config": cfg.dump(),
            "notes": notes,
            "problems": [p.model_dump() for p in problems],
            "stages": [r.model_dump() for r in rows],
            "cost": {
                "token_rule": TOKEN_RULE,
                "rows": [c.model_dump() for c in costs],
                "total": cost_total.model_dump(),
            },
            "units": [u.model_dump() for u in units],
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        for note in notes:
            Console(stderr=True).print(f"[yellow]note: {note}[/yellow]")
        out = Console()
        out.print("[bold]Resolved config[/bold]")
        out.print(
            yaml.safe_dump(cfg.dump(), sort_keys=False, allow_unicode=True).rstrip(),
            markup=False,
            highlight=False,
        )
        table = Table(title=f"Plan for {cfg.run_dir}")
        for col in ("stage", "status", "settings", "would", "outputs"):
            table.add_column(col, overflow="fold")
        for r in rows:
            would = r.action + (f" (changed: {', '.join(r.changed)})" if r.changed else "")
            table.add_row(r.stage, r.status, r.settings_hash, would, ", ".join(r.outputs))
        out.print(table)
        _print_costs(out, [*costs, cost_total], TOKEN_RULE)
        utable = Table(title="Units of `clca run --executor local:N | slurm` (one job each)")
        for col in ("unit", "stages", "after", "resources"):
            utable.add_column(col, overflow="fold")
        for u in units:
            need = u.resources
            res = f"{need.gpus} GPU, {need.cpus} CPU, {need.mem_gb} GB, {need.time_min} min" + (
                f", {need.partition}" if need.partition else ""
            )
            after = ", ".join(u.deps) if len(u.deps) <= 4 else f"{len(u.deps)} units"
            utable.add_row(u.name, ", ".join(u.stages), after, res)
        out.print(utable)
        refused = [r.stage for r in rows if r.action == "refused"]
        if refused:
            out.print(
                f"[yellow]refused: {', '.join(refused)}; `clca run` would stop there (see --force-stage).[/yellow]"
            )
        if problems:
            ptable = Table(title=f"The run cannot start: {len(problems)} problem(s) to fix first")
            ptable.add_column("what is missing or wrong", overflow="fold")
            ptable.add_column("fix", overflow="fold")
            for p in problems:
                ptable.add_row(p.what, p.fix)
            out.print(ptable)
    if problems:
        raise typer.Exit(2)


def _print_costs(out: Console, costs: list[CostRow], token_rule: str) -> None:
    """The cost table of ``clca run --plan`` (rows of :func:`clca.cost.estimate`, the total last)."""
    table = Table(
        title="Cost, bounded from the config alone (calls: no re-ask – every re-ask; tokens: upper bounds)",
        caption=f"{token_rule}; formulas: clca/cost.py, docs/pipeline.md",
    )
    for col in ("stage", "LLM calls", "prompt tokens ≤", "generated ≤", "training tokens", "how"):
        table.add_column(col, overflow="fold")
    for c in costs:
        calls = f"{c.calls_min:,} – {c.calls_max:,}" if c.calls_min != c.calls_max else f"{c.calls_max:,}"
        table.add_row(
            c.stage, calls, f"{c.prompt_tokens_max:,}", f"{c.generated_tokens_max:,}",
            f"{c.training_tokens:,}", c.how,
        )  # fmt: skip
    out.print(table)
    bases = list(dict.fromkeys(c.basis for c in costs if c.basis))
    for basis in bases:
        out.print(f"[dim]prompt sizes: {basis}[/dim]", highlight=False)
