"""The local transformers backend on the real embedded SmolLM2 (slow: loads the 135M model once)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from clca.errors import ModelError
from clca.evaluation.metrics import softmax_logprobs as softmax_options
from clca.llm.base import Chat, GenerationParams, Message, ScoreRequest
from clca.llm.cache import CachedBackend, CallCache
from clca.llm.local import LocalBackend, cut_at_stop
from clca.llm.registry import load_backend, resolve_local_model

pytestmark = pytest.mark.slow

SPEC = "embedded:smollm2-135m"
SCALE = [str(i) for i in range(1, 11)]


def _msg(role: str, content: str) -> Message:
    return {"role": "user" if role == "user" else "system", "content": content}


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    b = load_backend(SPEC, cache=False, batch_size=4)
    assert isinstance(b, LocalBackend)
    yield b
    b.close()


def _requests() -> list[ScoreRequest]:
    sys_msg = _msg("system", "You are an average human being born in Japan and living in Japan.")
    q = "How important is family in your life? 1 Very important 2 Rather important 3 Not very important 4 Not at all important"
    return [
        ScoreRequest(
            messages=[_msg("user", q + " Answer with the number only.")],
            options=["1", "2", "3", "4"],
        ),
        ScoreRequest(
            messages=[
                sys_msg,
                _msg("user", "How satisfied are you with your life, 1-10? Number only."),
            ],
            options=SCALE,
        ),
        ScoreRequest(
            messages=[sys_msg, _msg("user", "Pick one.")],
            options=["yes", "no way", "10"],
            answer_prefix="Answer: ",
        ),
    ]


def test_score_equals_naive_full_sequence_scoring(backend: LocalBackend) -> None:
    reqs = _requests()
    fast = backend.score(reqs)
    naive = backend.score_naive(reqs)
    for f, n, r in zip(fast, naive, reqs, strict=True):
        assert len(f.logprobs) == len(r.options)
        assert f.n_tokens == n.n_tokens
        for a, b in zip(f.logprobs, n.logprobs, strict=True):
            assert a == pytest.approx(b, abs=1e-4)
    # batch composition does not change a request's scores (left padding + position ids are right)
    alone = backend.score([reqs[1]])[0]
    assert alone.logprobs == pytest.approx(fast[1].logprobs, abs=1e-4)


def test_multi_token_options_and_distribution(backend: LocalBackend) -> None:
    all_res = backend.score(_requests())
    res = all_res[1]
    one, ten = res.logprobs[0], res.logprobs[9]
    assert res.n_tokens[0] == 1 and res.n_tokens[9] == 2  # "1" vs "1","0" (then the continuation check)
    assert one != ten
    total = sum(math.exp(x) for x in res.logprobs)
    assert 0 < total < 1
    dist = softmax_options(res.logprobs)
    assert sum(dist) == pytest.approx(1.0) and all(p > 0 for p in dist)
    # the answer prefix merges with the option (" 10"): scored from the BPE boundary, still finite
    assert all(math.isfinite(x) and x < 0 for x in all_res[2].logprobs)


def test_generation_batched_equals_unbatched_stop_strings_and_seeds(backend: LocalBackend) -> None:
    france: Chat = [_msg("user", "What is the capital of France? Answer in one short sentence please.")]
    chats: list[Chat] = [
        [_msg("user", "Say hello.")],
        france,
        [_msg("system", "Be brief."), _msg("user", "Name a fruit.")],
    ]
    params = GenerationParams(max_new_tokens=8)
    batched = backend.generate(chats, params)
    single = [backend.generate([c], params)[0] for c in chats]
    assert batched == single  # left padding + attention mask: batching does not change greedy output
    assert all(isinstance(t, str) and t for t in batched)
    full = single[1]
    assert "Paris" in full
    stopped = backend.generate([france], GenerationParams(max_new_tokens=8, stop=("Paris",)))[0]
    assert stopped == full[: full.index("Paris")]
    sp = GenerationParams(max_new_tokens=4, temperature=1.0)
    a = backend.generate([france, france], sp, seeds=[7, 8])
    b = backend.generate([france, france], sp, seeds=[7, 8])
    assert a == b  # seeded sampling is reproducible


def test_cut_at_stop() -> None:
    assert cut_at_stop("a b STOP c END", ["END", "STOP"]) == "a b "
    assert cut_at_stop("abc", []) == "abc"


def test_adapter_changes_outputs_and_fingerprint(backend: LocalBackend, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = resolve_local_model(SPEC)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    cfg = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(str(tmp_path / "ad"))
    cache = CallCache(tmp_path / "c.sqlite")
    tuned = load_backend(f"{SPEC}+adapter={tmp_path / 'ad'}", cache=cache)
    assert isinstance(tuned, CachedBackend)
    assert str(tmp_path / "ad") in tuned.fingerprint and tuned.fingerprint != backend.fingerprint
    req = _requests()[:1]
    assert tuned.score(req)[0].logprobs != pytest.approx(backend.score(req)[0].logprobs, abs=1e-3)
    tuned.close()
    with pytest.raises(ModelError, match="adapter folder"):
        load_backend(f"{SPEC}+adapter={tmp_path / 'missing'}", cache=False)
