"""The one interface through which clca calls a language model.

A backend answers two kinds of request, always in batches (batching is the backend's business):

* ``generate(chats, params)``: one completion per chat (a list of ``{"role", "content"}`` messages).
* ``score(requests)``: for each :class:`ScoreRequest`, the log-probability of each answer option being the
  assistant's *whole* reply after the chat (option tokens followed by the end-of-turn marker where the
  backend can see it), so multi-token options such as "10" vs "1" are scored correctly.

Stages never import transformers or an HTTP client: they get a :class:`Backend` from
:func:`clca.llm.load_backend` and every call goes through the content-addressed cache
(:class:`clca.llm.cache.CachedBackend`).
"""

from __future__ import annotations

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
    """Log-probabilities (natural log) of each option, same order as the request's options."""

    logprobs: list[float]
    n_tokens: list[int] = Field(default_factory=list)  # tokens scored per option (incl. end marker)


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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, GPU memory)."""
