"""Culture-adapted social scenarios (CLCA's scenario step): ``clca scenarios``.

Sources (``ScenariosConfig.source``):

``adapt`` (the paper's first source)
    The teacher rewrites Sotopia seeds (:mod:`clca.data.sotopia`) so that they are believable in the culture.
    Names first (default): step 1 asks only for two new names of the culture (placeholders such as "John Doe"
    and the source names are rejected and re-asked with a fresh prompt naming the rejects); the seed is
    renamed in code (:func:`rename`); step 2 asks for the adaptation of the renamed scenario, so a model that
    copies the scenario back cannot keep a source name. ``names_first: false``: one prompt for everything, as
    in the paper. The reply must be the same JSON with every field filled and no source name left anywhere;
    an invalid reply gets a repair turn quoting the problem.
``norms`` (the paper's second source)
    The teacher writes a NEW scenario set in the culture around one social norm or situation of Sotopia-π's
    inspirational prompts (Social Chemistry rows first, then NormBank), with the same schema, validation
    and retries; the norm's id and text are kept as provenance (``Scenario.norm_id``, ``Scenario.norm``).
``both``
    ``norm_share`` of each culture's scenarios from norms, the rest adapted (the paper used both).
``seeds``
    The seeds as they are, tagged with the culture (no LLM).

Every LLM step goes through :func:`clca.llm.structured.generate_structured` (bounded re-asks with new seeds).
Items that still fail are written to ``scenario_failures.jsonl`` with the reason and every raw reply.
Resume: ids are ``{culture_slug}-{seed_id}`` (``{culture_slug}-norm-{pk}`` for norms); ids already in
``scenarios.jsonl`` or ``scenario_failures.jsonl`` are skipped, and records are appended per batch.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clca.config import ScenariosConfig
from clca.culture import CultureProfile, get_profile, slug
from clca.data.sotopia import Norm, load_norms, load_seeds, pick_seeds
from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Backend, Chat, GenerationParams
from clca.llm.structured import StructuredStats, generate_structured
from clca.progress import stage_progress
from clca.records import (
    GENERIC,
    RELATIONSHIPS,
    Character,
    Relationship,
    Scenario,
    ScenarioFailure,
    normalise_relationship,
)
from clca.rundir import RunDir

PROMPT_VERSION = "adapt-paper-v1"  # one prompt (names_first=False): the paper's Table 19 prompt, verbatim
NAMES_FIRST_PROMPT_VERSION = "adapt-v2"  # names step, then the adaptation of the renamed scenario
NORM_PROMPT_VERSION = "norm-v1"  # a new scenario around a social norm


# ----------------------------------------------------------------------------------------- adaptation


class AdaptedCharacter(BaseModel):
    """One character as the model must return it (all text fields filled)."""

    model_config = ConfigDict(extra="ignore")
    first_name: str
    last_name: str
    age: int | None = None
    gender: str
    pronoun: str
    occupation: str
    background: str
    personality: str
    secret: str
    goal: str


class AdaptedScenario(BaseModel):
    """The JSON schema of an adapted scenario (what the model must return)."""

    model_config = ConfigDict(extra="ignore")
    setting: str
    characters: list[AdaptedCharacter] = Field(min_length=2, max_length=2)


def scenario_payload(s: Scenario) -> dict[str, Any]:
    """The part of a scenario that is shown to (and returned by) the adapting model."""
    return {
        "setting": s.setting,
        "characters": [c.model_dump(mode="json") for c in s.characters],
    }


def source_names(s: Scenario) -> list[str]:
    """First and last names of the seed's characters (words of at least 3 letters)."""
    names: list[str] = []
    for c in s.characters:
        for part in (c.first_name, c.last_name):
            for w in re.findall(r"[^\W\d_][\w'-]*", part):
                if len(w) >= 3 and w not in names:
                    names.append(w)
    return names


#: "John Doe"-style names small models produce when asked for a typical name
PLACEHOLDER_NAMES = {
    "john doe", "jane doe", "john smith", "jane smith", "max mustermann", "erika mustermann", "zhang san",
    "li si", "wang wu", "taro yamada", "hanako yamada", "yamada taro", "yamada hanako", "juan perez",
    "juan pérez", "fulano de tal", "joe bloggs", "mario rossi", "ivan ivanov", "jan kowalski",
    "张 三", "李 四", "王 五", "山田 太郎", "山田 花子",
}  # fmt: skip
_PLACEHOLDER_KEYS = {n.replace(" ", "") for n in PLACEHOLDER_NAMES}


class _NamePair(BaseModel):
    model_config = ConfigDict(extra="ignore")
    first_name: str
    last_name: str


