"""HTTP transport to replicas of one server: JSON POSTs with balancing, bounded retries and usage counters.

This module knows nothing of what the requests mean (:mod:`clca.llm.openai_backend` builds and reads them); it
is the one place where a replica's URL is chosen and where headers are attached to a request.

* Replicas and concurrency: an :class:`HttpPool` holds the base URLs of replicas serving the same model; each
  request goes to the replica in rotation with the fewest requests in flight (least outstanding, round robin
  among equals), and :meth:`HttpPool.map` keeps at most ``max_in_flight`` requests in flight at once
  (independent of the stages' batch size), so a large round keeps every replica busy. The HTTP work runs on one
  asyncio event loop (aiohttp, keep-alive connections) in a background thread; the items of a batch wait on it
  from a pool of threads that do no I/O themselves, so hundreds of requests in flight cost a fraction of a core
  (bench/bench_replicas.py).
* Replicas that fail: a replica that refuses connections, times out or answers 5xx is taken out of the
  rotation for a cool-down of ``backoff * 2**(k-1)`` seconds after its k-th failure in a row (capped at
  ``max_backoff``; at least a 5xx's ``Retry-After``), so a dead replica does not draw traffic (least outstanding
  alone would favour it: it fails fastest). When the cool-down ends, one request at a time probes it; an answer
  brings it back (so does an answer to a request that was already in flight: a lone replica that answered one
  500 is not held out for a whole probe), a failure doubles the cool-down. A replica not yet known to be up
  (no connection made to it yet) takes one request at a time, so a replica dead from the start costs one
  request a retry, not the first wave. A request whose replica fails goes at once to another
  replica in rotation; when every replica is out it waits for the earliest cool-down end (within its budget),
  and a failed probe counts as an attempt of every request waiting for it, so a server that stays down fails
  them after ``max_retries + 1`` attempts as before. Counted in :meth:`HttpPool.usage`:
  ``http.replicas.removed``, ``.probes``, ``.returned``.
* Retries: 429, 5xx, timeouts, dropped connections and malformed HTTP-200 answers (a body that is not a JSON
  object, or one the caller's ``check`` flags by raising :class:`Malformed`) are retried up to ``max_retries``
  times. 429s and malformed answers (the replica is up) wait an exponential backoff with full jitter
  (``backoff * 2**attempt``, capped at ``max_backoff``; a ``Retry-After`` header in seconds is respected, capped
  too). A request also gives up when its ``budget`` (seconds, waits included) would be exceeded. Other 4xx
  answers fail at once. Every retry is counted by cause, with the time spent waiting; the stages report them.
  A request that fails for good raises a one-line :class:`~clca.errors.ServiceError` naming the replica, or
  every replica with its state and last failure.
* A batch whose requests partly fail raises a :class:`~clca.errors.BatchError` that carries the finished
  answers, so the call cache keeps them and a rerun pays only for the rest.
* Headers (the caller's, plus per replica ``replica_headers``, e.g. each endpoint's ``Authorization``, plus
  ``Content-Type``) are sent with each request and never logged; their values are blanked out of any server
  text an error quotes.
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
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from clca.errors import BatchError, ModelError, ServiceError

#: HTTP statuses that are retried (everything else but 200 fails at once)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
#: retry causes that take the replica out of the rotation (it is down or failing, not merely busy)
REPLICA_CAUSES = {"connection", "timeout", "http_5xx"}

T = TypeVar("T")


class Malformed(Exception):
    """An HTTP-200 answer without what the request needs (retried like a server error)."""


@dataclass
class _Replica:
    """One replica's state: requests in flight, and whether (and until when) it is out of the rotation."""

    url: str
    outstanding: int = 0
    fails: int = 0  # failures in a row (0 while in rotation)
    out: bool = False
    until: float = 0.0  # monotonic time its cool-down ends (when out)
    probing: bool = False  # a probe request is in flight
    proven: bool = False  # a connection to it was made or it answered: until then, one request at a time
    last: str = ""  # its last failure


