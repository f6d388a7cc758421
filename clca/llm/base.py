"""The one interface through which clca calls a language model.

A backend answers two kinds of request, always in batches (batching is the backend's business):

* ``generate(chats, params)``: one completion per chat (a list of ``{"role", "content"}`` messages).
* ``score(requests)``: for each :class:`ScoreRequest`, the log-probability that the assistant's reply *gives*
  each answer option: the reply (after the request's answer prefix) starts with the option's tokens, and the
  token after them does not continue it (:func:`continues`: no digit after a number, no letter after a word).
  So "1" and "10" stay distinct, and a reply "1. Very important" gives option 1. Every backend computes
  this same quantity; where a route cannot see the whole next-token distribution (top-k log-probs of a
  server) it reports the mass it could not attribute in :attr:`ScoreResult.uncovered`.

Stages never import transformers or an HTTP client: they get a :class:`Backend` from
:func:`clca.llm.load_backend` and every call goes through the content-addressed cache
(:class:`clca.llm.cache.CachedBackend`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


Chat = list[Message]


class GenerationParams(BaseModel):
    """Sampling parameters. ``temperature == 0`` means greedy decoding."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_new_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int = 0
    json_schema: dict[str, object] | None = None  # structured output where the backend supports it


class ScoreRequest(BaseModel):
    """Score ``options`` as complete assistant replies to ``messages``.

    ``prefix_len`` optionally says how many leading messages are shared with other requests of the
    batch (e.g. the culture or persona system prompt); a backend may compute that prefix once.
    ``answer_prefix`` is text the assistant reply starts with before the option (e.g. "Answer: ").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    messages: list[Message]
    options: list[str] = Field(min_length=1)
    answer_prefix: str = ""


class ScoreResult(BaseModel):
    """log P(the reply gives option k) (natural log), same order as the request's options.

    ``format_mass`` = sum_k P(gives k): how much of the model's reply distribution the options stand for.
    ``uncovered``: probability mass the route could not attribute (options or continuations outside a
    server's top-k list); 0 for exact routes.
    """

    logprobs: list[float]
    n_tokens: list[int] = Field(default_factory=list)  # option tokens scored per option
    uncovered: float = 0.0

    @property
    def format_mass(self) -> float:
        return float(sum(math.exp(x) for x in self.logprobs if x > -700))


#: a log-probability standing for "impossible" (JSON has no -inf)
LOG_ZERO = -1e4


def continues(option: str, token_text: str) -> bool:
    """Whether a token with text ``token_text`` right after ``option`` would continue it into something else:
    a digit after a number ("1" -> "10"), a letter after a word. Leading spaces end the option."""
    if not option or not token_text:
        return False
    last, first = option[-1], token_text[0]
    if last in "0123456789":
        return first in "0123456789"
    if last.isalpha():
        return first.isalpha()
    return False


def gives(option_logprob: float, continuation_mass: float) -> float:
    """log P(reply gives the option) from log P(option tokens) and P(next token continues the option)."""
    rest = 1.0 - continuation_mass
    if option_logprob <= LOG_ZERO or rest <= 0.0:
        return LOG_ZERO
    return max(LOG_ZERO, option_logprob + math.log(rest))


class Backend(ABC):
    """A model that can generate chat replies and score answer options."""

    #: the spec the user gave, e.g. ``embedded:smollm2-135m``
    spec: str

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the model's outputs could change (weights, adapter, dtype...)."""

    @property
    def generation_fingerprint(self) -> str:
        """Like :attr:`fingerprint`, for ``generate`` only: it also names the decoding algorithm where a backend
        has more than one (a different sampler gives different samples for the same seed)."""
        return self.fingerprint

    @abstractmethod
    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        """One completion per chat, in order.

        ``seeds`` (optional, one per chat) distinguishes samples of the same chat (e.g. the two role-play
        samples of a scenario): it is part of the cache key, and backends seed their sampler with it where
        they can (per request on servers; per batch, from the first seed, for local batched sampling).
        """

    @abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Option log-probabilities per request, in order."""

    def usage(self) -> dict[str, int]:
        """Counts of what the backend did (requests, retries by cause, ...) for the stage summaries."""
        return {}

    def manifest_info(self) -> dict[str, str]:
        """What the run manifest records about this backend besides its spec and fingerprint: a local model with
        ``+quant=`` says which generation weight format it chose and why (``quant``, ``quant_reason``,
        ``hardware``); empty for every other backend."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, GPU memory)."""
