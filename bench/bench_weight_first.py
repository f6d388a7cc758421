"""Decode step time with and without weight-first linear layers (``clca.llm.decode.WeightFirstLinear``), in one run.

For each batch size in ``--rows``, the engine generates greedily for that many chats (``--new-tokens`` new tokens,
the prefix store emptied before every call) once with plain ``F.linear`` and once with decode-step linears computed
as ``(weight @ xᵀ)ᵀ``, the two alternating over ``--rounds``; it prints the best milliseconds per decode step of
each, their ratio, and whether the two generated the same tokens. The rewrite is applied here at every row count
(``rows=(2, 64)``), also where the engine does not use it (more than 8 rows), to show where the threshold comes from.

    python bench/bench_weight_first.py --spec embedded:qwen2.5-coder-0.5b --rows 1,2,4,8,12,16
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from clca.llm.hardware import cpu_line

WORDS = ["a cat", "tea", "a river", "an old teacher", "a market", "the moon", "a train", "winter"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="embedded:smollm2-135m")
    ap.add_argument("--rows", default="1,2,4,8,12,16")
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    import clca.llm.decode as decode
    from clca.llm.base import GenerationParams
    from clca.llm.registry import load_backend

    backend: Any = load_backend(args.spec, cache=False, batch_size=64)
    engine = backend.engine
    if engine is None:
        raise SystemExit(f"{args.spec} does not use clca's engine")
    params = GenerationParams(max_new_tokens=args.new_tokens, temperature=0.0)
    every = decode.WEIGHT_FIRST_ROWS
    print(
        f"`python bench/bench_weight_first.py {' '.join(sys.argv[1:])}` ({torch.get_num_threads()} threads, "
        f"{cpu_line()})\n\n| rows | F.linear ms/step | weight @ x^T ms/step | speed-up | same tokens |\n|---|---|---|---|---|"
    )
    for n in [int(x) for x in args.rows.split(",") if x.strip()]:
        chats = [
            [
                {
                    "role": "user",
                    "content": f"Tell me a story about {WORDS[i % len(WORDS)]} ({i}) in a few sentences.",
                }
            ]
            for i in range(n)
        ]
        best: dict[bool, float] = {}
        outs: dict[bool, list[str]] = {}
        for rnd in range(args.rounds):
            for wf in (False, True) if rnd % 2 == 0 else (True, False):
                engine.weight_first = wf
                decode.WEIGHT_FIRST_ROWS = (2, 64) if wf else every
                engine.store.clear()
                engine.stats = type(engine.stats)()
                outs[wf] = backend.generate(chats, params)
                per_step = engine.stats.decode_s / max(1, engine.stats.decode_steps) * 1e3
                best[wf] = min(best.get(wf, float("inf")), per_step)
        decode.WEIGHT_FIRST_ROWS = every
        print(
            f"| {n} | {best[False]:.1f} | {best[True]:.1f} | {best[False] / best[True]:.2f}× | "
            f"{'yes' if outs[False] == outs[True] else 'no'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
