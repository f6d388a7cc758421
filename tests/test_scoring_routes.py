"""The model's answer distribution, the same on every route (issue: survey scoring must measure the answer).

On the real embedded SmolLM2: log P(reply gives code k) from the local backend equals a hand computation from
the model's own next-token distributions ("1" vs "10" included), a model that goes on "1. Very important"
gets its mass on 1, and the local, completions-echo and chat top-logprobs routes agree on the same weights
(served by a small OpenAI-compatible server around the same model, on 127.0.0.1).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from oai_server import ModelAnswers, OpenAIServer

from clca.data.wvs import load_wvs7
from clca.evaluation.prompts import render_messages
from clca.evaluation.styles import builtin_styles
from clca.llm.base import GenerationParams, ScoreRequest
from clca.llm.local import LocalBackend
from clca.llm.openai_backend import OpenAIBackend
from clca.llm.registry import load_backend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol(data_dir: Any) -> Iterator[LocalBackend]:
    b = load_backend("embedded:smollm2-135m", cache=False, batch_size=8)
    assert isinstance(b, LocalBackend)
    yield b
    b.close()


def _request(qid: str, country: str = "Japan") -> ScoreRequest:
    item = load_wvs7().items[qid]
    msgs = render_messages(builtin_styles()["plain"], item, country)
    return ScoreRequest(messages=msgs, options=[str(c) for c in item.codes])


def _next_logprobs(b: LocalBackend, text: str) -> torch.Tensor:
    ids = torch.tensor([b.tokenizer(text, add_special_tokens=False).input_ids])
    with torch.inference_mode():
        return torch.log_softmax(b.model(input_ids=ids).logits[0, -1].float(), dim=-1)


def _digit_mass(b: LocalBackend, lp: torch.Tensor) -> float:
    """P(the next token starts with an ASCII digit), summed by hand over the vocabulary."""
    tok = b.tokenizer
    texts = (tok.convert_tokens_to_string([tok.convert_ids_to_tokens(i)]) for i in range(len(tok)))
    digits = [i for i, t in enumerate(texts) if t[:1] and t[:1] in "0123456789"]
    return float(lp[digits].exp().sum())


def test_one_and_ten_by_hand_on_a_ten_point_question(smol: LocalBackend) -> None:
    """P(gives 1) = P("1") (1 - P(digit | "1")); P(gives 10) = P("1") P("0" | "1") (1 - P(digit | "10"))."""
    req = _request("Q48")
    res = smol.score([req])[0]
    prompt = smol.render(req.messages)
    one = smol.tokenizer.convert_tokens_to_ids("1")
    zero = smol.tokenizer.convert_tokens_to_ids("0")
    lp0 = _next_logprobs(smol, prompt)
    lp1 = _next_logprobs(smol, prompt + "1")
    lp10 = _next_logprobs(smol, prompt + "10")
    p1 = math.exp(float(lp0[one])) * (1 - _digit_mass(smol, lp1))
    p10 = math.exp(float(lp0[one]) + float(lp1[zero])) * (1 - _digit_mass(smol, lp10))
    got = [math.exp(x) for x in res.logprobs]
    assert got[0] == pytest.approx(p1, rel=1e-4) and got[9] == pytest.approx(p10, rel=1e-4)
    assert res.uncovered == 0.0 and res.format_mass == pytest.approx(sum(got))
    naive = smol.score_naive([req])[0]
    assert [math.exp(x) for x in naive.logprobs] == pytest.approx(got, abs=1e-5)


def test_a_model_that_goes_on_with_1_dot_gets_its_mass_on_1(smol: LocalBackend) -> None:
    """SmolLM2 answers Japan Q1 with "1. Very important..." (greedy): the scored distribution puts most mass on
    option 1, matching its next-token probabilities of the codes, and records the format mass."""
    req = _request("Q1")
    out = smol.generate([req.messages], GenerationParams(max_new_tokens=6))
    assert out[0].startswith("1")
    res = smol.score([req])[0]
    p = [math.exp(x) for x in res.logprobs]
    dist = [x / sum(p) for x in p]
    assert max(range(4), key=lambda i: dist[i]) == 0 and dist[0] > 0.8
    lp0 = _next_logprobs(smol, smol.render(req.messages))
    codes = [smol.tokenizer.convert_tokens_to_ids(c) for c in "1234"]
    first = [math.exp(float(lp0[i])) for i in codes]
    assert dist == pytest.approx([x / sum(first) for x in first], abs=0.05)
    assert 0.2 < res.format_mass < 0.8


@pytest.fixture(scope="module")
def server(smol: LocalBackend) -> Iterator[OpenAIServer]:
    s = OpenAIServer(ModelAnswers(smol.model_dir))
    yield s
    s.close()


def test_local_echo_and_chat_routes_agree(smol: LocalBackend, server: OpenAIServer) -> None:
    reqs = [_request(q) for q in ("Q1", "Q7", "Q27", "Q33", "Q43", "Q48")]
    local = smol.score(reqs)
    echo = OpenAIBackend(
        "smollm2", server.url, tokenizer="embedded:smollm2-135m", top_logprobs=50, timeout=60
    )
    chat = OpenAIBackend("smollm2", server.url, top_logprobs=100, timeout=60)
    via_echo, via_chat = echo.score(reqs), chat.score(reqs)
    assert chat._continuation is True  # the server continues assistant messages, as vLLM does
    for r, a, b, c in zip(reqs, local, via_echo, via_chat, strict=True):
        pa = [math.exp(x) for x in a.logprobs]
        assert b.uncovered < 1e-2 and [math.exp(x) for x in b.logprobs] == pytest.approx(
            pa, abs=1e-3 + b.uncovered
        ), r.options
        assert [math.exp(x) for x in c.logprobs] == pytest.approx(pa, abs=1e-3 + c.uncovered), r.options
        assert b.format_mass == pytest.approx(a.format_mass, abs=1e-3)
    echo.close()
    chat.close()
