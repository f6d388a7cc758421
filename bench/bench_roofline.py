"""Each stage of a finished run against its roofline bound on this machine: measured seconds / bound seconds.

The machine's ceilings are measured here, in this run: the fp32 (and, where generation ran in bf16, the bf16)
matmul peak (best of 5 ``n x n @ n x n``, 2·n³ FLOPs) and the memory bandwidth (best of 5 copies of a 256 MiB
tensor, read + write bytes). The work of each stage comes from the run's manifest (the counts every stage
records: ``llm.engine.*`` from the local decoding engine, ``llm.score.*`` from option scoring, ``train_tokens``
from training) and the models' shapes (read from their configs; no weights are loaded). With N the
non-embedding parameters, V·H the LM head (vocabulary x hidden size) and b the bytes per weight:

- generation (scenarios, simulate, judge, intents, translate):
  prefill 2·N·(prompt tokens run) / peak, plus decode max((N + V·H)·b·steps + KV bytes read, at the bandwidth;
  2·(N + V·H)·rows / peak), KV bytes = 2·layers·kv heads·head dim·b per attended position (the real context of
  every live row at every step, padding excluded);
- training: k·(N + V·H)·(training tokens) / fp32 peak, k = 4 for LoRA on frozen weights (forward, and the
  backward pass to the activations only), 6 with gradient checkpointing (one more forward);
- evaluation (option scoring): 2·N·(context + option tokens) + 2·V·H·(option tokens), at the fp32 peak;
- stages without model work (mix, stats, report): their time only.

The ceilings table also gives the weight bandwidth a decode-shaped fp32 product reaches (4 rows), as ``F.linear``
computes it and as the engine's decode steps do (``weight @ xᵀ``, :class:`clca.llm.decode.WeightFirstLinear`):
the copy bandwidth is what a decode step could reach, this is what the kernels reach.

The bound leaves out what no roofline counts: loading a model, tokenising, Python between steps. The
``engine s`` column is the time inside the decoding engine (prefill + decode), so wall - engine is that
overhead. A run answered from the call cache did no engine work: its bound is 0 and it is shown as cached.

Usage: python bench/bench_roofline.py runs/demo [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from clca.llm.hardware import cpu_line
from clca.manifest import Manifest, StageRecord, load_manifest
from clca.rundir import RunDir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_flops import matmul_peak
from bench_scoring import RESULTS

#: generation stages and the model role each loads (clca.pipeline's ``ctx.model`` roles)
GEN_ROLES = {
    "scenarios": "teacher",
    "simulate": "actor",
    "judge": "judge",
    "intents": "intents",
    "translate": "teacher",
}


@dataclass(frozen=True)
class Shape:
    """What the roofline needs of a model: parameter counts and the KV cache size per position."""

    nonemb: int  # parameters outside the input embedding
    head: int  # vocabulary x hidden (the LM head's matmul, tied or not)
    kv_per_token: int  # 2 · layers · kv heads · head dim (elements per cached position)


def model_shape(spec: str) -> Shape:
    """The shape of the local model behind ``spec`` from its config (weights are not read)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from clca.llm.spec import resolve_local_model

    cfg = AutoConfig.from_pretrained(str(resolve_local_model(spec)))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb
    total = sum(p.numel() for p in model.parameters())
    hidden = int(cfg.hidden_size)
    vocab = int(cfg.vocab_size)
    # without tying, the LM head is a parameter of its own: N then excludes it so that it is counted once
    nonemb = total - emb.numel() - (0 if tied or out is None else out.weight.numel())
    heads = int(cfg.num_attention_heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or hidden // heads)
    return Shape(
        nonemb=nonemb, head=vocab * hidden, kv_per_token=2 * int(cfg.num_hidden_layers) * kv_heads * head_dim
    )


def bandwidth(mib: int = 256, reps: int = 5) -> float:
    """Best observed copy bandwidth (bytes read + written per second) of a ``mib`` MiB fp32 tensor."""
    n = mib * 2**20 // 4
    a = torch.randn(n)
    b = torch.empty_like(a)
    b.copy_(a)  # warm-up: pages touched
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - t0)
    return 2 * n * 4 / best


