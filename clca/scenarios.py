"""Sotopia seed scenarios and their culture adaptation by an LLM (CLCA's scenario step).

Seeds: every (environment, character pair) combination of Sotopia (``sotopia/``: 90 environments × 5 pairs
= 450 seeds) becomes a generic :class:`~clca.records.Scenario` (culture ``"generic"``). Sotopia's inline tags
(``<extra_info>``, ``<strategy_hint>``, ``<clarification_hint>``, possibly nested) are turned into plain
sentences appended to the goal ("... fairly. Extra information: Books give you 5 points each ...").

Adaptation (paper: GPT-4 rewrote SOTOPIA-π tasks per culture): the model gets the culture profile in words
and the scenario as JSON, and must return the same JSON with names (diverse names of the culture),
occupations, setting, backgrounds, goals and secrets adapted so that the scenario is believable in that
culture and the goals/secrets still drive or resolve a conflict. The reply is parsed robustly
(:func:`clca.jsontext.extract_json`), validated with pydantic and checked (every field filled, no source
name left anywhere); an invalid reply gets a repair prompt quoting the problem, up to ``max_retries`` times.
Seeds that still fail are written to ``scenario_failures.jsonl`` with the reason and every raw reply.

Batching and resume: per round, all pending prompts (of a chunk of ``batch_size`` seeds) go to the backend
as one ``generate`` batch; the retry round batches all repairs. Records are appended after each chunk, ids
are ``{culture_slug}-{seed_id}``, and ids already in ``scenarios.jsonl`` or ``scenario_failures.jsonl`` are
skipped, so an interrupted run continues where it stopped and never duplicates.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clca.culture import CultureProfile, get_profile, slug
from clca.errors import DataError
from clca.jsontext import JsonTextError, extract_json
from clca.llm.base import Backend, Chat, GenerationParams
from clca.records import Character, Scenario, ScenarioFailure
from clca.runs import JsonlStore
from clca.settings import data_file

PROMPT_VERSION = "adapt-v1"  # one prompt for everything (names_first=False), as in the paper
NAMES_FIRST_PROMPT_VERSION = "adapt-v2"  # names step, then the adaptation of the renamed scenario
SCENARIOS_FILE = "scenarios.jsonl"
FAILURES_FILE = "scenario_failures.jsonl"

RELATIONSHIPS = {
    "0": "stranger",
    "1": "know by name",
    "2": "acquaintance",
    "3": "friend",
    "4": "romantic relationship",
    "5": "family member",
}
_TAG_LABELS = {"extra_info": "Extra information", "strategy_hint": "Hint", "clarification_hint": "Hint"}
_INNER_TAG = re.compile(r"<(\w+)>((?:(?!<\w+>)[\s\S])*?)</\1>")
_LABEL_START = re.compile(r"^\s*(Extra information|Hint|Clarification|Note)\s*:", re.I)


# --------------------------------------------------------------------------------------------- seeds


def strip_tags(goal: str) -> str:
    """Turn Sotopia's ``(<extra_info>...</extra_info>)``-style tags into plain trailing sentences."""
    text = goal
    while True:
        m = _INNER_TAG.search(text)
        if m is None:
            break
        content = m.group(2).strip()
        label = _TAG_LABELS.get(m.group(1), m.group(1).replace("_", " ").capitalize())
        if content and not _LABEL_START.match(content):
            content = f"{label}: {content}"
        text = text[: m.start()] + "\x00" + content + "\x01" + text[m.end() :]
    text = re.sub(r"</?\w+>", "", text)
    main_parts: list[str] = []
    extras: list[str] = []
    # split top-level marked segments out of the main text; drop the parentheses that wrapped them
    depth = 0
    buf = ""
    for ch in text:
        if ch == "\x00":
            if depth == 0:
                main_parts.append(buf)
                buf = ""
            else:  # a nested tag starts a new sentence inside the outer one
                buf = buf.rstrip()
                if buf and buf[-1] not in ".!?":
                    buf += "."
                buf += " "
            depth += 1
            continue
        if ch == "\x01":
            depth -= 1
            if depth == 0:
                extras.append(buf)
                buf = ""
            else:
                buf += " "
            continue
        buf += ch
    main_parts.append(buf)
    main = " ".join(p for p in main_parts)
    main = re.sub(r"\(\s*\)", "", main)
    main = re.sub(r"\s+", " ", main).strip()
    sentences = [main] if main else []
    for e in extras:
        e = re.sub(r"\s+", " ", e).strip()
        if e:
            sentences.append(e)
    out = ""
    for s in sentences:
        if out and out[-1] not in ".!?":
            out += "."
        out = f"{out} {s}".strip()
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise DataError(
                    f"{path}, line {lineno}: not valid JSON.",
                    fix="restore the file from the clca data bundle.",
                ) from None
    return rows


