"""Sotopia in the data bundle: seed scenarios, and the Sotopia-π inspirational norms.

Seeds: every (environment, character pair) combination of Sotopia (``sotopia/``: 90 environments x 5 pairs
= 450 seeds) becomes a generic :class:`~clca.records.Scenario` (culture ``"generic"``). Sotopia's inline tags
(``<extra_info>``, ``<strategy_hint>``, ``<clarification_hint>``, possibly nested) are turned into plain
sentences appended to the goal ("... fairly. Extra information: Books give you 5 points each ...").
The relationship code ("0".."5") becomes Sotopia's relationship word (:data:`clca.records.RELATIONSHIPS`).

Norms: ``sotopia_pi_inspirational_prompts.csv`` (``|``-separated ``model|source|pk|prompt``): the situations
and norms from which Sotopia-π generated new scenarios (Social Chemistry 101, NormBank, Social IQa).
:func:`load_norms` returns them as :class:`Norm` records in a stable order, ``social_chem`` first, then
``normbank`` (the sources closest to the CLCA paper's "social and cultural norms"), then the others.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from clca.data.layout import DataBundle
from clca.errors import DataError
from clca.records import Character, Scenario, normalise_relationship

#: the bundle files the seeds and norms come from (an alias of :attr:`DataBundle.SOTOPIA_INPUTS`)

_TAG_LABELS = {"extra_info": "Extra information", "strategy_hint": "Hint", "clarification_hint": "Hint"}
_INNER_TAG = re.compile(r"<(\w+)>((?:(?!<\w+>)[\s\S])*?)</\1>")
_LABEL_START = re.compile(r"^\s*(Extra information|Hint|Clarification|Note)\s*:", re.I)


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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a bundle JSONL file; a malformed line is a one-line error."""
    rows: list[dict[str, Any]] = []
    try:
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
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not UTF-8 text.", fix="restore the file from the clca data bundle."
        ) from None
    return rows


def load_seeds() -> list[Scenario]:
    """All Sotopia (environment, character pair) combinations as generic scenarios, in a stable order.

    ``seed_id`` is ``{env_id}-{k}`` with ``k`` the pair's rank among that environment's combos (by combo id).
    """
    bundle = DataBundle.current()
    envs = read_jsonl(bundle.sotopia_environments)
    agents = {a["agent_id"]: a for a in read_jsonl(bundle.sotopia_agents)}
    combos_path = bundle.sotopia_combos
    by_env: dict[str, list[dict[str, Any]]] = {}
    for c in read_jsonl(combos_path):
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
                    relationship=normalise_relationship(env.get("relationship", "")),
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


class Norm(BaseModel):
    """One Sotopia-π inspirational prompt: a social situation or norm to build a scenario around."""

    model_config = ConfigDict(frozen=True)
    source: str  # social_chem | normbank | social_iqa | nan
    pk: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.source}:{self.pk}"


NORM_SOURCE_ORDER = ("social_chem", "normbank", "social_iqa")


def load_norms() -> list[Norm]:
    """Every inspirational prompt, ``social_chem`` first, then ``normbank``, then the rest (file order within)."""
    path = DataBundle.current().sotopia_norms
    rows: list[Norm] = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="|")
            if reader.fieldnames is None or not {"source", "pk", "prompt"} <= set(reader.fieldnames):
                raise DataError(
                    f"{path}: expected the header model|source|pk|prompt.",
                    fix="restore the file from the clca data bundle.",
                )
            for row in reader:
                text = (row.get("prompt") or "").strip()
                if text:
                    rows.append(
                        Norm(source=(row.get("source") or "nan").strip(), pk=row["pk"].strip(), text=text)
                    )
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not UTF-8 text.", fix="restore the file from the clca data bundle."
        ) from None

    def rank(n: Norm) -> int:
        return NORM_SOURCE_ORDER.index(n.source) if n.source in NORM_SOURCE_ORDER else len(NORM_SOURCE_ORDER)

    return sorted(rows, key=rank)  # stable: file order within a source
