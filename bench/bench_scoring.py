"""Scoring throughput: clca's prefix-shared option scoring vs lm-eval-harness-style scoring, in ONE run.

Items: the WVS wave-7 questions Q1-Q45 of one country (the ones present in the bundle), a plain prompt
(question, numbered options, "Answer with the number only."), options = the answer codes ("1" .. "10").

(a) ``LocalBackend.score``: per micro-batch of questions, the shared prompt runs once (KV cache, logits only
    for the last position), then every option of every question runs in one batched pass over the gathered cache.
(b) ``LocalBackend.score_naive``: lm-eval-harness style - one full sequence (prompt + option + end token) per
    option, the options of a question batched, logits at every position, no prefix sharing.

Both compute the same quantity, so the script also prints how well the two agree (max |delta log-prob|,
mean Jensen-Shannon distance of the option distributions, argmax agreement). ``--write`` puts the numbers
into the "Scoring" section of bench/RESULTS.md.

Usage: python bench/bench_scoring.py [--model embedded:smollm2-135m] [--country Germany] [--write]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import torch

from clca.data.wvs import read_wvs_rows
from clca.evaluation.metrics import softmax_logprobs as softmax_options
from clca.llm.base import ScoreRequest
from clca.llm.hardware import cpu_line
from clca.llm.local import LocalBackend
from clca.llm.registry import load_backend

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def wvs_items(country: str, first: int = 1, last: int = 45) -> list[ScoreRequest]:
    """Plain-prompt score requests for WVS questions Q<first>..Q<last> of ``country``."""
    wanted = {f"Q{i}" for i in range(first, last + 1)}
    reqs: list[ScoreRequest] = []
    for rec in read_wvs_rows():
        if rec.country != country or rec.qid not in wanted:
            continue
        opts = "\n".join(f"{c}. {o}" for c, o in zip(rec.option_codes, rec.options, strict=True))
        text = f"{rec.question}\n{opts}\nAnswer with the number only."
        reqs.append(
            ScoreRequest(
                messages=[{"role": "user", "content": text}],
                options=[str(c) for c in rec.option_codes],
            )
        )
    if not reqs:
        sys.exit(f"no WVS items for country {country!r}")
    return reqs


def jsd(p: list[float], q: list[float]) -> float:
    """Jensen-Shannon distance, base 2."""
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(x: list[float], y: list[float]) -> float:
        return sum(a * math.log2(a / b) for a, b in zip(x, y, strict=True) if a > 0)

    return math.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2))


def write_section(body: str) -> None:
    """Replace (or append) the '## Scoring' section of RESULTS.md, leaving other sections alone."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "## Scoring"), None)
    section = ["## Scoring", "", *body.strip().splitlines(), ""]
    if start is None:
        new = [*lines, "", *section]
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        new = [*lines[:start], *section, *lines[end:]]
    RESULTS.write_text("\n".join(new).rstrip() + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded:smollm2-135m")
    ap.add_argument("--country", default="Germany")
    ap.add_argument("--batch-size", type=int, default=16, help="questions per scoring micro-batch")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="write the numbers into bench/RESULTS.md")
    args = ap.parse_args()

    backend = load_backend(args.model, cache=False, batch_size=args.batch_size)
    assert isinstance(backend, LocalBackend)
    reqs = wvs_items(args.country)
    n_opt = sum(len(r.options) for r in reqs)
    backend.score(reqs[:2])  # warm-up (allocator, kernels)
    backend.score_naive(reqs[:2])

    t_fast = t_naive = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fast = backend.score(reqs)
        t_fast = min(t_fast, time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive = backend.score_naive(reqs)
        t_naive = min(t_naive, time.perf_counter() - t0)

    diffs = [
        abs(a - b)
        for f, n in zip(fast, naive, strict=True)
        for a, b in zip(f.logprobs, n.logprobs, strict=True)
    ]
    dists = [
        (softmax_options(f.logprobs), softmax_options(n.logprobs)) for f, n in zip(fast, naive, strict=True)
    ]
    mean_jsd = sum(jsd(p, q) for p, q in dists) / len(dists)
    argmax = sum(p.index(max(p)) == q.index(max(q)) for p, q in dists) / len(dists)
    ratio = t_naive / t_fast
    cmd = " ".join(["python", "bench/bench_scoring.py", *sys.argv[1:]])
    report = f"""
Command: `{cmd}` ({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {platform.machine()},
torch {torch.__version__}, {torch.get_num_threads()} threads, device {backend.device}, {backend.fingerprint},
{cpu_line()}).
Items: {len(reqs)} WVS questions (Q1-Q45 present for {args.country}), {n_opt} options, plain prompt.

| method | time (s) | items/s |
|---|---|---|
| clca `score` (prefix computed once per question, batched options over the shared KV cache) | {t_fast:.2f} | {len(reqs) / t_fast:.2f} |
| lm-eval-harness style (one full sequence per option, no prefix sharing) | {t_naive:.2f} | {len(reqs) / t_naive:.2f} |

Speed-up: **{ratio:.1f}x** (target >= 3x). Agreement of the two: max |delta log-prob| = {max(diffs):.2e},
mean JSD of option distributions = {mean_jsd:.2e}, argmax agreement = {argmax:.0%}.
"""
    print(report)
    if args.write:
        write_section(report)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
