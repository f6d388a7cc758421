"""The HTTP transport alone (:class:`clca.llm.http.HttpPool`) against scripted servers on 127.0.0.1 (port 0)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from oai_server import OpenAIServer, echo_answer

from clca.errors import BatchError, ModelError, ServiceError
from clca.llm.http import HttpPool, Malformed

CHAT = "/chat/completions"


def _body(text: str = "hi") -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def _needs_message(data: dict[str, Any]) -> None:
    """The check a chat request makes: a first choice with its message."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise Malformed("choices")
    if not isinstance(choices[0].get("message"), dict):
        raise Malformed("a message")


@pytest.fixture()
def server() -> Iterator[OpenAIServer]:
    s = OpenAIServer(echo_answer, hang_s=1.0)
    yield s
    s.close()


@pytest.fixture()
def second() -> Iterator[OpenAIServer]:
    s = OpenAIServer(echo_answer, hang_s=1.0)
    yield s
    s.close()


def _pool(urls: str | list[str], **kw: Any) -> HttpPool:
    sleeps: list[float] = []
    kw.setdefault("timeout", 0.3)
    kw.setdefault("max_retries", 3)
    pool = HttpPool([urls] if isinstance(urls, str) else urls, sleep=sleeps.append, **kw)
    pool.sleeps = sleeps  # type: ignore[attr-defined]
    return pool


def _reply(data: dict[str, Any]) -> str:
    return str(data["choices"][0]["message"]["content"])


def test_retries_are_counted_by_cause(server: OpenAIServer) -> None:
    """Every transient fault is retried once and counted under its cause; waits are summed. The lone replica
    goes out on 500 (cool-down 0.01 s), its probes fail on 503 and the hang (0.02 s, 0.04 s), the malformed
    answer brings it back; the reset takes it out again (0.01 s) until the last probe answers."""
    server.script = ["429", "500", "503", "hang", "badjson", "empty", "nofield", "reset"]
    pool = _pool(server.url, max_retries=8, backoff=0.01)
    assert _reply(pool.post(CHAT, _body(), check=_needs_message)) == "reply to: hi END x"
    used = pool.usage()
    pool.close()
    assert len(server.requests) == 9
    assert {k: v for k, v in used.items() if k != "http.wait_ms"} == {
        "http.requests": 1,
        "http.retries.http_429": 1,
        "http.retries.http_5xx": 2,
        "http.retries.timeout": 1,
        "http.retries.malformed": 3,
        "http.retries.connection": 1,
        "http.replicas.removed": 2,
        "http.replicas.probes": 4,
        "http.replicas.returned": 2,
    }
    sleeps = pool.sleeps  # type: ignore[attr-defined]
    assert len(sleeps) == 8 and sleeps[0] == pytest.approx(0.05)  # the 429's Retry-After
    assert [sleeps[i] for i in (1, 2, 3, 7)] == pytest.approx([0.01, 0.02, 0.04, 0.01])  # cool-downs
    assert used["http.wait_ms"] == round(sum(sleeps) * 1000)


def test_retry_after_is_respected_and_capped(server: OpenAIServer) -> None:
    server.script = ["429"]
    pool = _pool(server.url)
    pool.post(CHAT, _body())
    assert pool.sleeps == [pytest.approx(0.05)]  # type: ignore[attr-defined]
    server.script = ["429", "429"]
    capped = _pool(server.url, max_backoff=0.01)
    capped.post(CHAT, _body())
    assert capped.sleeps == [0.01, 0.01]  # type: ignore[attr-defined]
    pool.close()
    capped.close()


def test_budget_stops_retrying(server: OpenAIServer) -> None:
    """A retry whose wait would overrun the request's budget is not made."""
    server.script = ["429"] * 5
    pool = _pool(server.url, max_retries=5, budget=0.01)
    with pytest.raises(ModelError, match=r"failed after 1 attempts \(HTTP 429; the request's 0.01s budget"):
        pool.post(CHAT, _body())
    assert len(server.requests) == 1 and pool.sleeps == []  # type: ignore[attr-defined]
    assert pool.usage() == {"http.requests": 1, "http.failures": 1, "http.wait_ms": 0}
    pool.close()