def load_seeds(data_dir: str | Path | None = None) -> list[Scenario]:
    """All Sotopia (environment, character pair) combinations as generic scenarios, in a stable order.

    ``seed_id`` is ``{env_id}-{k}`` with ``k`` the pair's rank among that environment's combos (by combo id).
    """
    envs = _read_jsonl(data_file("sotopia/environment_profiles.jsonl", data_dir))
    agents = {a["agent_id"]: a for a in _read_jsonl(data_file("sotopia/agent_profiles.jsonl", data_dir))}
    combos_path = data_file("sotopia/env_agent_combo_storages.jsonl", data_dir)
    by_env: dict[str, list[dict[str, Any]]] = {}
    for c in _read_jsonl(combos_path):
        by_env.setdefault(c["env_id"], []).append(c)
    seeds: list[Scenario] = []
    for env in envs:
        goals = [strip_tags(g) for g in env["agent_goals"]]
        for k, combo in enumerate(sorted(by_env.get(env["env_id"], []), key=lambda c: c["combo_id"])):
            chars: list[Character] = []
            for i, aid in enumerate(combo["agent_ids"][:2]):
                a = agents.get(aid)
                if a is None:
                    raise DataError(
                        f"{combos_path}: combo {combo['combo_id']} names agent {aid}, not in agent_profiles.jsonl.",
                        fix="restore the sotopia files from the clca data bundle.",
                    )
                chars.append(
                    Character(
                        first_name=a["first_name"],
                        last_name=a.get("last_name", ""),
                        age=a.get("age"),
                        gender=a.get("gender", ""),
                        pronoun=a.get("gender_pronoun", ""),
                        occupation=a.get("occupation", ""),
                        background=a.get("public_info", ""),
                        personality=a.get("personality_and_values", ""),
                        secret=a.get("secret", ""),
                        goal=goals[i] if i < len(goals) else "",
                    )
                )
            sid = f"{env['env_id']}-{k}"
            seeds.append(
                Scenario(
                    id=sid,
                    seed_id=sid,
                    culture="generic",
                    setting=env["scenario"].strip(),
                    relationship=RELATIONSHIPS.get(str(env.get("relationship", "")), ""),
                    characters=chars,
                )
            )
    return seeds


def pick_seeds(seeds: Sequence[Scenario], n: int, seed: int = 0) -> list[Scenario]:
    """``n`` seeds chosen deterministically and spread over environments.

    Environments are shuffled with ``seed``; one character pair (also seeded) is taken from each environment
    in turn, then a second pair from each, and so on. Every culture gets the same selection, so cultures are
    adapted from the same situations (as in the paper).
    """
    rng = random.Random(seed)
    by_env: dict[str, list[Scenario]] = {}
    for s in seeds:
        by_env.setdefault(s.seed_id.rsplit("-", 1)[0], []).append(s)
    envs = sorted(by_env)
    rng.shuffle(envs)
    pools = {e: rng.sample(by_env[e], len(by_env[e])) for e in envs}
    out: list[Scenario] = []
    depth = 0
    while len(out) < n and any(len(p) > depth for p in pools.values()):
        for e in envs:
            if len(out) >= n:
                break
            if len(pools[e]) > depth:
                out.append(pools[e][depth])
        depth += 1
    return out


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


def parse_names(raw: str, seed: Scenario) -> list[tuple[str, str]]:
    """The two (first, last) names of a names-step reply; ``ValueError`` with a one-line reason if unusable."""
    obj = _read_names(raw)
    pairs = [(p.first_name.strip(), p.last_name.strip()) for p in (obj.person1, obj.person2)]
    banned = {n.lower() for n in source_names(seed)}
    for first, last in pairs:
        if f"{first}{last}".replace(" ", "").lower() in _PLACEHOLDER_KEYS:
            raise ValueError(f"{first} {last!s} is a placeholder name")
        for part in (first, last):
            if not re.fullmatch(r"[^\W\d_](?:[^\W\d_]|['. -])*", part) or len(part) > 40:
                raise ValueError(f"unusable name {part!r}")
            if any(w.lower() in banned for w in re.findall(r"[^\W\d_][\w'-]*", part)):
                raise ValueError(f"the original name {part!r} was kept")
    if pairs[0] == pairs[1]:
        raise ValueError("both people got the same name")
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
    return [
        {
            "role": "system",
            "content": f"You are an expert in {profile.demonym} culture who writes realistic social role-play scenarios.",
        },
        {"role": "user", "content": user},
    ]


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
                '"setting" and "characters" (two objects with first_name, last_name, age, gender, pronoun, '
                f"occupation, background, personality, secret, goal), every field filled, {names}."
            ),
        },
    ]


