"""SmolLM2 LoRA training throughput: clca's SFTTrainer path vs a bare PyTorch loop, in one run.

Both use the same PEFT model (``cpu`` preset: fp32, LoRA r 8 on q/k/v/o, dropout 0) and batches built by
the trainer's own processing and collator from a synthetic conversational mix (each example about
``--seq-len`` tokens, assistant-only labels). The bare loop is ``model(**batch).loss`` (HF loss over the
full logits), ``loss.backward()``, AdamW step. A third line runs the bare loop with TRL's fused LM head
(``fused_lm_head=True``, no full ``[tokens x vocab]`` logits), the loss path SFTTrainer uses.

Reports tokens/s (non-padding tokens / wall time, the first step of each variant excluded as warm-up),
the ratio ours/bare (target >= 0.85), and peak RSS (target <= 5 GB); target >= 200 tokens/s.

    OMP_NUM_THREADS=2 python bench/bench_train.py --steps 4 --batch-size 2 --seq-len 256
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from clca.llm.hardware import cpu_line

WORDS = [
    "tea",
    "family",
    "respect",
    "elder",
    "guest",
    "gift",
    "honour",
    "polite",
    "work",
    "school",
    "market",
    "festival",
    "neighbour",
    "friend",
    "dinner",
    "travel",
    "promise",
    "help",
    "share",
    "city",
    "village",
    "morning",
    "evening",
    "weather",
    "journey",
    "letter",
    "story",
    "song",
]


def synthetic_mix(path: Path, n: int, seq_len: int, seed: int = 0) -> None:
    """A DatasetDict of ``n`` three-turn conversations of roughly ``seq_len`` tokens each."""
    from datasets import Dataset, DatasetDict

    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "."

    rows = []
    for _ in range(n):
        # ~1.3 tokens per word incl. punctuation; system ~25%, user ~25%, assistant ~50% of the budget
        w = max(8, int(seq_len / 1.3))
        rows.append(
            [
                {"role": "system", "content": "You are Li Na, a teacher in Suzhou. " + words(w // 4)},
                {"role": "user", "content": words(w // 4)},
                {"role": "assistant", "content": words(w // 2)},
            ]
        )
    ds = Dataset.from_dict({"messages": rows, "episode_id": [f"e{i}" for i in range(n)], "task": ["b"] * n})
    DatasetDict({"train": ds}).save_to_disk(str(path))


def _ntok(batch: dict[str, Any]) -> int:
    return int(batch["attention_mask"].sum())


def bare_loop(model: Any, batches: list[dict[str, Any]], lr: float, fused: bool) -> tuple[float, int]:
    """Seconds and tokens for the batches after the first (warm-up) one."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    t0, tokens = 0.0, 0
    for i, batch in enumerate(batches):
        if i == 1:
            t0 = time.perf_counter()
        if fused:
            out = model(**batch, fused_lm_head=True, use_cache=False)
            loss = -out.log_probs.sum() / out.label_mask.sum().clamp(min=1)
        else:
            loss = model(**batch, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 1:
            tokens += _ntok(batch)
    return time.perf_counter() - t0, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="embedded:smollm2-135m")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per variant (+1 warm-up)")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: OMP_NUM_THREADS / torch's)")
    ap.add_argument(
        "--gradient-checkpointing", action="store_true", help="measure with activation checkpointing on"
    )
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    from transformers import TrainerCallback

    from clca.training.presets import preset
    from clca.training.train import build_trainer, peak_rss_mb

    if args.threads:
        torch.set_num_threads(args.threads)
    n_batches = args.steps + 1
    with tempfile.TemporaryDirectory() as tmp:
        mix = Path(tmp) / "mix"
        synthetic_mix(mix, n_batches * args.batch_size, args.seq_len)
        cfg = preset(
            "cpu",
            model=args.model,
            max_steps=n_batches,
            per_device_batch_size=args.batch_size,
            grad_accum=1,
            max_length=args.seq_len + 64,
            logging_steps=1000,
            save_checkpoints=False,
            eval_each_epoch=False,
            gradient_checkpointing=args.gradient_checkpointing,
        )
        trainer, facts = build_trainer(mix, Path(tmp) / "out", cfg, progress=False)
        ds = trainer.train_dataset
        batches = [
            trainer.data_collator([ds[j] for j in range(i * args.batch_size, (i + 1) * args.batch_size)])
            for i in range(n_batches)
        ]
        mean_len = sum(_ntok(b) for b in batches) / (n_batches * args.batch_size)

        stamps: list[float] = []

        class Clock(TrainerCallback):  # type: ignore[misc]
            def on_step_end(self, *a: Any, **k: Any) -> None:
                stamps.append(time.perf_counter())

        trainer.add_callback(Clock())
        seen: list[int] = []
        orig = trainer.compute_loss

        def counting(model: Any, inputs: dict[str, Any], *a: Any, **k: Any) -> Any:
            seen.append(_ntok(inputs))
            return orig(model, inputs, *a, **k)

        trainer.compute_loss = counting  # type: ignore[method-assign]

        def run_ours(sparse: bool) -> tuple[float, int]:
            trainer.sparse_lm_head = sparse
            stamps.clear()
            seen.clear()
            trainer.train()
            return stamps[-1] - stamps[0], sum(seen[1:])

        ours_s, ours_tok = run_ours(True)  # clca's default off CUDA: LM head only on labelled positions
        trl_s, trl_tok = run_ours(False)  # TRL's own fused-head loss
        model = trainer.model
        bare_s, bare_tok = bare_loop(model, batches, cfg.learning_rate, fused=False)
        fused_s, fused_tok = bare_loop(model, batches, cfg.learning_rate, fused=True)

    res = {
        "model": args.model,
        "steps_timed": args.steps,
        "batch_size": args.batch_size,
        "mean_tokens_per_example": round(mean_len, 1),
        "torch_threads": torch.get_num_threads(),
        "ours_sfttrainer_tokens_per_s": round(ours_tok / ours_s, 1),
        "sfttrainer_trl_fused_head_tokens_per_s": round(trl_tok / trl_s, 1),
        "bare_loop_tokens_per_s": round(bare_tok / bare_s, 1),
        "bare_loop_fused_head_tokens_per_s": round(fused_tok / fused_s, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "device": facts["device"],
        "cpu": cpu_line(),
        "gradient_checkpointing": args.gradient_checkpointing,
    }
    res["ratio_ours_over_bare"] = round(
        res["ours_sfttrainer_tokens_per_s"] / res["bare_loop_tokens_per_s"], 3
    )
    for k, v in res.items():
        print(f"{k:36s} {v}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
