"""What a run will cost, from its config alone: LLM calls, prompt and generated tokens, and training tokens per
stage (``clca run CONFIG --plan``, the "cost" table; ``--json``: ``cost``). No model is loaded.

Each row gives ``calls_min`` (every first reply usable, no re-ask; where a stage's length is not fixed, the
fewest calls its rules allow), upper bounds on the calls, prompt tokens and generated tokens (every re-ask the
config allows, every conversation at full length), and the training tokens. The call cache, scenarios that
fail and conversations that end early can only lower the real numbers.

**Token rule.** A prompt counts ``characters / 4 + 4 per message`` (:func:`clca.training.mix.approx_tokens`),
measured on the real prompt templates rendered on what the stage would pick from the data bundle: the Sotopia
seeds (:func:`~clca.data.sotopia.pick_seeds`) and norms (:func:`~clca.scenarios.pick_norms`), the survey
questions, and for persona prompts the longest codebook answer of each demographic attribute. A scenario the
teacher adapts or writes from a norm is measured on a seed standing in for it (the seed it adapts, or the seed
at the same place of ``pick_seeds``). A reply or an earlier output counts as its ``max_new_tokens``. Without a
data bundle each prompt counts the constant of :data:`FALLBACK_TOKENS` (the largest value measured on the
bundle, rounded up).

Notation: ``C`` cultures; ``V`` = C + 1 with ``controls: [no_culture]``, else C; ``S`` seeds of ``train.seeds``;
``T`` ``simulate.max_turns``, ``M`` ``simulate.max_new_tokens``, ``F`` ``simulate.max_consecutive_failures``;
``h`` = :data:`HISTORY_LINE_TOKENS` (the frame of one history line: turn number, name, quotes); ``Σ B`` the sum
over the run's scenarios (the control's included) of a prompt's base, rendered without any history (the
row's ``units.base_tokens``).

scenarios
    Per culture ``a`` adapted seeds and ``n`` norm-based scenarios (:func:`~clca.scenarios.split_counts`, at
    most the seeds / norms there are). Calls, no re-ask: ``C × (a × s + n)`` with ``s`` = 2 with
    ``names_first`` (names step + adaptation), else 1; at most ``× (1 + r)``, ``r`` = ``scenarios.max_retries``.
    A re-ask repeats the chat with the reply and a repair turn, so its ``k``-th re-ask is ``k × g`` longer:
    prompt ≤ ``(1 + r) × P₁ + r(r + 1)/2 × Σ g``, ``P₁`` the sum of the first prompts (``units``), ``g`` per
    request = ``max_new_tokens`` + the repair turn (the largest rendered) + :data:`ERROR_TOKENS` (names step,
    a fresh prompt that lists the rejected names: :data:`NAMES_MAX_NEW_TOKENS` + 4). Generated ≤ calls ×
    their ``max_new_tokens`` (names step: 96). ``source: seeds`` and the control's seeds use no model.
simulate
    ``E`` = scenarios × ``samples`` episodes (the control's ``per_culture`` seeds too). An episode is at most
    2T acts; an act is asked at most ``F`` times (an unparseable output is re-asked, the ``F``-th in a row ends
    the episode). Calls: ≥ E (an agent may leave at once), ≤ ``E × 2T × F``. Act ``i`` (from 0) shows ``i``
    earlier outputs of ≤ ``M + h`` tokens each: prompt ≤ ``F × (samples × T × Σ (B₁ + B₂) + E × (M + h) ×
    T(2T − 1))``, ``B₁``/``B₂`` each person's base. Generated ≤ calls × M.
judge
    3 calls per episode (quality, alignment, meta), each re-asked ≤ ``r`` = ``judge.max_retries`` times with the
    same prompt: ``3E`` to ``3E(1 + r)`` (an episode without any utterance is dropped without a call). Every
    prompt holds the scenario and ≤ 2T utterances; the meta prompt also the two earlier replies (≤ ``2J + 16``,
    ``J`` = ``judge.max_new_tokens``): prompt ≤ ``(1 + r) × (samples × Σ (Bq + Ba + Bm) + E × (6T(M + h) + 2J +
    16))``. Generated ≤ calls × J.
intents
    One call per utterance of the kept episodes (≥ 0: the judge may keep none; ≤ 2T per episode, all kept),
    re-asked ≤ ``r`` = ``intents.max_retries``: calls ≤ ``E × 2T × (1 + r)``. Utterance ``i`` shows ``i + 1``
    lines: prompt ≤ ``(1 + r) × (samples × 2T × Σ Bi + E × (M + h) × T(2T + 1))``. Generated ≤ calls ×
    ``intents.max_new_tokens``.
train (mix + train)
    Per culture ``e`` = its scenarios × samples episodes, ``t = e − round(val_fraction × e)`` (at least one held
    out) for training; the mix's three parts each hold ≤ t examples, resampled to the ratios: ``X = Σ round(t ×
    ratio / smallest ratio)`` over the parts in use (``max_examples`` caps it); the control gets the cultures'
    mean X. An example ≤ ``τ = min(max_length, system prompt + 2T × (M + h)`` [+ ``2T × (intents.max_new_tokens
    + h)`` in the intent part]``)``. Examples seen per adapter: ``ceil(X × num_epochs)``, or ``max_steps ×
    batch × grad_accum × processes`` when ``max_steps`` is set. Training tokens ≤ ``Σ over V variants of S ×
    seen × τ`` (validation passes not counted).
translate (with ``eval.languages``)
    Per language ``L`` of the run's cultures: one request per question and per style of ``eval.styles`` (a
    style the paper's released code translated into that language is not asked), each re-asked ≤ ``r`` = 2
    times: ``calls_min = Σ_L (Q + styles_L)``, ``calls_max = (1 + r) × calls_min``. A re-ask shows the first
    prompt, the reply (≤ ``m`` = 1024 tokens) and a repair turn (:data:`TRANSLATE_REPAIR_TOKENS`): prompt ≤ ``(1
    + r) × P₁ + r × calls_min × (m + repair)``, ``P₁`` the rendered first prompts. Generated ≤ calls × m.
eval
    Models: base + V × S adapters. Prompts per model and style: ``(C + C_L) × Q × p``, ``C_L`` the cultures
    also evaluated in another language (``eval.languages``; a translated prompt counts as its English one),
    ``Q`` questions, ``p`` =
    the style's ``personas`` (else ``eval.personas``) for a style that needs a persona, else 1; ``Σ P`` their rendered prompt tokens (a
    persona prompt on the longest codebook answer of each attribute). Generation mode: ``samples`` answers per
    prompt (calls), each ≤ ``eval.max_new_tokens`` (+ the style's ``max_reasoning_tokens`` ``R`` for a
    reasoning style); prompt = models × samples × Σ P. Log-prob mode: one scoring request per prompt, one
    generated rationale (≤ R) per prompt of a reasoning style, and ``check_sampling`` sampled answers per
    prompt (≤ ``max_new_tokens`` + R each); prompt = models × (Σ P × (1 + check_sampling [+ 1 for a
    reasoning style's rationale]) [+ prompts × (R + 2) for the rationale and "Answer: " in the scoring
    prompt]). Nothing is re-asked: calls_min = calls_max. Questions a culture has no human answers for are
    skipped by the run, so they only lower the numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from clca.config import RunConfig
from clca.errors import ClcaError
from clca.evaluation.styles import Style
from clca.pipeline import CONTROL_NO_CULTURE, run_languages, translate_settings
from clca.scenarios.stage import NAMES_MAX_NEW_TOKENS

#: how prompts are counted (shown with the table)
TOKEN_RULE = "tokens ≈ characters / 4 + 4 per message (clca.training.mix.approx_tokens)"
#: the frame of one history line around an earlier output ("Turn #3: Name said: \"...\"", "Person 1: ", "Name: ")
HISTORY_LINE_TOKENS = 16
#: the error a repair turn quotes (one line, e.g. "schema error at characters.0.goal: Field required")
ERROR_TOKENS = 32
#: the names step's reply cap (clca.scenarios.stage)
#: what the meta prompt adds around the two earlier judge replies
PREVIOUS_TOKENS = 16
#: prompt tokens per prompt when no data bundle is at hand (the largest measured on the bundle, rounded up):
#: ``roleplay`` and ``judge`` are the sums over both people / all three questions of one scenario
FALLBACK_TOKENS: dict[str, int] = {
    "names": 130,
    "adaptation": 1500,
    "norm": 450,
    "repair": 100,
    "roleplay": 2100,
    "judge": 3800,
    "intents": 600,
    "mix_system": 350,
    "eval": 250,
    "eval_persona": 350,
    "translate": 250,
}
#: questions of ``eval.questions: all`` when no survey is at hand (the bundle's WVS wave 7)
FALLBACK_ALL_QUESTIONS = 167
#: the repair turn of a translation re-ask, with the quoted problem (clca.evaluation.translate)
TRANSLATE_REPAIR_TOKENS = 64


class CostRow(BaseModel):
    """One stage's bounded cost (see the module docstring for each formula)."""

    stage: str
    units: dict[str, int]  # the counts the formulas use (cultures, episodes, models, ...)
    calls_min: int  # LLM requests, no re-ask
    calls_max: int  # LLM requests, every re-ask the config allows
    prompt_tokens_max: int
    generated_tokens_max: int
    training_tokens: int = 0
    how: str  # the formula with the config's numbers
    basis: str = ""  # where the prompt sizes come from