def validate_adaptation(raw: str, seed: Scenario) -> AdaptedScenario:
    """Parse and check a model reply; raise ``ValueError`` with a one-line reason when it is unusable."""
    try:
        obj = extract_json(raw)
    except JsonTextError as exc:
        raise ValueError(str(exc)) from None
    try:
        adapted = AdaptedScenario.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(object)"
        raise ValueError(f"schema error at {loc}: {err.get('msg', 'invalid')}") from None
    if not adapted.setting.strip():
        raise ValueError("the field 'setting' is empty")
    for i, c in enumerate(adapted.characters):
        for field, value in c.model_dump().items():
            if field == "age":
                continue
            src = getattr(seed.characters[i], field, "x")
            if isinstance(value, str) and not value.strip() and str(src).strip():
                raise ValueError(f"the field characters[{i}].{field} is empty")
    texts = [adapted.setting] + [str(v) for c in adapted.characters for v in c.model_dump().values()]
    blob = "\n".join(texts)
    for name in source_names(seed):
        if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", blob, flags=re.I):
            raise ValueError(f"the original name {name!r} is still in the scenario")
    return adapted


def _rounds(
    backend: Backend,
    chats: dict[int, Chat],
    params: GenerationParams,
    max_retries: int,
    raws: list[list[str]],
    summary: ScenarioSummary,
    accept: Callable[[int, str], None],
    retry: Callable[[int, Chat, str, ValueError], Chat],
) -> None:
    """Up to ``max_retries + 1`` batched rounds: ``accept(i, reply)`` raises ``ValueError`` for an unusable
    reply, and ``retry(i, chat, reply, error)`` gives the chat for the next round. Every reply goes to
    ``raws[i]``."""
    pending = sorted(chats)
    for attempt in range(max_retries + 1):
        if not pending:
            break
        outs = backend.generate(
            [chats[i] for i in pending], params, seeds=[params.seed + attempt] * len(pending)
        )
        summary.llm_calls += len(pending)
        if attempt:
            summary.retries += len(pending)
        still: list[int] = []
        for i, out in zip(pending, outs, strict=True):
            raws[i].append(out)
            try:
                accept(i, out)
            except ValueError as exc:
                chats[i] = retry(i, chats[i], out, exc)
                still.append(i)
        pending = still


def _name_step(
    backend: Backend,
    chunk: Sequence[tuple[CultureProfile, Scenario]],
    params: GenerationParams,
    max_retries: int,
    raws: list[list[str]],
    errors: list[str],
    summary: ScenarioSummary,
) -> dict[int, list[tuple[str, str]]]:
    """New names for each (culture, seed) of a chunk: index -> two (first, last) pairs; misses keep an error."""
    named: dict[int, list[tuple[str, str]]] = {}
    rejected: dict[int, list[str]] = {}

    def accept(i: int, out: str) -> None:
        named[i] = parse_names(out, chunk[i][1])

    def retry(i: int, _chat: Chat, out: str, exc: ValueError) -> Chat:
        # a fresh prompt naming what failed (a repair turn made the 0.5B teacher repeat itself)
        errors[i] = f"names step: {exc}"
        rejected.setdefault(i, []).append(_names_in(out) or str(exc))
        base = names_chat(chunk[i][1], chunk[i][0])
        note = "; ".join(rejected[i])
        return [base[0], {"role": "user", "content": f"{base[1]['content']}\nNot these: {note}."}]

    chats = {i: names_chat(s, p) for i, (p, s) in enumerate(chunk)}
    _rounds(backend, chats, params, max_retries, raws, summary, accept, retry)
    return named


def _adapt_step(
    backend: Backend,
    chunk: Sequence[tuple[CultureProfile, Scenario]],
    shown: Sequence[Scenario],
    pending: Sequence[int],
    keep_names: bool,
    params: GenerationParams,
    max_retries: int,
    raws: list[list[str]],
    errors: list[str],
    summary: ScenarioSummary,
) -> dict[int, AdaptedScenario]:
    """Adaptations of the ``pending`` items of a chunk (``shown``: the scenario each prompt shows), validated
    against the seed and repaired in follow-up turns; misses keep an error."""
    adapted: dict[int, AdaptedScenario] = {}

    def accept(i: int, out: str) -> None:
        adapted[i] = validate_adaptation(out, chunk[i][1])

    def retry(i: int, chat: Chat, out: str, exc: ValueError) -> Chat:
        errors[i] = str(exc)
        return repair_chat(chat, out, errors[i], shown[i], keep_names=keep_names)

    chats = {i: adaptation_chat(shown[i], chunk[i][0], keep_names=keep_names) for i in pending}
    _rounds(backend, chats, params, max_retries, raws, summary, accept, retry)
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