def decode_matmul_bandwidth(
    rows: int = 4, out_f: int = 4864, in_f: int = 896, reps: int = 10
) -> dict[str, float]:
    """Weight bytes per second of a decode-shaped fp32 product (``rows`` x ``in_f`` by an ``out_f`` x ``in_f``
    weight; the default is Qwen2.5-0.5B's MLP up-projection) as ``F.linear`` computes it and as
    :class:`clca.llm.decode.WeightFirstLinear` does (``weight @ xᵀ``): the ceiling a decode step meets in practice."""
    import torch.nn.functional as F

    w = torch.randn(out_f, in_f)
    x = torch.randn(rows, in_f)
    out: dict[str, float] = {}
    for name, fn in (("F.linear", lambda: F.linear(x, w)), ("weight @ x^T", lambda: torch.mm(w, x.T))):
        fn()
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = w.numel() * 4 / best
    return out


@dataclass
class Row:
    stage: str
    kind: str
    work: str
    wall_s: float
    engine_s: float | None
    bound_s: float | None
    bound_by: str = ""


def _c(rec: StageRecord, key: str) -> int:
    return int(rec.counts.get(key, 0))


def generation_bound(
    rec: StageRecord, shape: Shape, bytes_w: int, peak: float, bw: float
) -> tuple[float, str, str]:
    """Seconds the engine's counted work needs at the peaks, the larger of its two parts (prefill, or decode and
    whether memory or compute bounds it), and the work in words."""
    prefilled = _c(rec, "llm.engine.prefilled_tokens")
    steps = _c(rec, "llm.engine.decode_steps")
    rows = _c(rec, "llm.engine.decode_rows")
    kv_pos = _c(rec, "llm.engine.decode_kv_positions")
    prefill_s = 2 * shape.nonemb * prefilled / peak
    mem_s = ((shape.nonemb + shape.head) * bytes_w * steps + shape.kv_per_token * bytes_w * kv_pos) / bw
    flop_s = 2 * (shape.nonemb + shape.head) * rows / peak
    decode_s = max(mem_s, flop_s)
    by = "decode: memory" if mem_s >= flop_s else "decode: compute"
    if prefill_s > decode_s:
        by = "prefill: compute"
    work = f"prefill {prefilled} tok; decode {steps} steps, {rows} rows, {kv_pos} KV positions"
    return prefill_s + decode_s, by, work


def stage_rows(run: Path, manifest: Manifest, peaks: dict[str, float], bw: float) -> list[Row]:
    from clca.config import config_from_mapping

    raw = RunDir(run).resolved_config()
    if raw is None:
        sys.exit(
            f"{run} has no readable resolved config (config.resolved.yaml): give a directory `clca run` wrote."
        )
    cfg = config_from_mapping(raw, source=str(RunDir(run).config_file))
    student = cfg.models.student
    # the training recipe the run used (preset + overrides), as the pipeline resolves it
    checkpointing = bool(cfg.train.resolve(model=student, seed=cfg.seed).gradient_checkpointing)
    shapes: dict[str, Shape] = {}

    def shape_of(spec: str) -> Shape:
        from clca.llm.spec import parse_spec

        p = parse_spec(spec)
        key = f"{p.kind}:{p.name}"
        if key not in shapes:
            shapes[key] = model_shape(key)
        return shapes[key]

    out: list[Row] = []
    for name, rec in manifest.stages.items():
        if rec.duration_s is None or rec.status != "done":
            continue
        base = name.split(":")[0]
        engine_ms = _c(rec, "llm.engine.prefill_ms") + _c(rec, "llm.engine.decode_ms")
        if base in GEN_ROLES:
            role = GEN_ROLES[base]
            info = manifest.models.get(role, {})
            spec = info.get("spec", "")
            if not spec.startswith(("embedded:", "hf:")):
                out.append(Row(name, "generate", f"server model {spec or '?'}", rec.duration_s, None, None))
                continue
            bf16 = info.get("quant") == "bf16"
            peak = peaks["bf16" if bf16 else "fp32"]
            bound, by, work = generation_bound(rec, shape_of(spec), 2 if bf16 else 4, peak, bw)
            if _c(rec, "llm.engine.prompt_tokens") == 0:
                work = (
                    "answered from the call cache" if _c(rec, "llm.cache.hits") else "no engine work counted"
                )
            out.append(
                Row(
                    name,
                    "generate" + (" bf16" if bf16 else ""),
                    work,
                    rec.duration_s,
                    engine_ms / 1e3,
                    bound,
                    by,
                )
            )
        elif base == "train":
            tokens = _c(rec, "train_tokens")
            k = 6 if checkpointing else 4
            sh = shape_of(student)
            bound = k * (sh.nonemb + sh.head) * tokens / peaks["fp32"]
            out.append(
                Row(
                    name,
                    "train",
                    f"{tokens} tokens, {_c(rec, 'steps')} steps, {k}·P·T",
                    rec.duration_s,
                    None,
                    bound,
                    "compute",
                )
            )
        elif base == "eval":
            ctx = _c(rec, "llm.score.context_tokens")
            opt = _c(rec, "llm.score.option_tokens")
            sh = shape_of(student)
            bound = (2 * sh.nonemb * (ctx + opt) + 2 * sh.head * opt) / peaks["fp32"]
            work = (
                f"score {ctx} context + {opt} option tokens" if ctx + opt else "no scoring counted (cached?)"
            )
            out.append(Row(name, "score", work, rec.duration_s, None, bound, "compute"))
        else:
            out.append(Row(name, "-", "no model work", rec.duration_s, None, None))
    return out


