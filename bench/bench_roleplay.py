"""Benchmark: lock-step batched role-play vs one episode at a time, same model and settings, no cache.

Both modes run :func:`clca.roleplay.simulate` on the same Sotopia-derived scenarios (culture China), with the
embedded SmolLM2-135M-Instruct, temperature 0.7, in ONE process:

* batched: all episodes in one run directory; each round is one ``generate`` call for every unfinished
  episode (the local backend's micro-batch is set to the number of episodes, so a round is one padded batch);
* sequential: each episode alone in its own run directory (a round = one chat).

It prints episodes/hour, generated tokens/s (output tokens counted with the model's tokenizer), agent
outputs/s, and the batched/sequential ratios, and writes them into the "Role-play" section of bench/RESULTS.md.

    python bench/bench_roleplay.py                       # 16 episodes, 4 turns, 48 new tokens
    python bench/bench_roleplay.py --sequential 4        # time only 4 episodes one at a time (rates per episode)
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
from clca.records import Scenario
from clca.roleplay import SCENARIOS_FILE, simulate
from clca.runs import JsonlStore


class Counting(Backend):
    """Counts generate calls, chats and generated tokens of an inner (uncached) local backend."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.spec = inner, inner.spec
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
        self.tokens += sum(len(self.inner.tokenizer(o, add_special_tokens=False).input_ids) for o in outs)
        return outs

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        raise NotImplementedError


def run_mode(
    backend: Counting, scenarios: list[Scenario], work: Path, *, batched: bool, args: argparse.Namespace
) -> dict[str, float]:
    kw: dict[str, Any] = dict(
        samples=1, max_turns=args.turns, max_new_tokens=args.max_new_tokens, temperature=0.7, progress=False
    )
    episodes = turns = 0
    t0 = time.perf_counter()
    if batched:
        run = work / "batched"
        JsonlStore(run / SCENARIOS_FILE, Scenario).extend(scenarios)
        s = simulate(backend, run, **kw)
        episodes, turns = s.finished, round(s.avg_turns * s.finished)
    else:
        for i, sc in enumerate(scenarios):
            run = work / f"seq{i}"
            JsonlStore(run / SCENARIOS_FILE, Scenario).extend([sc])
            s = simulate(backend, run, **kw)
            episodes += s.finished
            turns += round(s.avg_turns * s.finished)
    wall = time.perf_counter() - t0
    return {
        "episodes": episodes,
        "turns": turns,
        "outputs": backend.chats,
        "calls": backend.calls,
        "tokens": backend.tokens,
        "wall_s": wall,
        "gen_s": backend.gen_s,
        "episodes_per_hour": episodes / wall * 3600,
        "tokens_per_s": backend.tokens / wall,
        "outputs_per_s": backend.chats / wall,
    }


def write_results(text: str, path: Path) -> None:
    """Replace (or add) the "## Role-play" section of RESULTS.md, leaving other sections alone."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    section = "## Role-play\n\n" + text.strip() + "\n"
    pat = re.compile(r"^## Role-play\n.*?(?=^## |\Z)", re.S | re.M)
    new = pat.sub(lambda _m: section + "\n", old) if pat.search(old) else old.rstrip("\n") + "\n\n" + section
    path.write_text(new, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument(
        "--sequential", type=int, default=None, help="episodes timed one at a time (default: all)"
    )
    ap.add_argument("--model", default="embedded:smollm2-135m")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()

    from clca.llm.registry import load_backend
    from clca.scenarios import load_seeds

    seeds = load_seeds()
    step = max(1, len(seeds) // args.episodes)
    scenarios = [s.model_copy(update={"culture": "China"}) for s in seeds[::step][: args.episodes]]
    n_seq = args.sequential or len(scenarios)

    inner = load_backend(args.model, cache=False, batch_size=max(16, len(scenarios)))
    work = Path(tempfile.mkdtemp(prefix="bench_roleplay_"))
    try:
        inner.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=4))  # warm-up
        print(f"batched: {len(scenarios)} episodes in lock-step...", file=sys.stderr, flush=True)
        b = run_mode(Counting(inner), scenarios, work, batched=True, args=args)
        print(f"  done in {b['wall_s']:.0f} s; sequential: {n_seq} episodes...", file=sys.stderr, flush=True)
        s = run_mode(Counting(inner), scenarios[:n_seq], work, batched=False, args=args)
    finally:
        inner.close()
        shutil.rmtree(work, ignore_errors=True)

    def row(name: str, r: dict[str, float]) -> str:
        return (
            f"| {name} | {int(r['episodes'])} | {int(r['outputs'])} | {int(r['calls'])} | {int(r['tokens'])} | "
            f"{r['wall_s']:.1f} | {r['episodes_per_hour']:.0f} | {r['tokens_per_s']:.1f} | {r['outputs_per_s']:.2f} |"
        )

    ratio_eph = b["episodes_per_hour"] / s["episodes_per_hour"]
    ratio_tps = b["tokens_per_s"] / s["tokens_per_s"]
    ratio_ops = b["outputs_per_s"] / s["outputs_per_s"]
    text = f"""`python bench/bench_roleplay.py --episodes {args.episodes} --turns {args.turns} \
--max-new-tokens {args.max_new_tokens}{f" --sequential {n_seq}" if args.sequential else ""}` \
({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {platform.machine()}, {args.model}, temperature 0.7, no cache,
one process; batched = all episodes in lock-step, one `generate` call per round; sequential = one episode at a time).

| mode | episodes | agent outputs | generate calls | generated tokens | wall s | episodes/hour | tokens/s | outputs/s |
|---|---|---|---|---|---|---|---|---|
{row("lock-step batched", b)}
{row("one at a time", s)}

Ratios batched/sequential: episodes/hour **{ratio_eph:.2f}×**, generated tokens/s **{ratio_tps:.2f}×**, \
agent outputs/s **{ratio_ops:.2f}×** (target ≥ 8× episodes/hour).
"""
    print(text)
    if not args.no_write:
        write_results(text, Path(__file__).resolve().parent / "RESULTS.md")


if __name__ == "__main__":
    main()