class _Names(BaseModel):
    """The JSON schema of the names step."""

    model_config = ConfigDict(extra="ignore")
    person1: _NamePair
    person2: _NamePair


def names_chat(seed: Scenario, profile: CultureProfile) -> Chat:
    """Step 1 of the names-first adaptation: ask only for two new names (small models manage this)."""

    def who(c: Character) -> str:
        age = f"{c.age}-year-old " if c.age is not None else ""
        return f"a {age}{c.gender.lower()} {c.occupation.lower()}".replace("  ", " ")

    c1, c2 = seed.characters
    user = (
        f"Person 1 is {who(c1)} and person 2 is {who(c2)}, both living in {profile.country}.\n"
        f"Invent a realistic full name for each, typical of {profile.demonym} people (diverse, not famous), "
        "written in Latin letters (romanised if the culture uses another script).\n"
        'Reply with only this JSON object, filled in: {"person1": {"first_name": "", "last_name": ""}, '
        '"person2": {"first_name": "", "last_name": ""}}'
    )
    return [
        {"role": "system", "content": f"You are an expert in {profile.demonym} culture."},
        {"role": "user", "content": user},
    ]


def _read_names(raw: str) -> _Names:
    try:
        return _Names.model_validate(extract_json(raw))
    except (JsonTextError, ValidationError) as exc:
        raise ValueError(f"no names JSON ({str(exc).splitlines()[0]})") from None


def _check_name_pairs(pairs: Sequence[tuple[str, str]], banned: set[str]) -> None:
    """``ValueError`` for a placeholder, unusable or banned name, or two identical names."""
    for first, last in pairs:
        if f"{first}{last}".replace(" ", "").lower() in _PLACEHOLDER_KEYS:
            raise ValueError(f"{first} {last!s} is a placeholder name")
        for part in (first, last):
            if not re.fullmatch(r"[^\W\d_](?:[^\W\d_]|['. -])*", part) or len(part) > 40:
                raise ValueError(f"unusable name {part!r}")
            if any(w.lower() in banned for w in re.findall(r"[^\W\d_][\w'-]*", part)):
                raise ValueError(f"the original name {part!r} was kept")
    if len(pairs) == 2 and pairs[0] == pairs[1]:
        raise ValueError("both people got the same name")


def parse_names(raw: str, seed: Scenario) -> list[tuple[str, str]]:
    """The two (first, last) names of a names-step reply; ``ValueError`` with a one-line reason if unusable."""
    obj = _read_names(raw)
    pairs = [(p.first_name.strip(), p.last_name.strip()) for p in (obj.person1, obj.person2)]
    _check_name_pairs(pairs, {n.lower() for n in source_names(seed)})
    return pairs


def _names_in(raw: str) -> str:
    """The full names of a names-step reply, for a retry prompt ("" if unreadable)."""
    try:
        obj = _read_names(raw)
    except ValueError:
        return ""
    return ", ".join(f"{p.first_name} {p.last_name}".strip() for p in (obj.person1, obj.person2))


def rename(seed: Scenario, names: Sequence[tuple[str, str]]) -> Scenario:
    """The seed with its characters' names replaced everywhere (full names first, then first and last names)."""
    subs: list[tuple[str, str]] = []
    for c, (first, last) in zip(seed.characters, names, strict=True):
        subs.append((f"{c.first_name} {c.last_name}".strip(), f"{first} {last}"))
    for c, (first, last) in zip(seed.characters, names, strict=True):
        subs += [(c.first_name, first), (c.last_name, last)]
    subs = [(a, b) for a, b in subs if a.strip()]

    def swap(text: str) -> str:
        for old, new in subs:
            text = re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", new.replace("\\", "\\\\"), text)
        return text

    chars = []
    for c, (first, last) in zip(seed.characters, names, strict=True):
        fields: dict[str, Any] = {k: swap(v) if isinstance(v, str) else v for k, v in c.model_dump().items()}
        chars.append(Character(**{**fields, "first_name": first, "last_name": last}))
    return seed.model_copy(update={"setting": swap(seed.setting), "characters": chars})


def _expert(profile: CultureProfile) -> str:
    return f"You are an expert in {profile.demonym} culture who writes realistic social role-play scenarios."


def paper_adaptation_chat(seed: Scenario, profile: CultureProfile) -> Chat:
    """The paper's adaptation prompt (its Table 19, one user message, verbatim; ``{culture}`` = the country),
    with the seed as JSON in clca's scenario schema."""
    culture = profile.country
    user = (
        "Here is a generic social interaction. Could you update the name, occupation, setting, goals, and secrets "
        "to make the information logically coherent so that it represents a believable scenario that could occur "
        f"within {culture}? Please change all participants' names to diverse {culture} names with diverse "
        "occupations. The goals and secrets should be relevant to the interaction setting and play a key role in "
        "inciting or resolving conflicts in this interaction. Return the data using the same JSON schema in "
        f"English without any explanation. Input: {json.dumps(scenario_payload(seed), ensure_ascii=False)} Output:"
    )
    return [{"role": "user", "content": user}]


