"""The OpenAI-compatible backend against a local fake server started by the test (127.0.0.1, port 0)."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from clca.errors import ModelError
from clca.llm.base import Chat, GenerationParams, Message, ScoreRequest
from clca.llm.openai_backend import OpenAIBackend
from clca.llm.registry import load_backend


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def _char_logprob(ch: str) -> float:
    return -0.5 if ch.isdigit() else -0.01


class FakeServer:
    """A tiny OpenAI-compatible server; ``script`` is a queue of failures to serve before answering 200."""

    def __init__(self) -> None:
        self.script: list[str] = []  # "429", "500", "hang", "400"
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.top_logprobs: list[dict[str, Any]] | None = [
            {"token": "2", "logprob": -0.2},
            {"token": " 1", "logprob": -2.0},
            {"token": "1", "logprob": -2.5},
            {"token": "3", "logprob": -4.0},
        ]
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append((self.path, body, dict(self.headers)))
                    action = server.script.pop(0) if server.script else "ok"
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if action == "hang":
                        time.sleep(1.0)
                        return
                    if action in ("429", "500", "400"):
                        self.send_response(int(action))
                        if action == "429":
                            self.send_header("Retry-After", "0.25")
                        self.send_header("Content-Length", "2")
                        self.end_headers()
                        self.wfile.write(b"{}")
                        return
                    time.sleep(server.delay)
                    self._ok(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _ok(self, body: dict[str, Any]) -> None:
                if self.path.endswith("/chat/completions"):
                    msg = {
                        "role": "assistant",
                        "content": "reply to: " + body["messages"][-1]["content"] + " END x",
                    }
                    choice: dict[str, Any] = {"index": 0, "message": msg}
                    if body.get("logprobs") and server.top_logprobs is not None:
                        choice["logprobs"] = {
                            "content": [{"token": "2", "logprob": -0.2, "top_logprobs": server.top_logprobs}]
                        }
                    out: dict[str, Any] = {"choices": [choice]}
                else:  # /completions with echo: one token per character
                    text = body["prompt"]
                    out = {
                        "choices": [
                            {
                                "text": text + "!",
                                "logprobs": {
                                    "tokens": [*text, "!"],
                                    "token_logprobs": [None] + [_char_logprob(c) for c in text[1:]] + [-1.0],
                                    "text_offset": [*range(len(text)), len(text)],
                                },
                            }
                        ]
                    }
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def _backend(server: FakeServer, **kw: Any) -> OpenAIBackend:
    sleeps: list[float] = []
    kw.setdefault("timeout", 0.3)
    kw.setdefault("max_retries", 3)
    b = OpenAIBackend("test-model", server.url, sleep=sleeps.append, **kw)
    b.sleeps = sleeps  # type: ignore[attr-defined]
    return b


def test_generate_in_order_with_params_stop_seed_schema(server: FakeServer) -> None:
    b = _backend(server)
    chats: list[Chat] = [[_user(f"q{i}")] for i in range(5)]
    schema: dict[str, object] = {"type": "object", "properties": {"a": {"type": "string"}}}
    params = GenerationParams(
        max_new_tokens=7, temperature=0.7, top_p=0.9, stop=("END",), seed=3, json_schema=schema
    )
    out = b.generate(chats, params, seeds=[10, 11, 12, 13, 14])
    assert out == [f"reply to: q{i} " for i in range(5)]
    bodies = sorted((r[1] for r in server.requests), key=lambda x: x["seed"])
    assert [x["seed"] for x in bodies] == [10, 11, 12, 13, 14]
    first = bodies[0]
    assert (first["model"], first["max_tokens"], first["temperature"], first["top_p"]) == (
        "test-model",
        7,
        0.7,
        0.9,
    )
    assert first["stop"] == ["END"]
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == schema
    b.generate(chats[:1], GenerationParams())
    assert server.requests[-1][1]["seed"] == 0 and "response_format" not in server.requests[-1][1]


def test_bounded_concurrency(server: FakeServer) -> None:
    server.delay = 0.05
    b = _backend(server, max_concurrency=3)
    b.generate([[_user(str(i))] for i in range(12)], GenerationParams())
    assert 1 < server.max_in_flight <= 3


def test_retries_429_with_retry_after_then_500_then_ok(server: FakeServer) -> None:
    server.script = ["429", "500"]
    b = _backend(server)
    assert b.generate([[_user("hi")]], GenerationParams()) == ["reply to: hi END x"]
    assert len(server.requests) == 3
    assert b.sleeps[0] == pytest.approx(0.25)  # type: ignore[attr-defined]
    assert 0 <= b.sleeps[1] <= 2.0  # type: ignore[attr-defined]


def test_timeout_is_retried_then_succeeds(server: FakeServer) -> None:
    server.script = ["hang"]
    b = _backend(server, timeout=0.2)
    t0 = time.monotonic()
    assert b.generate([[_user("hi")]], GenerationParams()) == ["reply to: hi END x"]
    assert time.monotonic() - t0 < 3


def test_gives_up_after_bounded_attempts(server: FakeServer) -> None:
    server.script = ["500"] * 10
    b = _backend(server, max_retries=2)
    with pytest.raises(ModelError, match=r"failed after 3 attempts \(HTTP 500\)") as exc:
        b.generate([[_user("hi")]], GenerationParams())
    assert server.url in str(exc.value) and "\n" not in str(exc.value)
    assert len(server.requests) == 3


def test_client_error_is_not_retried(server: FakeServer) -> None:
    server.script = ["400"]
    b = _backend(server)
    with pytest.raises(ModelError, match="HTTP 400"):
        b.generate([[_user("hi")]], GenerationParams())
    assert len(server.requests) == 1


def test_server_down_is_one_line_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    b = OpenAIBackend("m", url, timeout=0.5, max_retries=1, sleep=lambda _: None)
    with pytest.raises(ModelError, match="cannot connect") as exc:
        b.generate([[_user("hi")]], GenerationParams())
    msg = str(exc.value)
    assert url in msg and "Fix:" in msg and "\n" not in msg


def test_key_from_env_in_header_never_in_fingerprint(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLCA_OPENAI_KEY_ENV", "MY_SECRET_VAR")
    monkeypatch.setenv("MY_SECRET_VAR", "sk-test-123")
    b = load_backend(f"openai:test-model@{server.url}", cache=False, max_retries=0)
    b.generate([[_user("hi")]], GenerationParams())
    headers = {k.lower(): v for k, v in server.requests[-1][2].items()}
    assert headers["authorization"] == "Bearer sk-test-123"
    assert "sk-test" not in b.fingerprint and b.fingerprint == f"openai:test-model@{server.url}"


def test_score_top_logprobs_single_token_options(server: FakeServer) -> None:
    b = _backend(server)
    res = b.score([ScoreRequest(messages=[_user("pick")], options=["1", "2", "3", "4"])])[0]
    body = server.requests[-1][1]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    assert res.logprobs[1] == pytest.approx(-0.2)
    assert res.logprobs[0] == pytest.approx(math.log(math.exp(-2.0) + math.exp(-2.5)))  # " 1" and "1"
    assert res.logprobs[2] == pytest.approx(-4.0)
    assert res.logprobs[3] == pytest.approx(-4.0)  # absent from the top list: the floor (upper bound)


def test_score_refuses_prefix_options_and_missing_logprobs(server: FakeServer) -> None:
    b = _backend(server)
    with pytest.raises(ModelError, match="'1' and '10'"):
        b.score([ScoreRequest(messages=[_user("pick")], options=["1", "10"])])
    server.top_logprobs = None
    with pytest.raises(ModelError, match="gave no log-probabilities"):
        b.score([ScoreRequest(messages=[_user("pick")], options=["1", "2"])])


@pytest.mark.slow  # imports transformers and loads the SmolLM2 tokenizer
def test_score_echo_multi_token_options(server: FakeServer) -> None:
    b = load_backend(
        f"openai:test-model@{server.url}+tokenizer=embedded:smollm2-135m", cache=False, timeout=2.0
    )
    assert isinstance(b, OpenAIBackend) and "tokenizer=embedded:smollm2-135m" in b.fingerprint
    res = b.score([ScoreRequest(messages=[_user("pick")], options=["1", "10"], answer_prefix="Answer: ")])[0]
    prompts = [r[1]["prompt"] for r in server.requests]
    assert all(p.endswith("<|im_end|>") and "Answer: " in p for p in prompts)
    assert prompts[1].endswith("Answer: 10<|im_end|>")
    end = sum(_char_logprob(c) for c in "<|im_end|>")
    assert res.logprobs[0] == pytest.approx(-0.5 + end)
    assert res.logprobs[1] == pytest.approx(-1.0 + end)
    assert res.n_tokens == [1 + len("<|im_end|>"), 2 + len("<|im_end|>")]