@dataclass
class _Request:
    """One request's progress through its attempts."""

    t0: float
    attempts: int = 0  # its own failed attempts plus the failed probes it waited for
    last: str = ""
    note: str = ""  # why it stopped early (the budget)


def _state(rep: _Replica, now: float) -> str:
    """A replica's state for an error message."""
    if not rep.out:
        return f"{rep.url} in rotation" + (f", last failure: {rep.last}" if rep.last else "")
    times = "failure" if rep.fails == 1 else "failures"
    return f"{rep.url} out for {max(0.0, rep.until - now):.1f}s after {rep.fails} {times} in a row, last: {rep.last}"


class HttpPool:
    """JSON POSTs to one or more replicas of a server, with balancing, retries and usage counts (module doc)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        replica_headers: Mapping[str, Mapping[str, str]] | None = None,
        auth_fix: Mapping[str, str] | None = None,
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
        #: the replicas' base URLs (no trailing slash), in the order given
        self.urls = [u.rstrip("/") for u in urls]
        self.base_url = self.urls[0]
        self.max_in_flight = max(1, int(max_in_flight))
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.budget = budget
        common = {"Content-Type": "application/json", **(headers or {})}
        extra = {u.rstrip("/"): dict(h) for u, h in (replica_headers or {}).items()}
        self._headers = {u: {**common, **extra.get(u, {})} for u in self.urls}
        #: header values never to quote (keys), with the token of a "Bearer <token>" value
        self._secrets = sorted(
            {
                part
                for h in self._headers.values()
                for k, v in h.items()
                if k.lower() != "content-type"
                for part in (v, v.partition(" ")[2])
                if len(part) >= 4
            },
            key=len,
            reverse=True,
        )
        self._auth_fix = {u.rstrip("/"): f for u, f in (auth_fix or {}).items()}
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0))
        self._sleep = sleep
        #: the event loop (in its own thread) and session that carry every request; made on first use
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: signalled when a replica's state changes (a probe's outcome, a removal)
        self._changed = threading.Condition(self._lock)
        self._replicas = {u: _Replica(u) for u in self.urls}
        self._next = 0
        self._failed_probes = 0
        self._last_failed_probe = ""
        self._stats: Counter[str] = Counter()
        self._wait_s = 0.0

    def usage(self) -> dict[str, int]:
        """Requests, retries by cause, failures, replicas removed/probed/returned and milliseconds spent
        waiting, since the pool was made."""
        with self._lock:
            out = {f"http.{k}": v for k, v in self._stats.items()}
            out["http.wait_ms"] = round(self._wait_s * 1000)
        return out

    # ------------------------------------------------------------ choosing a replica
    def _acquire(self) -> str | None:
        """The replica in rotation with the fewest requests in flight (round robin among equals); a replica not
        yet known to be up (no connection made) takes one request at a time, so a dead one is found by one
        request, not by a whole first wave. None when no replica can take it now."""
        with self._lock:
            return self._pick()

    def _pick(self) -> str | None:
        """:meth:`_acquire` with the lock held."""
        n = len(self.urls)
        order = [self._replicas[self.urls[(self._next + i) % n]] for i in range(n)]
        live = [r for r in order if not r.out and (r.proven or r.outstanding == 0)]
        if not live:
            return None
        rep = min(live, key=lambda r: r.outstanding)
        self._next = (self.urls.index(rep.url) + 1) % n
        rep.outstanding += 1
        return rep.url

    def _release(self, url: str) -> None:
        with self._lock:
            self._replicas[url].outstanding -= 1

    def _headers_for(self, url: str) -> dict[str, str]:
        """The headers sent with a request to replica ``url`` (its own key, if it has one)."""
        return self._headers[url]

    def _retry_after(self, header: str | None) -> float | None:
        """A ``Retry-After`` header in seconds, capped at ``max_backoff``; None when absent or not a number."""
        try:
            return min(max(float(header), 0.0), self.max_backoff) if header else None
        except ValueError:
            return None

    def _cooldown(self, fails: int, retry_after: str | None) -> float:
        """How long a replica stays out after its ``fails``-th failure in a row."""
        c = min(self.max_backoff, self.backoff * 2 ** max(0, fails - 1))
        return max(c, self._retry_after(retry_after) or 0.0)

    def _take(self, req: _Request, since: float | None) -> tuple[str, bool] | None:
        """A replica for the next attempt, and whether it is a probe: a replica whose cool-down has ended (one
        probe at a time), else the least busy in rotation. When every replica is out, wait for the earliest
        cool-down end (``since``: the time of this request's own failure, from which it waits out the full
        cool-down) or a probe's outcome; None when the budget or the attempts run out meanwhile."""
        entitled: tuple[str, float] | None = None  # (replica, cool-down end) this request has waited out
        with self._changed:
            seen = self._failed_probes
            while True:
                now = time.monotonic()
                if self._failed_probes > seen:  # probes failed while it waited: each counts as an attempt
                    req.attempts += self._failed_probes - seen
                    req.last = self._last_failed_probe
                    seen = self._failed_probes
                    if req.attempts > self.max_retries:
                        return None
                due = [
                    r
                    for r in self._replicas.values()
                    if r.out and not r.probing and (r.until <= now or entitled == (r.url, r.until))
                ]
                if due:
                    rep = min(due, key=lambda r: r.until)
                    rep.probing = True
                    rep.outstanding += 1
                    self._next = (self.urls.index(rep.url) + 1) % len(self.urls)  # turns go on after it
                    self._stats["replicas.probes"] += 1
                    return rep.url, True
                url = self._pick()
                if url is not None:
                    return url, False
                reps = self._replicas.values()
                cooling = [r for r in reps if r.out and not r.probing]
                left = self.budget - (now - req.t0)
                first = min(cooling, key=lambda r: r.until) if cooling else None
                # the earliest cool-down end, or a probe's outcome or a first connection (notified)
                delay = left if first is None else max(0.0, first.until - (now if since is None else since))
                since = None
                if delay > left or left <= 0:
                    req.note = f"; the request's {self.budget:g}s budget is spent"
                    return None
                if first is not None and all(r.out and not r.probing for r in reps):
                    self._lock.release()  # nothing can change but by time: sleep it out (tests fake it)
                    try:
                        self._sleep(delay)
                    finally:
                        self._lock.acquire()
                    self._wait_s += delay
                    entitled = (first.url, first.until)
                else:
                    t = time.monotonic()
                    self._changed.wait(delay)
                    if all(r.out for r in reps):  # an outage's wait (not a first connection's) is counted
                        self._wait_s += time.monotonic() - t
                    entitled = None

    def _settle(self, url: str, probe: bool, outcome: str, last: str, retry_after: str | None) -> float:
        """Record how an attempt at ``url`` ended (``up``: the replica answered; ``down``: it failed; ``gone``:
        the attempt was abandoned) and move the replica in or out of the rotation; the time of it."""
        with self._changed:
            now = time.monotonic()
            rep = self._replicas[url]
            rep.outstanding -= 1
            if outcome == "up":  # the probe's answer, or one to a request already in flight: it is up
                if rep.out:
                    self._stats["replicas.returned"] += 1
                rep.out, rep.fails, rep.proven = False, 0, True
            elif outcome == "down":
                rep.last = last
                if probe or not rep.out:  # an attempt sent before the replica went out changes nothing
                    if not rep.out:
                        self._stats["replicas.removed"] += 1
                    else:
                        self._failed_probes += 1
                        self._last_failed_probe = self._where(url, last)
                    rep.out, rep.fails = True, rep.fails + 1
                    rep.until = now + self._cooldown(rep.fails, retry_after)
            if probe:
                rep.probing = False
            self._changed.notify_all()
            return now

    def _connected(self, url: str) -> None:
        """A connection to replica ``url`` was made: it takes more than one request at a time from now on."""
        with self._changed:
            rep = self._replicas.get(url)
            if rep is not None and not rep.proven:
                rep.proven = True
                self._changed.notify_all()

    # ------------------------------------------------------------------- sending
    def _transport(self) -> tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]:
        """The event loop thread and its HTTP session, started on first use."""
        with self._lock:
            if self._loop is None or self._session is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="clca-http", daemon=True)
                thread.start()

                async def connected(_s: object, ctx: Any, _params: object) -> None:
                    self._connected(str(ctx.trace_request_ctx))

                async def session() -> aiohttp.ClientSession:
                    trace = aiohttp.TraceConfig()
                    trace.on_connection_create_end.append(connected)
                    return aiohttp.ClientSession(
                        timeout=self._timeout,
                        connector=aiohttp.TCPConnector(limit=self.max_in_flight, limit_per_host=0),
                        trace_configs=[trace],
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
            async with session.post(url + path, data=data, headers=headers, trace_request_ctx=url) as resp:
                return resp.status, resp.headers.get("retry-after"), await resp.text()

        return asyncio.run_coroutine_threadsafe(go(), loop).result()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        """The wait before retrying a busy replica: its ``Retry-After``, else full-jitter exponential backoff."""
        after = self._retry_after(retry_after)
        if after is not None:
            return after
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    def _where(self, url: str, what: str) -> str:
        """``what`` happened at replica ``url`` (the URL is left out when there is only one)."""
        return what if len(self.urls) == 1 else f"{url}: {what}"

    def _scrub(self, text: str) -> str:
        """``text`` (a server's words) with every header value this pool sends blanked out."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _failed(self, path: str, req: _Request) -> ServiceError:
        """The one-line error of a request that failed for good: its replica, or every replica's state."""
        fix = (
            "start the server or check the base URL in the model spec (openai:<model>@<base_url>); "
            "timeouts and retries are set in the spec (openai:<model>@<url>?timeout=60&max_retries=3)."
        )
        what = f"failed after {req.attempts} attempts ({req.last}{req.note})"
        if len(self.urls) == 1:
            return ServiceError(f"server {self.base_url}{path} {what}.", fix=fix)
        with self._lock:
            now = time.monotonic()
            states = [_state(r, now) for r in self._replicas.values()]
        return ServiceError(f"{path} {what} on {len(self.urls)} replicas: {'; '.join(states)}.", fix=fix)

    def post(
        self, path: str, body: dict[str, Any], check: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """POST JSON to a replica in rotation (or probe one back) with bounded retries (429/5xx/timeouts/
        connection errors and malformed answers, which ``check`` may flag by raising :class:`Malformed`);
        one-line errors otherwise."""
        req = _Request(t0=time.monotonic())
        self._count("requests")
        since: float | None = None  # when this request's replica failed (it waits out that cool-down)
        pending = ""  # the cause of the retry about to be made
        while True:
            got = self._take(req, since)
            if got is None:
                break
            url, probe = got
            if pending:
                self._count(f"retries.{pending}")
            outcome, cause, last, retry_after = "gone", "", "", None
            try:
                try:
                    status, retry_header, text = self._send(url, path, body)
                except TimeoutError:
                    outcome, cause, last = "down", "timeout", "timed out"
                except aiohttp.ClientError as exc:
                    outcome, cause, last = "down", "connection", f"cannot connect ({type(exc).__name__})"
                else:
                    outcome = "up"
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
                        detail = self._scrub(text.strip().replace("\n", " "))[:200]
                        fix = (
                            self._auth_fix.get(url, "check the key sent to this server.")
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
                        if cause in REPLICA_CAUSES:
                            outcome = "down"
            finally:
                failed_at = self._settle(url, probe, outcome, last, retry_after)
            req.attempts += 1
            req.last = self._where(url, last)
            if req.attempts > self.max_retries:
                break
            pending = cause
            if outcome == "down":  # another replica at once, or wait out the cool-down
                since = failed_at
                continue
            since = None
            delay = self._delay(req.attempts - 1, retry_after)
            if time.monotonic() - req.t0 + delay > self.budget:
                req.note = f"; the request's {self.budget:g}s budget is spent"
                break
            with self._lock:
                self._wait_s += delay
            self._sleep(delay)
        self._count("failures")
        raise self._failed(path, req)

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
