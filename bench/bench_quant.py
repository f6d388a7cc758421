"""fp32 vs ``+quant=bf16`` generation on this CPU, and what ``+quant=auto`` chooses here (about a minute).

Prints the hardware probe (:func:`clca.llm.hardware.probe`: CPU model, the flags that matter, native bf16 or not),
what ``embedded:smollm2-135m+quant=auto`` resolves to and why, then times clca's engine on the same greedy batch
in fp32 and on the bf16 generation copy: ``--rows`` distinct chats of about ``--prompt-tokens`` tokens each,
``--new-tokens`` new tokens, the prefix store emptied before every call (every prompt token is prefilled), the
arms alternating for ``--rounds`` rounds (best round kept). Prefill is prompt tokens per second; decode is ms per
decode step of the whole batch.

    python bench/bench_quant.py [--rows 8] [--prompt-tokens 300] [--new-tokens 32] [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

TEXT = (
    "Two neighbours meet in the courtyard of their building after a long week. One of them has borrowed a ladder "
    "and returned it with a broken step; the other needs it tomorrow to repair the roof before the rain. They "
    "talk about the weather, their families, the landlord who never answers, and the festival next month. "
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=300)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from clca.llm.base import GenerationParams
    from clca.llm.hardware import probe
    from clca.llm.local import LocalBackend
    from clca.llm.registry import load_backend

    hw = probe("cpu")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"`python bench/bench_quant.py --rows {args.rows} --prompt-tokens {args.prompt_tokens} --new-tokens "
        f"{args.new_tokens} --rounds {args.rounds} --threads {args.threads}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, {args.threads} threads, "
        f"load average {load:.1f} at the start)\n"
    )
    print(f"probe: {hw.describe()}\nreason: {hw.reason}\n")

    arms: dict[str, Any] = {}
    for name, spec in (("fp32", "embedded:smollm2-135m"), ("bf16", "embedded:smollm2-135m+quant=bf16")):
        be = load_backend(spec, cache=False, batch_size=args.rows)
        assert isinstance(be, LocalBackend) and be.engine is not None
        arms[name] = be
    auto = load_backend("embedded:smollm2-135m+quant=auto", cache=False)
    assert isinstance(auto, LocalBackend)
    print(f"+quant=auto here: {auto.quant_choice or 'none (fp32)'}: {auto.quant_reason}\n")
    auto.close()

    tok = arms["fp32"].tokenizer
    reps = max(1, args.prompt_tokens // len(tok(TEXT).input_ids))
    chats = [
        [{"role": "user", "content": f"Story {i}. " + TEXT * reps + "Continue the story."}]
        for i in range(args.rows)
    ]
    params = GenerationParams(max_new_tokens=args.new_tokens, temperature=0.0)
    for be in arms.values():  # warm-up
        be.generate(chats[:1], GenerationParams(max_new_tokens=2, temperature=0.0))

    best: dict[str, dict[str, float]] = {}
    for r in range(args.rounds):
        for name in list(arms) if r % 2 == 0 else list(arms)[::-1]:
            be = arms[name]
            eng = be.engine
            eng.store.clear()
            s0 = dict(vars(eng.stats))
            t0 = time.perf_counter()
            with torch.inference_mode():
                be.generate(chats, params)
            wall = time.perf_counter() - t0
            d = {k: float(v) - float(s0[k]) for k, v in vars(eng.stats).items()}
            row = {
                "wall": wall,
                "prefill_tps": d["prefilled_tokens"] / max(d["prefill_s"], 1e-9),
                "prefilled": d["prefilled_tokens"],
                "prefill_s": d["prefill_s"],
                "step_ms": 1000 * d["decode_s"] / max(1.0, d["decode_steps"]),
                "tok_ms": 1000 * d["decode_s"] / max(1.0, d["generated_tokens"]),
                "decode_s": d["decode_s"],
                "steps": d["decode_steps"],
            }
            print(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
            if name not in best or row["wall"] < best[name]["wall"]:
                best[name] = row

    print(
        f"\n| weights | prompt tokens prefilled | prefill s | prefill tokens/s | decode steps | decode ms per step "
        f"({args.rows} rows) | decode ms per generated token | wall s |\n|---|---|---|---|---|---|---|---|"
    )
    for name, row in best.items():
        print(
            f"| {name} | {row['prefilled']:.0f} | {row['prefill_s']:.2f} | {row['prefill_tps']:.0f} | "
            f"{row['steps']:.0f} | {row['step_ms']:.1f} | {row['tok_ms']:.2f} | {row['wall']:.2f} |"
        )
    f, b = best["fp32"], best["bf16"]
    print(
        f"\nbf16 vs fp32: prefill {f['prefill_tps'] / b['prefill_tps']:.2f}x the time per token, decode "
        f"{b['step_ms'] / f['step_ms']:.2f}x the time per step, wall {b['wall'] / f['wall']:.2f}x"
    )
    for be in arms.values():
        be.close()


if __name__ == "__main__":
    main()
