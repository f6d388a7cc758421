"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama, OpenAI) over aiohttp.

* Replicas and concurrency: the spec may name several base URLs of replicas serving the same model
  (``openai:<model>@<url1>,<url2>``); each request goes to the replica with the fewest requests in flight
  (least outstanding), and at most ``max_in_flight`` requests are in flight at once (independent of the stages'
  batch size), so a large round keeps every replica busy. The HTTP work runs on one asyncio event loop
  (aiohttp, keep-alive connections) in a background thread; the items of a batch wait on it from a pool of
  threads that do no I/O themselves, so hundreds of requests in flight cost a fraction of a core
  (bench/bench_replicas.py).
* Retries: 429, 5xx, timeouts, dropped connections and malformed HTTP-200 answers (a body that is not JSON, no
  ``choices``, a choice without its message or log-probs) are retried up to ``max_retries`` times with
  exponential backoff and full jitter (``backoff * 2**attempt``, capped at ``max_backoff``); a ``Retry-After``
  header (in seconds) is respected (capped too). A request also gives up when its ``budget`` (seconds, waits
  included) would be exceeded. Other 4xx answers fail at once. Every retry is counted by cause, with the time
  spent waiting (:meth:`OpenAIBackend.usage`); the stages report them.
* Settings in the spec: ``openai:<model>@<url>?timeout=30&max_retries=3&budget=300&max_in_flight=128`` (also
  ``backoff``, ``max_backoff``, ``top_logprobs``).
* A batch whose requests partly fail raises a :class:`BatchError` that carries the finished answers, so the
  call cache keeps them and a rerun pays only for the rest.
* The key comes from ``OPENAI_API_KEY`` or from the variable named by ``CLCA_OPENAI_KEY_ENV``; it is sent in
  the ``Authorization`` header only, never logged, never part of the fingerprint. Local servers need none. A
  spec whose URL carries a credential is refused (without echoing it).
* ``generate``: ``/chat/completions`` with ``max_tokens``, ``temperature``, ``top_p``, ``seed`` (the item's
  seed when given, else ``params.seed``), ``stop`` and, for ``json_schema``, ``response_format``
  (``{"type": "json_schema", ...}``). The text is also cut at the first stop string locally.