def _tok(chat: Sequence[Mapping[str, object]]) -> int:
    """The prompt tokens of a chat by :data:`TOKEN_RULE`."""
    from clca.training.mix import approx_tokens

    return approx_tokens([{"role": str(m["role"]), "content": str(m["content"])} for m in chat])


def _tri(r: int) -> int:
    """1 + 2 + ... + r: how many times the re-asks of one request carry one more reply and repair turn."""
    return r * (r + 1) // 2


@dataclass
class _Sizes:
    """What the formulas need from the data bundle (or the fallback constants)."""

    basis: str
    n_adapt: int  # adapted seeds per culture
    n_norms: int  # norm-based scenarios per culture
    n_control: int  # the control's scenarios
    scen_first: int = 0  # Σ first-ask prompts of the scenario stage
    g_adapt: int = 0  # growth per re-ask of an adaptation (without max_new_tokens)
    g_norm: int = 0
    rp_base: int = 0  # Σ over scenarios of B1 + B2
    judge_base: int = 0  # Σ over scenarios of Bq + Ba + Bm
    intent_base: int = 0  # Σ over scenarios of Bi
    #: variant (a culture as the config names it, or generic) -> the largest fixed part of a training example
    mix_system: dict[str, int] = field(default_factory=dict)
    questions: int = 0
    eval_prompt: dict[str, int] = field(default_factory=dict)  # style -> Σ over cultures × questions
    #: style -> Σ over the cultures also evaluated in another language × questions (their English prompts)
    eval_translated: dict[str, int] = field(default_factory=dict)
    translate_first: int = 0  # Σ of the translate stage's first prompts
    eval_basis: str = ""