def test_gives_up_after_bounded_attempts_with_a_one_line_error(server: OpenAIServer) -> None:
    server.script = ["500"] * 10
    pool = _pool(server.url, max_retries=2)
    with pytest.raises(ModelError, match=r"failed after 3 attempts \(HTTP 500\)") as exc:
        pool.post(CHAT, _body())
    assert f"server {server.url}{CHAT}" in str(exc.value) and "\n" not in str(exc.value)
    assert len(server.requests) == 3
    used = pool.usage()
    assert used["http.retries.http_5xx"] == 2 and used["http.failures"] == 1
    pool.close()


def test_malformed_answers_are_retried_then_named(server: OpenAIServer) -> None:
    server.script = ["badjson", "nofield"]
    pool = _pool(server.url, max_retries=1)
    with pytest.raises(ModelError, match=r"failed after 2 attempts \(answered without a message\)"):
        pool.post(CHAT, _body(), check=_needs_message)
    server.script = ["badjson"]
    once = _pool(server.url, max_retries=0)
    with pytest.raises(ModelError, match=r"\(answered with invalid JSON\)"):
        once.post(CHAT, _body())
    pool.close()
    once.close()


def test_client_error_is_not_retried(server: OpenAIServer) -> None:
    server.script = ["400"]
    pool = _pool(server.url)
    with pytest.raises(ModelError, match=r"refused the request: HTTP 400 .*scripted failure.*Fix: check"):
        pool.post(CHAT, _body())
    assert len(server.requests) == 1 and pool.usage()["http.failures"] == 1
    pool.close()


def test_timeout_is_retried_then_succeeds(server: OpenAIServer) -> None:
    server.script = ["hang"]
    pool = _pool(server.url, timeout=0.2)
    t0 = time.monotonic()
    assert _reply(pool.post(CHAT, _body())) == "reply to: hi END x"
    assert time.monotonic() - t0 < 3 and pool.usage()["http.retries.timeout"] == 1
    pool.close()


def test_server_down_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    pool = _pool(url, max_retries=1)
    with pytest.raises(ModelError, match=r"failed after 2 attempts \(cannot connect") as exc:
        pool.post(CHAT, _body())
    assert url in str(exc.value) and "\n" not in str(exc.value)
    assert pool.usage()["http.retries.connection"] == 1
    pool.close()


def test_headers_are_attached_to_every_request(server: OpenAIServer) -> None:
    pool = _pool(server.url, headers={"Authorization": "Bearer sk-test"})
    pool.map(lambda i: pool.post(CHAT, _body(str(i))), 3)
    for _path, _body_sent, headers in server.requests:
        got = {k.lower(): v for k, v in headers.items()}
        assert got["authorization"] == "Bearer sk-test" and got["content-type"] == "application/json"
    pool.close()


def test_bounded_concurrency(server: OpenAIServer) -> None:
    server.delay = 0.05
    pool = _pool(server.url, max_in_flight=3)
    pool.map(lambda i: pool.post(CHAT, _body(str(i))), 12)
    assert 1 < server.max_in_flight <= 3
    pool.close()


def test_least_outstanding_spreads_over_two_urls(server: OpenAIServer, second: OpenAIServer) -> None:
    """Requests go to the replica with the fewest in flight; equals take turns."""
    pool = _pool([server.url + "/", second.url], max_in_flight=1)
    assert pool.urls == [server.url, second.url] and pool.base_url == server.url
    pool.map(lambda i: pool.post(CHAT, _body(str(i))), 8)  # one at a time: strictly alternating
    assert len(server.requests) == len(second.requests) == 4
    server.delay = second.delay = 0.05
    wide = _pool([server.url, second.url], max_in_flight=4)
    wide.map(lambda i: wide.post(CHAT, _body(str(i))), 16)
    assert len(server.requests) + len(second.requests) == 8 + 16
    assert len(server.requests) - 4 >= 4 and len(second.requests) - 4 >= 4
    assert server.max_in_flight <= 3 and second.max_in_flight <= 3
    pool.close()
    wide.close()