class ScenarioSummary(BaseModel):
    """Counts of one ``adapt_scenarios`` call."""

    requested: int = 0  # (culture, seed) pairs asked for
    skipped: int = 0  # already in scenarios.jsonl or scenario_failures.jsonl
    written: int = 0
    failed: int = 0
    llm_calls: int = 0
    retries: int = 0
    names_only: int = 0  # written scenarios where the model changed nothing but the names


def adapt_scenarios(
    backend: Backend,
    run_dir: str | Path,
    cultures: Sequence[str],
    per_culture: int,
    *,
    seed: int = 0,
    max_retries: int = 2,
    progress: bool = True,
    batch_size: int = 64,
    temperature: float = 0.7,
    max_new_tokens: int = 1024,
    data_dir: str | Path | None = None,
    names_first: bool = True,
) -> ScenarioSummary:
    """Adapt ``per_culture`` Sotopia seeds to each culture; append to ``run_dir/scenarios.jsonl``.

    ``names_first`` (default): first ask only for two new names (:func:`names_chat`, retried up to
    ``max_retries`` times), put them into the seed (:func:`rename`), then ask for the adaptation of the renamed
    scenario; small models that copy a scenario back then still cannot keep a source name. ``False``: one
    prompt asks for everything, as in the paper. Returns a :class:`ScenarioSummary`. Failures go to
    ``scenario_failures.jsonl``. Resumable.
    """
    run = Path(run_dir)
    store = JsonlStore(run / SCENARIOS_FILE, Scenario)
    fails = JsonlStore(run / FAILURES_FILE, ScenarioFailure)
    done = store.ids() | fails.ids()
    profiles = [get_profile(c, data_dir) for c in cultures]
    chosen = pick_seeds(load_seeds(data_dir), per_culture, seed)
    summary = ScenarioSummary(requested=len(profiles) * len(chosen))
    todo: list[tuple[CultureProfile, Scenario]] = []
    for p in profiles:
        for s in chosen:
            if f"{slug(p.country)}-{s.seed_id}" in done:
                summary.skipped += 1
            else:
                todo.append((p, s))
    schema = AdaptedScenario.model_json_schema()
    params = GenerationParams(
        temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, json_schema=schema
    )
    name_params = GenerationParams(
        temperature=temperature, max_new_tokens=96, seed=seed, json_schema=_Names.model_json_schema()
    )
    from clca.progress import stage_progress

    with stage_progress("Adapting scenarios", total=len(todo), enabled=progress) as advance:
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + batch_size]
            raws: list[list[str]] = [[] for _ in chunk]
            errors: list[str] = [""] * len(chunk)
            shown = [s for _, s in chunk]  # the scenario each adaptation prompt shows
            pending = list(range(len(chunk)))
            if names_first:
                named = _name_step(backend, chunk, name_params, max_retries, raws, errors, summary)
                for i, pairs in named.items():
                    shown[i] = rename(chunk[i][1], pairs)
                pending = sorted(named)
            results = _adapt_step(
                backend, chunk, shown, pending, names_first, params, max_retries, raws, errors, summary
            )
            good: list[Scenario] = []
            bad: list[ScenarioFailure] = []
            for i, (p, s) in enumerate(chunk):
                rid = f"{slug(p.country)}-{s.seed_id}"
                res = results.get(i)
                if res is None:
                    bad.append(
                        ScenarioFailure(
                            id=rid,
                            seed_id=s.seed_id,
                            culture=p.country,
                            model=backend.spec,
                            reason=f"no valid scenario after {max_retries + 1} attempts: {errors[i]}",
                            raw=raws[i],
                        )
                    )
                    continue
                chars = [
                    Character(
                        **{**c.model_dump(), "age": c.age if c.age is not None else s.characters[j].age}
                    )
                    for j, c in enumerate(res.characters)
                ]
                good.append(
                    Scenario(
                        id=rid,
                        seed_id=s.seed_id,
                        culture=p.country,
                        setting=res.setting.strip(),
                        relationship=s.relationship,
                        characters=chars,
                        model=backend.spec,
                        prompt_version=NAMES_FIRST_PROMPT_VERSION if names_first else PROMPT_VERSION,
                        source=s.source,
                        adapted_fields=changed_fields(shown[i], res),
                    )
                )
            summary.names_only += sum(1 for g in good if g.adapted_fields == [])
            summary.written += store.extend(good)
            summary.failed += fails.extend(bad)
            advance(len(chunk))
    return summary
