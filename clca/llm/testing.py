"""A model-free backend for tests and dry runs (like lm-eval-harness's dummy model).

:class:`ScriptedBackend` answers ``generate`` with a function of the chat (and the item's seed), and
``score`` with a function of the request (default: uniform over the options). It records every call, so a
test can check batch sizes, seeds and prompts. :func:`stage_reply` is a reply function that recognises every
clca stage's prompt and answers it validly, so a whole pipeline runs without a model; the spec
``scripted:auto`` (``clca run --set models.teacher=scripted:auto ...``) loads it from any config.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult

Reply = Callable[..., str]


class Call(NamedTuple):
    """One ``generate`` call as the backend received it."""

    chats: list[Chat]
    params: GenerationParams
    seeds: list[int] | None


class ScriptedBackend(Backend):
    """Replies computed by ``reply(chat)`` or ``reply(chat, seed)`` (default :func:`stage_reply`); scores by
    ``score_fn(request)`` (default: equal log-probs); ``crash_after`` injects a crash after that many calls."""

    def __init__(
        self,
        reply: Reply | str | None = None,
        *,
        score_fn: Callable[[ScoreRequest], list[float]] | None = None,
        spec: str = "scripted",
        fingerprint: str | None = None,
        crash_after: int | None = None,
    ) -> None:
        fn: Reply
        if reply is None:
            fn = stage_reply
        elif isinstance(reply, str):
            text = reply

            def fn(chat: Chat) -> str:
                return text

        else:
            fn = reply
        self._reply: Reply = fn
        self._arity = len(inspect.signature(fn).parameters)
        self._score = score_fn
        self.spec = spec
        self._fingerprint = fingerprint or spec
        #: every generate call, in order
        self.calls: list[Call] = []
        #: every score call's requests, in order
        self.score_calls: list[list[ScoreRequest]] = []
        self.closed = False
        #: fault injection: ``generate`` raises ``RuntimeError`` once this many calls were answered
        self.crash_after = crash_after
        #: seconds each generate call waits (see :data:`DELAY_ENV`)
        self.delay_s = 0.0

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def batches(self) -> list[int]:
        """Chats per generate call, in order."""
        return [len(c.chats) for c in self.calls]

    @property
    def chats(self) -> list[Chat]:
        """Every chat received by ``generate``, in order."""
        return [chat for c in self.calls for chat in c.chats]

    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise RuntimeError("simulated crash")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.calls.append(Call(list(chats), params, list(seeds) if seeds is not None else None))
        out = []
        for i, chat in enumerate(chats):
            seed = seeds[i] if seeds is not None else None
            out.append(self._reply(chat, seed) if self._arity >= 2 else self._reply(chat))
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        self.score_calls.append(list(requests))
        out = []
        for r in requests:
            lps = self._score(r) if self._score is not None else [0.0] * len(r.options)
            out.append(ScoreResult(logprobs=[float(x) for x in lps], n_tokens=[1] * len(r.options)))
        return out

    def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------------------ a reply for every stage

_FIRST = ["Amara", "Bo", "Chen", "Daria", "Emil", "Farah", "Goro", "Hana", "Ines", "Jun"]
_LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowal", "Reyes", "Ito"]


def _names_reply(user: str) -> str:
    k = sum(map(ord, user)) % len(_FIRST)
    pairs = [(_FIRST[(k + j) % 10], _LAST[(k + 3 * j + 1) % 10]) for j in (0, 1)]
    return json.dumps({f"person{j + 1}": {"first_name": f, "last_name": s} for j, (f, s) in enumerate(pairs)})


def _adapt_reply(user: str) -> str:
    m = re.search(r"Scenario \(JSON\):\n(\{.*\})\n\nReply", user, re.S) or re.search(
        r"Input: (\{.*\}) Output:$", user, re.S
    )
    if m is None:
        return "{}"
    obj: dict[str, Any] = json.loads(m.group(1))
    country = re.search(r"believable in ([^:\n]+):", user) or re.search(r"occur within ([^?]+)\?", user)
    if "Here is a generic social interaction." in user:  # the paper's prompt asks for new names
        for j, c in enumerate(obj["characters"]):
            c["first_name"], c["last_name"] = [("Wei", "Zhang"), ("Mei", "Chen")][j % 2]
    obj["setting"] = f"{obj['setting']} (in {country.group(1) if country else 'the culture'})"
    for c in obj["characters"]:
        c["occupation"] = c.get("occupation") or "clerk"
        for key in ("background", "personality", "secret", "goal", "pronoun", "gender"):
            c[key] = c.get(key) or "-"
    return json.dumps(obj)


def _norm_reply(user: str) -> str:
    country = re.search(r"set in ([^,.\n]+)", user)
    where = country.group(1) if country else "a city"
    chars = [
        {
            "first_name": f,
            "last_name": s,
            "age": 30 + 5 * j,
            "gender": "Woman" if j else "Man",
            "pronoun": "she/her" if j else "he/him",
            "occupation": "teacher" if j else "engineer",
            "background": f"{f} lives in {where}.",
            "personality": "calm",
            "secret": f"{f} once broke a promise.",
            "goal": f"Convince the other person ({f}'s view).",
        }
        for j, (f, s) in enumerate([("Amara", "Okafor"), ("Bo", "Lindqvist")])
    ]
    return json.dumps({"setting": f"A meeting in {where}.", "relationship": "friend", "characters": chars})


def stage_reply(chat: Chat, seed: int | None = None) -> str:
    """A valid answer to any clca stage prompt (scenario names/adaptation, role-play, judge, intents, survey
    answers), recognised by its wording; deterministic in the prompt and the seed."""
    text = "\n".join(m["content"] for m in chat)
    user = chat[-1]["content"]
    if '"person1": {"first_name"' in user:
        return _names_reply(user)
    if "Scenario (JSON):" in user or user.startswith("Here is a generic social interaction."):
        return _adapt_reply(user)
    if "Social norm or situation:" in user:
        return _norm_reply(user)
    if "ACTION: speak" in text and "Conversation history:" in user:
        turn = int(m.group(1)) if (m := re.search(r"You are at Turn #(\d+)", user)) else 0
        if turn >= 3:
            return "ACTION: leave\nOUTPUT: Goodbye, and thank you."
        return f"ACTION: speak\nOUTPUT: Reply number {turn} with a thought (seed {seed})."
    if "Meta label:" in user:
        return "Meta label: good\nConfidence: confident\nCritic: The judgement is well founded."
    if "Culture alignment:" in user:
        return "Culture alignment: aligned to the culture\nConfidence: confident"
    if "Quality:" in user:
        return "Quality: good\nConfidence: very confident"
    if "INTENT:" in user:
        return "INTENT: To keep a polite tone, as is customary in this culture."
    if user.rstrip().endswith("ANSWER:"):  # the paper's question prompt (options not listed)
        return str(1 + len(text) % 2)
    nums = re.findall(r"^(\d+)\. ", user, re.M)
    return nums[0] if nums else "OK"


#: seconds a ``scripted:auto`` backend waits per generate call (a test hook: lets a test kill a stage mid-way)
DELAY_ENV = "CLCA_SCRIPTED_DELAY_S"


def load_scripted(name: str) -> ScriptedBackend:
    """The backend of a ``scripted:<name>`` spec (only ``auto``: :func:`stage_reply`)."""
    be = ScriptedBackend(stage_reply, spec=f"scripted:{name}")
    be.delay_s = float(os.environ.get(DELAY_ENV) or 0.0)
    return be


__all__ = ["ScriptedBackend", "load_scripted", "stage_reply"]
