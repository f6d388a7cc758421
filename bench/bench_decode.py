"""Decoding primitives of the embedded model on this machine: what bounds batched role-play on a CPU.

Prints, in one process:

* prefill throughput (prompt tokens/s) for several (rows x tokens) shapes, one forward pass each
  (``logits_to_keep=1``, as in generation);
* one decode step (ms) at batch 1, 16 and 32 over a 600-token context, with transformers' ``DynamicCache``
  (grows by ``torch.cat`` every step) and with a preallocated ``StaticCache`` (what clca's engine uses), and
  the per-row cost and tokens/s that implies;
* the KV-cache bytes per token, i.e. what each decode step must read per row and context token.

``--write`` puts the table into the "Role-play" section of bench/RESULTS.md (under "Decoding primitives").

    python bench/bench_decode.py [--model embedded:smollm2-135m] [--write]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from clca.llm.hardware import cpu_line


def prefill_rate(model: Any, rows: int, tokens: int, passes: int = 1) -> float:
    """Prompt tokens per second of ``passes`` forward passes over ``rows x tokens`` random ids."""
    t0 = time.perf_counter()
    for _ in range(passes):
        ids = torch.randint(100, 20000, (rows, tokens))
        model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1)
    return rows * tokens * passes / (time.perf_counter() - t0)


def decode_ms(model: Any, rows: int, ctx: int, static: bool, steps: int = 7) -> float:
    """Median wall ms of one decode step at ``rows`` x ``ctx`` cached tokens."""
    from transformers import DynamicCache, StaticCache

    cache = StaticCache(config=model.config, max_cache_len=ctx + steps + 1) if static else DynamicCache()
    ids = torch.randint(100, 20000, (rows, ctx))
    model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
    times = []
    for k in range(steps):
        x = torch.randint(100, 20000, (rows, 1))
        mask = torch.ones((rows, ctx + k + 1), dtype=torch.long)
        pos = torch.full((rows, 1), ctx + k)
        t0 = time.perf_counter()
        model(input_ids=x, cache=cache, use_cache=True, attention_mask=mask, position_ids=pos)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded:smollm2-135m")
    ap.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    args = ap.parse_args()

    from clca.llm.local import LocalBackend
    from clca.llm.registry import load_backend

    backend = load_backend(args.model, cache=False)
    assert isinstance(backend, LocalBackend)
    model = backend.model
    cfg = model.config
    kv_heads = getattr(cfg, "num_key_value_heads", cfg.num_attention_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_bytes = cfg.num_hidden_layers * 2 * kv_heads * head_dim * torch.finfo(backend.dtype).bits // 8
    lines = [
        f"`python bench/bench_decode.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{torch.get_num_threads()} threads, {cpu_line()}, {args.model}, {str(backend.dtype).removeprefix('torch.')}; "
        f"KV cache {kv_bytes / 1024:.0f} KiB per token).",
        "",
        "| prefill shape (rows x tokens) | prompt tokens/s |",
        "|---|---|",
    ]
    with torch.inference_mode():
        prefill_rate(model, 1, 64)  # warm-up
        for rows, tokens, passes in [
            (1, 80, 4),
            (1, 800, 2),
            (4, 800, 1),
            (16, 100, 2),
            (32, 100, 1),
            (16, 800, 1),
        ]:
            rate = prefill_rate(model, rows, tokens, passes)
            lines.append(f"| {rows} x {tokens} ({rows * tokens} tokens per pass) | {rate:.0f} |")
            print(lines[-1], flush=True)
        lines += [
            "",
            "| decode step, 600-token context | DynamicCache ms | StaticCache ms | ms per row (static) | tokens/s (static) |",
            "|---|---|---|---|---|",
        ]
        for rows in (1, 16, 32):
            dyn = decode_ms(model, rows, 600, static=False)
            sta = decode_ms(model, rows, 600, static=True)
            lines.append(
                f"| batch {rows} | {dyn:.0f} | {sta:.0f} | {sta / rows:.1f} | {1000 * rows / sta:.0f} |"
            )
            print(lines[-1], flush=True)
    backend.close()
    text = "\n".join(lines)
    print(text)
    if args.write:
        path = Path(__file__).resolve().parent / "RESULTS.md"
        old = path.read_text(encoding="utf-8")
        section = "### Decoding primitives\n\n" + text + "\n"
        pat = re.compile(r"^### Decoding primitives\n.*?(?=^## |^### |\Z)", re.S | re.M)
        new = (
            pat.sub(lambda _m: section + "\n", old)
            if pat.search(old)
            else old.rstrip("\n") + "\n\n" + section
        )
        path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