def render(
    run: Path, rows: list[Row], peaks: dict[str, float], bw: float, dec: dict[str, float], cmd: str
) -> str:
    lines = [
        "\n### Roofline of a run (`bench/bench_roofline.py`)\n",
        f"Command: `{cmd}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {torch.get_num_threads()} threads, "
        f"{cpu_line()}). Run directory: `{run}`.\n",
        "| ceiling | measured |\n|---|---|",
        *[f"| {k} matmul peak | {v / 1e9:.1f} GFLOP/s |" for k, v in peaks.items()],
        f"| memory bandwidth (copy) | {bw / 1e9:.1f} GB/s |",
        *[
            f"| decode-shaped fp32 product, 4 rows x 4864x896 weight, {k} | {v / 1e9:.1f} GB/s of weights |"
            for k, v in dec.items()
        ],
        "",
        "| stage | kind | work | wall s | engine s | bound s | wall / bound | bound by |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    total_wall = 0.0
    total_bound = 0.0
    for r in rows:
        total_wall += r.wall_s
        total_bound += r.bound_s or 0.0
        ratio = f"{r.wall_s / r.bound_s:.1f}x" if r.bound_s else "-"
        eng = f"{r.engine_s:.1f}" if r.engine_s is not None else "-"
        bnd = f"{r.bound_s:.2f}" if r.bound_s is not None else "-"
        lines.append(
            f"| {r.stage} | {r.kind} | {r.work} | {r.wall_s:.1f} | {eng} | {bnd} | {ratio} | {r.bound_by} |"
        )
    lines.append(
        f"| **all** | | | {total_wall:.1f} | | {total_bound:.2f} | {total_wall / max(total_bound, 1e-9):.1f}x | |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished run directory (its manifest.json)")
    ap.add_argument("--n", type=int, default=2048, help="matmul size of the peak measurement")
    ap.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    rd = RunDir(args.run)
    if not rd.manifest_file.exists():
        sys.exit(f"{rd.manifest_file} does not exist: give a run directory that `clca run` finished.")
    manifest = load_manifest(rd.manifest_file)
    uses_bf16 = any(m.get("quant") == "bf16" for m in manifest.models.values())
    peaks = {"fp32": matmul_peak(args.n)}
    if uses_bf16:
        peaks["bf16"] = matmul_peak(args.n, dtype=torch.bfloat16)
    bw = bandwidth()
    dec = decode_matmul_bandwidth()
    rows = stage_rows(args.run, manifest, peaks, bw)
    cmd = " ".join(["python", "bench/bench_roofline.py", *sys.argv[1:]])
    text = render(args.run, rows, peaks, bw, dec, cmd)
    print(text)
    if args.write:
        body = RESULTS.read_text(encoding="utf-8").rstrip("\n")
        RESULTS.write_text(body + "\n" + text, encoding="utf-8")
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
