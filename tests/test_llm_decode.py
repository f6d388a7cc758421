"""The batched decoding engine (clca/llm/decode.py): prefix store, sampler, and the engine on the real model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from clca.llm.base import Chat, GenerationParams, ScoreRequest
from clca.llm.decode import (
    DecodeEngine,
    PrefixStore,
    WeightFirstLinear,
    _sample,
    supports_engine,
    use_decode_attention,
    weight_first_applies,
)
from clca.llm.local import LocalBackend, generation_copy
from clca.llm.registry import load_backend


def _kv(n: int, value: float = 0.0) -> torch.Tensor:
    """A fake prompt KV of ``n`` tokens: [layers=2, 2, heads=1, n, d=4], 64 bytes per token."""
    return torch.full((2, 2, 1, n, 4), value)


# ---------------------------------------------------------------------------------------------- prefix store
def test_prefix_store_longest_common_prefix() -> None:
    st = PrefixStore(budget_bytes=10**6)
    st.add([1, 2, 3, 4, 5], _kv(5, 1.0))
    st.add([1, 2, 9, 9], _kv(4, 2.0))
    e, n = st.lookup([1, 2, 3, 4, 7, 8])
    assert e is not None and n == 4 and float(e.kv[0, 0, 0, 0, 0]) == 1.0
    e, n = st.lookup([1, 2, 9, 9, 9])
    assert e is not None and n == 4 and float(e.kv[0, 0, 0, 0, 0]) == 2.0
    e, n = st.lookup([1, 2, 3])  # the prompt is shorter than the entry
    assert e is not None and n == 3
    assert st.lookup([7, 1, 2]) == (None, 0)
    assert st.lookup_tokens == 6 + 5 + 3 + 3 and st.hit_tokens == 4 + 4 + 3


def test_prefix_store_lru_budget_and_dominated_entries() -> None:
    per_token = _kv(1).numel() * 4
    st = PrefixStore(budget_bytes=10 * per_token)
    st.add([1, 2, 3], _kv(3))
    st.add([5, 6, 7], _kv(3))
    assert st.used_bytes == 6 * per_token
    st.add([1, 2, 3, 4], _kv(4))  # extends [1, 2, 3]: the old entry is dropped
    assert len(st.entries) == 2 and st.used_bytes == 7 * per_token
    st.lookup([5, 6, 7])  # [5, 6, 7] is now the most recently used
    st.add([8, 8, 8, 8, 8], _kv(5))  # over budget: evicts the least recently used ([1, 2, 3, 4])
    assert st.lookup([1, 2, 3, 4]) == (None, 0)
    assert st.lookup([5, 6, 7])[1] == 3 and st.used_bytes == 8 * per_token
    st.add(list(range(11)), _kv(11))  # larger than the whole budget: not kept, nothing evicted
    assert len(st.entries) == 2
    off = PrefixStore(budget_bytes=0)
    off.add([1, 2], _kv(2))
    assert not off.entries


# ------------------------------------------------------------------------------------------------- sampler
def test_sample_greedy_and_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]))
    assert _sample(logits, GenerationParams(), [None, None]).tolist() == [0, 2]

    def draws(top_p: float, n: int = 400) -> set[int]:
        g = torch.Generator().manual_seed(0)
        p = GenerationParams(temperature=1.0, top_p=top_p)
        return {int(_sample(logits[:1], p, [g])[0]) for _ in range(n)}

    assert draws(1.0) == {0, 1, 2}
    assert draws(0.75) == {0, 1}  # smallest set with mass >= 0.75 is {0.5, 0.3}
    assert draws(0.5) == {0}
    # the same generator state gives the same sample; rows use their own generators
    p = GenerationParams(temperature=1.0)
    a = _sample(logits, p, [torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)])
    b = _sample(logits[1:], p, [torch.Generator().manual_seed(4)])
    assert int(a[1]) == int(b[0])


def test_supports_engine_only_plain_full_attention() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    tiny = dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=64
    )
    assert supports_engine(LlamaForCausalLM(LlamaConfig(**tiny)))
    assert not supports_engine(MistralForCausalLM(MistralConfig(sliding_window=8, **tiny)))


def test_decode_attention_equals_sdpa_with_grouped_heads_and_padding() -> None:
    """clca's decode-step attention (two matmuls) gives SDPA's logits and the same greedy tokens, through the
    engine (left padding, prefix reuse, dedup, finished rows dropped) on a tiny random Llama with 4 query heads
    sharing 2 key/value heads."""
    import copy

    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=97, max_position_embeddings=256, attn_implementation="sdpa",
    )  # fmt: skip
    ref = LlamaForCausalLM(cfg).eval()
    ours = copy.deepcopy(ref)
    use_decode_attention(ours)
    assert ours.config._attn_implementation != ref.config._attn_implementation

    class Tok:
        def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
            return " ".join(map(str, ids))

    prompts = [[5, 6, 7, 8, 9, 10, 11], [5, 6, 7, 20], [5, 6, 7, 20], [30, 31]]
    outs = []
    for model in (ref, ours):
        eng = DecodeEngine(model, Tok(), device="cpu", pad_id=0, eos_ids=[96], prefix_cache_bytes=10**7)
        with torch.inference_mode():
            eng.generate(
                prompts[:2], GenerationParams(max_new_tokens=3), seeds=[0, 0]
            )  # fill the prefix store
            outs.append(eng.generate(prompts, GenerationParams(max_new_tokens=12), seeds=[0] * 4))
            ids = torch.tensor([prompts[0] + outs[-1][0][:5]])
            step = model(input_ids=ids[:, :-1], use_cache=True)
            last = model(input_ids=ids[:, -1:], cache=step.cache, use_cache=True)
            outs.append(last.logits[0, -1])
    assert outs[0] == outs[2] and all(len(o) == 12 for o in outs[0])
    assert torch.allclose(outs[1], outs[3], atol=1e-5)


def test_weight_first_linear_rewrites_only_decode_shaped_fp32_cpu_calls() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(96, 200)
    cases = {
        "1 row": torch.randn(1, 1, 96),
        "4 rows (decode step)": torch.randn(4, 1, 96),
        "8 rows": torch.randn(8, 96),
        "9 rows": torch.randn(9, 96),
        "80 rows (prefill)": torch.randn(2, 40, 96),
    }
    for name, x in cases.items():
        ref = torch.nn.functional.linear(x, lin.weight, lin.bias)
        mode = WeightFirstLinear()
        with mode, torch.no_grad():
            got = lin(x)
        rewritten = name in ("4 rows (decode step)", "8 rows")
        assert mode.calls == int(rewritten), name
        assert got.shape == ref.shape and got.is_contiguous() and torch.allclose(got, ref, atol=1e-5), name
        if not rewritten:
            assert torch.equal(got, ref), name
    # no bias, and a bf16 layer passes through untouched
    x = torch.randn(4, 96)
    with WeightFirstLinear() as mode:
        got = torch.nn.functional.linear(x, lin.weight)
    assert mode.calls == 1 and torch.allclose(got, x @ lin.weight.T, atol=1e-5)
    lin16 = torch.nn.Linear(96, 200).to(torch.bfloat16)
    with WeightFirstLinear() as mode:
        lin16(x.to(torch.bfloat16))
    assert mode.calls == 0
    assert weight_first_applies(lin, "cpu") and not weight_first_applies(lin16, "cpu")
    assert not weight_first_applies(lin, "cuda:0")


# ------------------------------------------------------------------------------------- engine on SmolLM2
@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    b = load_backend("embedded:smollm2-135m", cache=False, batch_size=8)
    assert isinstance(b, LocalBackend) and b.engine is not None
    yield b
    b.close()


def _chats() -> list[Chat]:
    return [
        [{"role": "user", "content": "Say hello to my grandmother."}],
        [
            {"role": "system", "content": "You are a travel guide in Kyoto."},
            {"role": "user", "content": "Where to eat?"},
        ],
        [{"role": "user", "content": "What is the capital of France? Answer in one short sentence please."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}],
    ]


@pytest.mark.slow
def test_engine_greedy_equals_transformers_generate(backend: LocalBackend) -> None:
    params = GenerationParams(max_new_tokens=12)
    ours = backend.generate(_chats(), params)
    engine, backend.engine = backend.engine, None
    try:
        reference = backend.generate(_chats(), params)
    finally:
        backend.engine = engine
    assert ours == reference and all(ours)


@pytest.mark.slow
def test_usage_counts_the_work_the_roofline_needs(backend: LocalBackend) -> None:
    """``LocalBackend.usage`` reports the engine's tokens and attended KV positions and scoring's tokens, counted
    by hand here: one row of L prompt tokens generating 5 tokens greedily runs 4 decode steps (the first token
    comes from prefill) attending L+1, ..., L+4 positions."""
    assert backend.engine is not None and backend.engine.weight_first  # CPU, fp32: decode steps run W·xᵀ
    backend.engine.stats = type(backend.engine.stats)()
    backend.score_counts.clear()
    chat: Chat = [{"role": "user", "content": "Write a long story about a cat who travels to the sea."}]
    out = backend.generate([chat], GenerationParams(max_new_tokens=5))
    used = backend.usage()
    n_prompt = len(backend._encode(backend.render(chat)))
    assert used["engine.prompt_tokens"] == n_prompt and used["engine.generated_tokens"] == 5, (out, used)
    assert used["engine.decode_steps"] == 4 and used["engine.decode_rows"] == 4
    assert used["engine.decode_kv_positions"] == 4 * n_prompt + (1 + 2 + 3 + 4)
    assert not any(k.startswith("score.") for k in used)
    req = ScoreRequest(messages=[{"role": "user", "content": "Pick a number."}], options=["1", "10", "yes"])
    p = backend.prepare(req)
    backend.score([req])
    used = backend.usage()
    assert used["score.requests"] == 1 and used["score.context_tokens"] == p.ctx_len - 1
    assert used["score.option_tokens"] == sum(len(f) - (p.ctx_len - 1) for f in p.full)


PERSONA = (
    "You are Wei, a tea merchant in Chengdu. You run the shop your grandfather opened, you know every regular "
    "customer by name, and you care about keeping face with the older merchants of the street. Your goal today "
    "is to persuade your neighbour Li to share the cost of repairing the roof over both shops, without "
    "mentioning that you already borrowed money from your cousin this year."
)


@pytest.mark.slow
def test_engine_prefix_reuse_is_exact_and_saves_prefill(backend: LocalBackend) -> None:
    eng = backend.engine
    assert eng is not None
    params = GenerationParams(max_new_tokens=10)
    first = [
        [
            {"role": "system", "content": PERSONA},
            {"role": "user", "content": t},
        ]
        for t in ("History:\nLi said hello.", "History:\nLi asked about prices.")
    ]
    longer = [
        [c[0], {"role": "user", "content": c[1]["content"] + "\nWei nodded.\nLi said: thank you."}]
        for c in first
    ]
    eng.store.clear()
    eng.store.budget_bytes, budget = 0, eng.store.budget_bytes
    try:
        before = eng.stats.prefilled_tokens
        cold = backend.generate(longer, params)
        cold_prefill = eng.stats.prefilled_tokens - before
    finally:
        eng.store.budget_bytes = budget
    backend.generate(first, params)
    before = eng.stats.prefilled_tokens
    warm = backend.generate(longer, params)
    warm_prefill = eng.stats.prefilled_tokens - before
    assert warm == cold
    assert warm_prefill < cold_prefill / 3  # only the appended lines (and the chat template's tail) ran

    # the logits after a reused prefix equal a full forward pass without any cache
    ids = backend._encode(backend.render(longer[0]))
    with torch.inference_mode():
        reused, _ = eng._prefill([ids])
        full = backend.model(input_ids=torch.tensor([ids])).logits[0, -1]
    assert torch.allclose(reused[0], full, atol=1e-3)


@pytest.mark.slow
def test_engine_dedup_per_row_seeds_stops_and_compaction(backend: LocalBackend) -> None:
    eng = backend.engine
    assert eng is not None
    eng.store.clear()
    chat = _chats()[2]
    n_prompt = len(backend._encode(backend.render(chat)))
    before = eng.stats.prefilled_tokens
    sp = GenerationParams(max_new_tokens=8, temperature=1.0)
    pair = backend.generate([chat, chat], sp, seeds=[1, 2])
    assert eng.stats.prefilled_tokens - before == n_prompt  # identical prompts: one prefill
    assert pair[0] != pair[1]
    # a row's sample depends on its own seed only, not on its batch-mates
    mixed = backend.generate([_chats()[0], chat, _chats()[3]], sp, seeds=[9, 1, 5])
    assert mixed[1] == pair[0]
    # rows that stop early leave the batch (compaction) without changing the others' greedy outputs
    greedy = GenerationParams(max_new_tokens=16, stop=("e",))
    chats = _chats() * 2
    together = backend.generate(chats, greedy)
    alone = [backend.generate([c], greedy)[0] for c in chats]
    assert together == alone
    assert all("e" not in t for t in together)


@pytest.mark.slow
def test_engine_compaction_share_changes_row_steps_not_outputs(backend: LocalBackend) -> None:
    """``compact_at`` only decides when finished rows leave the batch: the outputs stay the same, the decode
    row-steps (``stats.decode_rows``) fall as rows leave earlier, and 'never' computes every row every step."""
    eng = backend.engine
    assert eng is not None
    # rows stop at different steps: "e" ends some rows after a few tokens, others run to max_new_tokens
    params = GenerationParams(max_new_tokens=12, stop=("e",))
    chats = _chats() * 2
    got: dict[float, tuple[list[str], int, int]] = {}
    default = eng.compact_at
    try:
        for share in (2.0, 0.5, 0.25):
            eng.compact_at = share
            eng.store.clear()
            rows0, steps0 = eng.stats.decode_rows, eng.stats.decode_steps
            outs = backend.generate(chats, params)
            got[share] = (outs, eng.stats.decode_rows - rows0, eng.stats.decode_steps - steps0)
    finally:
        eng.compact_at = default
    assert got[2.0][0] == got[0.5][0] == got[0.25][0]
    never, half, quarter = (got[s][1] for s in (2.0, 0.5, 0.25))
    steps = got[2.0][2]
    assert never == len(chats) * steps  # no compaction: every row at every step
    lengths = [len(backend._encode(t)) for t in got[2.0][0]]
    assert min(lengths) < max(lengths)  # the rows did finish at different steps
    assert quarter <= half < never


@pytest.mark.slow
def test_engine_with_peft_adapter_equals_transformers_generate(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from clca.llm.registry import resolve_local_model

    spec = "embedded:smollm2-135m"
    base = AutoModelForCausalLM.from_pretrained(str(resolve_local_model(spec)))
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(str(tmp_path / "ad"))
    tuned = load_backend(f"{spec}+adapter={tmp_path / 'ad'}", cache=False)
    assert isinstance(tuned, LocalBackend) and tuned.engine is not None
    params = GenerationParams(max_new_tokens=10)
    ours = tuned.generate(_chats()[:2], params)
    tuned.engine = None
    assert ours == tuned.generate(_chats()[:2], params)
    tuned.close()


@pytest.mark.slow
def test_bf16_generation_copy_scores_on_fp32_and_generates_like_transformers(backend: LocalBackend) -> None:
    fast = load_backend("embedded:smollm2-135m+quant=bf16", cache=False, batch_size=8)
    assert isinstance(fast, LocalBackend) and fast.engine is not None
    try:
        assert next(fast.gen_model.parameters()).dtype == torch.bfloat16
        assert next(fast.model.parameters()).dtype == torch.float32
        # scoring keeps the fp32 weights: same results, same cache identity; generation gets its own
        req = ScoreRequest(messages=_chats()[2], options=("1", "2", "Paris"))
        assert fast.score([req]) == backend.score([req])
        assert fast.fingerprint == backend.fingerprint
        assert fast.generation_fingerprint == backend.generation_fingerprint + "|quant=bf16"
        # the engine on the bf16 copy: greedy equals transformers' generate on the same weights, row by row
        params = GenerationParams(max_new_tokens=10)
        chats = _chats()[:3]
        ours = [fast.generate([c], params)[0] for c in chats]
        engine, fast.engine = fast.engine, None
        try:
            reference = [fast.generate([c], params)[0] for c in chats]
        finally:
            fast.engine = engine
        assert ours == reference and all(ours)
        # its cost: the next-token distributions stay close to fp32's (measured KL ~0.002-0.003 nats)
        ids = torch.tensor([backend._encode(backend.render([{"role": "system", "content": PERSONA}]))])
        with torch.inference_mode():
            p32 = backend.model(input_ids=ids).logits[0].float().log_softmax(-1)
            p16 = fast.gen_model(input_ids=ids).logits[0].float().log_softmax(-1)
        kl = (p32.exp() * (p32 - p16)).sum(-1).mean()
        assert 0 < float(kl) < 0.02
        # a copy made under inference_mode still has normal weights (inference tensors ran bf16 kernels slower)
        with torch.inference_mode():
            dup = generation_copy(backend.model, "bf16")
        assert not any(p.is_inference() for p in dup.parameters())
        del dup
    finally:
        fast.close()
