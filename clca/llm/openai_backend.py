"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama, OpenAI) over plain httpx.

* Concurrency: requests of a batch run on a thread pool of ``max_concurrency`` workers.
* Retries: 429, 5xx, timeouts and dropped connections are retried up to ``max_retries`` times with exponential
  backoff and full jitter (``backoff * 2**attempt``, capped at ``max_backoff``); a ``Retry-After`` header (in
  seconds) is respected (capped too). Other 4xx answers fail at once. When the attempts are used up, a
  one-line :class:`~clca.errors.ModelError` names the URL and the fix.
* The key comes from ``OPENAI_API_KEY`` or from the variable named by ``CLCA_OPENAI_KEY_ENV``; it is sent in
  the ``Authorization`` header only, never logged, never part of the fingerprint. Local servers need none.
* ``generate``: ``/chat/completions`` with ``max_tokens``, ``temperature``, ``top_p``, ``seed`` (the item's
  seed when given, else ``params.seed``), ``stop`` and, for ``json_schema``, ``response_format``
  (``{"type": "json_schema", ...}``). The text is also cut at the first stop string locally.
* ``score`` has two modes:

  - **chat top-logprobs** (any server with ``logprobs``): one ``/chat/completions`` call per request with
    ``max_tokens=1, logprobs=true, top_logprobs=20``; an option's log-prob is that of the first reply token
    equal to the option (or, for a multi-token option, the one token that starts it and no other option).
    Usable only when no option is a prefix of another (so "1" vs "10" is refused) and there is no
    ``answer_prefix``. Options absent from the top 20 get the 20th log-prob (an upper bound).
  - **completions echo** (vLLM and others that echo prompt log-probs), used when a ``tokenizer`` (HF id/path
    or embedded spec) is given: the chat is rendered locally with that tokenizer's chat template, and
    ``/completions`` with ``echo=true, logprobs=0, max_tokens=1`` returns the log-prob of every prompt token;
    the option's log-prob is the sum over the tokens after the prompt (``text_offset``), i.e. the option
    plus the end-of-turn marker, exactly like the local backend.

  A server that returns no log-probs gets a clear :class:`~clca.errors.ModelError`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from clca.errors import ModelError
from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult
from clca.llm.spec import api_key, api_key_env, resolve_local_model

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
TOP_LOGPROBS = 20
_SENTINEL = "\u2063CLCA_SENTINEL\u2063"


