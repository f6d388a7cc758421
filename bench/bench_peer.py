"""Peer benchmark: clca's local engine vs llama.cpp's servers on the same role-play workload, side by side.

Workload (issue: generation at the CPU limit): :func:`clca.roleplay.simulate` on ``--scenarios`` (8) Sotopia
seeds x ``--samples`` (2) episodes, ``--turns`` (6) turns, the embedded SmolLM2-135M-Instruct, temperature 0.7,
``--max-new-tokens`` (48), no call cache, culture China; every arm gets the same scenarios and seeds.

Arms (``--arms``, comma-separated):

* ``clca``: clca's lock-step engine on the local backend (``embedded:smollm2-135m``, fp32);
* ``clca-bf16``: the same with ``+quant=bf16`` (generation on a bfloat16 copy of the weights);
* ``clca-1``, ``clca-1-bf16``: the same backends, one chat per ``generate`` call (clca's one-at-a-time mode);
* ``llama-server``: llama.cpp's ``llama-server`` built once from the llama.cpp source vendored in the
  ``llama-cpp-python==0.3.36`` sdist (``cmake --build build --target llama-server``; the sdist comes from the
  package registry, nothing else is downloaded) into ``--cache`` (``<clca cache>/peer``), serving the embedded
  Q4_1 GGUF with ``--parallel 16 --cont-batching -t 2``, driven through clca's OpenAI backend (lock-step rounds,
  every round's requests in flight at once);
* ``llama-cpp-python``: llama-cpp-python's own OpenAI server (``python -m llama_cpp.server``, one request at a
  time), installed from the same sdist into a virtual environment under ``--cache`` (compiles llama.cpp once).

It prints, per arm, episodes, utterances, agent outputs and the share that could not be parsed (role-play
parse failures, re-asked), generated tokens (counted with the model's tokenizer), wall seconds, episodes/hour,
generated tokens/s, seconds per utterance, and the ratio of the ``--ref`` arm (default: the first clca arm) to
each arm.

    python bench/bench_peer.py                                   # clca (fp32, bf16) vs llama-server
    python bench/bench_peer.py --arms clca,clca-bf16,clca-1-bf16,llama-server,llama-cpp-python --ref clca-bf16
    python bench/bench_peer.py --build-only                      # build the peers, run nothing

Not part of CI (the first time it builds llama.cpp: 6 minutes for llama-server and 7 more for llama-cpp-python
on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from clca.llm.hardware import cpu_line

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_roleplay import Counting, run_mode

LCP_VERSION = "0.3.36"


def _sh(cmd: list[str], **kw: Any) -> None:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


def sdist(cache: Path) -> Path:
    """The llama-cpp-python sdist from the package registry (downloaded once)."""
    found = sorted(cache.glob(f"llama_cpp_python-{LCP_VERSION}.tar.gz"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    _sh(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"llama-cpp-python=={LCP_VERSION}",
            "-d",
            str(cache),
        ]
    )
    return next(cache.glob(f"llama_cpp_python-{LCP_VERSION}.tar.gz"))


def build_llama_server(cache: Path) -> Path:
    """``llama-server`` from the sdist's vendored llama.cpp (release build, native CPU flags), built once."""
    binary = cache / f"llama-server-{LCP_VERSION}"
    if binary.exists():
        return binary
    cmake = shutil.which("cmake")
    if cmake is None:
        _sh([sys.executable, "-m", "pip", "install", "--quiet", "cmake"])
        cmake = shutil.which("cmake") or str(Path(sys.executable).with_name("cmake"))
    src = cache / f"src-{LCP_VERSION}"
    if not (src / "CMakeLists.txt").exists():
        with tarfile.open(sdist(cache)) as tar:
            members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name]
            tmp = Path(tempfile.mkdtemp(dir=cache))
            tar.extractall(tmp, members=members, filter="data")
        vendored = next(tmp.glob("*/vendor/llama.cpp"))
        shutil.rmtree(src, ignore_errors=True)
        vendored.rename(src)
        shutil.rmtree(tmp, ignore_errors=True)
    build = src / "build"
    _sh(
        [
            cmake,
            "-S",
            str(src),
            "-B",
            str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=OFF",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_OPENSSL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DGGML_NATIVE=ON",
        ]
    )
    _sh([cmake, "--build", str(build), "--target", "llama-server", "-j", str(os.cpu_count() or 2)])
    shutil.copy2(build / "bin" / "llama-server", binary)
    return binary