def _scenario_sizes(cfg: RunConfig) -> _Sizes:
    """Counts and prompt sizes of the scenario, role-play, judge, intent and mix prompts (see module doc)."""
    from clca.scenarios import split_counts

    n_adapt, n_norms = split_counts(cfg.scenarios)
    control = CONTROL_NO_CULTURE in cfg.controls
    try:
        return _measured(cfg, n_adapt, n_norms, control)
    except ClcaError:
        pass
    cultures = len(cfg.cultures)
    n_ctrl = cfg.scenarios.per_culture if control else 0
    scenarios = cultures * (n_adapt + n_norms) + n_ctrl
    llm = cfg.scenarios.source != "seeds"
    a_calls = cultures * n_adapt if llm else 0
    first = (
        a_calls
        * (FALLBACK_TOKENS["adaptation"] + (FALLBACK_TOKENS["names"] if cfg.scenarios.names_first else 0))
        + cultures * n_norms * FALLBACK_TOKENS["norm"]
    )
    mix = FALLBACK_TOKENS["mix_system"]
    return _Sizes(
        basis="no data bundle: the constants of clca.cost.FALLBACK_TOKENS per prompt",
        n_adapt=n_adapt,
        n_norms=n_norms,
        n_control=n_ctrl,
        scen_first=first,
        g_adapt=FALLBACK_TOKENS["repair"] + ERROR_TOKENS,
        g_norm=FALLBACK_TOKENS["repair"] + ERROR_TOKENS,
        rp_base=scenarios * FALLBACK_TOKENS["roleplay"],
        judge_base=scenarios * FALLBACK_TOKENS["judge"],
        intent_base=scenarios * FALLBACK_TOKENS["intents"],
        mix_system={c: mix for c in [*cfg.cultures, *(["generic"] if control else [])]},
    )


