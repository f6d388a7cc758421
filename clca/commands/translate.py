"""``clca translate``: the survey questions and prompt styles in other languages, for ``clca eval --languages``."""

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
from clca.evaluation.config import TranslateSettings
from clca.options import DEFAULT_TEACHER, CommonOptions


@app.command("translate")
@config_options(TranslateSettings)
@config_options(CommonOptions, include=LLM_OPTIONS, defaults={"model": DEFAULT_TEACHER}, param="opts")
def translate_cmd(
    cfg: TranslateSettings,
    opts: CommonOptions,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder of the translation files (<lang>.machine.yaml; resumable; pass it to clca eval "
            "--translations).",
        ),
    ] = Path("runs/translations"),
) -> None:
    """Translate survey questions and prompt styles with a teacher model into OUT/<lang>.machine.yaml (reviewed
    entries in OUT/<lang>.reviewed.yaml win); for clca eval --languages."""
    from clca.evaluation import load_survey
    from clca.evaluation.styles import resolve_styles
    from clca.evaluation.translate import translate
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend
    from clca.llm.spec import parse_spec
    from clca.progress import stage_progress
    from clca.rundir import TranslationDir

    if opts.data_dir is not None:
        settings.set_data_dir(opts.data_dir, source="--data-dir")
    if out.exists() and not out.is_dir():
        raise ClcaError(f"--out {out} is a file.", fix="pass a folder for the translation files.")
    # the survey, questions, styles and model spec are checked before a model loads
    items = load_survey(cfg.survey).select(cfg.questions)
    styles = resolve_styles(cfg.styles, [str(p) for p in cfg.style_files])
    parse_spec(opts.model)
    folder = TranslationDir(out)
    for lang in cfg.languages:  # an unreadable existing file fails now, not after the first batch
        folder.machine(lang)
        folder.reviewed(lang)
    cache = opts.call_cache()
    backend = load_backend(
        opts.model, cache=CallCache(cache) if isinstance(cache, Path) else cache, batch_size=opts.batch_size
    )
    try:
        with stage_progress("translate", enabled=opts.progress) as prog:
            summary = translate(
                backend, out, cfg, items, styles, model=opts.model, seed=opts.seed, batch_size=opts.batch_size,
                progress=prog.update,
            )  # fmt: skip
    finally:
        backend.close()
    table = Table(title=f"clca translate → {out}")
    for col in ("language", "translated now", "file"):
        table.add_column(col)
    for lang, n in summary.per_language.items():
        table.add_row(lang, str(n), str(folder.machine_file(lang)))
    Console().print(table)
    Console().print(
        f"{summary.translated} translated, {summary.kept} kept from the machine files, {summary.reviewed} "
        f"covered by reviewed entries, {summary.released} by the paper's released templates; "
        f"llm: {summary.llm.calls} calls, {summary.llm.retries} re-asks"
    )
