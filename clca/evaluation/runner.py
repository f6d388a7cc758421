"""Run a survey evaluation: ask (:mod:`clca.evaluation.ask`), check the sampling calibration
(:mod:`clca.evaluation.calibrate`), aggregate (:mod:`clca.evaluation.aggregate`).

``evaluate(backend, EvalConfig)`` appends one :class:`~clca.records.QuestionResult` per (model_tag, country,
style, question) to the folder's ``per_question.jsonl`` (a country of ``eval.languages`` is asked again in its
language, with the translated styles ``<style>@<lang>`` and items of :mod:`clca.evaluation.translate`) (:class:`~clca.rundir.EvalDir`; ids already there are
skipped, so a rerun resumes), runs the sampling check when ``check_sampling`` asks for it, then rewrites
``metrics.json`` with aggregates over *every* record in the folder (several models may share one folder, told
apart by ``model_tag``). The HTML page of a folder is :func:`clca.report.eval_report.write_eval_report`
(``clca eval`` writes it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clca.data.survey import Survey, resolve_countries
from clca.data.wvb import Respondent, load_respondents, sample_respondents
from clca.errors import DataError
from clca.evaluation.aggregate import write_metrics
from clca.evaluation.ask import ask, batches, build_units, load_survey, persona_count
from clca.evaluation.calibrate import check_sampling
from clca.evaluation.config import EvalConfig
from clca.evaluation.styles import Style, resolve_styles
from clca.evaluation.translate import Localised, languages_for, localise
from clca.llm.base import Backend
from clca.records import EvalMetrics, QuestionResult
from clca.rundir import EvalDir

ProgressFn = Callable[[int, int], None]


@dataclass
class EvalResult:
    """The records of this config (new and resumed), the aggregates of the whole folder, and the folder."""

    records: list[QuestionResult]
    metrics: EvalMetrics
    out_dir: Path
    n_new: int = 0
    n_skipped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> EvalDir:
        return EvalDir(self.out_dir)


def _respondents(
    cfg: EvalConfig, countries: list[str], styles: list[Style]
) -> tuple[dict[int, dict[str, list[Respondent]]], dict[str, list[Respondent]], list[str]]:
    """The sampled personas per sample size (each persona style's :func:`persona_count`) and country and, under
    the paper's protocol, every respondent per country (the survey side is counted over them, as the paper's
    code does), with notes. Each size is its own seeded draw (a prefix of a larger draw is not one)."""
    if not cfg.respondents:
        raise DataError(
            "the persona style needs respondent-level data.",
            fix="pass --respondents <WorldValuesBench dir with full_value_qa.tsv and full_demographic_qa.tsv>.",
        )
    by_country = load_respondents(cfg.respondents, countries=countries)
    lower = {k.lower(): v for k, v in by_country.items()}
    sizes = sorted({persona_count(cfg, s) for s in styles if s.needs_persona})
    personas = {
        n: {c: sample_respondents(lower[c.lower()], n, cfg.persona_seed) for c in countries} for n in sizes
    }
    if cfg.protocol != "paper":
        return personas, {}, []
    survey_from = {c: lower[c.lower()] for c in countries}
    notes = [
        f"protocol paper: survey distributions of {c} counted over its {len(r)} respondents in the "
        "WorldValuesBench files, as the paper's code does"
        for c, r in survey_from.items()
    ]
    return personas, survey_from, notes


def _check_same_model(folder: EvalDir, tag: str, fingerprint: str) -> None:
    """Records of ``tag`` already in the folder are resumed only when the same model (fingerprint: weights,
    adapter, precision) wrote them; otherwise a one-line refusal (a retrained adapter must not inherit them)."""
    for r in folder.store().read():
        if r.model_tag == tag and r.model_fingerprint and r.model_fingerprint != fingerprint:
            raise DataError(
                f"{folder.per_question_file} holds records of {tag} from another model ({r.model_fingerprint}; now "
                f"{fingerprint}).",
                fix="evaluate into another --out (or model tag), or move that folder away.",
            )


def eval_countries(cfg: EvalConfig, survey: Survey, styles: Sequence[Style]) -> list[str]:
    """``cfg.countries`` (every available one when empty) checked against what is available: the survey's
    countries, and under the paper protocol with persona styles also the respondent files' (the paper's human
    side is counted over those files, so their countries need no survey rows). One rule for :func:`evaluate` and
    the checks ``clca eval`` runs before a model loads."""
    available = survey.countries()
    if any(s.needs_persona for s in styles) and cfg.protocol == "paper" and cfg.respondents:
        available = sorted(set(available) | set(load_respondents(cfg.respondents)))
    return resolve_countries(cfg.countries, available, survey=survey.name)


def evaluate(backend: Backend, config: EvalConfig, progress: ProgressFn | None = None) -> EvalResult:
    """Evaluate ``backend`` on the survey per ``config``; resumable (see module docstring).

    ``progress(done, total)`` is called after each batch with counts of (country, style, question) units.
    """
    cfg = config
    folder = EvalDir(cfg.out_dir)
    survey = load_survey(cfg.survey)
    items = survey.select(cfg.questions)
    styles = resolve_styles(cfg.styles, [str(p) for p in cfg.style_files])
    notes = list(survey.notes)
    personas: dict[int, dict[str, list[Respondent]]] = {}
    survey_from: dict[str, list[Respondent]] = {}
    countries = eval_countries(cfg, survey, styles)
    if any(s.needs_persona for s in styles):
        personas, survey_from, more = _respondents(cfg, countries, styles)
        notes += more
    localised: dict[str, Localised] = {}
    if cfg.languages:
        lang_of, more = languages_for(cfg.languages, countries)
        notes += more
        localised = localise(cfg.translations, lang_of, styles, items, questions=cfg.questions)
    store = folder.store()
    _check_same_model(folder, cfg.model_tag, backend.fingerprint)
    units, wanted_ids, skipped = build_units(
        cfg, countries, styles, items, personas, survey_from, store.ids(), localised
    )
    notes += skipped
    n_skipped = len(wanted_ids) - len(units)
    total = len(units)
    if progress:
        progress(0, total)
    n_done = 0
    # English units and translated ones are batched apart: the English batches stay as they were
    english = [u for u in units if not u.language]
    for batch in [*batches(english, cfg.batch_size), *batches(units[len(english) :], cfg.batch_size)]:
        store.extend(ask(batch, cfg, backend, survey))
        n_done += len(batch)
        if progress:
            progress(n_done, total)
    all_records = store.all()
    wanted = set(wanted_ids)
    records = [r for r in all_records if r.id in wanted]
    if cfg.check_sampling and cfg.mode == "logprob":
        check_sampling(backend, records, cfg)
    metrics = write_metrics(
        cfg.out_dir, all_records, {cfg.model_tag: cfg.model_dump(mode="json")}, notes, cfg.bootstrap
    )
    return EvalResult(
        records=records, metrics=metrics, out_dir=cfg.out_dir, n_new=total, n_skipped=n_skipped, notes=notes
    )
