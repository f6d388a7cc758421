"""Asking the survey: prompts per (country, style, question), one backend call per batch, one
:class:`~clca.records.QuestionResult` per unit.

Log-prob mode: one :class:`ScoreRequest` per prompt whose options are the answer codes ("1".."10"); the
backend gives log P(the reply gives code k) (:mod:`clca.llm.base`); the distribution is renormalised over the
options, and ``format_mass`` (the sum before renormalising) says how much of the model's behaviour it stands
for. Requests are ordered so that prompts sharing a system message (same country and style) are adjacent,
which lets a backend reuse the shared prefix. Reasoning styles first generate the rationale greedily, then
score the options after "<rationale>\nAnswer: ". Persona mode averages the per-respondent distributions (a
mixture).

Generation mode: ``samples`` answers per prompt (greedy when temperature is 0), read by the configured parser
(``eval.parser``: the paper's or clca's, :mod:`clca.evaluation.parsers`); unparseable answers form the
"invalid" bucket (share ``invalid_share``), as in the CLCA paper. The other parser reads every answer too
(``parsed_other``); ``parser_disagreement`` is the share of answers the two read differently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clca.data.goqa import load_goqa
from clca.data.survey import Survey, SurveyItem
from clca.data.wvb import Respondent
from clca.data.wvs import load_wvs7
from clca.errors import DataError
from clca.evaluation import metrics as M
from clca.evaluation.config import EvalConfig
from clca.evaluation.parsers import Parser, default_parser, other_parser, parse_answer, split_reasoning
from clca.evaluation.prompts import render_messages
from clca.evaluation.styles import Style
from clca.llm.base import LOG_ZERO, Backend, Chat, GenerationParams, ScoreRequest
from clca.records import PromptResult, QuestionResult, result_id

if TYPE_CHECKING:
    from clca.evaluation.translate import Localised


def load_survey(spec: str) -> Survey:
    """``wvs7`` (the data bundle), or a path: ``.jsonl`` in the bundle's WVS format, else GlobalOpinionQA CSV."""
    if spec.strip().lower() in ("wvs7", "wvs", "wvs-7"):
        return load_wvs7()
    p = Path(spec).expanduser()
    if not p.exists():
        raise DataError(
            f"survey {spec!r} is neither 'wvs7' nor an existing file.",
            fix="pass --survey wvs7 or a CSV path.",
        )
    return load_wvs7(p) if p.suffix == ".jsonl" else load_goqa(p)


@dataclass
class Unit:
    """One (country, style, question) still to ask: its human distribution and its prompts (one per persona).
    A unit in another language (``eval.languages``) has a translated style (``<style>@<lang>``) and item, the
    ``language`` code and the ``translation`` provenance its record keeps."""

    country: str
    style: Style
    item: SurveyItem
    human: list[float]
    prompts: list[tuple[Chat, Respondent | None]]
    language: str = ""
    translation: dict[str, str] = field(default_factory=dict)


def respondent_distribution(respondents: Sequence[Respondent], item: SurveyItem) -> list[float] | None:
    """The answer shares of ``item`` over ``respondents`` (valid answers only), or None when nobody answered."""
    counts = [sum(1 for r in respondents if r.answers.get(item.qid) == code) for code in item.codes]
    total = sum(counts)
    return [c / total for c in counts] if total else None


def batches(units: list[Unit], batch_size: int) -> list[list[Unit]]:
    out: list[list[Unit]] = []
    cur: list[Unit] = []
    n = 0
    for u in units:
        if cur and n + len(u.prompts) > batch_size:
            out.append(cur)
            cur, n = [], 0
        cur.append(u)
        n += len(u.prompts)
    if cur:
        out.append(cur)
    return out


def _model_answer(dist: Sequence[float]) -> int:
    return max(range(len(dist)), key=lambda i: dist[i])


def answer_parser(cfg: EvalConfig, style: Style | None = None) -> Parser:
    """The parser that scores generated answers: the style's own (``parser:`` in its file), else
    ``eval.parser``, else the protocol's default."""
    if style is not None and style.parser:
        return style.parser
    return cfg.parser or default_parser(cfg.protocol)


def persona_count(cfg: EvalConfig, style: Style) -> int:
    """How many respondents a persona style is asked with: the style's own ``personas``, else
    ``eval.personas``."""
    return style.personas or cfg.personas


def answer_counts(codes: Sequence[int], prompts: Sequence[PromptResult]) -> tuple[list[int], int]:
    """Generation mode: how many parsed answers gave each code, and how many were unparseable (the safeguard
    bucket): the released code's per-question count vector (options, then safeguard)."""
    pos = {c: i for i, c in enumerate(codes)}
    counts = [0] * len(codes)
    invalid = 0
    for p in prompts:
        for code in p.parsed:
            if code is None:
                invalid += 1
            else:
                counts[pos[code]] += 1
    return counts, invalid


