"""``clca eval`` (survey evaluation) and ``clca data countries`` / ``clca data questions``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clca import settings
from clca.cli_app import app
from clca.cli_options import config_options
from clca.commands.stages import LLM_OPTIONS
from clca.errors import ClcaError
from clca.evaluation.config import EvalSettings
from clca.options import DEFAULT_STUDENT, CommonOptions
from clca.records import MetricGroup

data_app = typer.Typer(help="The data bundle: what it offers, where it comes from.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@app.command("eval")
@config_options(EvalSettings)
@config_options(CommonOptions, include=LLM_OPTIONS, defaults={"model": DEFAULT_STUDENT}, param="opts")
def eval_cmd(
    cfg: EvalSettings,
    opts: CommonOptions,
    countries: Annotated[
        str, typer.Option(help="Comma-separated countries.")
    ] = "Great Britain,China,Germany,Japan",
    out: Annotated[
        Path, typer.Option("--out", help="Output directory (resumable; several models may share it).")
    ] = Path("runs/eval"),
    model_tag: Annotated[
        str | None, typer.Option(help="Name of this model in the out dir (default: the spec).")
    ] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html.")] = False,
) -> None:
    """Evaluate a model on WVS-7 (or GlobalOpinionQA): metrics.json, per_question.jsonl, report.html."""
    from clca.evaluation import EvalConfig, evaluate, load_survey
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend
    from clca.progress import stage_progress

    if opts.data_dir is not None:
        settings.set_data_dir(opts.data_dir, source="--data-dir")
    model, batch_size, seed = opts.model, opts.batch_size, opts.seed
    if out.exists() and not out.is_dir():
        raise ClcaError(f"--out {out} is a file.", fix="pass a folder for the evaluation outputs.")
    ecfg = EvalConfig(
        **cfg.model_dump(),
        out_dir=out,
        model_tag=model_tag or model,
        countries=_csv(countries),
        persona_seed=seed,
        batch_size=batch_size,
        seed=seed,
    )
    # validate the survey, countries and questions before loading a model (fast, clear errors)
    from clca.evaluation.runner import eval_countries
    from clca.evaluation.styles import resolve_styles

    sv = load_survey(ecfg.survey)
    styles = resolve_styles(ecfg.styles, [str(p) for p in ecfg.style_files])
    countries_ok = eval_countries(ecfg, sv, styles)
    items = sv.select(ecfg.questions)
    if ecfg.languages:  # every translation it needs, before a model loads
        from clca.evaluation.translate import languages_for, localise

        lang_of, _ = languages_for(ecfg.languages, countries_ok)
        localise(ecfg.translations, lang_of, styles, items, questions=ecfg.questions)
    if any(s.needs_persona for s in styles):
        from clca.data.wvb import load_respondents

        if ecfg.respondents is None:
            raise ClcaError(
                "the persona prompts need respondent-level data.",
                fix="pass --respondents <WorldValuesBench dir with full_value_qa.tsv and full_demographic_qa.tsv>.",
            )
        load_respondents(ecfg.respondents, countries=countries_ok)

    cache = opts.call_cache()
    backend = load_backend(
        model, cache=CallCache(cache) if isinstance(cache, Path) else cache, batch_size=batch_size
    )
    try:
        with stage_progress(f"eval {ecfg.model_tag}", enabled=opts.progress) as prog:
            result = evaluate(backend, ecfg, progress=prog.update)
    finally:
        backend.close()
    if not no_report:
        from clca.report.eval_report import write_eval_report

        write_eval_report(out)
    table = Table(
        title=f"{ecfg.model_tag}: means over questions ({result.n_new} new, {result.n_skipped} resumed)"
    )
    for col in ("style", "country", "n", "KL", "JSD", "EMD", "maj.", "clca_kl"):
        table.add_column(col)
    for g in result.metrics.groups:
        if g.model_tag != ecfg.model_tag:
            continue

        def f(name: str, g: MetricGroup = g) -> str:
            m = g.metrics.get(name)
            return "–" if m is None or m.mean is None else f"{m.mean:.3f}"

        table.add_row(
            g.style, g.country, str(g.n_questions), f("kl"), f("jsd"), f("emd"), f("majority_match"),
            f("clca_kl"),
        )  # fmt: skip
    Console().print(table)
    folder = result.folder
    Console().print(
        f"wrote {folder.metrics_file}, {folder.per_question_file}"
        + ("" if no_report else f", {folder.report_file}")
    )


@data_app.command("countries")
def data_countries(
    survey: Annotated[str, typer.Option(help="wvs7 or the path of a GlobalOpinionQA CSV.")] = "wvs7",
) -> None:
    """List the countries with answer distributions."""
    from clca.evaluation import load_survey

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
    from clca.evaluation import load_survey

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
