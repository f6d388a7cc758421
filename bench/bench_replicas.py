"""Throughput of clca's OpenAI-compatible client against several replicas with a fixed per-request latency.

Two (or ``--replicas``) scripted OpenAI-compatible servers on 127.0.0.1, each in its own process, answer every chat request after a fixed
delay (``--latency``, default 0.2 s), like a busy inference server. clca's backend sends ``--requests`` (1000)
chat requests in one ``generate`` call with at most ``max_in_flight`` in flight, balanced over the replicas
(least outstanding). The ideal throughput is ``max_in_flight / latency``; the script prints, per in-flight
limit, requests/s, the ratio to the ideal, its bound (``bound``: the last round of ``requests / max_in_flight``
is partly empty, so no client reaches 1.0), the client's CPU use (cores), the largest number in flight seen by each server, and how the
requests were shared. Target (issue: clients for clusters): ratio >= 0.9 at the default limit (64).

A second table (``--dead 1``, the default; ``--dead 0`` skips it) runs the same load with one more replica that
is dead (a port with nothing listening: connections are refused at once), listed first. The healthy-only ideal
is still ``max_in_flight / latency`` (the live replicas take every request in flight); the table prints the
ratio to it, the ratio to the healthy table's run at the same limit, and the client's counts: connection
retries, probes of the dead replica, removals from the rotation, the time requests spent waiting. Target (issue:
paper scale on a cluster): ratio >= 0.9 at 64, connection retries bounded by the probes (plus the one request
that finds the replica dead: one retry per removal).

    .venv/bin/python bench/bench_replicas.py [--requests 1000] [--latency 0.2] [--replicas 2] [--dead 1]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

from clca.llm.base import Chat, GenerationParams
from clca.llm.hardware import cpu_line
from clca.llm.registry import load_backend

SERVER = r"""
import asyncio, json, os, sys

LATENCY = {latency}
count = 0
in_flight = 0
most = 0


async def handle(reader, writer):
    global count, in_flight, most
    while True:  # HTTP/1.1 keep-alive, as vLLM's (uvicorn) and llama.cpp's servers do
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):  # the client closed the connection
            break
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = json.loads(await reader.readexactly(length))
        count += 1
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(LATENCY)
        in_flight -= 1
        msg = {{"role": "assistant", "content": "reply to: " + body["messages"][-1]["content"]}}
        data = json.dumps({{"choices": [{{"index": 0, "message": msg, "finish_reason": "stop"}}]}}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(f"http://127.0.0.1:{{server.sockets[0].getsockname()[1]}}/v1", flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):  # a line asks for the counts; EOF stops
        print(count, most, flush=True)
    os._exit(0)  # no teardown of the client's idle keep-alive connections


asyncio.run(main())
"""


def _start(latency: float) -> tuple[subprocess.Popen[str], str]:
    """A scripted OpenAI-compatible replica in its own process (as a real replica is; no shared GIL), on asyncio:
    a fixed delay per request, no thread per request, so the replica itself adds next to no time."""
    code = SERVER.format(latency=latency)
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


def _dead() -> tuple[socket.socket, str]:
    """A loopback port held but not listening: every connection to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def run(n: int, latency: float, replicas: int, in_flight: int, dead: int = 0) -> dict[str, float]:
    servers = [_start(latency) for _ in range(replicas)]
    holes = [_dead() for _ in range(dead)]
    try:
        urls = ",".join([url for _, url in holes] + [url for _, url in servers])
        be = load_backend(f"openai:m@{urls}?max_in_flight={in_flight}&timeout=30", cache=False, batch_size=n)
        chats: list[Chat] = [[{"role": "user", "content": f"request {i}"}] for i in range(n)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        out = be.generate(chats, GenerationParams(max_new_tokens=4, temperature=0.0))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        used = be.usage()
        be.close()
        assert len(out) == n
        stats = [_stats(p) for p, _ in servers]
        ideal = min(in_flight, n) / latency
        rounds = -(-n // in_flight)  # the last round is partly empty: no client can beat this
        return {
            "bound": n / (rounds * min(in_flight, n)),
            "in_flight": in_flight,
            "wall_s": wall,
            "req_per_s": n / wall,
            "ideal": ideal,
            "ratio": (n / wall) / ideal,
            "client_cores": cpu / wall,
            "max_seen": max(m for _, m in stats),
            "share_min": min(k for k, _ in stats) / n,
            "share_max": max(k for k, _ in stats) / n,
            "conn_retries": used.get("http.retries.connection", 0),
            "probes": used.get("http.replicas.probes", 0),
            "removed": used.get("http.replicas.removed", 0),
            "wait_ms": used.get("http.wait_ms", 0),
            "failures": used.get("http.failures", 0),
        }
    finally:
        for sock, _ in holes:
            sock.close()
        for p, _ in servers:
            if p.stdin is not None:
                p.stdin.close()
            p.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument(
        "--dead", type=int, default=1, help="dead replicas for the second table (0: no second table)"
    )
    ap.add_argument("--limits", default="8,16,32,64,128,256")
    args = ap.parse_args()
    limits = [int(x) for x in args.limits.split(",")]
    print(cpu_line())
    print(f"{args.requests} requests, {args.latency * 1000:.0f} ms per request, {args.replicas} replicas")
    print(
        "| max_in_flight | wall s | requests/s | ideal | ratio | bound | client CPU (cores) "
        "| most in flight at one server | share per server |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    healthy: dict[int, float] = {}
    for limit in limits:
        r = run(args.requests, args.latency, args.replicas, limit)
        healthy[limit] = r["ratio"]
        print(
            f"| {limit} | {r['wall_s']:.2f} | {r['req_per_s']:.1f} | {r['ideal']:.1f} | {r['ratio']:.3f} | "
            f"{r['bound']:.3f} | "
            f"{r['client_cores']:.2f} | {int(r['max_seen'])} | {r['share_min']:.3f}–{r['share_max']:.3f} |"
        )
    if args.dead <= 0:
        return
    print()
    print(
        f"{args.requests} requests, {args.latency * 1000:.0f} ms per request, {args.replicas + args.dead} replicas "
        f"of which {args.dead} dead (connections refused; listed first); ideal: the {args.replicas} live ones"
    )
    print(
        "| max_in_flight | wall s | requests/s | ideal | ratio | vs healthy run | connection retries | probes "
        "| removals | wait ms | failures | share per live server |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for limit in limits:
        r = run(args.requests, args.latency, args.replicas, limit, dead=args.dead)
        print(
            f"| {limit} | {r['wall_s']:.2f} | {r['req_per_s']:.1f} | {r['ideal']:.1f} | {r['ratio']:.3f} | "
            f"{r['ratio'] / healthy[limit]:.3f} | {int(r['conn_retries'])} | {int(r['probes'])} | "
            f"{int(r['removed'])} | {int(r['wait_ms'])} | {int(r['failures'])} | "
            f"{r['share_min']:.3f}–{r['share_max']:.3f} |"
        )


if __name__ == "__main__":
    main()