def individual_accuracy(codes: Sequence[int], prompts: Sequence[PromptResult], mode: str) -> float | None:
    """The paper's individual-level accuracy of one question: the share of persona answers equal to that
    respondent's own answer; a missing true answer and an unparseable answer count as wrong (None without
    persona prompts)."""
    indiv: list[float] = []
    for p in prompts:
        if p.persona_id is None:
            continue
        truth = p.respondent_answer if p.respondent_answer in codes else None
        if mode == "logprob":
            indiv.append(float(truth is not None and codes[_model_answer(p.distribution)] == truth))
        else:
            indiv.extend(float(truth is not None and c == truth) for c in p.parsed)
    return sum(indiv) / len(indiv) if indiv else None


def parser_disagreement(prompts: Sequence[PromptResult]) -> float | None:
    """The share of generated answers the two parsers read differently (None when none has both readings)."""
    pairs = [
        (a, b)
        for p in prompts
        if len(p.parsed_other) == len(p.parsed)
        for a, b in zip(p.parsed, p.parsed_other, strict=True)
    ]
    return sum(1 for a, b in pairs if a != b) / len(pairs) if pairs else None


def _finish(
    unit: Unit, cfg: EvalConfig, backend: Backend, survey: Survey, prompts: list[PromptResult]
) -> QuestionResult:
    item = unit.item
    k = item.k
    if cfg.mode == "logprob":
        dist = [sum(p.distribution[i] for p in prompts) / len(prompts) for i in range(k)]
        invalid = 0.0
    else:
        counts, n_inv = answer_counts(item.codes, prompts)
        total = sum(counts) + n_inv
        dist = [c / total for c in counts]
        invalid = n_inv / total
    mets = M.question_metrics(unit.human, dist, ordinal=item.ordinal, invalid_share=invalid)
    mets["accuracy"] = individual_accuracy(item.codes, prompts, cfg.mode)
    if cfg.mode == "logprob":
        mets["format_mass"] = sum(p.format_mass or 0.0 for p in prompts) / len(prompts)
        mets["uncovered_mass"] = sum(p.uncovered for p in prompts) / len(prompts)
    else:
        mets["parser_disagreement"] = parser_disagreement(prompts)
    return QuestionResult(
        id=result_id(cfg.model_tag, unit.country, unit.style.name, item.qid),
        model_tag=cfg.model_tag,
        model_spec=getattr(backend, "spec", ""),
        model_fingerprint=backend.fingerprint,
        survey=survey.name,
        country=unit.country,
        style=unit.style.name,
        qid=item.qid,
        question=item.text,
        options=item.options,
        codes=item.codes,
        ordinal=item.ordinal,
        mode=cfg.mode,
        parser=answer_parser(cfg, unit.style) if cfg.mode == "generate" else "",
        language=unit.language,
        translation=unit.translation,
        prompts=prompts,
        model_dist=dist,
        invalid_share=invalid,
        human_dist=unit.human,
        metrics=mets,
    )