def test_a_busy_replica_is_skipped() -> None:
    pool = HttpPool(["http://a", "http://b"])
    assert pool._acquire() == "http://a"
    for _ in range(3):  # a is busy: b wins however the turns go
        url = pool._acquire()
        assert url == "http://b"
        pool._release(url)
    pool._release("http://a")
    assert [pool._acquire(), pool._acquire()] == ["http://a", "http://b"]


@pytest.mark.parametrize("in_flight", [1, 4])
def test_batch_error_carries_finished_results(in_flight: int) -> None:
    pool = HttpPool(["http://unused"], max_in_flight=in_flight)

    def fn(i: int) -> int:
        if i % 2:
            raise ModelError(f"item {i} failed")
        return i * 10

    with pytest.raises(BatchError, match="item 1 failed") as exc:
        pool.map(fn, 6)
    assert exc.value.done == {0: 0, 2: 20, 4: 40}
    assert str(exc.value.error) == "item 1 failed"
    with pytest.raises(ModelError, match="item 1 failed") as only:  # nothing finished: the first error itself
        pool.map(lambda i: fn(2 * i + 1), 3)
    assert not isinstance(only.value, BatchError)
    assert pool.map(fn, 0) == [] and pool.map(lambda i: i, 3) == [0, 1, 2]


def test_close_then_post_starts_again(server: OpenAIServer) -> None:
    pool = _pool(server.url)
    pool.close()  # never started: nothing to do
    pool.post(CHAT, _body())
    pool.close()
    assert _reply(pool.post(CHAT, _body("again"))) == "reply to: again END x"
    pool.close()
    assert pool.usage()["http.requests"] == 2


# ------------------------------------------------------------------------------------------ replicas that fail