* ``score`` computes log P(the reply gives option k) (:mod:`clca.llm.base`) in one of two ways:

  - **completions echo** (vLLM and others that echo prompt log-probs), used when a ``tokenizer`` (HF id/path
    or embedded spec) is given: the chat is rendered locally with that tokenizer's chat template; one
    ``/completions`` call per option with ``echo=true, logprobs=top_logprobs, max_tokens=1`` returns the
    log-prob of every prompt token (the option's tokens are those after the prompt, by ``text_offset``) and
    the top log-probs of the token after the option (the continuation check). Exact but for continuation
    mass outside the top list, reported in ``ScoreResult.uncovered``.
  - **chat top-logprobs** (any server with ``logprobs``): ``/chat/completions`` with ``max_tokens=1,
    logprobs=true, top_logprobs=top_logprobs``. The option's text is followed token by token through the
    listed tokens, each further step asking the server to continue the assistant message (vLLM's
    ``continue_final_message``), and the token after the option must not continue it. Mass outside the
    listed tokens is reported as ``uncovered``, never spread over the options. A server that cannot continue
    an assistant message gives P(first token == option) only; options with a common prefix ("1" vs "10")
    or an answer prefix are then refused before any scoring.

  A server that returns no log-probs gets a clear :class:`~clca.errors.ModelError`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import aiohttp

from clca.errors import BatchError, ModelError
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
from clca.llm.spec import api_key, api_key_env, resolve_local_model

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
TOP_LOGPROBS = 20
_SENTINEL = "\u2063CLCA_SENTINEL\u2063"


class Malformed(Exception):
    """An HTTP-200 answer without what the request needs (retried like a server error)."""


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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ModelError(
                "an openai spec needs at least one base URL.", fix="write openai:<model>@<base_url>."
            )
        self.model = model
        self.urls = [u.rstrip("/") for u in urls]
        self.base_url = self.urls[0]
        self.spec = spec or f"openai:{model}@{','.join(self.urls)}"
        self.max_in_flight = max(1, int(max_in_flight))
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.budget = budget
        self.tokenizer_spec = tokenizer
        self.top_logprobs = max(1, int(top_logprobs))
        #: whether the server continues a final assistant message (None: not probed yet)
        self._continuation: bool | None = None
        self._tokenizer: Any = None
        self._sleep = sleep
        self._headers = {"Content-Type": "application/json"}
        key = api_key()
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0))
        #: the event loop (in its own thread) and session that carry every request; made on first use
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._outstanding = dict.fromkeys(self.urls, 0)
        self._next = 0
        self._stats: Counter[str] = Counter()
        self._wait_s = 0.0

    @property
    def fingerprint(self) -> str:
        fp = f"openai:{self.model}@{','.join(sorted(self.urls))}"
        return fp if self.tokenizer_spec is None else f"{fp}|tokenizer={self.tokenizer_spec}"

    def usage(self) -> dict[str, int]:
        """Requests, retries by cause, failures and milliseconds spent waiting, since the backend was made."""
        with self._lock:
            out = {f"http.{k}": v for k, v in self._stats.items()}
            out["http.wait_ms"] = round(self._wait_s * 1000)
        return out

    # --------------------------------------------------------------- transport
    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    def _acquire(self) -> str:
        """The replica with the fewest requests in flight (round robin among equals)."""
        with self._lock:
            n = len(self.urls)
            order = [self.urls[(self._next + i) % n] for i in range(n)]
            url = min(order, key=lambda u: self._outstanding[u])
            self._next = (self.urls.index(url) + 1) % n
            self._outstanding[url] += 1
            return url

    def _release(self, url: str) -> None:
        with self._lock:
            self._outstanding[url] -= 1

    def _transport(self) -> tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]:
        """The event loop thread and its HTTP session, started on first use."""
        with self._lock:
            if self._loop is None or self._session is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="clca-openai-http", daemon=True)
                thread.start()

                async def session() -> aiohttp.ClientSession:
                    return aiohttp.ClientSession(
                        headers=self._headers,
                        timeout=self._timeout,
                        connector=aiohttp.TCPConnector(limit=self.max_in_flight, limit_per_host=0),
                    )

                self._session = asyncio.run_coroutine_threadsafe(session(), loop).result()
                self._loop, self._thread = loop, thread
            return self._loop, self._session

    def _send(self, url: str, path: str, body: dict[str, Any]) -> tuple[int, str | None, str]:
        """One POST on the event loop: (status, Retry-After header, body text)."""
        loop, session = self._transport()
        data = json.dumps(body).encode()

        async def go() -> tuple[int, str | None, str]:
            async with session.post(url + path, data=data) as resp:
                return resp.status, resp.headers.get("retry-after"), await resp.text()

        return asyncio.run_coroutine_threadsafe(go(), loop).result()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    def post(
        self, path: str, body: dict[str, Any], check: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """POST JSON to the least-busy replica with bounded retries (429/5xx/timeouts/connection errors and
        malformed answers, which ``check`` may flag by raising :class:`Malformed`); one-line errors otherwise."""
        last = ""
        t0 = time.monotonic()
        self._count("requests")
        for attempt in range(self.max_retries + 1):
            retry_after: str | None = None
            url = self._acquire()
            cause = ""
            try:
                status, retry_header, text = self._send(url, path, body)
            except TimeoutError:
                last, cause = "timed out", "timeout"
            except aiohttp.ClientError as exc:
                last, cause = f"cannot connect ({type(exc).__name__})", "connection"
            else:
                if status == 200:
                    try:
                        data = json.loads(text)
                        if not isinstance(data, dict):
                            raise Malformed("the answer is not a JSON object")
                        if check is not None:
                            check(data)
                        return data
                    except ValueError:
                        last, cause = "answered with invalid JSON", "malformed"
                    except Malformed as exc:
                        last, cause = f"answered without {exc}", "malformed"
                elif status not in RETRY_STATUS:
                    self._count("failures")
                    detail = text.strip().replace("\n", " ")[:200]
                    fix = (
                        f"set the key in ${api_key_env()}."
                        if status in (401, 403)
                        else "check the model name and the request options for this server."
                    )
                    raise ModelError(
                        f"server {url}{path} refused the request: HTTP {status} {detail}", fix=fix
                    )
                else:
                    last = f"HTTP {status}"
                    cause = "http_429" if status == 429 else f"http_{status // 100}xx"
                    retry_after = retry_header
            finally:
                self._release(url)
            if attempt == self.max_retries:
                break
            delay = self._delay(attempt, retry_after)
            if time.monotonic() - t0 + delay > self.budget:
                last += f"; the request's {self.budget:g}s budget is spent"
                break
            self._count(f"retries.{cause}")
            with self._lock:
                self._wait_s += delay
            self._sleep(delay)
        self._count("failures")
        raise ModelError(
            f"server {self.base_url}{path} failed after {attempt + 1} attempts ({last}).",
            fix="start the server or check the base URL in the model spec (openai:<model>@<base_url>); "
            "timeouts and retries are set in the spec (openai:<model>@<url>?timeout=60&max_retries=3).",
        )

    def _map(self, fn: Callable[[int], Any], n: int) -> list[Any]:
        """``fn`` over ``range(n)`` with at most ``max_in_flight`` at once; when some fail, a
        :class:`BatchError` carries the finished results (and the first error)."""
        if n == 0:
            return []
        results: dict[int, Any] = {}
        errors: dict[int, ModelError] = {}
        if n == 1 or self.max_in_flight == 1:
            for i in range(n):
                try:
                    results[i] = fn(i)
                except ModelError as exc:
                    errors[i] = exc
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_in_flight, n)) as pool:
                futures = {pool.submit(fn, i): i for i in range(n)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except ModelError as exc:
                        errors[i] = exc
        if errors:
            first = errors[min(errors)]
            if not results:
                raise first
            raise BatchError(first, results)
        return [results[i] for i in range(n)]

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
            data = self.post("/chat/completions", body, check=_has_message)
            text = data["choices"][0]["message"].get("content") or ""
            for s in params.stop:
                if s and s in text:
                    text = text[: text.index(s)]
            return str(text)

        return self._map(one, len(chats))

    # ------------------------------------------------------------------- score
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if self.tokenizer_spec is not None:
            return self._map(lambda i: self._score_echo(requests[i]), len(requests))
        self._check_chat_scoring(requests)
        return self._map(lambda i: self._score_chat(requests[i]), len(requests))

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
        data = self.post("/chat/completions", body, check=_has_choice)
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
        """Exact option log-probs from the echoed prompt log-probs (the text after the prompt is the option);
        the token after the option from the top log-probs of the one generated token."""
        prompt, _end = self._render(req.messages)
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
            data = self.post("/completions", body, check=_has_choice)
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
        """Close the connections and stop the event loop thread (a later request starts them again)."""
        with self._lock:
            loop, session, thread = self._loop, self._session, self._thread
            self._loop = self._session = self._thread = None
        if loop is None or session is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(session.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


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
