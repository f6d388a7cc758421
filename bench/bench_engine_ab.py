"""A/B of decoding-engine settings on one recorded role-play workload, interleaved in one process.

Whole-workload timings on this 2-core VM move by 10-25 % from one run to the next (bench/RESULTS.md), more than
most single engine changes are worth. This script removes both sources of that noise:

1. it records the engine calls (prompt token ids, generation settings, seeds) of one
   :func:`clca.roleplay.simulate` run (``--scenarios`` Sotopia seeds x ``--samples``, ``--turns``, temperature
   0.7, culture China);
2. it replays exactly those calls, call by call, each call under every arm back to back (order alternating:
   A B, B A, ...), each arm with its own prefix store (so each sees the store state of the recording), and
   reports each arm's seconds summed over the calls (median over ``--rounds``) and the ratio to the first arm.
   The workload is the same for every arm, so no conversation-length effect enters the ratio, and a slow
   minute of the machine (separate runs of one workload differ by 10-15 % here) falls on all arms alike;
3. it checks that every arm generated the same tokens as the first (a setting meant to change only speed must
   not change outputs) and says how many rows differ otherwise.

An arm is a comma-free list of engine attribute assignments joined by ``;``, e.g. ``compact_at=0.5`` or
``compact_at=0.25;prefill_tokens=2048`` (attributes of :class:`clca.llm.decode.DecodeEngine`).

    python bench/bench_engine_ab.py --arms "compact_at=0.5,compact_at=0.25,compact_at=1" [--spec ...+quant=bf16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_roleplay import Counting, run_mode

from clca.llm.hardware import cpu_line


def peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def parse_arm(text: str) -> dict[str, float]:
    """``"a=1;b=2"`` -> ``{"a": 1.0, "b": 2.0}``."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, val = part.partition("=")
        if not sep:
            raise SystemExit(f"arm {text!r}: write attribute=value pairs joined by ';'")
        out[key.strip()] = float(val)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="embedded:smollm2-135m+quant=bf16")
    ap.add_argument("--arms", default="compact_at=0.5,compact_at=0.25")
    ap.add_argument("--rounds", type=int, default=3, help="replays per arm (order alternates)")
    ap.add_argument("--scenarios", type=int, default=8)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()

    from clca.data.sotopia import load_seeds
    from clca.llm.registry import load_backend

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    settings = [parse_arm(a) for a in arms]
    seeds = load_seeds()
    step = max(1, len(seeds) // args.scenarios)
    scenarios = [s.model_copy(update={"culture": "China"}) for s in seeds[::step][: args.scenarios]]
    backend: Any = load_backend(args.spec, cache=False, batch_size=len(scenarios) * args.samples)
    engine = getattr(backend, "engine", None)
    if engine is None:
        raise SystemExit(f"{args.spec} does not use clca's engine")
    defaults = {k: getattr(engine, k) for s in settings for k in s}

    def apply(arm: dict[str, float]) -> None:
        for k, v in defaults.items():
            setattr(engine, k, type(v)(arm.get(k, v)))

    # 1) record the workload's engine calls (under the first arm)
    calls: list[tuple[list[list[int]], Any, list[int]]] = []
    inner = engine.generate

    def recording(prompts: Any, params: Any, seeds_: Any) -> list[list[int]]:
        calls.append(([list(p) for p in prompts], params, list(seeds_)))
        out: list[list[int]] = inner(prompts, params, seeds_)
        return out

    apply(settings[0])
    engine.generate = recording
    with tempfile.TemporaryDirectory(prefix="bench_ab_") as work:
        r = run_mode(Counting(backend), scenarios, Path(work), "rec", one_at_a_time=False, args=args)
    engine.generate = inner
    budget = engine.store.budget_bytes
    engine.store.clear()
    rows = sum(len(p) for p, _, _ in calls)
    print(
        f"recorded {len(calls)} engine calls, {rows} rows, {r['episodes']:.0f} episodes, {r['turns']:.0f} "
        f"utterances ({r['wall_s']:.0f} s)",
        file=sys.stderr,
        flush=True,
    )

    # 2) replay: call by call, each call under every arm (order alternating), each arm with its own prefix
    #    store (so every arm sees the store state of the recording), repeated --rounds times
    from clca.llm.decode import PrefixStore

    times: dict[int, list[float]] = {i: [] for i in range(len(arms))}
    decode: dict[int, list[float]] = {i: [] for i in range(len(arms))}
    rows_per_step: dict[int, int] = {}
    outputs: dict[int, list[list[int]]] = {}
    generated = 0
    for rnd in range(args.rounds):
        stores = [PrefixStore(budget) for _ in arms]
        spent = [0.0] * len(arms)
        dec = [0.0] * len(arms)
        steps = [0] * len(arms)
        outs: list[list[list[int]]] = [[] for _ in arms]
        gen = 0
        for c, (prompts, params, sd) in enumerate(calls):
            order = list(range(len(arms)))
            if (rnd + c) % 2:
                order.reverse()
            for i in order:
                apply(settings[i])
                engine.store = stores[i]
                st = engine.stats
                d0, r0, g0 = st.decode_s, st.decode_rows, st.generated_tokens
                t0 = time.perf_counter()
                with torch.inference_mode():  # as LocalBackend.generate calls it
                    outs[i].extend(engine.generate(prompts, params, sd))
                spent[i] += time.perf_counter() - t0
                dec[i] += st.decode_s - d0
                steps[i] += st.decode_rows - r0
                if i == 0:
                    gen += st.generated_tokens - g0
        for i in range(len(arms)):
            times[i].append(spent[i])
            decode[i].append(dec[i])
            rows_per_step[i] = steps[i]
            outputs.setdefault(i, outs[i])
        generated = gen
        del stores
        engine.store = PrefixStore(budget)
        print(
            f"  round {rnd + 1} (peak RSS {peak_rss_gb():.1f} GB): "
            + ", ".join(f"{a} {t:.1f} s" for a, t in zip(arms, spent, strict=True)),
            file=sys.stderr,
            flush=True,
        )
    apply({})

    base = statistics.median(times[0])
    print(
        f"`python bench/bench_engine_ab.py --spec {args.spec} --arms {args.arms} --rounds {args.rounds} "
        f"--scenarios {args.scenarios} --samples {args.samples} --turns {args.turns} --max-new-tokens "
        f"{args.max_new_tokens}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_line()}; {len(calls)} recorded "
        f"engine calls, {rows} rows, {generated} generated tokens per replay)\n"
    )
    print(
        "| arm | replay s (median) | decode s (median) | decode row-steps | tokens per row-step | vs first arm | outputs |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, arm in enumerate(arms):
        med = statistics.median(times[i])
        differ = sum(a != b for a, b in zip(outputs[i], outputs[0], strict=True))
        same = "identical" if not differ else f"{differ} of {len(outputs[0])} rows differ"
        print(
            f"| `{arm}` | {med:.1f} | {statistics.median(decode[i]):.1f} | {rows_per_step[i]} | "
            f"{generated / max(1, rows_per_step[i] + rows):.2f} | {base / med:.2f}× | {same} |"
        )


if __name__ == "__main__":
    main()
