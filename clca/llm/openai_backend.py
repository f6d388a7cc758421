"""OpenAI-compatible backend (vLLM, llama.cpp server, Ollama, OpenAI): what the requests and answers mean.

The transport (replicas with least-outstanding balancing, the in-flight cap, retries with backoff and
``Retry-After``, the per-request budget, usage counters, and the :class:`~clca.errors.BatchError` that carries
a partly failed batch's finished answers) is :class:`clca.llm.http.HttpPool`; this module builds the payloads,
reads the answers and scores options.

* Settings in the spec: ``openai:<model>@<url1>,<url2>?timeout=30&max_retries=3&budget=300&max_in_flight=128``
  (also ``backoff``, ``max_backoff``, ``top_logprobs``); all but ``top_logprobs`` are the transport's.
* Keys per endpoint (:func:`clca.llm.spec.endpoint_keys`): a spec names the variable holding its key
  (``?key_env=NAME``; unset is a one-line error naming it); without one, ``OPENAI_API_KEY`` goes to
  https://api.openai.com only and no other server gets a key. A key never goes over plain http to a host other
  than loopback unless the spec says ``insecure_key=1``. The key is sent in the ``Authorization`` header only
  (attached per replica by the transport), never logged or quoted in an error, never part of the fingerprint.
  A spec whose URL carries a credential is refused (without echoing it).
* ``generate``: ``/chat/completions`` with ``max_tokens``, ``temperature``, ``top_p``, ``seed`` (the item's
  seed when given, else ``params.seed``), ``stop`` and, for ``json_schema``, ``response_format``
  (``{"type": "json_schema", ...}``). The text is also cut at the first stop string locally.
* ``score`` computes log P(the reply gives option k) (:mod:`clca.llm.base`) in one of two ways:

  - **completions echo** (vLLM and others that echo prompt log-probs), used when a ``tokenizer`` (HF id/path
    or embedded spec) is given: the chat is rendered locally with that tokenizer's chat template
    (:func:`clca.llm.chat_template.render_prompt`); one ``/completions`` call per option with ``echo=true,
    logprobs=top_logprobs, max_tokens=1`` returns the log-prob of every prompt token (the option's tokens are
    those after the prompt, by ``text_offset``) and the top log-probs of the token after the option (the
    continuation check). Exact but for continuation mass outside the top list, reported in
    ``ScoreResult.uncovered``.
  - **chat top-logprobs** (any server with ``logprobs``): ``/chat/completions`` with ``max_tokens=1,
    logprobs=true, top_logprobs=top_logprobs``. The option's text is followed token by token through the
    listed tokens, each further step asking the server to continue the assistant message (vLLM's
    ``continue_final_message``), and the token after the option must not continue it. Mass outside the
    listed tokens is reported as ``uncovered``, never spread over the options. A server that cannot continue
    an assistant message gives P(first token == option) only; options with a common prefix ("1" vs "10")
    or an answer prefix are then refused before any scoring.

  A server that returns no log-probs gets a clear :class:`~clca.errors.ModelError`; an answer without the
  choice or message a request needs is :class:`~clca.llm.http.Malformed` (retried by the transport).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from clca.errors import ModelError
from clca.llm.base import (
    LOG_ZERO,
    Backend,
    Chat,
    GenerationParams,
    ScoreRequest,
    ScoreResult,
    continues,
    gives,
)
from clca.llm.chat_template import render_prompt
from clca.llm.http import HttpPool, Malformed
from clca.llm.spec import endpoint_keys, key_fix, resolve_local_model

TOP_LOGPROBS = 20


class OpenAIBackend(Backend):
    """Chat generation and option scoring on one or more OpenAI-compatible servers (see the module doc)."""

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str],
        *,
        spec: str | None = None,
        max_in_flight: int = 64,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        budget: float = 900.0,
        tokenizer: str | None = None,
        top_logprobs: int = TOP_LOGPROBS,
        key_env: str | None = None,
        insecure_key: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        urls = [u.rstrip("/") for u in ([base_url] if isinstance(base_url, str) else base_url)]
        if not urls:
            raise ModelError(
                "an openai spec needs at least one base URL.", fix="write openai:<model>@<base_url>."
            )
        keys = endpoint_keys(model, urls, key_env, bool(insecure_key))
        #: the transport: replica choice, each replica's key, retries, budget, the in-flight cap and counters
        self.http = HttpPool(
            urls,
            replica_headers={u: {"Authorization": f"Bearer {k}"} for u, k in keys.items() if k},
            auth_fix={u: key_fix(u, key_env) for u in urls},
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            budget=budget,
            max_in_flight=max_in_flight,
            sleep=sleep,
        )
        self.model = model
        self.spec = spec or f"openai:{model}@{','.join(self.urls)}"
        self.tokenizer_spec = tokenizer
        self.top_logprobs = max(1, int(top_logprobs))
        #: whether the server continues a final assistant message (None: not probed yet)
        self._continuation: bool | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def urls(self) -> list[str]:
        """The replicas' base URLs (no trailing slash)."""
        return self.http.urls

    @property
    def base_url(self) -> str:
        """The first replica's base URL (it names the server in error messages)."""
        return self.http.base_url

    @property
    def fingerprint(self) -> str:
        fp = f"openai:{self.model}@{','.join(sorted(self.urls))}"
        return fp if self.tokenizer_spec is None else f"{fp}|tokenizer={self.tokenizer_spec}"

    def usage(self) -> dict[str, int]:
        """Requests, retries by cause, failures and milliseconds spent waiting, since the backend was made."""
        return self.http.usage()

    # ---------------------------------------------------------------- generate
    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        def one(i: int) -> str:
            body: dict[str, Any] = {
                "model": self.model,
                "messages": list(chats[i]),
                "max_tokens": params.max_new_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "seed": int(seeds[i]) if seeds is not None else params.seed,
            }
            if params.stop:
                body["stop"] = list(params.stop)
            if params.json_schema is not None:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": params.json_schema},
                }
            data = self.http.post("/chat/completions", body, check=_has_message)
            text = data["choices"][0]["message"].get("content") or ""
            for s in params.stop:
                if s and s in text:
                    text = text[: text.index(s)]
            return str(text)

        return self.http.map(one, len(chats))

    # ------------------------------------------------------------------- score
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if self.tokenizer_spec is not None:
            return self.http.map(lambda i: self._score_echo(requests[i]), len(requests))
        self._check_chat_scoring(requests)
        return self.http.map(lambda i: self._score_chat(requests[i]), len(requests))

    # ----------------------------------------------------------- chat top-logprobs
    def _top(self, messages: Chat, prefix: str) -> tuple[dict[str, float], float]:
        """The listed next-token log-probs (token text -> log-prob; equal texts summed) where the assistant's
        reply starts with ``prefix`` ("" = the reply's first token), and the mass outside the list."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        if prefix:
            body["messages"] = [*messages, {"role": "assistant", "content": prefix}]
            body.update(continue_final_message=True, add_generation_prompt=False)
        data = self.http.post("/chat/completions", body, check=_has_choice)
        try:
            top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            pairs = [(str(t["token"]), float(t["logprob"])) for t in top]
        except (KeyError, IndexError, TypeError):
            pairs = []
        if not pairs:
            raise ModelError(
                f"server {self.base_url} gave no log-probabilities for model {self.model}.",
                fix="use a server that supports logprobs/top_logprobs (vLLM, llama.cpp) or a local model.",
            )
        out: dict[str, float] = {}
        for tok, lp in pairs:
            out[tok] = _logaddexp(out[tok], lp) if tok in out else lp
        listed = sum(math.exp(v) for v in out.values())
        return out, max(0.0, 1.0 - listed)

    def _continuation_supported(self, messages: Chat) -> bool:
        """Whether the server continues a final assistant message (vLLM's ``continue_final_message``); probed
        once, with a one-token request."""
        with self._lock:
            if self._continuation is not None:
                return self._continuation
        try:
            self._top(messages, "1")
            ok = True
        except ModelError:
            ok = False
        with self._lock:
            self._continuation = ok
        return ok

    def _check_chat_scoring(self, requests: Sequence[ScoreRequest]) -> None:
        """Before any scoring: without continuation support only single-token, prefix-free options without an
        answer prefix can be scored from the first token's top log-probs."""
        if not requests:
            return
        for r in requests:
            if any(not o for o in r.options):
                raise ModelError(f"{self.spec}: an answer option is empty.", fix="give every option a text.")
        if self._continuation_supported(requests[0].messages):
            return
        for r in requests:
            opts = list(r.options)
            clash = [(a, b) for a in opts for b in opts if a != b and b.startswith(a)]
            if r.answer_prefix or clash:
                why = f"options {clash[0][0]!r} and {clash[0][1]!r}" if clash else "an answer prefix"
                raise ModelError(
                    f"{self.spec}: scoring {why} needs the server to continue an assistant message "
                    "(continue_final_message) or prompt log-probs; this server offers neither.",
                    fix="use vLLM, load the backend with tokenizer=<hf id or path of the served model> "
                    "(completions echo), or use a local model.",
                )

    def _score_chat(self, req: ScoreRequest) -> ScoreResult:
        """log P(reply gives each option) from top log-probs: the option's text is followed token by token
        (every listed token that spells the next part of it), and the token after it must not continue it.
        Without continuation support, P(first token == option) is used."""
        memo: dict[str, tuple[dict[str, float], float]] = {}
        cont_ok = bool(self._continuation)
        base = req.answer_prefix

        def dist(prefix: str) -> tuple[dict[str, float], float]:
            if prefix not in memo:
                memo[prefix] = self._top(req.messages, prefix)
            return memo[prefix]

        #: every token path looked at (tuple of token texts) -> its probability; unlisted mass is counted once
        seen: dict[tuple[str, ...], float] = {}

        def walk(option: str, path: tuple[str, ...], lp: float) -> float:
            """P(the reply gives ``option``) along the paths that extend ``path`` (log-prob ``lp``)."""
            done = "".join(path)
            rest = option[len(done) :]
            p_here = math.exp(lp)
            if p_here < 1e-12 or (path and not cont_ok):
                return p_here if not rest and path else 0.0
            nxt, _unlisted = dist(base + done)
            seen[path] = p_here
            if not rest:
                cont = sum(math.exp(v) for t, v in nxt.items() if continues(option, t))
                return p_here * (1.0 - cont)
            total = 0.0
            for tok, v in nxt.items():
                if tok and rest.startswith(tok) and len(path) < 8:
                    total += walk(option, (*path, tok), lp + v)
                elif (
                    tok.startswith(rest) and len(tok) > len(rest) and not continues(option, tok[len(rest) :])
                ):
                    total += math.exp(lp + v)  # one token holds the option and what follows ("1.")
            return total

        logprobs: list[float] = []
        for opt in req.options:
            p = walk(opt, (), 0.0)
            logprobs.append(math.log(p) if p > 0 else LOG_ZERO)
        uncovered = sum(prob * dist(base + "".join(path))[1] for path, prob in seen.items())
        return ScoreResult(logprobs=logprobs, n_tokens=[1] * len(req.options), uncovered=uncovered)

    def _prompt(self, messages: Chat) -> str:
        """The prompt text up to the assistant reply, rendered with the local tokenizer (loaded on first use)."""
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                spec = self.tokenizer_spec or ""
                path = resolve_local_model(spec if ":" in spec.split("/")[0] else f"hf:{spec}")
                self._tokenizer = AutoTokenizer.from_pretrained(str(path))
        return render_prompt(self._tokenizer, messages)

    def _score_echo(self, req: ScoreRequest) -> ScoreResult:
        """Exact option log-probs from the echoed prompt log-probs (the text after the prompt is the option);
        the token after the option from the top log-probs of the one generated token."""
        prompt = self._prompt(req.messages)
        head = prompt + req.answer_prefix
        logprobs: list[float] = []
        n_tokens: list[int] = []
        uncovered = 0.0
        for opt in req.options:
            text = head + opt
            body = {
                "model": self.model,
                "prompt": text,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": self.top_logprobs,
            }
            data = self.http.post("/completions", body, check=_has_choice)
            try:
                lp = data["choices"][0]["logprobs"]
                offsets = [int(x) for x in lp["text_offset"]]
                values = lp["token_logprobs"]
                tops = lp.get("top_logprobs") or []
            except (KeyError, IndexError, TypeError, AttributeError):
                offsets, values, tops = [], [], []
            if not offsets:
                raise ModelError(
                    f"server {self.base_url} did not echo prompt log-probabilities for model {self.model}.",
                    fix="use a server whose /completions supports echo=true with logprobs (e.g. vLLM).",
                )
            total, n, nxt = 0.0, 0, None
            for k, (off, v) in enumerate(zip(offsets, values, strict=False)):
                if off >= len(text):  # the generated token after the echoed text
                    nxt = tops[k] if k < len(tops) else None
                    break
                end = offsets[k + 1] if k + 1 < len(offsets) else len(text)
                if end > len(head) and v is not None:  # a token ending inside the option
                    total += float(v)
                    n += 1
            if not nxt:
                raise ModelError(
                    f"server {self.base_url} gave no top log-probs for the token after an option.",
                    fix="use a server whose /completions returns top_logprobs with echo (e.g. vLLM).",
                )
            cont = sum(math.exp(float(v)) for t, v in nxt.items() if continues(opt, str(t)))
            listed = sum(math.exp(float(v)) for v in nxt.values())
            logprobs.append(gives(total, cont))
            n_tokens.append(n)
            uncovered += math.exp(total) * max(0.0, 1.0 - listed)
        return ScoreResult(logprobs=logprobs, n_tokens=n_tokens, uncovered=uncovered)

    def close(self) -> None:
        """Close the connections and stop the transport's event loop thread (a later request starts them again)."""
        self.http.close()


def _has_choice(data: dict[str, Any]) -> None:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise Malformed("choices")


def _has_message(data: dict[str, Any]) -> None:
    _has_choice(data)
    msg = data["choices"][0].get("message")
    if not isinstance(msg, dict) or not isinstance(msg.get("content", ""), str | None):
        raise Malformed("a message")


def _logaddexp(a: float, b: float) -> float:
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))
