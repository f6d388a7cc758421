"""The scenario stage (``clca scenarios``): every (culture, seed or norm) pair, in batches, resumable.

Each LLM step goes through :func:`clca.llm.structured.generate_structured` (bounded re-asks with new seeds);
items that still fail are written to ``scenario_failures.jsonl`` with the reason and every raw reply. Ids
follow :func:`~clca.scenarios.ids.scenario_id`; ids already in ``scenarios.jsonl`` or
``scenario_failures.jsonl`` are skipped, and records are appended per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from clca.culture import CultureProfile, get_profile
from clca.data.sotopia import Norm, load_norms, load_seeds, pick_seeds
from clca.llm.base import Backend, Chat, GenerationParams
from clca.llm.structured import StructuredStats, generate_structured
from clca.progress import stage_progress
from clca.records import GENERIC, Character, Scenario, ScenarioFailure
from clca.rundir import RunDir
from clca.scenarios.adapt import (
    NAMES_FIRST_PROMPT_VERSION,
    PROMPT_VERSION,
    AdaptedScenario,
    adaptation_chat,
    changed_fields,
    paper_adaptation_chat,
    repair_chat,
    validate_adaptation,
)
from clca.scenarios.config import ScenariosConfig
from clca.scenarios.ids import scenario_id
from clca.scenarios.names import _Names, _names_in, names_chat, parse_names, rename
from clca.scenarios.norms import (
    NORM_PROMPT_VERSION,
    NormScenario,
    norm_chat,
    norm_repair_chat,
    pick_norms,
    validate_norm_scenario,
)

#: Reply cap of the names step (a JSON list of names needs little room).
NAMES_MAX_NEW_TOKENS = 96


class ScenarioSummary(BaseModel):
    """Counts of one ``make_scenarios`` call."""

    requested: int = 0  # (culture, seed or norm) pairs asked for
    skipped: int = 0  # already in scenarios.jsonl or scenario_failures.jsonl
    written: int = 0
    failed: int = 0
    names_only: int = 0  # written scenarios where the model changed nothing but the names
    llm: StructuredStats = Field(default_factory=StructuredStats)


def split_counts(cfg: ScenariosConfig) -> tuple[int, int]:
    """(adapted seeds, norm-based scenarios) per culture for ``cfg.source``."""
    if cfg.source == "norms":
        return 0, cfg.per_culture
    if cfg.source == "both":
        n_norms = round(cfg.per_culture * cfg.norm_share)
        return cfg.per_culture - n_norms, n_norms
    return cfg.per_culture, 0


def make_scenarios(
    backend: Backend | None,
    run: RunDir,
    cfg: ScenariosConfig,
    *,
    cultures: Sequence[str],
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
) -> ScenarioSummary:
    """Write ``cfg.per_culture`` scenarios per culture to ``run``'s ``scenarios.jsonl`` (see
    :mod:`clca.scenarios` for the sources).

    ``backend`` may be ``None`` only for ``source: seeds``. Resumable.
    """
    profiles = [get_profile(c) for c in cultures]
    n_adapt, n_norms = split_counts(cfg)
    store, fails = run.scenario_store(), run.failure_store()
    summary = ScenarioSummary()
    chosen = pick_seeds(load_seeds(), n_adapt, seed) if n_adapt else []
    if cfg.source == "seeds":
        recs = [
            s.model_copy(
                update={
                    "id": scenario_id(p.country, s),
                    "culture": p.country,
                    "source": f"{s.source} (unadapted)",
                }
            )
            for p in profiles
            for s in chosen
        ]
        summary.requested = len(recs)
        summary.written = store.extend(recs)
        summary.skipped = summary.requested - summary.written
        return summary
    if backend is None:
        raise ValueError("a backend is needed unless source is 'seeds'")
    done = store.ids() | fails.ids()
    todo_adapt = [(p, s) for p in profiles for s in chosen]
    norms = pick_norms(load_norms(), n_norms, seed) if n_norms else []
    todo_norms = [(p, x) for p in profiles for x in norms]
    summary.requested = len(todo_adapt) + len(todo_norms)
    todo_adapt = [(p, s) for p, s in todo_adapt if scenario_id(p.country, s) not in done]
    todo_norms = [(p, x) for p, x in todo_norms if scenario_id(p.country, x) not in done]
    summary.skipped = summary.requested - len(todo_adapt) - len(todo_norms)
    params = GenerationParams(
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        seed=seed,
        json_schema=AdaptedScenario.model_json_schema(),
    )
    step = max(1, batch_size)
    with stage_progress("Scenarios", total=len(todo_adapt) + len(todo_norms), enabled=progress) as advance:
        for start in range(0, len(todo_adapt), step):
            chunk = todo_adapt[start : start + step]
            good, bad = _adapt_chunk(backend, chunk, cfg, params, summary)
            summary.names_only += sum(1 for g in good if g.adapted_fields == [])
            summary.written += store.extend(good)
            summary.failed += fails.extend(bad)
            advance(len(chunk))
        norm_params = params.model_copy(update={"json_schema": NormScenario.model_json_schema()})
        for start in range(0, len(todo_norms), step):
            chunk_n = todo_norms[start : start + step]
            good, bad = _norm_chunk(backend, chunk_n, cfg, norm_params, summary)
            summary.written += store.extend(good)
            summary.failed += fails.extend(bad)
            advance(len(chunk_n))
    return summary


def make_control_scenarios(run: RunDir, cfg: ScenariosConfig, *, seed: int = 0) -> int:
    """The no-culture control's scenarios: the same Sotopia seeds the cultures are adapted from
    (``per_culture`` of them), unadapted, with culture ``generic`` and ids ``generic-{seed_id}``. Returns the
    number written (resumable)."""
    chosen = pick_seeds(load_seeds(), cfg.per_culture, seed)
    recs = [
        s.model_copy(
            update={"id": scenario_id(GENERIC, s), "culture": GENERIC, "source": f"{s.source} (unadapted)"}
        )
        for s in chosen
    ]
    return run.scenario_store().extend(recs)


def _failure(
    rid: str, seed_id: str, culture: str, backend: Backend, reason: str, raws: list[str]
) -> ScenarioFailure:
    return ScenarioFailure(
        id=rid, seed_id=seed_id, culture=culture, model=backend.spec, reason=reason, raw=raws
    )


def _adapt_chunk(
    backend: Backend,
    chunk: Sequence[tuple[CultureProfile, Scenario]],
    cfg: ScenariosConfig,
    params: GenerationParams,
    summary: ScenarioSummary,
) -> tuple[list[Scenario], list[ScenarioFailure]]:
    """Adapt one batch of (culture, seed) pairs: the names step (``names_first``), then the adaptation."""
    raws: list[list[str]] = [[] for _ in chunk]
    errors: list[str] = [""] * len(chunk)
    shown = [s for _, s in chunk]  # the scenario each adaptation prompt shows
    pending = list(range(len(chunk)))
    attempts = cfg.max_retries + 1
    if cfg.names_first:
        rejected: dict[int, list[str]] = {}

        def retry_names(i: int, _chat: Chat, out: str, exc: ValueError) -> Chat:
            # a fresh prompt naming what failed (a repair turn made the 0.5B teacher repeat itself)
            rejected.setdefault(i, []).append(_names_in(out) or str(exc))
            base = names_chat(chunk[i][1], chunk[i][0])
            return [
                base[0],
                {"role": "user", "content": f"{base[1]['content']}\nNot these: {'; '.join(rejected[i])}."},
            ]

        name_params = params.model_copy(
            update={"max_new_tokens": NAMES_MAX_NEW_TOKENS, "json_schema": _Names.model_json_schema()}
        )
        named = generate_structured(
            backend,
            [names_chat(s, p) for p, s in chunk],
            lambda i, out: parse_names(out, chunk[i][1]),
            name_params,
            max_retries=cfg.max_retries,
            seeds=[params.seed] * len(chunk),
            retry_chat=retry_names,
            stats=summary.llm,
        )
        pending = []
        for i, named_i in enumerate(named):
            raws[i] += named_i.raws
            if named_i.value is None:
                errors[i] = f"names step: {named_i.error}"
            else:
                shown[i] = rename(chunk[i][1], named_i.value)
                pending.append(i)
    adapted = generate_structured(
        backend,
        [
            adaptation_chat(shown[i], chunk[i][0], keep_names=True)
            if cfg.names_first
            else paper_adaptation_chat(shown[i], chunk[i][0])
            for i in pending
        ],
        lambda n, out: validate_adaptation(out, chunk[pending[n]][1]),
        params,
        max_retries=cfg.max_retries,
        seeds=[params.seed] * len(pending),
        retry_chat=lambda n, chat, out, exc: repair_chat(
            chat, out, str(exc), shown[pending[n]], keep_names=cfg.names_first
        ),
        stats=summary.llm,
    )
    results: dict[int, AdaptedScenario] = {}
    for n, res in enumerate(adapted):
        i = pending[n]
        raws[i] += res.raws
        if res.value is None:
            errors[i] = res.error or "unusable reply"
        else:
            results[i] = res.value
    good: list[Scenario] = []
    bad: list[ScenarioFailure] = []
    for i, (p, s) in enumerate(chunk):
        rid = scenario_id(p.country, s)
        res_i = results.get(i)
        if res_i is None:
            reason = f"no valid scenario after {attempts} attempts: {errors[i]}"
            bad.append(_failure(rid, s.seed_id, p.country, backend, reason, raws[i]))
            continue
        chars = [
            Character(**{**c.model_dump(), "age": c.age if c.age is not None else s.characters[j].age})
            for j, c in enumerate(res_i.characters)
        ]
        good.append(
            Scenario(
                id=rid,
                seed_id=s.seed_id,
                culture=p.country,
                setting=res_i.setting.strip(),
                relationship=s.relationship,
                characters=chars,
                model=backend.spec,
                prompt_version=NAMES_FIRST_PROMPT_VERSION if cfg.names_first else PROMPT_VERSION,
                source=s.source,
                adapted_fields=changed_fields(shown[i], res_i),
            )
        )
    return good, bad


def _norm_chunk(
    backend: Backend,
    chunk: Sequence[tuple[CultureProfile, Norm]],
    cfg: ScenariosConfig,
    params: GenerationParams,
    summary: ScenarioSummary,
) -> tuple[list[Scenario], list[ScenarioFailure]]:
    """Write one batch of norm-based scenarios, one per (culture, norm) pair."""
    results = generate_structured(
        backend,
        [norm_chat(x, p) for p, x in chunk],
        lambda i, out: validate_norm_scenario(out),
        params,
        max_retries=cfg.max_retries,
        seeds=[params.seed] * len(chunk),
        retry_chat=lambda i, chat, out, exc: norm_repair_chat(chat, out, str(exc)),
        stats=summary.llm,
    )
    good: list[Scenario] = []
    bad: list[ScenarioFailure] = []
    for (p, x), res in zip(chunk, results, strict=True):
        rid = scenario_id(p.country, x)
        if res.value is None:
            reason = f"no valid scenario after {cfg.max_retries + 1} attempts: {res.error}"
            bad.append(_failure(rid, x.id, p.country, backend, reason, res.raws))
            continue
        sc = res.value
        good.append(
            Scenario(
                id=rid,
                seed_id=x.id,
                culture=p.country,
                setting=sc.setting.strip(),
                relationship=sc.relationship,
                characters=[Character(**c.model_dump()) for c in sc.characters],
                model=backend.spec,
                prompt_version=NORM_PROMPT_VERSION,
                source=f"sotopia-pi:{x.source}",
                norm_id=x.id,
                norm=x.text,
            )
        )
    return good, bad