def _measured(cfg: RunConfig, n_adapt: int, n_norms: int, control: bool) -> _Sizes:
    from clca.culture import CultureProfile, get_profile
    from clca.data.sotopia import load_norms, load_seeds, pick_seeds
    from clca.intents.stage import intent_chat
    from clca.judge.stage import alignment_chat, meta_chat, quality_chat
    from clca.records import GENERIC, Episode, Scenario, Turn
    from clca.roleplay.prompts import build_messages, culture_words
    from clca.scenarios import (
        adaptation_chat,
        names_chat,
        norm_chat,
        paper_adaptation_chat,
        pick_norms,
        repair_chat,
    )
    from clca.scenarios.norms import norm_repair_chat
    from clca.training.mix import OPENING_CUE, dialogue_system_prompt
    from clca.training.mix import intent_system_prompt as mix_intent_system

    sc = cfg.scenarios
    seeds = load_seeds()
    adapt = pick_seeds(seeds, n_adapt, cfg.seed) if n_adapt else []
    norms = pick_norms(load_norms(), n_norms, cfg.seed) if n_norms else []
    per_culture = len(adapt) + len(norms)
    pool = pick_seeds(seeds, per_culture, cfg.seed)
    standins = [pool[i % len(pool)] for i in range(per_culture)] if pool else []
    control_seeds = pick_seeds(seeds, sc.per_culture, cfg.seed) if control else []
    sizes = _Sizes(
        basis="prompts rendered on the Sotopia seeds and norms the stages would pick",
        n_adapt=len(adapt),
        n_norms=len(norms),
        n_control=len(control_seeds),
    )

    def downstream(s: Scenario, profile: CultureProfile | None, words: str, variant: str) -> None:
        """Add the role-play, judge, intent and mix prompt bases of one scenario (``variant``: the name the
        config gives its culture, or ``generic``)."""
        culture = GENERIC if profile is None else profile.country
        sizes.rp_base += _tok(build_messages(s, 0, [], words)) + _tok(build_messages(s, 1, [], words))
        ep = Episode(
            id="e", scenario_id=s.id, culture=culture, sample=0, seed=0, model="", stop_reason="leave"
        )
        sizes.judge_base += (
            _tok(quality_chat(ep, s, profile))
            + _tok(alignment_chat(ep, s, profile))
            + _tok(meta_chat(ep, s, profile, ""))
        )
        first = Turn(speaker=0, name=s.characters[0].name, action="speak", text="")
        one = ep.model_copy(update={"turns": [first]})
        sizes.intent_base += _tok(intent_chat(one, 0, s, profile))
        adj = None if profile is None else profile.demonym
        fixed = max(
            *(_tok([{"role": "system", "content": dialogue_system_prompt(s, me, adj)},
                    {"role": "user", "content": OPENING_CUE}]) for me in (0, 1)),
            _tok([{"role": "system", "content": mix_intent_system(s, adj)}]),
        )  # fmt: skip
        sizes.mix_system[variant] = max(sizes.mix_system.get(variant, 0), fixed)

    llm = sc.source != "seeds"
    for culture in cfg.cultures:
        p = get_profile(culture)
        for s in adapt if llm else []:
            if sc.names_first:
                sizes.scen_first += _tok(names_chat(s, p)) + _tok(adaptation_chat(s, p, keep_names=True))
            else:
                sizes.scen_first += _tok(paper_adaptation_chat(s, p))
            repair = _tok(repair_chat([], "", "", s, keep_names=sc.names_first))
            sizes.g_adapt = max(sizes.g_adapt, repair + ERROR_TOKENS)
        for x in norms:
            sizes.scen_first += _tok(norm_chat(x, p))
            sizes.g_norm = _tok(norm_repair_chat([], "", "")) + ERROR_TOKENS
        words = culture_words(p.country)
        for s in standins:
            downstream(s, p, words, culture)
    for s in control_seeds:
        downstream(s, None, "", GENERIC)
    return sizes


