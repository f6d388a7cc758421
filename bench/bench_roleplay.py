"""Benchmark: lock-step batched role-play vs one episode at a time, same model and settings, no call cache.

All arms run :func:`clca.roleplay.simulate` on the same Sotopia scenarios (culture China, ``--samples`` episodes
each), with the embedded SmolLM2-135M-Instruct, temperature 0.7, in ONE process:

* lock-step, clca engine: each round is one ``generate`` call for every unfinished episode, through the local
  backend's default engine (prefix-KV reuse, shared-prompt dedup, static-cache decoding; clca/llm/decode.py);
* one at a time, clca engine: the same backend, but every chat is its own ``generate`` call (``batch_size=1``);
* one at a time, model.generate: a backend with ``engine="hf"`` and no prefix store, i.e. one plain
  ``transformers`` ``generate`` call per chat -- what a straightforward implementation does;
* (``--hf-lockstep``) lock-step rounds through plain ``model.generate`` (batching alone, no prefix reuse).

It prints episodes/hour, generated tokens/s (output tokens counted with the model's tokenizer), agent
outputs/s, the share of prompt tokens served from the prefix store, and the ratios, and writes them into the
"Role-play" section of bench/RESULTS.md.

    python bench/bench_roleplay.py                  # 16 scenarios x 2 samples, 3 turns (6 utterances), 48 new tokens
    python bench/bench_roleplay.py --sequential 2   # time only 2 scenarios' episodes one chat at a time
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult
from clca.llm.hardware import cpu_line
from clca.records import Scenario
from clca.roleplay import simulate
from clca.roleplay.config import SimulateConfig
from clca.rundir import RunDir


class Counting(Backend):
    """Counts generate calls, chats and generated tokens of an inner (uncached) backend (tokens with
    ``tokenizer``, default: the inner local backend's)."""

    def __init__(self, inner: Any, tokenizer: Any = None) -> None:
        self.inner, self.spec = inner, inner.spec
        self.tokenizer = tokenizer if tokenizer is not None else inner.tokenizer
        self.calls = self.chats = self.tokens = 0
        self.gen_s = 0.0

    @property
    def fingerprint(self) -> str:
        return str(self.inner.fingerprint)

    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        t0 = time.perf_counter()
        outs: list[str] = self.inner.generate(chats, params, seeds)
        self.gen_s += time.perf_counter() - t0
        self.calls += 1
        self.chats += len(chats)
        self.tokens += sum(len(self.tokenizer(o, add_special_tokens=False).input_ids) for o in outs)
        return outs

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        raise NotImplementedError


def run_mode(
    backend: Counting,
    scenarios: list[Scenario],
    work: Path,
    name: str,
    *,
    one_at_a_time: bool,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Role-play all ``scenarios`` x ``args.samples`` in a fresh run directory.

    Lock-step: every round is one ``generate`` call for all unfinished episodes. One at a time: the same
    episodes and seeds, but every chat is its own ``generate`` call (``batch_size=1``).
    """
    engine = getattr(backend.inner, "engine", None)
    if engine is not None:
        engine.store.clear()
        st = engine.stats
        before = (
            st.prompt_tokens,
            st.prefilled_tokens,
            st.prefill_s,
            st.decode_s,
            st.setup_s,
            st.decode_rows,
        )
    run = RunDir(work / name)
    run.scenario_store().extend(scenarios)
    t0 = time.perf_counter()
    cfg = SimulateConfig(
        samples=args.samples, max_turns=args.turns, max_new_tokens=args.max_new_tokens, temperature=0.7
    )
    s = simulate(backend, run, cfg, batch_size=1 if one_at_a_time else None, progress=False)
    wall = time.perf_counter() - t0
    episodes, turns = s.finished, round(2 * s.avg_turns * s.finished)  # utterances
    reused = prefill_s = decode_s = setup_s = decode_rows = 0.0
    if engine is not None:
        st = engine.stats
        prompt = st.prompt_tokens - before[0]
        reused = 1 - (st.prefilled_tokens - before[1]) / max(1, prompt)
        prefill_s, decode_s, setup_s = (
            st.prefill_s - before[2],
            st.decode_s - before[3],
            st.setup_s - before[4],
        )
        decode_rows = st.decode_rows - before[5]
    return {
        "episodes": episodes,
        "turns": turns,
        "outputs": backend.chats,
        "parse_failures": s.parse_failures,
        "calls": backend.calls,
        "tokens": backend.tokens,
        "wall_s": wall,
        "gen_s": backend.gen_s,
        "episodes_per_hour": episodes / wall * 3600,
        "tokens_per_s": backend.tokens / wall,
        "outputs_per_s": backend.chats / wall,
        "prompt_reused": reused,
        "prefill_s": prefill_s,
        "decode_s": decode_s,
        "setup_s": setup_s,
        "decode_rows": decode_rows,  # rows summed over decode steps (finished rows still batched included)
    }


def write_results(text: str, path: Path) -> None:
    """Replace (or add) the "## Role-play" section of RESULTS.md (up to its "Decoding primitives" part, which
    bench/bench_decode.py writes), leaving other sections alone."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    section = "## Role-play\n\n" + text.strip() + "\n"
    pat = re.compile(r"^## Role-play\n.*?(?=^## |^### Decoding primitives|\Z)", re.S | re.M)
    new = pat.sub(lambda _m: section + "\n", old) if pat.search(old) else old.rstrip("\n") + "\n\n" + section
    path.write_text(new, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=16)
    ap.add_argument(
        "--samples", type=int, default=2, help="episodes per scenario (as `clca simulate --samples`)"
    )
    ap.add_argument("--turns", type=int, default=3, help="turns per episode (pairs of utterances)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument(
        "--sequential", type=int, default=4, help="scenarios timed one chat at a time (rates per episode)"
    )
    ap.add_argument(
        "--hf-lockstep", action="store_true", help="also time lock-step rounds through plain model.generate"
    )
    ap.add_argument("--model", default="embedded:smollm2-135m")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()

    from clca.data.sotopia import load_seeds
    from clca.llm.registry import load_backend

    seeds = load_seeds()
    step = max(1, len(seeds) // args.scenarios)
    scenarios = [s.model_copy(update={"culture": "China"}) for s in seeds[::step][: args.scenarios]]
    n_seq = min(args.sequential, len(scenarios))
    n_eps = len(scenarios) * args.samples

    ours = load_backend(args.model, cache=False, batch_size=n_eps)
    plain = load_backend(args.model, cache=False, batch_size=n_eps, engine="hf", prefix_cache_mb=0)
    work = Path(tempfile.mkdtemp(prefix="bench_roleplay_"))
    results: list[tuple[str, dict[str, float]]] = []
    try:
        for be in (ours, plain):  # warm-up
            be.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=4))
        plan: list[tuple[str, Any, list[Scenario], bool]] = [
            ("lock-step, clca engine", ours, scenarios, False),
            ("one at a time, clca engine", ours, scenarios[:n_seq], True),
            ("one at a time, model.generate", plain, scenarios[:n_seq], True),
        ]
        if args.hf_lockstep:
            plan.append(("lock-step, model.generate", plain, scenarios, False))
        for k, (name, be, scs, single) in enumerate(plan):
            print(f"{name}: {len(scs) * args.samples} episodes...", file=sys.stderr, flush=True)
            r = run_mode(Counting(be), scs, work, f"m{k}", one_at_a_time=single, args=args)
            print(f"  {r['wall_s']:.0f} s", file=sys.stderr, flush=True)
            results.append((name, r))
    finally:
        ours.close()
        plain.close()
        shutil.rmtree(work, ignore_errors=True)

    def row(name: str, r: dict[str, float]) -> str:
        return (
            f"| {name} | {int(r['episodes'])} | {int(r['outputs'])} | {int(r['calls'])} | {int(r['tokens'])} | "
            f"{100 * r['prompt_reused']:.0f}% | {r['wall_s']:.1f} | {r['episodes_per_hour']:.0f} | "
            f"{r['tokens_per_s']:.1f} | {r['outputs_per_s']:.2f} |"
        )

    res = dict(results)
    b = res["lock-step, clca engine"]

    def ratios(base: str) -> str:
        o = res[base]
        return (
            f"episodes/hour **{b['episodes_per_hour'] / o['episodes_per_hour']:.1f}×**, generated tokens/s "
            f"**{b['tokens_per_s'] / o['tokens_per_s']:.1f}×**, agent outputs/s "
            f"**{b['outputs_per_s'] / o['outputs_per_s']:.1f}×**"
        )

    text = f"""`python bench/bench_roleplay.py --scenarios {args.scenarios} --samples {args.samples} --turns {args.turns} \
--max-new-tokens {args.max_new_tokens} --sequential {n_seq}{" --hf-lockstep" if args.hf_lockstep else ""}` \
({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {platform.machine()}, {cpu_line()}, {args.model}, \
temperature 0.7, \
no call cache, one process; {n_eps} episodes = {len(scenarios)} Sotopia scenarios x {args.samples} samples, \
culture China; the one-at-a-time arms play the first {n_seq} scenarios' episodes, one chat per `generate` call).

| mode | episodes | agent outputs | generate calls | generated tokens | prompt tokens reused | wall s | episodes/hour | tokens/s | outputs/s |
|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(row(n, r) for n, r in results)}

Lock-step clca engine vs one at a time, same backend (same engine, prefix store on): {ratios("one at a time, clca engine")}.
Lock-step clca engine vs one at a time through plain `model.generate`: {ratios("one at a time, model.generate")}.
Target ≥ 8× episodes/hour. Engine time split (lock-step arm): prefill {b["prefill_s"]:.1f} s, decode \
{b["decode_s"]:.1f} s, decode-cache setup {b["setup_s"]:.1f} s.
"""
    print(text)
    if not args.no_write:
        write_results(text, Path(__file__).resolve().parent / "RESULTS.md")


if __name__ == "__main__":
    main()
