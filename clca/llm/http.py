"""HTTP transport to replicas of one server: JSON POSTs with balancing, bounded retries and usage counters.

This module knows nothing of what the requests mean (:mod:`clca.llm.openai_backend` builds and reads them); it
is the one place where a replica's URL is chosen and where headers are attached to a request.

* Replicas and concurrency: an :class:`HttpPool` holds the base URLs of replicas serving the same model; each
  request goes to the replica with the fewest requests in flight (least outstanding, round robin among
  equals), and :meth:`HttpPool.map` keeps at most ``max_in_flight`` requests in flight at once (independent of
  the stages' batch size), so a large round keeps every replica busy. The HTTP work runs on one asyncio event
  loop (aiohttp, keep-alive connections) in a background thread; the items of a batch wait on it from a pool of
  threads that do no I/O themselves, so hundreds of requests in flight cost a fraction of a core
  (bench/bench_replicas.py).
* Retries: 429, 5xx, timeouts, dropped connections and malformed HTTP-200 answers (a body that is not a JSON
  object, or one the caller's ``check`` flags by raising :class:`Malformed`) are retried up to ``max_retries``
  times with exponential backoff and full jitter (``backoff * 2**attempt``, capped at ``max_backoff``); a
  ``Retry-After`` header (in seconds) is respected (capped too). A request also gives up when its ``budget``
  (seconds, waits included) would be exceeded. Other 4xx answers fail at once. Every retry is counted by
  cause, with the time spent waiting (:meth:`HttpPool.usage`); the stages report them. A request that fails
  for good raises a one-line :class:`~clca.errors.ModelError`.
* A batch whose requests partly fail raises a :class:`~clca.errors.BatchError` that carries the finished
  answers, so the call cache keeps them and a rerun pays only for the rest.
* Headers (the caller's, e.g. ``Authorization``, plus ``Content-Type``) are sent with each request, never
  logged.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

import aiohttp

from clca.errors import BatchError, ModelError
from clca.llm.spec import api_key_env

#: HTTP statuses that are retried (everything else but 200 fails at once)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}

T = TypeVar("T")


class Malformed(Exception):
    """An HTTP-200 answer without what the request needs (retried like a server error)."""


class HttpPool:
    """JSON POSTs to one or more replicas of a server, with balancing, retries and usage counts (module doc)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        budget: float = 900.0,
        max_in_flight: int = 64,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not urls:
            raise ValueError("an HttpPool needs at least one base URL")
        #: the replicas' base URLs (no trailing slash); the first one names the server in error messages
        self.urls = [u.rstrip("/") for u in urls]
        self.base_url = self.urls[0]
        self.max_in_flight = max(1, int(max_in_flight))
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.budget = budget
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0))
        self._sleep = sleep
        #: the event loop (in its own thread) and session that carry every request; made on first use
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._outstanding = dict.fromkeys(self.urls, 0)
        self._next = 0
        self._stats: Counter[str] = Counter()
        self._wait_s = 0.0

    def usage(self) -> dict[str, int]:
        """Requests, retries by cause, failures and milliseconds spent waiting, since the pool was made."""
        with self._lock:
            out = {f"http.{k}": v for k, v in self._stats.items()}
            out["http.wait_ms"] = round(self._wait_s * 1000)
        return out

    # ------------------------------------------------------------ choosing a replica
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

    def _headers_for(self, url: str) -> dict[str, str]:
        """The headers sent with a request to replica ``url`` (the same for every replica today)."""
        return self._headers

    # ------------------------------------------------------------------- sending
    def _transport(self) -> tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]:
        """The event loop thread and its HTTP session, started on first use."""
        with self._lock:
            if self._loop is None or self._session is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="clca-http", daemon=True)
                thread.start()

                async def session() -> aiohttp.ClientSession:
                    return aiohttp.ClientSession(
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
        headers = self._headers_for(url)

        async def go() -> tuple[int, str | None, str]:
            async with session.post(url + path, data=data, headers=headers) as resp:
                return resp.status, resp.headers.get("retry-after"), await resp.text()

        return asyncio.run_coroutine_threadsafe(go(), loop).result()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

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

    def map(self, fn: Callable[[int], T], n: int) -> list[T]:
        """``fn`` over ``range(n)`` with at most ``max_in_flight`` at once; when some fail, a
        :class:`BatchError` carries the finished results (and the first error)."""
        if n == 0:
            return []
        results: dict[int, T] = {}
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
            raise BatchError(first, dict(results))
        return [results[i] for i in range(n)]

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
