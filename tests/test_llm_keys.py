"""Keys per endpoint (:func:`clca.llm.spec.endpoint_keys`): each spec sends its own key, the default key goes to
OpenAI only, no key travels in clear text to another machine unless the spec says so, and no message quotes a
key. Scripted servers on 127.0.0.1 (port 0); the refused non-loopback address (192.0.2.1, a documentation
address) is never connected to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oai_server import OpenAIServer, echo_answer

from clca.cli import main
from clca.errors import ModelError
from clca.llm.base import GenerationParams
from clca.llm.openai_backend import OpenAIBackend
from clca.llm.registry import load_backend
from clca.llm.spec import endpoint_keys, is_loopback, parse_spec

KEY_A = "sk-aaaa-1111-first-secret"
KEY_B = "sk-bbbb-2222-second-secret"
OPENAI_KEY = "sk-openai-9999-default-secret"
KEYS = (KEY_A, KEY_B, OPENAI_KEY)
FAR = "http://192.0.2.1:8000/v1"  # TEST-NET-1: not routable, never contacted here


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLCA_OPENAI_KEY_ENV", raising=False)
    monkeypatch.delenv("NOPE_KEY", raising=False)
    monkeypatch.setenv("KEY_A", KEY_A)
    monkeypatch.setenv("KEY_B", KEY_B)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


@pytest.fixture()
def servers() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    a, b = OpenAIServer(echo_answer, hang_s=1.0), OpenAIServer(echo_answer, hang_s=1.0)
    yield a, b
    a.close()
    b.close()


def _auth(server: OpenAIServer) -> set[str | None]:
    """The Authorization headers the server received (None: none sent)."""
    return {{k.lower(): v for k, v in h.items()}.get("authorization") for _p, _b, h in server.requests}


def _ask(spec: str, n: int = 3, **kw: object) -> OpenAIBackend:
    be = load_backend(spec, cache=False, max_retries=0, **kw)
    assert isinstance(be, OpenAIBackend)
    be.generate([[{"role": "user", "content": f"q{i}"}] for i in range(n)], GenerationParams())
    return be


def _no_key_in(text: str) -> None:
    assert not any(k in text for k in KEYS), text
    assert "\n" not in text


def test_each_server_receives_only_its_own_key(servers: tuple[OpenAIServer, OpenAIServer]) -> None:
    a, b = servers
    _ask(f"openai:m@{a.url}?key_env=KEY_A").close()
    _ask(f"openai:m@{b.url}?key_env=KEY_B").close()
    assert _auth(a) == {f"Bearer {KEY_A}"} and _auth(b) == {f"Bearer {KEY_B}"}


def test_the_default_key_goes_to_openai_over_https_only(servers: tuple[OpenAIServer, OpenAIServer]) -> None:
    a, _ = servers
    _ask(f"openai:m@{a.url}").close()
    assert _auth(a) == {None}  # OPENAI_API_KEY is set, but this is not api.openai.com
    got = endpoint_keys(
        "m", ["https://api.openai.com/v1", "http://api.openai.com/v1", "https://example.com/v1"]
    )
    assert got == {
        "https://api.openai.com/v1": OPENAI_KEY,
        "http://api.openai.com/v1": None,  # plain http: not even OpenAI
        "https://example.com/v1": None,
    }


def test_a_key_in_clear_text_to_another_machine_is_refused() -> None:
    spec = f"openai:m@{FAR}?key_env=KEY_A"
    for make in (parse_spec, lambda s: load_backend(s, cache=False)):
        with pytest.raises(
            ModelError, match=r"clear text over plain http .*Fix: use https.*insecure_key=1"
        ) as exc:
            make(spec)
        assert "$KEY_A" in str(exc.value)
        _no_key_in(str(exc.value))
    with pytest.raises(ModelError, match="plain http"):
        OpenAIBackend("m", ["http://127.0.0.1:9/v1", FAR], key_env="KEY_A")  # one far replica is enough
    # said explicitly, or over https: the backend is made (nothing is sent here) with the key for that replica
    be = load_backend(f"{spec}&insecure_key=1", cache=False)
    assert isinstance(be, OpenAIBackend) and be.http._headers_for(FAR)["Authorization"] == f"Bearer {KEY_A}"
    tls = load_backend("openai:m@https://192.0.2.1/v1?key_env=KEY_A", cache=False)
    assert isinstance(tls, OpenAIBackend)
    for url in ("http://localhost:8000/v1", "http://127.0.0.2:8000/v1", "http://[::1]:8000/v1"):
        assert is_loopback(url) and parse_spec(f"openai:m@{url}?key_env=KEY_A").key_env == "KEY_A"
    assert not is_loopback(FAR) and not is_loopback("http://localhost.example.com/v1")
    # without a key nothing is at risk: a far plain-http server is fine
    assert parse_spec(f"openai:m@{FAR}").key_env is None


def test_the_cli_refuses_it_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--out", str(tmp_path / "ev"), "--model", f"openai:m@{FAR}?key_env=KEY_A"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "plain http" in err, err
    _no_key_in(err)
    assert not (tmp_path / "ev").exists()


def test_an_unset_key_variable_is_one_line_naming_it() -> None:
    with pytest.raises(ModelError, match=r"takes its key from \$NOPE_KEY, which is not set") as exc:
        load_backend("openai:m@http://127.0.0.1:9/v1?key_env=NOPE_KEY", cache=False)
    _no_key_in(str(exc.value))


@pytest.mark.parametrize(
    "query",
    [
        f"key_env={KEY_A}",
        "key_env=ab12cd34ef56ab12cd34ef56",
        "key_env=",
        "insecure_key=1",
        "insecure_key=maybe",
    ],
)
def test_bad_key_settings_are_refused_without_echo(query: str) -> None:
    with pytest.raises(ModelError) as exc:
        parse_spec(f"openai:m@https://example.com/v1?{query}")
    _no_key_in(str(exc.value))
    assert "ab12cd34" not in str(exc.value)


def test_the_old_variable_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLCA_OPENAI_KEY_ENV", "KEY_A")
    with pytest.raises(
        ModelError, match=r"CLCA_OPENAI_KEY_ENV is set, but clca no longer reads it.*key_env="
    ):
        load_backend("openai:m@http://127.0.0.1:9/v1", cache=False)


def test_no_message_quotes_a_key(servers: tuple[OpenAIServer, OpenAIServer]) -> None:
    """A server that quotes the key back in its 401, an unreachable replica, a server error: the messages
    name variables, never values."""
    a, b = servers
    a.script = ["401"]
    be = load_backend(f"openai:m@{a.url}?key_env=KEY_A", cache=False, max_retries=0)
    with pytest.raises(ModelError, match=r"HTTP 401 .*bad key \*\*\*.*Fix: check the key in \$KEY_A") as exc:
        be.generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    _no_key_in(str(exc.value))
    be.close()
    b.script = ["401"]  # a server that wants a key the spec does not name: the hint says how
    keyless = load_backend(f"openai:m@{b.url}", cache=False, max_retries=0)
    with pytest.raises(
        ModelError, match=r"sends \$OPENAI_API_KEY only to https://api.openai.com.*key_env=NAME"
    ):
        keyless.generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    keyless.close()
    a.script = ["500"]
    down = load_backend(
        f"openai:m@{a.url},http://127.0.0.1:9/v1?key_env=KEY_A", cache=False, max_retries=1, backoff=0.01
    )
    with pytest.raises(ModelError) as failed:
        down.generate([[{"role": "user", "content": "hi"}]], GenerationParams())
    _no_key_in(str(failed.value))
    down.close()
