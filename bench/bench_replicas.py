"""Throughput of clca's OpenAI-compatible client against several replicas with a fixed per-request latency.

Two (or ``--replicas``) scripted OpenAI-compatible servers on 127.0.0.1, each in its own process, answer every chat request after a fixed
delay (``--latency``, default 0.2 s), like a busy inference server. clca's backend sends ``--requests`` (1000)
chat requests in one ``generate`` call with at most ``max_in_flight`` in flight, balanced over the replicas
(least outstanding). The ideal throughput is ``max_in_flight / latency``; the script prints, per in-flight
limit, requests/s, the ratio to the ideal, the client's CPU use (cores), the largest number in flight seen by each server, and how the
requests were shared. Target (issue: clients for clusters): ratio >= 0.9 at the default limit (64).

    .venv/bin/python bench/bench_replicas.py [--requests 1000] [--latency 0.2] [--replicas 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from clca.llm.base import Chat, GenerationParams
from clca.llm.registry import load_backend

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from http.server import ThreadingHTTPServer
ThreadingHTTPServer.request_queue_size = 1024
from oai_server import OpenAIServer, echo_answer
s = OpenAIServer(echo_answer)
s.delay = {latency}
print(s.url, flush=True)
for line in sys.stdin:  # one line per request count query; EOF stops the server
    print(len(s.requests), s.max_in_flight, flush=True)
"""


def _start(latency: float) -> tuple[subprocess.Popen[str], str]:
    """A scripted OpenAI-compatible server in its own process (as a real replica is; no shared GIL)."""
    code = SERVER.format(tests=str(Path(__file__).resolve().parents[1] / "tests"), latency=latency)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _stats(proc: subprocess.Popen[str]) -> tuple[int, int]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("?\n")
    proc.stdin.flush()
    n, most = proc.stdout.readline().split()
    return int(n), int(most)


def run(n: int, latency: float, replicas: int, in_flight: int) -> dict[str, float]:
    servers = [_start(latency) for _ in range(replicas)]
    try:
        urls = ",".join(url for _, url in servers)
        be = load_backend(f"openai:m@{urls}?max_in_flight={in_flight}&timeout=30", cache=False, batch_size=n)
        chats: list[Chat] = [[{"role": "user", "content": f"request {i}"}] for i in range(n)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        out = be.generate(chats, GenerationParams(max_new_tokens=4, temperature=0.0))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        be.close()
        assert len(out) == n
        stats = [_stats(p) for p, _ in servers]
        ideal = min(in_flight, n) / latency
        return {
            "in_flight": in_flight,
            "wall_s": wall,
            "req_per_s": n / wall,
            "ideal": ideal,
            "ratio": (n / wall) / ideal,
            "client_cores": cpu / wall,
            "max_seen": max(m for _, m in stats),
            "share_min": min(k for k, _ in stats) / n,
            "share_max": max(k for k, _ in stats) / n,
        }
    finally:
        for p, _ in servers:
            if p.stdin is not None:
                p.stdin.close()
            p.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--limits", default="8,16,32,64,128,256")
    args = ap.parse_args()
    print(f"{args.requests} requests, {args.latency * 1000:.0f} ms per request, {args.replicas} replicas")
    print(
        "| max_in_flight | wall s | requests/s | ideal | ratio | client CPU (cores) | most in flight at one server "
        "| share per server |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for limit in (int(x) for x in args.limits.split(",")):
        r = run(args.requests, args.latency, args.replicas, limit)
        print(
            f"| {limit} | {r['wall_s']:.2f} | {r['req_per_s']:.1f} | {r['ideal']:.1f} | {r['ratio']:.3f} | "
            f"{r['client_cores']:.2f} | {int(r['max_seen'])} | {r['share_min']:.3f}–{r['share_max']:.3f} |"
        )


if __name__ == "__main__":
    main()
