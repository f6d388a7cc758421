"""Throughput of clca's OpenAI-compatible client against several replicas with a fixed per-request latency.

Two (or ``--replicas``) scripted OpenAI-compatible servers on 127.0.0.1 answer every chat request after a fixed
delay (``--latency``, default 0.2 s), like a busy inference server. clca's backend sends ``--requests`` (1000)
chat requests in one ``generate`` call with at most ``max_in_flight`` in flight, balanced over the replicas
(least outstanding). The ideal throughput is ``max_in_flight / latency``; the script prints, per in-flight
limit, requests/s, the ratio to the ideal, the largest number in flight seen by each server, and how the
requests were shared. Target (issue: clients for clusters): ratio >= 0.9 at the default limit (64).

    .venv/bin/python bench/bench_replicas.py [--requests 1000] [--latency 0.2] [--replicas 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from http.server import ThreadingHTTPServer

from oai_server import OpenAIServer, echo_answer

from clca.llm.base import Chat, GenerationParams
from clca.llm.registry import load_backend

# a server with hundreds of concurrent clients needs a listen backlog larger than http.server's default 5
ThreadingHTTPServer.request_queue_size = 1024


def run(n: int, latency: float, replicas: int, in_flight: int) -> dict[str, float]:
    servers = [OpenAIServer(echo_answer) for _ in range(replicas)]
    for s in servers:
        s.delay = latency
    try:
        urls = ",".join(f"{s.url}" for s in servers)
        be = load_backend(f"openai:m@{urls}?max_in_flight={in_flight}&timeout=30", cache=False, batch_size=n)
        chats: list[Chat] = [[{"role": "user", "content": f"request {i}"}] for i in range(n)]
        t0 = time.perf_counter()
        out = be.generate(chats, GenerationParams(max_new_tokens=4, temperature=0.0))
        wall = time.perf_counter() - t0
        be.close()
        assert len(out) == n
        ideal = min(in_flight, n) / latency
        return {
            "in_flight": in_flight,
            "wall_s": wall,
            "req_per_s": n / wall,
            "ideal": ideal,
            "ratio": (n / wall) / ideal,
            "max_seen": max(s.max_in_flight for s in servers),
            "share_min": min(len(s.requests) for s in servers) / n,
            "share_max": max(len(s.requests) for s in servers) / n,
        }
    finally:
        for s in servers:
            s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--limits", default="8,16,32,64,128,256")
    args = ap.parse_args()
    print(f"{args.requests} requests, {args.latency * 1000:.0f} ms per request, {args.replicas} replicas")
    print(
        "| max_in_flight | wall s | requests/s | ideal | ratio | most in flight at one server | share per server |"
    )
    print("|---|---|---|---|---|---|---|")
    for limit in (int(x) for x in args.limits.split(",")):
        r = run(args.requests, args.latency, args.replicas, limit)
        print(
            f"| {limit} | {r['wall_s']:.2f} | {r['req_per_s']:.1f} | {r['ideal']:.1f} | {r['ratio']:.3f} | "
            f"{int(r['max_seen'])} | {r['share_min']:.3f}–{r['share_max']:.3f} |"
        )


if __name__ == "__main__":
    main()
