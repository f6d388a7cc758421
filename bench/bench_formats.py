"""Generation weight formats on this CPU: kernel speed and what each format costs in quality.

Prints, in one process (2 threads by default, the embedded SmolLM2-135M-Instruct):

* linear-layer kernels, ms per call, fp32 vs bf16 vs int8 (``torch.ao`` dynamic quantisation, per-channel
  weights) vs weight-only int8 (``aten._weight_int8pack_mm``: int8 weights with per-channel scales, bf16
  activations), for the model's MLP shape at decode and prefill row counts and for its LM head;
* one decode step's attention per layer (16 rows, 9 query heads over 3 KV heads, as SmolLM2), ms: transformers'
  SDPA path vs clca's matmul decode attention (:func:`clca.llm.decode._decode_attention`), fp32 and bf16;
* quality of each format against the fp32 model on fixed chats (every position of the rendered chat plus a
  reply): mean next-token KL (nats) and top-1 agreement, for ``+quant=bf16`` (clca's generation copy) and for int8
  applied to all linear layers and to each group of them alone;
* survey scoring with each format against fp32 (``LocalBackend.score`` on the 45 plain-prompt WVS items of
  bench/bench_scoring.py): seconds and speed ratio, mean and max Jensen-Shannon distance between the option
  distributions, argmax agreement, and how far the survey metric moves (mean JS distance to the WVS answers of
  three countries), i.e. whether a format passes the scoring agreement check (it does not: scoring stays fp32);
* prefill attention per layer: transformers' SDPA path (which copies the grouped KV heads, ``repeat_kv``, when a
  mask is given) vs SDPA with ``enable_gqa``;
* with ``--compile``: one decode step on the bf16 copy eager vs ``torch.compile`` (static shapes).

    python bench/bench_formats.py [--threads 2] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from clca.llm.hardware import cpu_line

CHATS = [
    ("Describe a tea ceremony in two sentences.", "A tea ceremony is a ritual in which a host prepares tea."),
    (
        "You are Li Wei, a shopkeeper in Chengdu. Your goal: sell the vase for 300 yuan. Reply with one line.",
        "Li Wei: This vase is from my grandfather's shop, I cannot go below 300 yuan.",
    ),
    (
        "How important is family in your life? 1 Very important 2 Rather important 3 Not very important "
        "4 Not at all important. Answer with the number.",
        "1",
    ),
]

COUNTRIES = ("Germany", "China", "Great Britain")


def ms(fn: Callable[[], Any], n: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def int8(model: Any, only: tuple[str, ...] | None = None) -> Any:
    """``model`` with dynamic int8 linear layers (all, or those whose name contains one of ``only``)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    dup = copy.deepcopy(model)
    spec = {
        name: per_channel_dynamic_qconfig
        for name, mod in dup.named_modules()
        if isinstance(mod, torch.nn.Linear) and (only is None or any(k in name for k in only))
    }
    return quantize_dynamic(dup, spec, dtype=torch.qint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time a torch.compile'd decode step on the bf16 copy (~2 min)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # torch.ao announces its move to torchao

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from clca.llm.decode import _decode_attention
    from clca.llm.local import LocalBackend, generation_copy
    from clca.llm.registry import load_backend

    be = load_backend("embedded:smollm2-135m", cache=False)
    assert isinstance(be, LocalBackend)
    cfg = be.model.config
    hidden, inter, vocab = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    dim = hidden // heads
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.threads} threads, torch {torch.__version__}, "
        f"{cpu_line()}"
    )

    print(
        "\n| linear layer | rows | fp32 ms | bf16 ms | int8 ms (dynamic) | int8 weight-only ms (bf16 activations) |"
        "\n|---|---|---|---|---|---|"
    )
    with torch.inference_mode():
        for (i, o), rows in [((hidden, inter), 1), ((hidden, inter), 8), ((hidden, inter), 16),
                             ((hidden, inter), 32), ((hidden, inter), 3000),
                             ((hidden, vocab), 8), ((hidden, vocab), 16), ((hidden, vocab), 32)]:  # fmt: skip
            lin = torch.nn.Linear(i, o, bias=False)
            x = torch.randn(rows, i)
            b16, x16 = copy.deepcopy(lin).to(torch.bfloat16), x.to(torch.bfloat16)
            q8 = int8(torch.nn.Sequential(lin))
            scale = lin.weight.abs().amax(1) / 127  # per output channel
            w8 = torch.round(lin.weight / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
            w8mm = partial(torch.ops.aten._weight_int8pack_mm, x16, w8, scale.to(torch.bfloat16))
            print(
                f"| {i}→{o} | {rows} | {ms(partial(lin, x)):.2f} | {ms(partial(b16, x16)):.2f} | "
                f"{ms(partial(q8, x)):.2f} | {ms(w8mm):.2f} |",
                flush=True,
            )

        print("\n| decode attention per layer, 16 rows | context | SDPA ms | clca ms |\n|---|---|---|---|")
        module = torch.nn.Module()  # what transformers' attention reads from a layer
        setattr(module, "num_key_value_groups", heads // kv_heads)  # noqa: B010
        setattr(module, "is_causal", True)  # noqa: B010
        for dtype in (torch.float32, torch.bfloat16):
            for ctx in (600, 1500):
                q = torch.randn(16, heads, 1, dim, dtype=dtype)
                k, v = (torch.randn(16, kv_heads, ctx, dim, dtype=dtype) for _ in range(2))
                mask = torch.ones(16, 1, 1, ctx, dtype=torch.bool)
                mask[:, :, :, :100] = False  # left padding
                sdpa = ms(partial(sdpa_attention_forward, module, q, k, v, mask, scaling=dim**-0.5))
                ours = ms(partial(_decode_attention, module, q, k, v, mask, scaling=dim**-0.5))
                print(
                    f"| {str(dtype).removeprefix('torch.')} | {ctx} | {sdpa:.2f} | {ours:.2f} |", flush=True
                )

        print(
            "\n| prefill attention per layer | rows × new tokens over context | transformers SDPA (repeat_kv) ms "
            "| SDPA enable_gqa ms |\n|---|---|---|---|"
        )
        for dtype in (torch.float32, torch.bfloat16):
            for rows, new, ctx in ((8, 100, 800), (16, 60, 700)):
                q = torch.randn(rows, heads, new, dim, dtype=dtype)
                k, v = (torch.randn(rows, kv_heads, ctx, dim, dtype=dtype) for _ in range(2))
                mask = torch.ones(rows, 1, new, ctx, dtype=torch.bool).tril(diagonal=ctx - new)
                mask[:, :, :, :10] = False  # left padding
                repeat = ms(partial(sdpa_attention_forward, module, q, k, v, mask, scaling=dim**-0.5))
                gqa = ms(partial(torch.nn.functional.scaled_dot_product_attention, q, k, v, attn_mask=mask,
                                 scale=dim**-0.5, enable_gqa=True))  # fmt: skip
                print(
                    f"| {str(dtype).removeprefix('torch.')} | {rows} × {new} over {ctx} | {repeat:.2f} | {gqa:.2f} |",
                    flush=True,
                )

        print("\n| format (vs fp32) | mean next-token KL (nats) | top-1 agreement |\n|---|---|---|")
        texts = [be.render([{"role": "user", "content": u}]) + a for u, a in CHATS]
        ids = [torch.tensor([be._encode(t)]) for t in texts]
        ref = [be.model(input_ids=x).logits[0].float().log_softmax(-1) for x in ids]
        formats = {
            "+quant=bf16 (clca's generation copy)": generation_copy(be.model, "bf16"),
            "int8, every linear layer": int8(be.model),
            "int8, down_proj only": int8(be.model, ("down_proj",)),
            "int8, gate_proj + up_proj only": int8(be.model, ("gate_proj", "up_proj")),
            "int8, attention projections only": int8(be.model, ("q_proj", "k_proj", "v_proj", "o_proj")),
            "int8, LM head only": int8(be.model, ("lm_head",)),
        }
        for name, model in formats.items():
            kls, agree, n = 0.0, 0, 0
            for x, lp in zip(ids, ref, strict=True):
                lq = model(input_ids=x).logits[0].float().log_softmax(-1)
                kls += float((lp.exp() * (lp - lq)).sum(-1).sum())
                agree += int((lp.argmax(-1) == lq.argmax(-1)).sum())
                n += lp.shape[0]
            print(f"| {name} | {kls / n:.4f} | {agree / n:.1%} |", flush=True)
        scoring_agreement(be, {k: formats[k] for k in list(formats)[:2]})
        if args.compile:
            compiled_step(formats["+quant=bf16 (clca's generation copy)"])
    be.close()


def compiled_step(model: Any, rows: int = 16, ctx: int = 800, new: int = 48) -> None:
    """Print one decode step's ms on ``model`` eager and compiled (inductor, static shapes: a static cache of
    ``ctx + new`` columns and a full-width mask), and the compile time."""
    from transformers import StaticCache

    cache = StaticCache(config=model.config, max_cache_len=ctx + new)
    out = model(
        input_ids=torch.randint(100, 20000, (rows, ctx)), cache=cache, use_cache=True, logits_to_keep=1
    )
    tok = out.logits[:, -1].argmax(-1).view(-1, 1)
    mask = torch.ones(rows, ctx + new, dtype=torch.long)
    pos = iter(range(ctx, ctx + new))

    def step(fn: Any) -> None:
        fn(input_ids=tok, attention_mask=mask, position_ids=torch.full((rows, 1), next(pos)), cache=cache,
           use_cache=True)  # fmt: skip

    eager = ms(partial(step, model), n=10)
    compiled = torch.compile(model, dynamic=False)
    t0 = time.perf_counter()
    step(compiled)
    t_compile = time.perf_counter() - t0
    fast = ms(partial(step, compiled), n=10)
    print(
        f"\n| decode step, bf16 copy, {rows} rows, {ctx + new}-column static cache | ms |\n|---|---|\n"
        f"| eager | {eager:.1f} |\n| torch.compile (inductor; compile {t_compile:.0f} s) | {fast:.1f} |"
    )


def scoring_agreement(be: Any, formats: dict[str, Any], countries: tuple[str, ...] = COUNTRIES) -> None:
    """Print the survey-scoring table: each format's option distributions and metric against fp32's."""
    from bench_scoring import wvs_items

    from clca.data.wvs import read_wvs_rows
    from clca.evaluation.metrics import js_distance, softmax_logprobs

    reqs = wvs_items(countries[0])  # Q1-Q45 in the file's order
    wanted = {f"Q{i}" for i in range(1, 46)}
    records = read_wvs_rows()
    qids = [r.qid for r in records if r.country == countries[0] and r.qid in wanted]
    probs = {(r.country, r.qid): list(r.probs) for r in records if r.country in countries}
    human = {c: [probs[(c, q)] for q in qids] for c in countries}
    assert len(qids) == len(reqs)

    def run(model: Any) -> tuple[float, list[list[float]]]:
        """Best of two timed passes (the first pass of a format also builds its kernels for each new shape)."""
        own, be.model = be.model, model
        try:
            best, res = float("inf"), []
            for _ in range(2):
                t0 = time.perf_counter()
                res = be.score(reqs)
                best = min(best, time.perf_counter() - t0)
                print(f"  scoring pass: {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
            return best, [softmax_logprobs(r.logprobs) for r in res]
        finally:
            be.model = own

    def metric(dists: list[list[float]]) -> float:
        return statistics.mean(
            js_distance(h, d) for c in countries for h, d in zip(human[c], dists, strict=True)
        )

    t_ref, ref = run(be.model)
    print(
        f"\n| scoring, {len(reqs)} WVS items (vs fp32) | s | fp32 / this | mean JSD | max JSD | argmax agreement "
        f"| survey metric: mean JS distance to {', '.join(countries)} |\n|---|---|---|---|---|---|---|"
    )
    print(f"| fp32 (clca's scoring) | {t_ref:.2f} | 1.00× | 0 | 0 | 100% | {metric(ref):.4f} |")
    for name, model in formats.items():
        t, got = run(model)
        js = [js_distance(p, q) for p, q in zip(ref, got, strict=True)]
        agree = statistics.mean(p.index(max(p)) == q.index(max(q)) for p, q in zip(ref, got, strict=True))
        print(
            f"| {name} | {t:.2f} | {t_ref / t:.2f}× | {statistics.mean(js):.2e} | {max(js):.2e} | {agree:.1%} "
            f"| {metric(got):.4f} ({metric(got) - metric(ref):+.4f}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
