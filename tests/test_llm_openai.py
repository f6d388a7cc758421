"""The OpenAI-compatible backend against a local fake server started by the test (127.0.0.1, port 0)."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from oai_server import OpenAIServer

from clca.errors import BatchError, ModelError
from clca.llm.base import LOG_ZERO, Chat, GenerationParams, Message, ScoreRequest
from clca.llm.openai_backend import OpenAIBackend
from clca.llm.registry import load_backend


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def _char_logprob(ch: str) -> float:
    return -0.5 if ch.isdigit() else -0.01


#: a scripted "model" for scoring: listed next-token log-probs by the assistant reply's text so far
REPLY_START = {"1": -0.5, "2": -1.5, " 1": -3.0, "Hello": -3.5}
AFTER = {"1": {".": -0.1, "0": -3.0, "<|im_end|>": -4.0}, "2": {".": -0.2, "5": -2.5}, "10": {".": -0.05}}


class Model:
    """Chat: a reply echoing the request, top log-probs from REPLY_START/AFTER (continuation optional);
    completions: one token per character (digits -0.5, else -0.01), and after the text "0" or "."."""

    def __init__(self) -> None:
        self.continuation = True
        self.logprobs = True

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/chat/completions"):
            msg = {"role": "assistant", "content": "reply to: " + body["messages"][-1]["content"] + " END x"}
            choice: dict[str, Any] = {"index": 0, "message": msg}
            if body.get("continue_final_message") and not self.continuation:
                raise _Refuse()
            if body.get("logprobs") and self.logprobs:
                prefix = body["messages"][-1]["content"] if body.get("continue_final_message") else ""
                dist = AFTER.get(prefix, {}) if prefix else REPLY_START
                top = [{"token": t, "logprob": v} for t, v in dist.items()][: body["top_logprobs"]]
                choice["logprobs"] = {"content": [{"token": "x", "logprob": -1.0, "top_logprobs": top}]}
            return {"choices": [choice]}
        text = body["prompt"]
        nxt = {"0": -2.3, ".": -0.2} if text[-1:].isdigit() else {".": -0.1}
        return {
            "choices": [
                {
                    "text": text + "!",
                    "logprobs": {
                        "tokens": [*text, "!"],
                        "token_logprobs": [None] + [_char_logprob(c) for c in text[1:]] + [-1.0],
                        "top_logprobs": [None] * len(text) + [nxt],
                        "text_offset": [*range(len(text)), len(text)],
                    },
                }
            ]
        }


class _Refuse(Exception):
    pass


class FakeServer(OpenAIServer):
    """The scripted server of these tests: :class:`Model` answers; a refused continuation is HTTP 400."""

    def __init__(self) -> None:
        self.model = Model()
        super().__init__(self._answer, hang_s=1.0)

    def _answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.model(path, body)
        except _Refuse:
            self.script.insert(0, "400")  # not reached: refusals are scripted before answering
            raise


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


def test_replicas_and_fingerprint_come_from_the_transport() -> None:
    b = OpenAIBackend("m", ["http://b:1/v1/", "http://a:1/v1"], sleep=lambda _: None)
    assert b.urls == b.http.urls == ["http://b:1/v1", "http://a:1/v1"] and b.base_url == "http://b:1/v1"
    assert b.spec == "openai:m@http://b:1/v1,http://a:1/v1"
    assert b.fingerprint == "openai:m@http://a:1/v1,http://b:1/v1"  # replica order does not matter
    assert b.usage() == {"http.wait_ms": 0}
    with pytest.raises(ModelError, match="at least one base URL"):
        OpenAIBackend("m", [])


def test_transport_errors_reach_the_caller(server: FakeServer) -> None:
    """Retries happen below the backend (tests/test_llm_http.py); what is left is a one-line error, or a
    BatchError with the finished answers of a batch."""
    server.script = ["429", "500"]
    b = _backend(server)
    assert b.generate([[_user("hi")]], GenerationParams()) == ["reply to: hi END x"]
    assert b.usage()["http.retries.http_429"] == 1 and b.usage()["http.retries.http_5xx"] == 1
    server.script = ["ok", "500", "ok"]
    one_by_one = _backend(server, max_retries=0, max_in_flight=1)
    with pytest.raises(BatchError, match="HTTP 500") as exc:
        one_by_one.generate([[_user(f"q{i}")] for i in range(3)], GenerationParams())
    assert exc.value.done == {0: "reply to: q0 END x", 2: "reply to: q2 END x"}
    b.close()
    one_by_one.close()


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
    """The spec names the variable holding its key (?key_env=); the key goes in the header, not the fingerprint
    (more in tests/test_llm_keys.py)."""
    monkeypatch.delenv("CLCA_OPENAI_KEY_ENV", raising=False)
    monkeypatch.setenv("MY_SECRET_VAR", "sk-test-123")
    b = load_backend(f"openai:test-model@{server.url}?key_env=MY_SECRET_VAR", cache=False, max_retries=0)
    b.generate([[_user("hi")]], GenerationParams())
    headers = {k.lower(): v for k, v in server.requests[-1][2].items()}
    assert headers["authorization"] == "Bearer sk-test-123"
    assert "sk-test" not in b.fingerprint and b.fingerprint == f"openai:test-model@{server.url}"


def test_score_chat_follows_the_option_and_checks_the_next_token(server: FakeServer) -> None:
    """log P(reply gives k) = P(option's tokens) x P(next token does not continue it), from top log-probs."""
    b = _backend(server)
    res = b.score([ScoreRequest(messages=[_user("pick")], options=["1", "2", "10", "3"])])[0]
    first = server.requests[1][1]  # [0] is the continuation probe
    assert first["logprobs"] is True and first["top_logprobs"] == 20 and first["max_tokens"] == 1
    e = math.exp
    assert e(res.logprobs[0]) == pytest.approx(e(-0.5) * (1 - e(-3.0)))  # "1" not followed by "0"
    assert e(res.logprobs[1]) == pytest.approx(e(-1.5) * (1 - e(-2.5)))
    assert e(res.logprobs[2]) == pytest.approx(e(-0.5) * e(-3.0))  # "1" then "0", then "." ends it
    assert res.logprobs[3] == LOG_ZERO  # never listed: 0, the unlisted mass is reported instead
    listed = e(-0.5) + e(-1.5) + e(-3.0) + e(-3.5)
    after_1 = 1 - (e(-0.1) + e(-3.0) + e(-4.0))
    after_10 = 1 - e(-0.05)
    after_2 = 1 - (e(-0.2) + e(-2.5))
    expected = (1 - listed) + e(-0.5) * after_1 + e(-1.5) * after_2 + e(-0.5) * e(-3.0) * after_10
    assert res.uncovered == pytest.approx(expected)
    assert res.format_mass == pytest.approx(sum(e(x) for x in res.logprobs[:3]))


def test_score_chat_without_continuation_support(server: FakeServer) -> None:
    """A server that cannot continue an assistant message: first-token probabilities for prefix-free
    single-token options; "1" vs "10" and answer prefixes are refused before any scoring request."""
    server.model.continuation = False
    server.script = ["400"]  # the continuation probe is refused
    b = _backend(server)
    res = b.score([ScoreRequest(messages=[_user("pick")], options=["1", "2"])])[0]
    assert [math.exp(x) for x in res.logprobs] == pytest.approx([math.exp(-0.5), math.exp(-1.5)])
    n = len(server.requests)
    with pytest.raises(ModelError, match="'1' and '10'"):
        b.score([ScoreRequest(messages=[_user("pick")], options=["1", "10"])])
    with pytest.raises(ModelError, match="answer prefix"):
        b.score([ScoreRequest(messages=[_user("pick")], options=["1"], answer_prefix="Answer: ")])
    assert len(server.requests) == n  # refused before scoring


def test_score_refuses_missing_logprobs(server: FakeServer) -> None:
    server.model.logprobs = False
    b = _backend(server)
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
    assert all(p.endswith(("Answer: 1", "Answer: 10")) for p in prompts)
    assert all(r[1]["echo"] is True and r[1]["logprobs"] == 20 for r in server.requests)
    e = math.exp
    assert e(res.logprobs[0]) == pytest.approx(e(-0.5) * (1 - e(-2.3)))  # the next token is "0" w.p. e^-2.3
    assert e(res.logprobs[1]) == pytest.approx(e(-1.0) * (1 - e(-2.3)))
    assert res.n_tokens == [1, 2]
    assert res.uncovered == pytest.approx((e(-0.5) + e(-1.0)) * (1 - e(-2.3) - e(-0.2)))