def _eval_sizes(cfg: RunConfig, sizes: _Sizes) -> None:
    """The survey prompts of every (culture, style, question), rendered (persona styles on the longest
    persona the codebook allows), summed per style; without data, :data:`FALLBACK_TOKENS` per prompt."""
    from clca.evaluation.styles import resolve_styles

    styles = resolve_styles(cfg.eval.styles, [str(p) for p in cfg.eval.style_files])
    langs = run_languages(cfg)
    try:
        from clca.data.wvb import PERSONA_FIELDS, Respondent
        from clca.data.wvs import load_codebook
        from clca.evaluation import load_survey
        from clca.evaluation.prompts import render_messages

        items = load_survey(cfg.eval.survey).select(cfg.eval.questions)
        persona = None
        if any(s.needs_persona for s in styles):
            book = load_codebook()
            longest: dict[str, str] = {}
            for attr, variables in PERSONA_FIELDS.items():
                labels = [
                    str(label)
                    for var in variables
                    for label in dict(book.get(var, {}).get("choices") or {}).values()  # type: ignore[call-overload]
                ]
                longest[attr] = max(labels, key=len, default="unknown")
            persona = Respondent(id="longest", country="", demographics=longest)
        sizes.questions = len(items)
        for st in styles:
            per_culture = {
                c: sum(
                    _tok(render_messages(st, it, c, persona if st.needs_persona else None)) for it in items
                )
                for c in cfg.cultures
            }
            sizes.eval_prompt[st.name] = sum(per_culture.values())
            sizes.eval_translated[st.name] = sum(per_culture[c] for c in langs)
        ts = translate_settings(cfg)
        if ts is not None:
            from clca.evaluation.translate import question_chat, style_chat

            sizes.translate_first = sum(
                sum(_tok(question_chat(it, code)) for it in items)
                + sum(_tok(style_chat(st, code)) for st in _to_translate(cfg, code))
                for code in ts.languages
            )
        sizes.eval_basis = (
            "survey prompts rendered (persona prompts on the longest codebook answer of each attribute)"
            + ("; a prompt in another language counted as its English one" if langs else "")
        )
    except ClcaError:
        sizes.questions = _count_questions(cfg.eval.questions)
        for st in styles:
            per = FALLBACK_TOKENS["eval_persona" if st.needs_persona else "eval"]
            sizes.eval_prompt[st.name] = len(cfg.cultures) * sizes.questions * per
            sizes.eval_translated[st.name] = len(langs) * sizes.questions * per
        ts = translate_settings(cfg)
        if ts is not None:
            sizes.translate_first = FALLBACK_TOKENS["translate"] * sum(
                sizes.questions + len(_to_translate(cfg, code)) for code in ts.languages
            )
        sizes.eval_basis = "no survey at hand: the constants of clca.cost.FALLBACK_TOKENS per prompt"


def _to_translate(cfg: RunConfig, code: str) -> list[Style]:
    """The styles the translate stage asks the teacher for in language ``code`` (not those the paper's released
    code translated)."""
    from clca.evaluation.styles import resolve_styles
    from clca.evaluation.translate import released_file

    released = released_file(code)
    return [
        s
        for s in resolve_styles(cfg.eval.styles, [str(p) for p in cfg.eval.style_files])
        if released is None or s.name not in released.styles
    ]


def _translate_row(cfg: RunConfig, z: _Sizes) -> CostRow | None:
    ts = translate_settings(cfg)
    if ts is None:
        return None
    r, m = ts.max_retries, ts.max_new_tokens
    per = {code: z.questions + len(_to_translate(cfg, code)) for code in ts.languages}
    calls = sum(per.values())
    return CostRow(
        stage="translate",
        units={"languages": len(ts.languages), "questions": z.questions, "requests": calls,
               "first_prompt_tokens": z.translate_first},
        calls_min=calls,
        calls_max=calls * (1 + r),
        prompt_tokens_max=(1 + r) * z.translate_first + r * calls * (m + TRANSLATE_REPAIR_TOKENS),
        generated_tokens_max=calls * (1 + r) * m,
        how="requests = " + " + ".join(f"{code}: {z.questions} questions + {n - z.questions} style(s)"
                                       for code, n in per.items())
        + f" = {calls}, × (1 + {r} re-asks); generated ≤ calls × {m}",
        basis=z.eval_basis,
    )  # fmt: skip


