"""``clca eval`` (survey evaluation) and ``clca data countries`` / ``clca data questions``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from clca.cli_app import app
from clca.errors import ClcaError

data_app = typer.Typer(help="List what the data bundle (or a survey file) offers.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@app.command("eval")
def eval_cmd(
    model: Annotated[
        str, typer.Option("--model", help="Model spec, e.g. embedded:smollm2-135m.")
    ] = "embedded:smollm2-135m",
    countries: Annotated[
        str, typer.Option(help="Comma-separated countries.")
    ] = "Great Britain,China,Germany,Japan",
    questions: Annotated[
        str, typer.Option(help='Ids and ranges: "Q1-Q45", "Q1-Q41,Q43-Q45", "Q7,Q10", "all".')
    ] = "Q1-Q45",
    styles: Annotated[
        str, typer.Option(help="Comma-separated styles: plain, cultural, persona, anthropological.")
    ] = "plain,cultural",
    out: Annotated[
        Path, typer.Option("--out", help="Output directory (resumable; several models may share it).")
    ] = Path("runs/eval"),
    survey: Annotated[
        str, typer.Option(help="wvs7 (the data bundle) or the path of a GlobalOpinionQA CSV.")
    ] = "wvs7",
    respondents: Annotated[
        str | None,
        typer.Option(help="WorldValuesBench dir (full_value_qa.tsv, full_demographic_qa.tsv) for persona."),
    ] = None,
    personas: Annotated[
        int, typer.Option(help="Respondents sampled per country for the persona style.")
    ] = 20,
    mode: Annotated[
        str, typer.Option(help="logprob (option scoring) or generate (parse answers, like the paper).")
    ] = "logprob",
    samples: Annotated[int, typer.Option(help="Generation mode: answers per prompt.")] = 1,
    temperature: Annotated[float, typer.Option(help="Generation mode: 0 = greedy.")] = 0.0,
    max_new_tokens: Annotated[
        int, typer.Option(help="Generation mode: tokens per answer (after any reasoning).")
    ] = 16,
    batch_size: Annotated[int, typer.Option(help="Prompts per backend call.")] = 16,
    style_file: Annotated[
        list[str] | None, typer.Option("--style-file", help="Extra style YAML (repeatable).")
    ] = None,
    model_tag: Annotated[
        str | None, typer.Option(help="Name of this model in the out dir (default: the spec).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and persona selection.")] = 0,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html.")] = False,
) -> None:
    """Evaluate a model on WVS-7 (or GlobalOpinionQA): metrics.json, per_question.jsonl, report.html."""
    from clca.evaluation.runner import EvalConfig, evaluate
    from clca.llm.registry import load_backend

    if mode not in ("logprob", "generate"):
        raise ClcaError(f"--mode {mode!r} is not known.", fix="use --mode logprob or --mode generate.")
    cfg = EvalConfig(
        out_dir=out,
        model_tag=model_tag or model,
        countries=_csv(countries),
        questions=questions,
        styles=_csv(styles),
        style_files=list(style_file or []),
        survey=survey,
        respondents=respondents,
        personas=personas,
        persona_seed=seed,
        mode=mode,  # type: ignore[arg-type]
        samples=samples,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        report=not no_report,
    )
    # validate the survey/countries/questions/styles before loading a model (fast, clear errors)
    from clca.data.survey import resolve_countries
    from clca.evaluation.runner import load_survey
    from clca.evaluation.styles import resolve_styles

    sv = load_survey(survey)
    resolve_countries(cfg.countries, sv.countries(), survey=sv.name)
    sv.select(questions)
    resolve_styles(cfg.styles, cfg.style_files)

    backend = load_backend(model)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]eval[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as prog:
        task = prog.add_task(cfg.model_tag, total=None)

        def _progress(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        result = evaluate(backend, cfg, progress=_progress)
    backend.close()
    table = Table(
        title=f"{cfg.model_tag}: means over questions ({result.n_new} new, {result.n_skipped} resumed)"
    )
    for col in ("style", "country", "n", "KL", "JSD", "EMD", "acc", "clca_kl"):
        table.add_column(col)
    for g in result.metrics["groups"]:
        if g["model_tag"] != cfg.model_tag:
            continue
        m = g["metrics"]

        def f(name: str, m: dict = m) -> str:  # type: ignore[type-arg]
            v = m[name]["mean"]
            return "–" if v is None else f"{v:.3f}"

        table.add_row(
            g["style"],
            g["country"],
            str(g["n_questions"]),
            f("kl"),
            f("jsd"),
            f("emd"),
            f("acc_majority"),
            f("clca_kl"),
        )
    Console().print(table)
    Console().print(
        f"wrote {out / 'metrics.json'}, {out / 'per_question.jsonl'}"
        + ("" if no_report else f", {out / 'report.html'}")
    )


@data_app.command("countries")
def data_countries(
    survey: Annotated[str, typer.Option(help="wvs7 or the path of a GlobalOpinionQA CSV.")] = "wvs7",
) -> None:
    """List the countries with answer distributions."""
    from clca.evaluation.runner import load_survey

    sv = load_survey(survey)
    counts: dict[str, int] = {}
    for it in sv.items.values():
        for c in it.human:
            counts[c] = counts.get(c, 0) + 1
    table = Table(title=f"{sv.name}: {len(counts)} countries")
    table.add_column("country")
    table.add_column("questions", justify="right")
    for c in sorted(counts):
        table.add_row(c, str(counts[c]))
    Console().print(table)


@data_app.command("questions")
def data_questions(
    survey: Annotated[str, typer.Option(help="wvs7 or the path of a GlobalOpinionQA CSV.")] = "wvs7",
    questions: Annotated[str, typer.Option(help="Selection to show (ids/ranges).")] = "all",
) -> None:
    """List question ids, their number of options and wording."""
    from clca.evaluation.runner import load_survey

    sv = load_survey(survey)
    table = Table(title=f"{sv.name}: questions")
    table.add_column("id")
    table.add_column("K", justify="right")
    table.add_column("label")
    table.add_column("question", overflow="fold")
    for it in sv.select(questions):
        table.add_row(it.qid, str(it.k), it.short_label, it.text)
    Console().print(table)
    for n in sv.notes:
        Console(stderr=True).print(f"note: {n}")