def adaptation_chat(seed: Scenario, profile: CultureProfile, *, keep_names: bool = False) -> Chat:
    """The adaptation prompt for one seed and culture.

    ``keep_names``: ``seed`` was already renamed by the names step, so the model is asked to keep its names
    (the original names appear nowhere in the prompt); otherwise it must replace the seed's names.
    """
    if keep_names:
        name_rule = f"- keep the names {' and '.join(c.name for c in seed.characters)};\n"
    else:
        name_rule = (
            f"- give both people new first and last names that are typical of {profile.demonym} people "
            f"(diverse, not famous); do not keep the original names ({', '.join(source_names(seed))});\n"
        )
    user = (
        f"Adapt the following social scenario to {profile.demonym} culture ({profile.country}).\n\n"
        f"Culture profile: {profile.describe()}\n\n"
        f"Rewrite the scenario so that it is believable in {profile.country}:\n"
        + name_rule
        + f"- adapt the occupations, the setting (places, institutions, customs, money) and the backgrounds "
        f"to {profile.country};\n"
        f"- adapt the goals and secrets so that they still drive or resolve a conflict between the two people, "
        f"in a way that fits {profile.demonym} social expectations;\n"
        "- keep the ages, genders and pronouns; fill every field; keep exactly the same JSON keys.\n\n"
        f"Scenario (JSON):\n{json.dumps(scenario_payload(seed), ensure_ascii=False, indent=1)}\n\n"
        "Reply with only the adapted scenario as one JSON object."
    )
    return [{"role": "system", "content": _expert(profile)}, {"role": "user", "content": user}]


_FIELDS = "first_name, last_name, age, gender, pronoun, occupation, background, personality, secret, goal"


def repair_chat(chat: Chat, raw: str, error: str, seed: Scenario, *, keep_names: bool = False) -> Chat:
    """The follow-up turn asking the model to fix its previous reply (``seed``: what the prompt showed)."""
    names = (
        f"the names {' and '.join(c.name for c in seed.characters)}"
        if keep_names
        else f"none of the original names ({', '.join(source_names(seed))})"
    )
    return [
        *chat,
        {"role": "assistant", "content": raw},
        {
            "role": "user",
            "content": (
                f"That reply cannot be used: {error}. Reply again with only the corrected JSON object: keys "
                f'"setting" and "characters" (two objects with {_FIELDS}), every field filled, {names}.'
            ),
        },
    ]


def _validate_fields(adapted: AdaptedScenario, reference: Sequence[Character] | None) -> None:
    if not adapted.setting.strip():
        raise ValueError("the field 'setting' is empty")
    for i, c in enumerate(adapted.characters):
        for field, value in c.model_dump().items():
            if field == "age":
                continue
            src = getattr(reference[i], field, "x") if reference is not None else "x"
            if isinstance(value, str) and not value.strip() and str(src).strip():
                raise ValueError(f"the field characters[{i}].{field} is empty")


def _parse_object(raw: str, model: type[BaseModel]) -> Any:
    try:
        obj = extract_json(raw)
    except JsonTextError as exc:
        raise ValueError(str(exc)) from None
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(object)"
        raise ValueError(f"schema error at {loc}: {err.get('msg', 'invalid')}") from None


def validate_adaptation(raw: str, seed: Scenario) -> AdaptedScenario:
    """Parse and check a model reply; raise ``ValueError`` with a one-line reason when it is unusable."""
    adapted: AdaptedScenario = _parse_object(raw, AdaptedScenario)
    _validate_fields(adapted, seed.characters)
    texts = [adapted.setting] + [str(v) for c in adapted.characters for v in c.model_dump().values()]
    blob = "\n".join(texts)
    for name in source_names(seed):
        if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", blob, flags=re.I):
            raise ValueError(f"the original name {name!r} is still in the scenario")
    return adapted


def changed_fields(shown: Scenario, adapted: AdaptedScenario) -> list[str]:
    """The parts of ``adapted`` that differ from the scenario the model was shown (names aside: the shown
    scenario is first renamed to the adapted names)."""
    shown = rename(shown, [(c.first_name, c.last_name) for c in adapted.characters])

    def norm(text: str) -> str:
        return re.sub(r"\s+", " ", text).strip().lower()

    out = ["setting"] if norm(adapted.setting) != norm(shown.setting) else []
    for field in ("occupation", "background", "personality", "goal", "secret"):
        if any(
            norm(str(getattr(a, field))) != norm(str(getattr(c, field)))
            for a, c in zip(adapted.characters, shown.characters, strict=True)
        ):
            out.append(field)
    return out