def _count_questions(spec: str) -> int:
    """Questions a selection names, counted from its ranges alone (no survey at hand)."""
    if spec.strip().lower() in ("", "all"):
        return FALLBACK_ALL_QUESTIONS
    n = 0
    for part in (p.strip() for p in spec.split(",")):
        if "-" in part:
            lo, hi = (re.sub(r"\D", "", x) or "0" for x in part.split("-", 1))
            n += max(0, int(hi) - int(lo) + 1)
        elif part:
            n += 1
    return n


def _scenarios_row(cfg: RunConfig, z: _Sizes) -> CostRow:
    sc, cultures = cfg.scenarios, len(cfg.cultures)
    r = sc.max_retries
    units = {"cultures": cultures, "adapted_per_culture": z.n_adapt, "norm_based_per_culture": z.n_norms}
    if sc.source == "seeds":
        return CostRow(
            stage="scenarios", units=units, calls_min=0, calls_max=0, prompt_tokens_max=0,
            generated_tokens_max=0, how="source seeds: no LLM call", basis=z.basis,
        )  # fmt: skip
    steps = 2 if sc.names_first else 1
    adapt, names, norm = cultures * z.n_adapt, cultures * z.n_adapt * (steps - 1), cultures * z.n_norms
    calls = adapt + names + norm
    grow = adapt * (sc.max_new_tokens + z.g_adapt) + norm * (sc.max_new_tokens + z.g_norm)
    grow += names * (NAMES_MAX_NEW_TOKENS + 4)
    units |= {"first_prompt_tokens": z.scen_first}
    return CostRow(
        stage="scenarios",
        units=units,
        calls_min=calls,
        calls_max=calls * (1 + r),
        prompt_tokens_max=(1 + r) * z.scen_first + _tri(r) * grow,
        generated_tokens_max=(1 + r) * ((adapt + norm) * sc.max_new_tokens + names * NAMES_MAX_NEW_TOKENS),
        how=f"calls = {cultures} cultures × ({z.n_adapt} adapted × {steps} + {z.n_norms} norm-based) × (1 + {r} "
        f"re-asks); generated ≤ calls × {sc.max_new_tokens}" + (f" (names step: {NAMES_MAX_NEW_TOKENS})" if names else ""),
        basis=z.basis,
    )  # fmt: skip


def _episodes(cfg: RunConfig, z: _Sizes) -> tuple[int, int]:
    """(scenarios, episodes) of the role-play, the control's included."""
    scenarios = len(cfg.cultures) * (z.n_adapt + z.n_norms) + z.n_control
    return scenarios, scenarios * cfg.simulate.samples


def _simulate_row(cfg: RunConfig, z: _Sizes) -> CostRow:
    sim = cfg.simulate
    t, m, f, h = sim.max_turns, sim.max_new_tokens, sim.max_consecutive_failures, HISTORY_LINE_TOKENS
    scenarios, e = _episodes(cfg, z)
    calls_max = e * 2 * t * f
    prompt = f * (sim.samples * t * z.rp_base + e * (m + h) * t * (2 * t - 1))
    return CostRow(
        stage="simulate",
        units={"scenarios": scenarios, "episodes": e, "acts_max": e * 2 * t, "base_tokens": z.rp_base},
        calls_min=e,
        calls_max=calls_max,
        prompt_tokens_max=prompt,
        generated_tokens_max=calls_max * m,
        how=f"episodes = {scenarios} scenarios × {sim.samples}; calls ≤ episodes × 2·{t} acts × {f} tries; prompt ≤ "
        f"{f} × ({sim.samples} × {t} × ΣB + episodes × ({m}+{h}) × {t}·{2 * t - 1}); generated ≤ calls × {m}",
        basis=z.basis,
    )  # fmt: skip


def _judge_row(cfg: RunConfig, z: _Sizes) -> CostRow:
    t, m, h = cfg.simulate.max_turns, cfg.simulate.max_new_tokens, HISTORY_LINE_TOKENS
    r, j = cfg.judge.max_retries, cfg.judge.max_new_tokens
    _, e = _episodes(cfg, z)
    per_episode = 6 * t * (m + h) + 2 * j + PREVIOUS_TOKENS
    return CostRow(
        stage="judge",
        units={"episodes": e, "base_tokens": z.judge_base},
        calls_min=3 * e,
        calls_max=3 * e * (1 + r),
        prompt_tokens_max=(1 + r) * (cfg.simulate.samples * z.judge_base + e * per_episode),
        generated_tokens_max=3 * e * (1 + r) * j,
        how=f"calls = 3 × {e} episodes × (1 + {r} re-asks); prompt ≤ (1 + {r}) × ({cfg.simulate.samples} × ΣB + "
        f"episodes × (3·2·{t}·({m}+{h}) + 2·{j} + {PREVIOUS_TOKENS})); generated ≤ calls × {j}",
        basis=z.basis,
    )  # fmt: skip


