"""Achieved prefill FLOP/s of the embedded model against a measured fp32 matmul peak of this machine.

Peak: the best of several ``torch.matmul`` calls on large square fp32 matrices (2·n³ FLOPs each).
Prefill: one forward pass (no KV cache kept, logits only for the last position) over a batch of long
sequences; FLOPs counted as 2·params·tokens with non-embedding params (the usual estimate; attention's quadratic term is left out,
which slightly understates the work at long lengths). Prints both and the utilisation; ``--write`` appends
the numbers to the "Scoring" section of bench/RESULTS.md.

Usage: python bench/bench_flops.py [--model embedded:smollm2-135m] [--batch 4] [--seq 256] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from clca.llm.hardware import cpu_line
from clca.llm.local import LocalBackend
from clca.llm.registry import load_backend

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import RESULTS


def matmul_peak(
    n: int = 2048, reps: int = 5, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """Best observed matmul FLOP/s for n×n @ n×n in ``dtype`` (fp32 unless told)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.matmul(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def prefill_flops(backend: LocalBackend, batch: int, seq: int, reps: int = 3) -> tuple[float, int]:
    """Best observed prefill FLOP/s (2·params·tokens) and the parameter count used.

    The input embedding is a lookup, not a matmul, and with ``logits_to_keep=1`` the LM head runs for one
    position only, so the embedding matrix is excluded from ``params``.
    """
    model = backend.model
    emb = model.get_input_embeddings().weight
    params = sum(p.numel() for p in model.parameters()) - emb.numel()
    vocab = int(model.config.vocab_size)
    ids = torch.randint(100, vocab - 1, (batch, seq), device=backend.device)
    with torch.inference_mode():
        model(input_ids=ids[:, :16], use_cache=False, logits_to_keep=1)  # warm-up
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            model(input_ids=ids, use_cache=False, logits_to_keep=1)
            best = min(best, time.perf_counter() - t0)
    return 2 * params * batch * seq / best, params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded:smollm2-135m")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--n", type=int, default=2048, help="matmul size")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    backend = load_backend(args.model, cache=False)
    assert isinstance(backend, LocalBackend)
    peak = matmul_peak(args.n, device=backend.device)
    achieved, params = prefill_flops(backend, args.batch, args.seq)
    cmd = " ".join(["python", "bench/bench_flops.py", *sys.argv[1:]])
    text = (
        f"\n### Prefill FLOP/s vs matmul peak\n\nCommand: `{cmd}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{torch.get_num_threads()} threads, device {backend.device}, {cpu_line()}).\n\n"
        f"| quantity | value |\n|---|---|\n"
        f"| fp32 matmul peak ({args.n}x{args.n}, best of 5) | {peak / 1e9:.1f} GFLOP/s |\n"
        f"| prefill, {params / 1e6:.0f}M non-embedding params, batch {args.batch} x {args.seq} tokens (2·params·tokens) "
        f"| {achieved / 1e9:.1f} GFLOP/s |\n"
        f"| utilisation | {achieved / peak:.0%} |\n"
    )
    print(text)
    if args.write:
        body = RESULTS.read_text(encoding="utf-8")
        marker = "\n### Prefill FLOP/s vs matmul peak\n"
        if marker in body:  # replace the previous measurement (the subsection ends at the next heading)
            head, _, rest = body.partition(marker)
            nxt = rest.find("\n## ")
            body = head.rstrip("\n") + "\n" + ("" if nxt < 0 else rest[nxt:])
        lines = body.rstrip("\n").split("\n")
        start = next((i for i, ln in enumerate(lines) if ln.strip() == "## Scoring"), None)
        if start is None:
            lines += ["", "## Scoring"]
            start = len(lines) - 1
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        lines[end:end] = [*text.rstrip("\n").split("\n"), ""]
        lines = [ln for i, ln in enumerate(lines) if ln or i == 0 or lines[i - 1]]  # no double blank lines
        RESULTS.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
