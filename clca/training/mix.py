"""The CLCA multi-task training mix: both speakers' perspectives of each kept conversation, plus intents.

From a run directory (scenarios, episodes, judgements, intents; see :class:`clca.rundir.RunDir`) this builds,
for one culture, three kinds of conversational examples (``messages`` lists of ``{role, content}``):

``dialogue_p1``
    The conversation from person 1's side. The system prompt describes the character the *assistant* plays
    (:func:`dialogue_system_prompt`, the paper's perspective prompt: the setting, the relationship, that
    character's public card, and "Imagine you are {name}, your task is to act and speak like {name}, a member
    of the {demonym} culture"); person 1's turns
    are assistant messages, person 2's are user messages. Because person 1 opens the conversation, a short
    user cue (``"(The conversation begins. You speak first.)"``) precedes the first assistant turn, so every
    example alternates user/assistant and works with chat templates that require a user message first.
``dialogue_p2``
    The same conversation from person 2's side: person 1's opening is the first user message.
``intent``
    Intent understanding (:func:`intent_system_prompt`: the setting, the relationship, the two names and the
    paper's task sentence); then each utterance that has an intent is a user message ``"Name: text"``
    followed by an assistant message ``"Intent: ..."``. Utterances without an intent are folded into the
    next user message (one line each) so the context is kept.

Goals and secrets never appear. A message's text is :func:`clca.render.utterance` (``none`` turns carry
nothing and are dropped); consecutive turns of the same speaker are merged into one message (lines joined by
a newline). Trailing user messages are dropped so that each dialogue ends on an assistant turn; an example
without any assistant turn is skipped.

The paper's released code put the *other* speaker's description in the system prompt of the dialogue parts
(a likely bug); here the system prompt always describes the character the assistant voices.

Shares: the three parts are resampled deterministically (seeded) to the configured proportions (equal by
default): the part with the most examples relative to its ratio sets the scale and the others are
duplicated (whole passes over the part, then a seeded sample for the remainder); ``max_examples`` then caps
the total, scaling every part down by sampling. The data are split into train/validation *by scenario*
(seeded: a shuffled ``val_fraction`` of the scenarios, at least one when the fraction is above 0 and there are
two or more) before resampling, so the conversations of one scenario (its role-play samples, which share the
setting and the characters) never straddle the split; the validation split is not resampled.

The no-culture control's volume rule lives here too (:func:`build_control_mix`): its training split gets the
mean number of examples of the cultures' mixes and, counted with the student's tokenizer
(:func:`token_counter`), their mean number of tokens within :data:`VOLUME_TOLERANCE`.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from clca.errors import DataError
from clca.records import GENERIC, Episode, MixResult, MixStats, Scenario, Turn
from clca.render import public_card, relationship_phrase, utterance
from clca.rundir import MixDir, RunDir
from clca.training.config import MixConfig

Task = Literal["dialogue_p1", "dialogue_p2", "intent"]
TASKS: tuple[Task, ...] = ("dialogue_p1", "dialogue_p2", "intent")
Message = dict[str, str]

OPENING_CUE = "(The conversation begins. You speak first.)"


# --------------------------------------------------------------------------- rendering


def _merged(turns: Iterable[Turn]) -> list[tuple[int, str]]:
    """(speaker, text) blocks with ``none`` turns dropped and consecutive same-speaker turns merged."""
    blocks: list[tuple[int, str]] = []
    for t in turns:
        text = utterance(t)
        if text is None:
            continue
        if blocks and blocks[-1][0] == t.speaker:
            blocks[-1] = (t.speaker, blocks[-1][1] + "\n" + text)
        else:
            blocks.append((t.speaker, text))
    return blocks


def _relation(scenario: Scenario) -> str:
    a, b = scenario.characters
    rel = relationship_phrase(scenario.relationship, a.name, b.name)
    return f"{rel}\n" if rel else ""


def dialogue_system_prompt(scenario: Scenario, me: int, culture_adj: str | None) -> str:
    """System prompt for a dialogue example (the paper's perspective prompt): the setting, the relationship,
    the public card of the character the assistant plays (``characters[me]``) and "Imagine you are ...".

    Only public information appears; goals and secrets (of either character) are never included.
    ``culture_adj`` ``None``: no culture (the no-culture control).
    """
    mine = scenario.characters[me]
    member = f", a member of the {culture_adj} culture" if culture_adj else ""
    return (
        f"Scenario: {scenario.setting.strip()}\n"
        + _relation(scenario)
        + f"Information about {mine.name}:\n{public_card(mine)}\n"
        + f"Imagine you are {mine.name}, your task is to act and speak like {mine.name}{member}."
    )


def dialogue_messages(
    episode: Episode, scenario: Scenario, me: int, culture_adj: str | None
) -> list[Message] | None:
    """One speaker's view of a conversation; ``None`` when that speaker never says anything."""
    blocks = _merged(episode.turns)
    msgs: list[Message] = [{"role": "system", "content": dialogue_system_prompt(scenario, me, culture_adj)}]
    if blocks and blocks[0][0] == me:
        msgs.append({"role": "user", "content": OPENING_CUE})
    for speaker, text in blocks:
        msgs.append({"role": "assistant" if speaker == me else "user", "content": text})
    while msgs and msgs[-1]["role"] == "user":
        msgs.pop()
    if not any(m["role"] == "assistant" for m in msgs):
        return None
    return msgs


def intent_system_prompt(scenario: Scenario, culture_adj: str | None) -> str:
    """System prompt of the intent task (the paper's): the setting, the relationship, the two names and the
    task sentence; no goals or secrets."""
    a, b = scenario.characters
    where = f" of {culture_adj} culture" if culture_adj else ""
    return (
        f"Scenario: {scenario.setting.strip()}\n"
        + _relation(scenario)
        + f"There are two participants in this conversation, {a.name} and {b.name}.\n"
        + f"Your task is to predict the intent of participants in the context of social or cultural "
        f"expectations{where} in a short sentence."
    )


def intent_messages(
    episode: Episode, scenario: Scenario, intents: dict[int, str], culture_adj: str | None
) -> list[Message] | None:
    """The intent-understanding example of an episode (``intents``: turn index -> intent text)."""
    msgs: list[Message] = [{"role": "system", "content": intent_system_prompt(scenario, culture_adj)}]
    pending: list[str] = []
    for i, t in enumerate(episode.turns):
        text = utterance(t)
        if text is None:
            continue
        pending.append(f"{t.name}: {text}")
        intent = intents.get(i)
        if intent:
            msgs.append({"role": "user", "content": "\n".join(pending)})
            msgs.append({"role": "assistant", "content": f"Intent: {intent.strip()}"})
            pending = []
    if len(msgs) == 1:
        return None
    return msgs


# --------------------------------------------------------------------------- building


def _resample(items: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """Exactly ``n`` items: whole passes over ``items`` then a seeded sample of the remainder."""
    if not items or n <= 0:
        return []
    full, rest = divmod(n, len(items))
    return items * full + rng.sample(items, rest)


def _targets(avail: dict[Task, int], ratios: dict[str, float], max_examples: int | None) -> dict[Task, int]:
    """Per-part example counts honouring the ratios without dropping data (then capped by max_examples)."""
    active = [t for t in TASKS if ratios[t] > 0]
    scale = max(avail[t] / ratios[t] for t in active)
    total_ratio = sum(ratios[t] for t in active)
    if max_examples is not None:
        scale = min(scale, max_examples / total_ratio)
    return {t: (round(scale * ratios[t]) if t in active else 0) for t in TASKS}


TokenCounter = Callable[[list[Message]], int]


def approx_tokens(messages: list[Message]) -> int:
    """A tokenizer-free token count (characters / 4), used when the student's tokenizer is not at hand."""
    return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)


#: how close the no-culture control's training tokens must come to its target (a share of the target)
VOLUME_TOLERANCE = 0.05


def match_volume(
    rows: list[dict[str, Any]],
    pools: dict[Task, list[dict[str, Any]]],
    tokens: Callable[[dict[str, Any]], int],
    target: int,
    tolerance: float = VOLUME_TOLERANCE,
) -> list[dict[str, Any]]:
    """Swap rows (each for another of the same task) until the total tokens are within ``tolerance`` of
    ``target``; the number of rows and the share of each task stay as they are. Deterministic."""
    rows = list(rows)
    total = sum(tokens(r) for r in rows)
    for _ in range(4 * len(rows) + 10):
        if abs(total - target) <= tolerance * target:
            break
        best: tuple[int, int, dict[str, Any]] | None = None  # (distance after the swap, row, replacement)
        for i, r in enumerate(rows):
            for cand in pools.get(r["task"], ()):
                d = abs(total - tokens(r) + tokens(cand) - target)
                if best is None or d < best[0]:
                    best = (d, i, cand)
        if best is None or best[0] >= abs(total - target):
            break
        _, i, cand = best
        total += tokens(cand) - tokens(rows[i])
        rows[i] = cand
    return rows


def trim_to_volume(
    rows: list[dict[str, Any]], count: TokenCounter, target: int, tolerance: float = VOLUME_TOLERANCE
) -> list[dict[str, Any]]:
    """When ``rows`` still hold more than ``target`` tokens (+ ``tolerance``) after :func:`match_volume` (a
    small pool of long conversations), shorten the longest examples by their last exchange (a user message
    and the assistant reply after it; every example keeps at least one reply) until within tolerance, never
    going below ``target`` − tolerance. The number of examples stays as it is."""
    rows = [dict(r) for r in rows]
    total = sum(int(r["tokens"]) for r in rows)
    lo, hi = (1 - tolerance) * target, (1 + tolerance) * target
    while total > hi:
        done = False
        for i in sorted(range(len(rows)), key=lambda k: -int(rows[k]["tokens"])):
            msgs = rows[i]["messages"]
            if sum(1 for m in msgs if m["role"] == "assistant") < 2:
                continue
            cut = msgs[:-2]
            n = count(cut)
            if total - int(rows[i]["tokens"]) + n < lo:
                continue
            total += n - int(rows[i]["tokens"])
            rows[i] = {**rows[i], "messages": cut, "tokens": n}
            done = True
            break
        if not done:
            break
    return rows


def build_mix(
    run: RunDir,
    culture: str,
    cfg: MixConfig | None = None,
    *,
    seed: int = 0,
    count_tokens: TokenCounter | None = None,
    match: tuple[int, int] | None = None,
) -> MixResult:
    """Build and save the training mix of ``culture`` from ``run`` (see the module docstring).

    Writes a ``datasets.DatasetDict`` (``train`` and, unless empty, ``validation``; columns ``messages``,
    ``episode_id``, ``task``) with ``save_to_disk`` to ``run.mix_dir(culture, cfg.ablation)``, and
    ``mix_stats.json`` (:class:`~clca.records.MixStats`) beside it. Excluded: episodes without a ``keep=True`` judgement
    (when ``require_judge``), and episodes flagged by :func:`clca.leakage.flagged_episode_ids`.

    ``culture`` ``generic`` builds the no-culture control's mix (no culture in its prompts). ``count_tokens``
    counts an example's tokens (the student's tokenizer; default :func:`approx_tokens`). ``match`` =
    (examples, tokens): the training split gets exactly that many examples (in the configured task shares) and,
    by swapping examples within a task, a token count within 5% of it — the control's volume matched to the
    cultures'.
    """
    from datasets import Dataset, DatasetDict, Features, List, Value

    from clca.culture import get_profile, resolve_country
    from clca.leakage import flagged_episode_ids

    cfg = cfg or MixConfig()
    country = GENERIC if culture == GENERIC else resolve_country(culture)
    count = count_tokens or approx_tokens
    ratios = cfg.ratios()

    run.require(run.episodes_file)
    episodes = [e for e in run.episodes() if e.culture == country]
    if not episodes:
        raise DataError(
            f"{run.episodes_file} has no episodes for culture {country!r}.",
            fix=f"run `clca simulate --culture {country!r}` first, or check the culture name.",
        )
    scenarios = run.scenarios_by_id()

    excluded: Counter[str] = Counter()
    kept_ids: set[str] | None = None
    if cfg.require_judge:
        if not run.judgements_file.exists():
            raise DataError(
                f"{run.judgements_file} is missing, but the mix uses only episodes the judge kept.",
                fix="run `clca judge` first, or build the mix without the judge filter (--no-require-judge).",
            )
        kept_ids = run.kept_episode_ids()
    flagged = flagged_episode_ids(run)

    intents: dict[str, dict[int, str]] = {}
    if ratios["intent"] > 0:
        if not run.intents_file.exists():
            raise DataError(
                f"{run.intents_file} is missing, but the mix has an intent part.",
                fix="run `clca intents` first, or build a dialogue-only mix (--ablation dialogue_only).",
            )
        for rec in run.intents():
            if rec.intent and not rec.error:
                intents.setdefault(rec.episode_id, {})[rec.turn_index] = rec.intent

    usable: list[Episode] = []
    for e in episodes:
        if kept_ids is not None and e.id not in kept_ids:
            excluded["not_kept_by_judge"] += 1
        elif e.id in flagged:
            excluded["leakage_flagged"] += 1
        elif e.scenario_id not in scenarios:
            raise DataError(
                f"episode {e.id} refers to scenario {e.scenario_id}, which is not in {run.scenarios_file}.",
                fix="restore the scenario record or delete the episode and rerun `clca simulate`.",
            )
        else:
            usable.append(e)
    if not usable:
        raise DataError(
            f"no usable episodes for {country!r} in {run.path} (excluded: {dict(excluded)}).",
            fix="generate more episodes (`clca simulate`) or relax the filters (--no-require-judge).",
        )

    adj = None if country == GENERIC else get_profile(country).demonym
    # split by scenario: a scenario's conversations (its samples) all land in one split
    scenario_ids = sorted({e.scenario_id for e in usable})
    rng = random.Random(seed)
    rng.shuffle(scenario_ids)
    n_val = round(cfg.val_fraction * len(scenario_ids))
    if cfg.val_fraction > 0 and n_val == 0 and len(scenario_ids) >= 2:
        n_val = 1
    val_scenarios = set(scenario_ids[:n_val])
    val_ids = {e.id for e in usable if e.scenario_id in val_scenarios}

    parts: dict[str, dict[Task, list[dict[str, Any]]]] = {
        "train": {t: [] for t in TASKS},
        "validation": {t: [] for t in TASKS},
    }
    for e in sorted(usable, key=lambda e: e.id):
        sc = scenarios[e.scenario_id]
        split = "validation" if e.id in val_ids else "train"
        made: dict[Task, list[Message] | None] = {
            "dialogue_p1": dialogue_messages(e, sc, 0, adj) if ratios["dialogue_p1"] > 0 else None,
            "dialogue_p2": dialogue_messages(e, sc, 1, adj) if ratios["dialogue_p2"] > 0 else None,
            "intent": intent_messages(e, sc, intents.get(e.id, {}), adj) if ratios["intent"] > 0 else None,
        }
        for task, msgs in made.items():
            if msgs is not None:
                parts[split][task].append({"messages": msgs, "episode_id": e.id, "task": task})

    available = {t: len(parts["train"][t]) for t in TASKS}
    missing = [t for t in TASKS if ratios[t] > 0 and available[t] == 0]
    if missing:
        raise DataError(
            f"the {country!r} mix in {run.path} has no training examples for {', '.join(missing)}.",
            fix="generate intents (`clca intents`) / more episodes, or use an ablation that leaves that part out.",
        )
    if match is not None:  # exactly match[0] examples in the configured shares (largest remainders)
        share = sum(ratios[t] for t in TASKS)
        exact = {t: match[0] * ratios[t] / share for t in TASKS}
        targets = {t: int(exact[t]) for t in TASKS}
        for t in sorted(TASKS, key=lambda t: exact[t] - targets[t], reverse=True)[
            : match[0] - sum(targets.values())
        ]:
            targets[t] += 1
    else:
        targets = _targets(available, ratios, cfg.max_examples)
    rng = random.Random(seed + 1)
    train_rows: list[dict[str, Any]] = []
    for t in TASKS:
        train_rows.extend(_resample(parts["train"][t], targets[t], rng))
    for row in (r for split in parts.values() for task in split.values() for r in task):
        row["tokens"] = count(row["messages"])
    if match is not None:
        train_rows = match_volume(train_rows, parts["train"], lambda r: int(r["tokens"]), match[1])
        train_rows = trim_to_volume(train_rows, count, match[1])
    rng.shuffle(train_rows)
    val_rows = [row for t in TASKS for row in parts["validation"][t]]

    features = Features(
        {
            "messages": List({"role": Value("string"), "content": Value("string")}),
            "episode_id": Value("string"),
            "task": Value("string"),
        }
    )

    def to_ds(rows: list[dict[str, Any]]) -> Dataset:
        return Dataset.from_dict(
            {
                "messages": [r["messages"] for r in rows],
                "episode_id": [r["episode_id"] for r in rows],
                "task": [r["task"] for r in rows],
            },
            features=features,
        )

    out = run.mix_dir(country, cfg.ablation)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    splits = {"train": to_ds(train_rows)}
    if val_rows:  # an empty split cannot be reloaded by `datasets`; no validation split when there is none
        splits["validation"] = to_ds(val_rows)
    DatasetDict(splits).save_to_disk(str(tmp))
    train_tokens = sum(int(r["tokens"]) for r in train_rows)
    result = MixResult(
        path=out,
        culture=country,
        train_examples=len(train_rows),
        train_tokens=train_tokens,
        token_unit="approx (characters / 4)" if count_tokens is None else "student tokenizer",
        target_examples=match[0] if match is not None else None,
        target_tokens=match[1] if match is not None else None,
        volume_matched=(
            abs(train_tokens - match[1]) <= VOLUME_TOLERANCE * match[1] if match is not None else None
        ),
        validation_examples=len(val_rows),
        train_by_task=dict(Counter(r["task"] for r in train_rows)),
        validation_by_task=dict(Counter(r["task"] for r in val_rows)),
        available_by_task={str(k): v for k, v in available.items()},
        episodes_total=len(episodes),
        episodes_used=len(usable),
        episodes_train=len(usable) - len(val_ids),
        episodes_validation=len(val_ids),
        excluded=dict(excluded),
    )
    MixDir(tmp).write_stats(MixStats(**result.model_dump(), config=cfg.model_dump(), seed=seed))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return result


def load_mix(path: str | Path) -> Any:
    """Load a saved mix (a ``datasets.DatasetDict``) with a clear error when it is not there."""
    from datasets import load_from_disk

    mix = MixDir(path)
    if not mix.exists():
        raise DataError(
            f"no training mix at {mix.path}.", fix="build it first with `clca mix --run ... --culture ...`."
        )
    return load_from_disk(str(mix.path))


def token_counter(spec: str) -> TokenCounter | None:
    """Tokens of one chat example under the student's tokenizer and chat template (``None`` when the student
    has no local tokenizer, e.g. a server or scripted model: then the mix counts characters / 4)."""
    try:
        from transformers import AutoTokenizer

        from clca.llm.registry import resolve_local_model

        path = resolve_local_model(spec.split("+", 1)[0])
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception:  # no local tokenizer: the approximate count is used, and the mix stats say so
        return None

    def count(messages: list[Message]) -> int:
        text = tok.apply_chat_template(messages, tokenize=False)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return count


def control_volume(
    run: RunDir, cultures: Iterable[str], ablation: str | None, count: TokenCounter | None
) -> tuple[int, int]:
    """(examples, tokens) of the no-culture control's training split: the mean over the cultures' mixes (built
    before it), counted the way the control's are."""
    counter = count or approx_tokens
    examples, tokens = [], []
    for c in cultures:
        train = load_mix(run.mix_dir(c, ablation))["train"]
        examples.append(len(train))
        tokens.append(sum(counter(m) for m in train["messages"]))
    if not examples:
        raise DataError("the no-culture control's volume needs at least one culture's mix.")
    return round(sum(examples) / len(examples)), round(sum(tokens) / len(tokens))


def build_control_mix(
    run: RunDir, cultures: Iterable[str], cfg: MixConfig | None = None, *, student: str, seed: int = 0
) -> MixResult:
    """The no-culture control's mix, matched to the mean volume of the cultures' mixes (examples exactly, tokens
    within :data:`VOLUME_TOLERANCE`), tokens counted with ``student``'s tokenizer when it has a local one."""
    cfg = cfg or MixConfig()
    count = token_counter(student)
    target = control_volume(run, cultures, cfg.ablation, count)
    return build_mix(run, GENERIC, cfg, seed=seed, count_tokens=count, match=target)