def _intents_row(cfg: RunConfig, z: _Sizes) -> CostRow:
    t, m, h = cfg.simulate.max_turns, cfg.simulate.max_new_tokens, HISTORY_LINE_TOKENS
    r, i = cfg.intents.max_retries, cfg.intents.max_new_tokens
    _, e = _episodes(cfg, z)
    calls_max = e * 2 * t * (1 + r)
    return CostRow(
        stage="intents",
        units={"episodes": e, "utterances_max": e * 2 * t, "base_tokens": z.intent_base},
        calls_min=0,
        calls_max=calls_max,
        prompt_tokens_max=(1 + r) * (cfg.simulate.samples * 2 * t * z.intent_base + e * (m + h) * t * (2 * t + 1)),
        generated_tokens_max=calls_max * i,
        how=f"calls ≤ {e} episodes × 2·{t} utterances × (1 + {r} re-asks), ≥ 0 (the judge may keep none); prompt ≤ "
        f"(1 + {r}) × ({cfg.simulate.samples} × 2·{t} × ΣB + episodes × ({m}+{h}) × {t}·{2 * t + 1}); generated ≤ calls × {i}",
        basis=z.basis,
    )  # fmt: skip


def _train_row(cfg: RunConfig, z: _Sizes) -> CostRow:
    mix, sim = cfg.mix, cfg.simulate
    t, m, h = sim.max_turns, sim.max_new_tokens, HISTORY_LINE_TOKENS
    seeds = cfg.train.seed_list(cfg.seed)
    tc = cfg.train.resolve(model=cfg.models.student, seed=seeds[0])
    ratios = {k: v for k, v in mix.ratios().items() if v > 0}

    def examples(episodes: int) -> tuple[int, int]:
        held = round(mix.val_fraction * episodes)
        if mix.val_fraction > 0 and held == 0 and episodes >= 2:
            held = 1
        train = episodes - held
        scale = train / min(ratios.values())
        if mix.max_examples is not None:
            scale = min(scale, mix.max_examples / sum(ratios.values()))
        return train, sum(round(scale * v) for v in ratios.values())

    per_culture = (z.n_adapt + z.n_norms) * sim.samples
    train_eps, x = examples(per_culture)
    variants = {c: x for c in cfg.cultures}
    if CONTROL_NO_CULTURE in cfg.controls:
        variants["generic"] = x  # the mean of the cultures' examples (all bounded by the same x)
    procs = cfg.train.num_processes if cfg.train.launcher == "accelerate" else 1
    eff_batch = tc.per_device_batch_size * tc.grad_accum * procs
    conversation = 2 * t * (m + h) + (2 * t * (cfg.intents.max_new_tokens + h) if "intent" in ratios else 0)
    total = 0
    taus: list[int] = []
    for variant, n in variants.items():
        tau = min(tc.max_length, z.mix_system.get(variant, FALLBACK_TOKENS["mix_system"]) + conversation)
        taus.append(tau)
        seen = tc.max_steps * eff_batch if tc.max_steps is not None else math.ceil(n * tc.num_epochs)
        total += len(seeds) * seen * tau
    seen_how = (
        f"{tc.max_steps} steps × {eff_batch} examples"
        if tc.max_steps is not None
        else f"ceil({x} examples × {tc.num_epochs:g} epochs)"
    )
    return CostRow(
        stage="train",
        units={
            "adapters": len(variants) * len(seeds),
            "train_episodes_per_culture": train_eps,
            "examples_per_adapter": x,
            "tokens_per_example_max": max(taus),
        },
        calls_min=0,
        calls_max=0,
        prompt_tokens_max=0,
        generated_tokens_max=0,
        training_tokens=total,
        how=f"{len(variants)} variants × {len(seeds)} seeds × {seen_how} × ≤ {max(taus)} tokens "
        f"(min of max_length {tc.max_length} and a whole conversation)",
        basis=z.basis,
    )