def _dead_url() -> str:
    """A loopback URL with nothing listening (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_a_dead_replica_leaves_the_rotation(server: OpenAIServer) -> None:
    """Connections refused: a replica not yet connected takes one request at a time, so one request finds it
    dead; it goes out at once, that request is retried on the live replica at once (no backoff), and nothing
    more is sent to it while it cools down."""
    pool = _pool([_dead_url(), server.url], max_in_flight=4, backoff=30.0)  # cool-down longer than the test
    pool.map(lambda i: pool.post(CHAT, _body(str(i))), 24)
    used = pool.usage()
    pool.close()
    assert len(server.requests) == 24 and pool.sleeps == []  # type: ignore[attr-defined]
    assert used["http.replicas.removed"] == 1 and "http.replicas.probes" not in used
    assert used["http.retries.connection"] == 1  # the one request that found it dead
    assert used["http.wait_ms"] == 0 and "http.failures" not in used


def test_cool_downs_grow_while_the_replica_keeps_failing(server: OpenAIServer) -> None:
    """The k-th failure in a row keeps the replica out for backoff * 2**(k-1) s, capped at max_backoff; with no
    other replica the request waits it out and probes it itself."""
    server.script = ["500"] * 5
    pool = _pool(server.url, max_retries=5, backoff=0.01, max_backoff=0.03)
    assert _reply(pool.post(CHAT, _body())) == "reply to: hi END x"
    assert pool.sleeps == pytest.approx([0.01, 0.02, 0.03, 0.03, 0.03])  # type: ignore[attr-defined]
    used = pool.usage()
    assert (used["http.replicas.removed"], used["http.replicas.probes"], used["http.replicas.returned"]) == (
        1,
        5,
        1,
    )
    pool.close()


def test_a_probe_brings_a_replica_back(server: OpenAIServer, second: OpenAIServer) -> None:
    server.script = ["500"]
    pool = _pool([server.url, second.url], max_in_flight=1, backoff=0.5)
    for i in range(5):  # the first fails on `server` and goes to `second` at once; the rest stay there
        assert _reply(pool.post(CHAT, _body(str(i)))) == f"reply to: {i} END x"
    assert (len(server.requests), len(second.requests)) == (1, 5) and pool.sleeps == []  # type: ignore[attr-defined]
    time.sleep(0.6)  # the cool-down ends: the next request probes `server`, which answers and is back
    pool.map(lambda i: pool.post(CHAT, _body(str(i))), 4)
    assert (len(server.requests), len(second.requests)) == (3, 7)
    used = pool.usage()
    assert (
        used["http.replicas.removed"] == used["http.replicas.probes"] == used["http.replicas.returned"] == 1
    )
    assert used["http.retries.http_5xx"] == 1
    pool.close()


def test_one_probe_at_a_time(server: OpenAIServer, second: OpenAIServer) -> None:
    """While the probe of a replica is in flight (here it hangs past the timeout), every other request goes to
    the replicas in rotation; the failed probe is retried there at once and the cool-down doubles."""
    server.script = ["500"]
    pool = _pool([server.url, second.url], timeout=0.5, max_in_flight=8, backoff=0.1)
    pool.post(CHAT, _body())
    time.sleep(0.15)
    server.script, second.delay = ["hang"], 0.05
    pool.map(lambda i: pool.post(CHAT, _body(str(i))), 16)
    assert len(server.requests) == 2  # the first failure and the one probe
    used = pool.usage()
    assert used["http.replicas.probes"] == 1 and used["http.retries.timeout"] == 1
    assert "http.replicas.returned" not in used and pool.sleeps == []  # type: ignore[attr-defined]
    pool.close()


def test_when_every_replica_is_out_the_error_names_each(server: OpenAIServer) -> None:
    dead = _dead_url()
    server.script = ["503"] * 10
    pool = _pool([server.url, dead], max_retries=3, backoff=0.01)
    with pytest.raises(ServiceError, match=r"failed after 4 attempts .* on 2 replicas: ") as exc:
        pool.post(CHAT, _body())
    msg = str(exc.value)
    assert "\n" not in msg and msg.count(" out for ") == 2
    assert f"{server.url} out for" in msg and "last: HTTP 503" in msg
    assert f"{dead} out for" in msg and "last: cannot connect" in msg
    pool.close()


def test_waiting_for_a_cool_down_stays_within_the_budget(server: OpenAIServer, second: OpenAIServer) -> None:
    server.script, second.script = ["503"], ["503"]
    pool = _pool([server.url, second.url], backoff=5.0, budget=1.0)
    with pytest.raises(
        ServiceError, match=r"failed after 2 attempts \(.*HTTP 503; the request's 1s budget is spent"
    ):
        pool.post(CHAT, _body())
    assert pool.sleeps == [] and pool.usage()["http.replicas.removed"] == 2  # type: ignore[attr-defined]
    pool.close()


def test_a_server_that_stays_down_fails_waiting_requests_after_their_attempts() -> None:
    """Requests waiting on a probe count its failure as one of their attempts: a dead server fails them all
    after max_retries + 1 tries, as before, not at the end of their budget (900 s)."""
    pool = HttpPool([_dead_url()], max_retries=2, backoff=0.05, max_in_flight=6)
    t0 = time.monotonic()
    with pytest.raises(ServiceError, match="cannot connect"):
        pool.map(lambda i: pool.post(CHAT, _body(str(i))), 6)
    assert time.monotonic() - t0 < 5
    used = pool.usage()
    assert used["http.failures"] == 6 and used["http.replicas.removed"] == 1
    assert 1 <= used["http.replicas.probes"] <= 6
    pool.close()


def test_an_answer_in_flight_brings_a_lone_replica_back(server: OpenAIServer) -> None:
    """A replica that answers one 500 while other requests are in flight there is back as soon as one of them
    is answered (no probe needed), so a lone server is not held out for a whole cool-down."""
    server.delay = 0.3
    pool = _pool(server.url, timeout=3.0, max_retries=0, max_in_flight=4, backoff=30.0)
    slow = threading.Thread(target=lambda: pool.map(lambda i: pool.post(CHAT, _body(str(i))), 3))
    slow.start()
    time.sleep(0.1)  # three requests in flight
    server.script = ["500"]
    with pytest.raises(ServiceError, match="HTTP 500"):
        pool.post(CHAT, _body("fails"))
    slow.join()
    server.delay = 0.0
    assert _reply(pool.post(CHAT, _body("next"))) == "reply to: next END x"
    used = pool.usage()
    assert used["http.replicas.removed"] == used["http.replicas.returned"] == 1
    assert "http.replicas.probes" not in used and pool.sleeps == []  # type: ignore[attr-defined]
    pool.close()