# ----------------------------------------------------------------------------------------- norms


class NormScenario(AdaptedScenario):
    """The JSON schema of a new scenario written around a norm."""

    relationship: Relationship = ""

    @field_validator("relationship", mode="before")
    @classmethod
    def _relationship(cls, v: object) -> Relationship:
        return normalise_relationship(v)


_NORM_SOURCES = {
    "social_chem": "Social Chemistry 101",
    "normbank": "NormBank",
    "social_iqa": "Social IQa",
}


def norm_chat(norm: Norm, profile: CultureProfile) -> Chat:
    """The prompt asking for a new scenario set in the culture around ``norm``."""
    where = _NORM_SOURCES.get(norm.source, "a collection of social situations")
    user = (
        f"Write a new social scenario set in {profile.country}, around this social norm or situation "
        f"(from {where}):\n"
        f'Social norm or situation: "{norm.text}"\n\n'
        f"Culture profile: {profile.describe()}\n\n"
        f"The scenario is an interaction between two people living in {profile.country} that is believable in "
        f"{profile.demonym} culture and in which the norm or situation matters. Give both people realistic "
        f"{profile.demonym} first and last names (diverse, not famous; in Latin letters), an age, gender, "
        "pronoun, occupation, a public background, a personality, a private social goal and a secret. The goals "
        "and secrets should play a key role in inciting or resolving a conflict between them, in a way that "
        f"fits {profile.demonym} social expectations. Their relationship is one of: {', '.join(RELATIONSHIPS)}.\n\n"
        'Reply with only one JSON object with the keys "setting", "relationship" and "characters" (two objects '
        f"with {_FIELDS}), every field filled."
    )
    return [{"role": "system", "content": _expert(profile)}, {"role": "user", "content": user}]


def validate_norm_scenario(raw: str) -> NormScenario:
    """Parse and check a norm-based scenario; ``ValueError`` with a one-line reason when it is unusable."""
    sc: NormScenario = _parse_object(raw, NormScenario)
    _validate_fields(sc, None)
    _check_name_pairs([(c.first_name.strip(), c.last_name.strip()) for c in sc.characters], set())
    return sc


def pick_norms(norms: Sequence[Norm], n: int, seed: int = 0) -> list[Norm]:
    """``n`` norms: a seeded shuffle within each source, the sources in :func:`load_norms`'s order."""
    rng = random.Random(seed)
    by_source: dict[str, list[Norm]] = {}
    for x in norms:
        by_source.setdefault(x.source, []).append(x)
    ordered: list[Norm] = []
    for group in by_source.values():
        ordered += rng.sample(group, len(group))
    return ordered[:n]


# ----------------------------------------------------------------------------------------- the stage


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
    """Write ``cfg.per_culture`` scenarios per culture to ``run``'s ``scenarios.jsonl`` (see module doc).

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
                    "id": f"{slug(p.country)}-{s.seed_id}",
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
    todo_adapt = [(p, s) for p, s in todo_adapt if f"{slug(p.country)}-{s.seed_id}" not in done]
    todo_norms = [(p, x) for p, x in todo_norms if norm_record_id(p.country, x) not in done]
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
            update={"id": f"{GENERIC}-{s.seed_id}", "culture": GENERIC, "source": f"{s.source} (unadapted)"}
        )
        for s in chosen
    ]
    return run.scenario_store().extend(recs)


def norm_record_id(country: str, norm: Norm) -> str:
    return f"{slug(country)}-norm-{norm.pk}"


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
            update={"max_new_tokens": 96, "json_schema": _Names.model_json_schema()}
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
        rid = f"{slug(p.country)}-{s.seed_id}"
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
    results = generate_structured(
        backend,
        [norm_chat(x, p) for p, x in chunk],
        lambda i, out: validate_norm_scenario(out),
        params,
        max_retries=cfg.max_retries,
        seeds=[params.seed] * len(chunk),
        retry_chat=lambda i, chat, out, exc: [
            *chat,
            {"role": "assistant", "content": out},
            {
                "role": "user",
                "content": f"That reply cannot be used: {exc}. Reply again with only the corrected JSON object: keys "
                f'"setting", "relationship" and "characters" (two objects with {_FIELDS}), every field filled.',
            },
        ],
        stats=summary.llm,
    )
    good: list[Scenario] = []
    bad: list[ScenarioFailure] = []
    for (p, x), res in zip(chunk, results, strict=True):
        rid = norm_record_id(p.country, x)
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