def _run_batch(batch: list[Unit], cfg: EvalConfig, backend: Backend) -> list[list[PromptResult]]:
    """Score or generate every prompt of the batch in (at most) two backend calls."""
    flat = [(u, chat, resp) for u in batch for chat, resp in u.prompts]
    prefixes = ["" for _ in flat]
    rationales: list[list[str]] = [[] for _ in flat]
    reasoning_idx = [i for i, (u, _, _) in enumerate(flat) if u.style.reasoning]
    if cfg.mode == "logprob" and reasoning_idx:
        max_tok = max(flat[i][0].style.max_reasoning_tokens for i in reasoning_idx)
        texts = backend.generate(
            [flat[i][1] for i in reasoning_idx],
            GenerationParams(max_new_tokens=max_tok, temperature=0.0, seed=cfg.seed),
        )
        for i, t in zip(reasoning_idx, texts, strict=True):
            rationales[i] = [t]
            prefixes[i] = (split_reasoning(t) + "\nAnswer: ").lstrip()
    results: list[PromptResult] = []
    if cfg.mode == "logprob":
        reqs = [
            ScoreRequest(messages=chat, options=[str(c) for c in u.item.codes], answer_prefix=prefixes[i])
            for i, (u, chat, _) in enumerate(flat)
        ]
        scored = backend.score(reqs)
        for i, ((u, chat, resp), res) in enumerate(zip(flat, scored, strict=True)):
            results.append(
                PromptResult(
                    messages=[{"role": m["role"], "content": m["content"]} for m in chat],
                    persona_id=resp.id if resp else None,
                    answer_prefix=prefixes[i],
                    option_logprobs=[float(x) if math.isfinite(x) else LOG_ZERO for x in res.logprobs],
                    format_mass=res.format_mass,
                    uncovered=res.uncovered,
                    distribution=M.softmax_logprobs(res.logprobs),
                    generations=rationales[i],
                    respondent_answer=resp.answers.get(u.item.qid) if resp else None,
                )
            )
    else:
        any_reasoning = any(u.style.reasoning for u, _, _ in flat)
        max_tok = cfg.max_new_tokens + (
            max(u.style.max_reasoning_tokens for u, _, _ in flat) if any_reasoning else 0
        )
        chats = [chat for _, chat, _ in flat for _s in range(cfg.samples)]
        seeds = [cfg.seed + s for _ in flat for s in range(cfg.samples)]
        texts = backend.generate(
            chats,
            GenerationParams(max_new_tokens=max_tok, temperature=cfg.temperature, seed=cfg.seed),
            seeds=seeds,
        )
        for i, (u, chat, resp) in enumerate(flat):
            parser = answer_parser(cfg, u.style)
            gens = texts[i * cfg.samples : (i + 1) * cfg.samples]
            read = {
                name: [
                    parse_answer(
                        t,
                        u.item.codes,
                        parser=name,
                        reasoning=u.style.reasoning,
                        options=u.item.options,
                        question=u.item.text,
                    )
                    for t in gens
                ]
                for name in (parser, other_parser(parser))
            }
            parsed = read[parser]
            valid = [c for c in parsed if c is not None]
            dist = [sum(1 for c in valid if c == code) / len(gens) for code in u.item.codes]
            results.append(
                PromptResult(
                    messages=[{"role": m["role"], "content": m["content"]} for m in chat],
                    persona_id=resp.id if resp else None,
                    distribution=dist,
                    generations=gens,
                    parsed=parsed,
                    parsed_other=read[other_parser(parser)],
                    respondent_answer=resp.answers.get(u.item.qid) if resp else None,
                )
            )
    out: list[list[PromptResult]] = []
    pos = 0
    for u in batch:
        out.append(results[pos : pos + len(u.prompts)])
        pos += len(u.prompts)
    return out


def build_units(
    cfg: EvalConfig,
    countries: Sequence[str],
    styles: Sequence[Style],
    items: Sequence[SurveyItem],
    personas: dict[int, dict[str, list[Respondent]]],
    survey_from: dict[str, list[Respondent]],
    done: set[str],
    localised: Mapping[str, Localised] | None = None,
) -> tuple[list[Unit], list[str], list[str]]:
    """The units still to ask (those whose record id is not in ``done``), every wanted record id, and notes
    (questions without a human distribution are skipped). ``survey_from``: countries whose human side is
    counted over respondent files (the paper's protocol). ``personas``: the sampled respondents per sample size
    (:func:`persona_count`) and country. ``localised``: per country evaluated in another language too, its
    translated styles and items (:func:`clca.evaluation.translate.localise`); their units come after all the
    English ones, with the same respondents."""
    units: list[Unit] = []
    wanted_ids: list[str] = []
    notes: list[str] = []
    plans: list[tuple[str, Sequence[Style], Sequence[SurveyItem], Localised | None]] = [
        (country, styles, items, None) for country in countries
    ]
    for country in countries:
        loc = (localised or {}).get(country)
        if loc is not None:
            plans.append((country, loc.styles, [loc.items[i.qid] for i in items], loc))
    for country, styles_c, items_c, loc in plans:
        for style in styles_c:
            for item in items_c:
                human = item.human.get(country)
                if country in survey_from:
                    human = respondent_distribution(survey_from[country], item) or human
                if human is None:
                    if loc is None:
                        notes.append(f"{item.qid}: no human distribution for {country}; skipped")
                    continue
                rid = result_id(cfg.model_tag, country, style.name, item.qid)
                wanted_ids.append(rid)
                if rid in done:
                    continue
                prompts: list[tuple[Chat, Respondent | None]]
                if style.needs_persona:
                    prompts = [
                        (render_messages(style, item, country, r), r)
                        for r in personas[persona_count(cfg, style)][country]
                    ]
                else:
                    prompts = [(render_messages(style, item, country), None)]
                extra = (
                    {}
                    if loc is None
                    else {"language": loc.language, "translation": loc.translation(style, item.qid)}
                )
                units.append(Unit(country, style, item, human, prompts, **extra))  # type: ignore[arg-type]
    return units, wanted_ids, notes


def ask(batch: list[Unit], cfg: EvalConfig, backend: Backend, survey: Survey) -> list[QuestionResult]:
    """The records of a batch of units (at most two backend calls)."""
    prompt_results = _run_batch(batch, cfg, backend)
    return [_finish(u, cfg, backend, survey, pr) for u, pr in zip(batch, prompt_results, strict=True)]