class OpenAIBackend(Backend):
    """Chat generation and option scoring on an OpenAI-compatible server."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        spec: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        tokenizer: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.spec = spec or f"openai:{model}@{self.base_url}"
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.tokenizer_spec = tokenizer
        self._tokenizer: Any = None
        self._sleep = sleep
        headers = {"Content-Type": "application/json"}
        key = api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        fp = f"openai:{self.model}@{self.base_url}"
        return fp if self.tokenizer_spec is None else f"{fp}|tokenizer={self.tokenizer_spec}"

    # --------------------------------------------------------------- transport
    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with bounded retries on 429/5xx/timeouts/connection errors; one-line errors otherwise."""
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            retry_after: str | None = None
            try:
                resp = self._client.post(path, json=body)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"cannot connect ({type(exc).__name__})"
            else:
                if resp.status_code == 200:
                    try:
                        data: dict[str, Any] = resp.json()
                    except ValueError:
                        raise ModelError(
                            f"server {url} answered with invalid JSON.",
                            fix="check that the base URL points at an OpenAI-compatible /v1 API.",
                        ) from None
                    return data
                if resp.status_code not in RETRY_STATUS:
                    detail = resp.text.strip().replace("\n", " ")[:200]
                    fix = (
                        f"set the key in ${api_key_env()}."
                        if resp.status_code in (401, 403)
                        else "check the model name and the request options for this server."
                    )
                    raise ModelError(
                        f"server {url} refused the request: HTTP {resp.status_code} {detail}", fix=fix
                    )
                last = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("retry-after")
            if attempt < self.max_retries:
                self._sleep(self._delay(attempt, retry_after))
        raise ModelError(
            f"server {url} failed after {self.max_retries + 1} attempts ({last}).",
            fix="start the server or check the base URL in the model spec (openai:<model>@<base_url>).",
        )

    def _map(self, fn: Callable[[int], Any], n: int) -> list[Any]:
        if n <= 1 or self.max_concurrency == 1:
            return [fn(i) for i in range(n)]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, n)) as pool:
            return list(pool.map(fn, range(n)))

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
            data = self.post("/chat/completions", body)
            try:
                text = data["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError):
                raise ModelError(
                    f"server {self.base_url} returned no chat completion choices.",
                    fix="check that the server implements /chat/completions.",
                ) from None
            for s in params.stop:
                if s and s in text:
                    text = text[: text.index(s)]
            return str(text)

        return self._map(one, len(chats))

    # ------------------------------------------------------------------- score
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if self.tokenizer_spec is not None:
            return self._map(lambda i: self._score_echo(requests[i]), len(requests))
        for r in requests:
            opts = [o.strip() for o in r.options]
            clash = [(a, b) for a in opts for b in opts if a != b and b.startswith(a)]
            if r.answer_prefix or clash or any(not o for o in opts):
                why = (
                    f"options {clash[0][0]!r} and {clash[0][1]!r}"
                    if clash
                    else "an answer prefix or empty option"
                )
                raise ModelError(
                    f"{self.spec}: scoring {why} needs prompt log-probs, which the chat endpoint cannot give.",
                    fix="load the backend with tokenizer=<hf id or path of the served model> (completions echo, "
                    "e.g. vLLM), or use a local model.",
                )
        return self._map(lambda i: self._score_top(requests[i]), len(requests))

    def _score_top(self, req: ScoreRequest) -> ScoreResult:
        body = {
            "model": self.model,
            "messages": list(req.messages),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        data = self.post("/chat/completions", body)
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
        opts = [o.strip() for o in req.options]
        floor = min(lp for _, lp in pairs)
        found: dict[int, float] = {}
        for tok, lp in pairs:
            t = tok.strip()
            if not t:
                continue
            exact = [i for i, o in enumerate(opts) if o == t]
            starts = [i for i, o in enumerate(opts) if o.startswith(t)]
            hit = exact or (starts if len(starts) == 1 else [])
            for i in hit:
                # several tokens can spell the same option (" 1" and "1"): their probabilities add up
                found[i] = _logaddexp(found[i], lp) if i in found else lp
        return ScoreResult(logprobs=[found.get(i, floor) for i in range(len(opts))], n_tokens=[1] * len(opts))

    def _render(self, messages: Chat) -> tuple[str, str]:
        """The prompt text (up to the assistant reply) and the end-of-turn text, with the local tokenizer."""
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                spec = self.tokenizer_spec or ""
                path = resolve_local_model(spec if ":" in spec.split("/")[0] else f"hf:{spec}")
                self._tokenizer = AutoTokenizer.from_pretrained(str(path))
        tok = self._tokenizer
        prompt = str(tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
        closed = str(
            tok.apply_chat_template(
                [*messages, {"role": "assistant", "content": _SENTINEL}],
                tokenize=False,
                add_generation_prompt=False,
            )
        )
        after = closed.split(_SENTINEL, 1)[1] if _SENTINEL in closed else (tok.eos_token or "")
        end = after.rstrip("\n") or (tok.eos_token or "")
        return prompt, end

    def _score_echo(self, req: ScoreRequest) -> ScoreResult:
        prompt, end = self._render(req.messages)
        head = prompt + req.answer_prefix
        logprobs: list[float] = []
        n_tokens: list[int] = []
        for opt in req.options:
            text = head + opt + end
            body = {
                "model": self.model,
                "prompt": text,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 0,
            }
            data = self.post("/completions", body)
            try:
                lp = data["choices"][0]["logprobs"]
                offsets = [int(x) for x in lp["text_offset"]]
                values = lp["token_logprobs"]
            except (KeyError, IndexError, TypeError):
                offsets, values = [], []
            if not offsets:
                raise ModelError(
                    f"server {self.base_url} did not echo prompt log-probabilities for model {self.model}.",
                    fix="use a server whose /completions supports echo=true with logprobs (e.g. vLLM).",
                )
            total, n = 0.0, 0
            for k, (off, v) in enumerate(zip(offsets, values, strict=False)):
                nxt = offsets[k + 1] if k + 1 < len(offsets) else len(text) + 1
                if off >= len(text):
                    break  # the generated token after the echoed prompt
                if nxt > len(head) and v is not None:  # token ends inside the option/end marker
                    total += float(v)
                    n += 1
            logprobs.append(total)
            n_tokens.append(n)
        return ScoreResult(logprobs=logprobs, n_tokens=n_tokens)

    def close(self) -> None:
        self._client.close()


def _logaddexp(a: float, b: float) -> float:
    import math

    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))