def _eval_row(cfg: RunConfig, z: _Sizes) -> CostRow:
    from clca.evaluation.styles import resolve_styles

    ev = cfg.eval
    cultures, q = len(cfg.cultures), z.questions
    translated = len(run_languages(cfg))  # cultures also evaluated in another language
    seeds = len(cfg.train.seed_list(cfg.seed))
    variants = cultures + (1 if CONTROL_NO_CULTURE in cfg.controls else 0)
    models = 1 + variants * seeds
    styles = resolve_styles(ev.styles, [str(p) for p in ev.style_files])
    prompts = scored = answers = generated = prompt_tokens = 0
    for st in styles:
        per = (st.personas or ev.personas) if st.needs_persona else 1
        n = (cultures + translated) * q * per  # prompts of this style per model
        tokens = (
            z.eval_prompt.get(st.name, 0) + z.eval_translated.get(st.name, 0)
        ) * per  # their prompt tokens
        reason = st.max_reasoning_tokens if st.reasoning else 0
        prompts += n
        if ev.mode == "generate":
            answers += n * ev.samples
            generated += n * ev.samples * (ev.max_new_tokens + reason)
            prompt_tokens += tokens * ev.samples
        else:
            scored += n
            prompt_tokens += tokens + (tokens + n * (reason + 2) if st.reasoning else 0)
            answers += n * ev.check_sampling + (n if st.reasoning else 0)
            generated += n * ev.check_sampling * (ev.max_new_tokens + reason) + n * reason
            prompt_tokens += tokens * ev.check_sampling
    calls = models * (scored + answers)
    where = (
        f"({cultures} cultures + {translated} in another language)" if translated else f"{cultures} cultures"
    )
    if ev.mode == "generate":
        how = (
            f"{models} models × {where} × {q} questions × ("
            + " + ".join(f"{(s.personas or ev.personas) if s.needs_persona else 1} {s.name}" for s in styles)
            + f") prompts × {ev.samples} samples = {models * answers} answers; generated ≤ answers × "
            f"{ev.max_new_tokens}"
            + (" (+ max_reasoning_tokens in a reasoning style)" if any(s.reasoning for s in styles) else "")
        )
    else:
        how = (
            f"{models} models × {where} × {q} questions × ("
            + " + ".join(f"{(s.personas or ev.personas) if s.needs_persona else 1} {s.name}" for s in styles)
            + f") prompts = {models * scored} scoring requests"
            + (f" + {models * answers} generated answers" if answers else "")
        )
    return CostRow(
        stage="eval",
        units={"models": models, "questions": q, "prompts_per_model": prompts, "scored": models * scored,
               "answers": models * answers},  # answers: generation requests (answers, rationales, samples)
        calls_min=calls,
        calls_max=calls,
        prompt_tokens_max=models * prompt_tokens,
        generated_tokens_max=models * generated,
        how=how,
        basis=z.eval_basis,
    )  # fmt: skip


def estimate(cfg: RunConfig) -> list[CostRow]:
    """The cost rows of ``cfg``'s stages (scenarios, simulate, judge, [intents,] train, [translate,] eval); formulas in the
    module docstring. Reads the data bundle when there is one (the data directory must be in effect)."""
    sizes = _scenario_sizes(cfg)
    _eval_sizes(cfg, sizes)
    rows = [_scenarios_row(cfg, sizes), _simulate_row(cfg, sizes), _judge_row(cfg, sizes)]
    if cfg.intents.enabled:
        rows.append(_intents_row(cfg, sizes))
    rows.append(_train_row(cfg, sizes))
    if (tr := _translate_row(cfg, sizes)) is not None:
        rows.append(tr)
    return [*rows, _eval_row(cfg, sizes)]


def total(rows: Sequence[CostRow]) -> CostRow:
    """The sum of ``rows`` (stage ``total``)."""
    return CostRow(
        stage="total",
        units={},
        calls_min=sum(r.calls_min for r in rows),
        calls_max=sum(r.calls_max for r in rows),
        prompt_tokens_max=sum(r.prompt_tokens_max for r in rows),
        generated_tokens_max=sum(r.generated_tokens_max for r in rows),
        training_tokens=sum(r.training_tokens for r in rows),
        how="the sum of the stages",
    )