def lcp_python(cache: Path) -> Path:
    """A virtual environment with llama-cpp-python[server] built from the same sdist (once)."""
    venv = cache / f"lcp-venv-{LCP_VERSION}"
    py = venv / "bin" / "python"
    ok = (
        py.exists()
        and subprocess.run([str(py), "-c", "import llama_cpp.server"], check=False).returncode == 0
    )
    if not ok:
        _sh([sys.executable, "-m", "venv", str(venv)])
        env = {
            **os.environ,
            "CMAKE_ARGS": "-DGGML_NATIVE=ON -DLLAMA_CURL=OFF",
            "CMAKE_BUILD_PARALLEL_LEVEL": "2",
        }
        _sh([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], env=env)
        _sh([str(py), "-m", "pip", "install", "--quiet", f"{sdist(cache)}[server]"], env=env)
    return py


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cmd: list[str], port: int, timeout: float = 300.0) -> subprocess.Popen[bytes]:
    """Start a server and wait until it answers ``/v1/models``."""
    import httpx

    log = open(Path(tempfile.gettempdir()) / f"bench_peer_{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{cmd[0]} did not come up in {timeout:.0f} s; see {log.name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default="clca,clca-bf16,llama-server")
    ap.add_argument(
        "--ref", default="", help="the arm the ratios are taken from (default: the first clca arm)"
    )
    ap.add_argument("--scenarios", type=int, default=8)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--parallel", type=int, default=16, help="llama-server slots")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    ap.add_argument(
        "--sdpa-decode",
        action="store_true",
        help="bf16 arms: decode steps through SDPA (not clca's matmul attention)",
    )
    ap.add_argument("--cache", type=Path, default=None, help="build folder (default: <clca cache>/peer)")
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if args.cache is None:
        from clca.settings import cache_dir

        args.cache = cache_dir() / "peer"

    if "llama-server" in arms or args.build_only:
        server_bin = build_llama_server(args.cache)
    if "llama-cpp-python" in arms or args.build_only:
        lcp = lcp_python(args.cache)
    if args.build_only:
        return

    from clca.data.sotopia import load_seeds
    from clca.llm.base import GenerationParams
    from clca.llm.embedded import smollm2_gguf
    from clca.llm.registry import load_backend

    seeds = load_seeds()
    step = max(1, len(seeds) // args.scenarios)
    scenarios = [s.model_copy(update={"culture": "China"}) for s in seeds[::step][: args.scenarios]]
    n_eps = len(scenarios) * args.samples
    locals_: dict[str, Any] = {}

    def local(quant: bool) -> Any:
        """The local backend (fp32 or with +quant=bf16), loaded once."""
        spec = "embedded:smollm2-135m" + ("+quant=bf16" if quant else "")
        if spec not in locals_:
            locals_[spec] = load_backend(spec, cache=False, batch_size=n_eps)
            if quant and args.sdpa_decode:
                locals_[spec].gen_model.set_attn_implementation("sdpa")
        return locals_[spec]

    from transformers import AutoTokenizer

    from clca.llm.spec import resolve_local_model

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_local_model("embedded:smollm2-135m")))
    gguf = smollm2_gguf()
    work = Path(tempfile.mkdtemp(prefix="bench_peer_"))
    results: list[tuple[str, dict[str, float]]] = []
    try:
        for k, arm in enumerate(arms):
            proc: subprocess.Popen[bytes] | None = None
            if arm in ("clca", "clca-1", "clca-bf16", "clca-1-bf16"):
                backend: Any = local(arm.endswith("-bf16"))
                warm = GenerationParams(max_new_tokens=4)
                backend.generate([[{"role": "user", "content": "Hi"}]], warm)
            elif arm == "llama-server":
                port = _port()
                ctx = args.parallel * 2048
                cmd = [
                    str(server_bin),
                    "-m",
                    str(gguf),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--parallel",
                    str(args.parallel),
                    "--cont-batching",
                    "-t",
                    str(args.threads),
                    "-c",
                    str(ctx),
                    "--log-disable",
                ]
                proc = _serve(cmd, port)
                backend = load_backend(f"openai:smollm2@http://127.0.0.1:{port}/v1?timeout=600", cache=False)
            elif arm == "llama-cpp-python":
                port = _port()
                cmd = [
                    str(lcp),
                    "-m",
                    "llama_cpp.server",
                    "--model",
                    str(gguf),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--n_threads",
                    str(args.threads),
                    "--n_ctx",
                    "4096",
                    "--chat_format",
                    "chatml",
                ]
                proc = _serve(cmd, port)
                backend = load_backend(
                    f"openai:smollm2@http://127.0.0.1:{port}/v1?timeout=600&max_in_flight=1", cache=False
                )
            else:
                raise SystemExit(
                    f"unknown arm {arm!r}: use clca, clca-bf16, clca-1, clca-1-bf16, llama-server, llama-cpp-python"
                )
            try:
                print(f"{arm}: {n_eps} episodes...", file=sys.stderr, flush=True)
                counting = Counting(backend, tokenizer=tokenizer)
                one = arm.startswith("clca-1")
                r = run_mode(counting, scenarios, work, f"a{k}", one_at_a_time=one, args=args)
                print(
                    f"  {r['wall_s']:.0f} s (engine: prefill {r['prefill_s']:.1f} s, cache setup "
                    f"{r['setup_s']:.1f} s, decode {r['decode_s']:.1f} s over {r['decode_rows']:.0f} row-steps; prompt "
                    f"tokens reused {100 * r['prompt_reused']:.0f}%)",
                    file=sys.stderr,
                    flush=True,
                )
                results.append((arm, r))
            finally:
                if proc is not None:
                    backend.close()
                    proc.terminate()
                    proc.wait(timeout=30)
    finally:
        for be in locals_.values():
            be.close()
        shutil.rmtree(work, ignore_errors=True)

    res = dict(results)
    ref_arm = args.ref or next((a for a in arms if a.startswith("clca")), "")
    ref = res.get(ref_arm)
    print(
        f"`python bench/bench_peer.py --arms {args.arms} --scenarios {args.scenarios} --samples {args.samples} "
        f"--turns {args.turns} --max-new-tokens {args.max_new_tokens}"
        f"{' --ref ' + args.ref if args.ref else ''}{' --sdpa-decode' if args.sdpa_decode else ''}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()}, {os.cpu_count()} cores, {cpu_line()}; SmolLM2-135M-Instruct, temperature 0.7, "
        "no call cache; "
        f"{n_eps} episodes = {len(scenarios)} Sotopia scenarios x {args.samples} samples, culture China)\n"
    )
    print(
        "| arm | episodes | utterances | agent outputs | unparseable | generated tokens | wall s | episodes/hour "
        f"| tokens/s | s per utterance | {ref_arm} vs this arm (episodes/hour; s per utterance) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arm, r in results:
        spu = r["wall_s"] / max(1, r["turns"])
        vs = ""
        if ref is not None and arm != ref_arm:
            ref_spu = ref["wall_s"] / max(1, ref["turns"])
            vs = f"{ref['episodes_per_hour'] / r['episodes_per_hour']:.2f}×; {spu / ref_spu:.2f}×"
        print(
            f"| {arm} | {int(r['episodes'])} | {int(r['turns'])} | {int(r['outputs'])} | "
            f"{r['parse_failures'] / max(1, r['outputs']):.1%} | {int(r['tokens'])} | {r['wall_s']:.1f} | "
            f"{r['episodes_per_hour']:.0f} | {r['tokens_per_s']:.1f} | {spu:.2f} | {vs} |"
        )


if __name__ == "__main__":
    main()
