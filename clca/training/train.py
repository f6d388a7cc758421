"""Train one LoRA adapter per culture on the CLCA mix with TRL's ``SFTTrainer`` (loss on assistant tokens).

How the loss is restricted to assistant tokens (TRL 1.x): ``SFTConfig(assistant_only_loss=True)`` makes
TRL tokenize each ``messages`` example with ``return_assistant_tokens_mask=True``; the mask comes from
``{% generation %}``/``{% endgeneration %}`` markers in the chat template and becomes ``labels = -100``
everywhere else. Most shipped templates (SmolLM2's ChatML among them) have no markers, so
:func:`clca.llm.chat_template.training_chat_template` picks a marked template: the tokenizer's own when it has
markers, else TRL's patched template for known families (Llama 3, Qwen 2.5, Gemma, ...), else a ChatML
template with markers around each assistant reply and its ``<|im_end|>``. A candidate is used only if it
renders a probe conversation byte-identically to the original template, so training sees exactly the text
inference will. Templates without such a twin get their masks from the rendered text
(:func:`clca.llm.chat_template.tokenize_with_assistant_masks`).

TRL computes the loss with a fused LM head that never materialises the full ``[tokens x vocab]`` logits;
but off Triton devices (CPU) it still projects *every* position through the LM head, in chunks, and
recomputes them in the backward pass. On CPU (``sparse_lm_head``, default: when not on CUDA) our
:class:`ClcaSFTTrainer` instead runs the model with ``logits_to_keep=1``, takes the backbone's hidden states
with a hook and projects only the positions whose label is set (about half of a dialogue's tokens) through the
LM head, with a plain cross-entropy: same loss, less compute (measured in bench/bench_train.py). The forward
goes through the wrapped model, so under DDP the gradients are all-reduced.

Chat templates: a Mistral student whose own template drops the system prompt of a conversation ending on the
assistant (v0.3) is trained with the released CLCA code's template (saved with the adapter), and a training
whose rendered examples lack their system content stops (:mod:`clca.llm.chat_template`).

Outputs in ``out_dir``: the PEFT adapter (``adapter_config.json``, ``adapter_model.safetensors``) and the
tokenizer, ``train_log.jsonl`` (one line per logging step / evaluation: loss, eval_loss, learning rate,
tokens/s, peak memory) and finally ``train_result.json`` (its presence marks the adapter as finished: a
rerun skips it). Per-epoch checkpoints in ``out_dir/checkpoints`` let an interrupted run resume; they are
deleted after success.

Multi-GPU training runs the same command under accelerate (see docs/training.md)::

    accelerate launch --config_file configs/accelerate/multi_gpu.yaml -m clca train \
        --run runs/paper --culture China --preset paper --model hf:<id> --seed 0

(``python -m clca.training.train`` is the same as ``clca train``; :func:`accelerate_command` is the launch the
pipeline uses, several processes even without CUDA; only rank 0 writes the outputs.)
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import resource
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from clca.errors import ClcaError, ModelError
from clca.llm.chat_template import (
    check_system_rendered,
    student_chat_template,
    template_name,
    tokenize_with_assistant_masks,
    training_chat_template,
)
from clca.locks import hold
from clca.records import TrainResult
from clca.rundir import AdapterDir
from clca.training.cards import adapter_card, make_portable
from clca.training.mix import load_mix
from clca.training.presets import TrainConfig

#: set by the pipeline's accelerate launcher: how many processes `clca train` must find itself among
PROCESSES_ENV = "CLCA_TRAIN_PROCESSES"


def accelerate_command(
    num_processes: int, config_file: Path | None = None, *, cuda: bool | None = None
) -> list[str]:
    """``python -m accelerate.commands.launch ...`` starting ``num_processes`` processes of one training (append
    ``-m clca train ...``).

    Several processes always use accelerate's torchrun launcher (``--multi_gpu``): ``accelerate launch --cpu
    --num_processes N`` starts a single process (accelerate runs several CPU processes only under mpirun), and
    on a machine without CUDA the Trainer (``use_cpu``) joins the torchrun processes over gloo. A free port is
    picked unless a config file says where the rendezvous is.
    """
    import socket

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
    if config_file is not None:
        cmd += ["--config_file", str(config_file)]
    if num_processes > 1:
        cmd.append("--multi_gpu")
        if config_file is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                cmd += ["--num_machines", "1", "--main_process_port", str(sock.getsockname()[1])]
    elif not cuda:
        cmd.append("--cpu")
    return cmd


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _pretokenize(ds: Any, tokenizer: Any, max_length: int | None) -> Any:
    """A messages dataset as input_ids + assistant_masks (examples left without an assistant token within
    ``max_length`` are dropped, as TRL does for marked templates)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"tokenizer of {tokenizer.name_or_path} has a chat template without generation markers and is not a "
            "fast tokenizer, so the assistant tokens cannot be located.",
            fix="give the tokenizer a chat template with {% generation %} markers (see docs/training.md).",
        )
    out = ds.map(
        lambda ex: tokenize_with_assistant_masks(tokenizer, ex["messages"]), remove_columns=["messages"]
    )
    return out.filter(lambda ex: any(ex["assistant_masks"][: max_length or None]))


def _versions() -> dict[str, str]:
    import datasets
    import peft
    import torch
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
        "datasets": datasets.__version__,
    }


def _load_model(cfg: TrainConfig, base_path: Path) -> tuple[Any, Any, str, str]:
    """Base model + tokenizer on the right device/dtype (4-bit QLoRA when asked); pad token handled."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    use_bf16 = cfg.bf16 if cfg.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    if use_bf16 and not cuda:
        raise ClcaError(
            "bf16 training was requested without a CUDA GPU.", fix="drop --bf16 on CPU (fp32 is used)."
        )
    dtype = torch.bfloat16 if use_bf16 else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.load_in_4bit:
        if not cuda:
            raise ClcaError(
                "4-bit QLoRA needs a CUDA GPU, and none is available.",
                fix="use the cpu preset, or train the paper preset without quantisation (--no-load-in-4bit, "
                "or train.overrides.load_in_4bit: false).",
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ClcaError(
                "4-bit QLoRA needs the bitsandbytes package.",
                fix="pip install bitsandbytes, or train without quantisation (--no-load-in-4bit).",
            ) from None
        import os

        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if use_bf16 else torch.float16,
        )
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    config = AutoConfig.from_pretrained(str(base_path))
    qc = getattr(config, "quantization_config", None)
    if (
        qc is not None
        and (qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)) == "gguf"
    ):
        # a folder converted from GGUF holds dequantised fp32 weights but may keep the GGUF marker, which makes
        # the Trainer refuse to train it: drop the marker
        del config.quantization_config
    model = AutoModelForCausalLM.from_pretrained(str(base_path), config=config, **kwargs)
    if tokenizer.pad_token is None:
        if cfg.add_pad_token and "embed_tokens" in cfg.modules_to_save:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
            model.resize_token_embeddings(len(tokenizer))
        else:  # new embedding rows would not be saved with the adapter: reuse EOS for padding
            tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    device = "cuda" if cuda else "cpu"
    return model, tokenizer, device, ("nf4+" if cfg.load_in_4bit else "") + str(dtype).replace("torch.", "")


def _callback_class() -> type:
    from transformers import TrainerCallback

    class JsonlLogCallback(TrainerCallback):  # type: ignore[misc]
        """Appends every log event (loss, eval_loss, lr, tokens/s, peak memory, processes) to
        ``train_log.jsonl``."""

        def __init__(self, path: Path) -> None:
            self.path = path
            self.t0 = time.perf_counter()
            self.last_t = self.t0
            self.last_tokens = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = self.last_t = time.perf_counter()

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if not state.is_world_process_zero or not logs:
                return
            import torch

            now = time.perf_counter()
            rec: dict[str, Any] = {
                "step": state.global_step,
                "epoch": state.epoch,
                "time_s": round(now - self.t0, 3),
                "processes": args.world_size,  # training processes (accelerate launch: one per GPU)
            }
            rec.update({k: v for k, v in logs.items() if isinstance(v, int | float | str)})
            tokens = logs.get("num_tokens")
            if isinstance(tokens, int | float) and "loss" in logs and now > self.last_t:
                rec["tokens_per_s"] = round((tokens - self.last_tokens) / (now - self.last_t), 2)
                self.last_tokens, self.last_t = float(tokens), now
            rec["peak_rss_mb"] = round(peak_rss_mb(), 1)
            if torch.cuda.is_available():
                rec["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")

    return JsonlLogCallback


def _trainer_class() -> type:
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class ClcaSFTTrainer(SFTTrainer):  # type: ignore[misc]
        """``SFTTrainer`` whose loss projects only labelled positions through the LM head (when enabled)."""

        sparse_lm_head: bool = False

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if not self.sparse_lm_head or return_outputs or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if model.training else "eval"
            unwrapped = self.accelerator.unwrap_model(model)
            base = unwrapped.get_base_model() if hasattr(unwrapped, "get_base_model") else unwrapped
            backbone = getattr(base, base.base_model_prefix)  # LoRA layers are injected in place
            fwd = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
            # the forward goes through `model` itself (under DDP the wrapper: calling the backbone directly skips
            # its gradient all-reduce, and every process would train on its own shard); the LM head projects one
            # position only, and the backbone's hidden states are taken by a hook
            seen: list[Any] = []
            hook = backbone.register_forward_hook(lambda _m, _a, out: seen.append(out.last_hidden_state))
            try:
                model(**fwd, use_cache=False, logits_to_keep=1)
            finally:
                hook.remove()
            hidden = seen[-1][:, :-1]
            labels = inputs["labels"][:, 1:]
            mask = labels != -100
            logits = base.get_output_embeddings()(hidden[mask]).float()
            target = labels[mask]
            denom = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = F.cross_entropy(logits, target, reduction="sum") / torch.as_tensor(denom).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                # num_items_in_batch counts every process's tokens and DDP averages the gradients (as in TRL)
                loss = loss * self.accelerator.num_processes
            with torch.no_grad():
                n_valid = self.accelerator.gather_for_metrics(mask.sum()).sum()
                correct = self.accelerator.gather_for_metrics((logits.argmax(-1) == target).sum()).sum()
            self._metrics[mode]["mean_token_accuracy"].append(
                float(correct) / float(n_valid) if int(n_valid) else 0.0
            )
            if mode == "train":
                self._total_train_tokens += int(
                    self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
                )
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return loss

    return ClcaSFTTrainer


def build_trainer(
    dataset_dir: str | Path, out_dir: str | Path, cfg: TrainConfig, *, progress: bool = True
) -> tuple[Any, dict[str, Any]]:
    """The configured ``SFTTrainer`` (PEFT LoRA, assistant-only loss) for a saved mix, plus run facts.

    Exposed separately so tests and the benchmark use exactly the processing/collator that training uses.
    """
    import torch
    from peft import LoraConfig
    from trl import SFTConfig

    from clca.llm.registry import resolve_local_model

    out_dir = Path(out_dir)
    dd = load_mix(dataset_dir)
    train_ds = dd["train"].select_columns(["messages"])
    eval_ds = dd["validation"].select_columns(["messages"]) if "validation" in dd else None
    base_path = resolve_local_model(cfg.model)
    model, tokenizer, device, dtype = _load_model(cfg, base_path)
    swap = student_chat_template(tokenizer)
    if swap is not None:  # Mistral v0.3 would drop every system prompt: the released code's template instead
        tokenizer.chat_template = swap  # saved with the adapter, so evaluation renders the same way
    template = template_name(tokenizer)
    masks_from_render = False
    try:
        tpl = training_chat_template(tokenizer)
    except ModelError:
        if not tokenizer.chat_template:
            raise
        # no template with generation markers renders like this one (Llama 3.1/3.2, Mistral): locate the
        # assistant replies in the rendered text instead (tokenize_with_assistant_masks)
        tpl, masks_from_render = None, True
    if tpl is not None:
        tokenizer.chat_template = tpl  # renders identically (checked), with generation markers
    if not masks_from_render:  # TRL renders the examples: check the rendered text keeps every system prompt
        for ds in (train_ds, eval_ds) if eval_ds is not None else (train_ds,):
            for messages in ds["messages"]:
                check_system_rendered(
                    tokenizer.apply_chat_template(messages, tokenize=False), messages, template
                )
    if masks_from_render:  # (tokenize_with_assistant_masks checks the same)
        train_ds = _pretokenize(train_ds, tokenizer, cfg.max_length)
        eval_ds = _pretokenize(eval_ds, tokenizer, cfg.max_length) if eval_ds is not None else None

    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,  # type: ignore[arg-type]  # a float scale is fine (alpha / r)
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        modules_to_save=list(cfg.modules_to_save) or None,
        # a tied student (Llama-3.2 1B/3B, Qwen2.5 0.5B/1.5B, SmolLM2): one trained matrix, or two copies
        ensure_weight_tying=tied and cfg.tie_trained_embeddings and bool(cfg.modules_to_save),
        bias="none",
        task_type="CAUSAL_LM",
    )
    do_eval = eval_ds is not None and len(eval_ds) > 0 and cfg.eval_each_epoch
    use_bf16 = dtype.endswith("bfloat16")
    args = SFTConfig(
        output_dir=str(AdapterDir(out_dir).checkpoints_dir),
        assistant_only_loss=not masks_from_render,  # pretokenized: the masks become the labels
        max_length=cfg.max_length,
        per_device_train_batch_size=cfg.per_device_batch_size,
        per_device_eval_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps or -1,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        activation_checkpointing=cfg.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        bf16=use_bf16,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        eval_strategy="epoch" if do_eval else "no",
        prediction_loss_only=True,  # only the validation loss is needed; keeps eval on the cheap loss path
        save_strategy="epoch" if cfg.save_checkpoints else "no",
        save_total_limit=1,
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        use_cpu=device == "cpu",
    )
    with warnings.catch_warnings():
        if (
            tied and not cfg.tie_trained_embeddings
        ):  # two copies on purpose: PEFT's warning about them is known
            warnings.filterwarnings("ignore", message=".*ensure_weight_tying.*")
        trainer = _trainer_class()(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds if do_eval else None,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[_callback_class()(AdapterDir(out_dir).log_file)],
        )
    # the sparse path needs `logits_to_keep` (every recent transformers causal LM has it)
    can_sparse = "logits_to_keep" in inspect.signature(model.forward).parameters
    trainer.sparse_lm_head = can_sparse and (
        cfg.sparse_lm_head if cfg.sparse_lm_head is not None else device != "cuda"
    )
    if len(trainer.train_dataset) == 0:
        raise ClcaError(
            f"no training example of {dataset_dir} keeps an assistant token within max_length={cfg.max_length}.",
            fix="raise --max-length (system prompts alone take ~100 tokens).",
        )
    facts = {
        "base_model_path": str(base_path),
        "device": device,
        "dtype": dtype,
        "train_examples": len(train_ds),
        "assistant_masks": "rendered text" if masks_from_render else "chat template markers",
        "chat_template": "clca-mistral" if swap is not None else "own",
        "validation_examples": len(eval_ds) if eval_ds is not None else 0,
        "eval_ds": eval_ds,
        "torch_threads": torch.get_num_threads(),
    }
    return trainer, facts


def _check_adoptable(done: TrainResult, cfg: TrainConfig, dataset_dir: str | Path, out_dir: Path) -> None:
    """A finished adapter is reused only when it was trained with these settings on this mix; otherwise a
    one-line refusal names the first setting that differs."""
    want = cfg.model_dump(mode="json")
    # a setting added after that training ran counts with its default (the behaviour before it existed)
    had_cfg = {
        **{k: f.default for k, f in TrainConfig.model_fields.items() if f.default_factory is None},
        **done.config,
    }
    diff = [k for k in sorted(set(want) | set(done.config)) if want.get(k) != had_cfg.get(k)]
    if Path(done.dataset_dir).absolute() != Path(dataset_dir).absolute():
        diff.insert(0, "dataset_dir")
    if diff:
        k = diff[0]
        had = done.dataset_dir if k == "dataset_dir" else had_cfg.get(k)
        now = dataset_dir if k == "dataset_dir" else want.get(k)
        raise ClcaError(
            f"{out_dir} holds an adapter trained with other settings ({k}: {had!r} there, {now!r} now"
            + (f"; {len(diff) - 1} more" if len(diff) > 1 else "")
            + ").",
            fix="move that folder away (or use another --out / run directory) to train with these settings.",
        )


def train_adapter(
    dataset_dir: str | Path, out_dir: str | Path, cfg: TrainConfig, *, progress: bool = True
) -> TrainResult:
    """Train a LoRA adapter on the mix at ``dataset_dir`` and save it to ``out_dir`` (resumable, see module doc)."""

    out_dir = Path(out_dir)
    folder = AdapterDir(out_dir)
    if folder.finished():
        done = folder.result()
        assert done is not None
        _check_adoptable(done, cfg, dataset_dir, out_dir)
        return done.model_copy(update={"skipped": True})
    out_dir.mkdir(parents=True, exist_ok=True)
    # one writer per adapter folder, whoever starts it (clca run, its executor's units, clca train); under
    # `accelerate launch` the processes share one training: rank 0 holds the lock
    rank = int(os.environ.get("RANK", "0"))
    lock = (
        hold(
            out_dir.with_name(f".{out_dir.name}.lock"),
            "training this adapter",
            fix="wait for that training to finish: one writer per adapter folder.",
        )
        if rank == 0
        else contextlib.nullcontext()
    )
    with lock:
        return _train(dataset_dir, out_dir, cfg, progress=progress)


def _train(dataset_dir: str | Path, out_dir: Path, cfg: TrainConfig, *, progress: bool) -> TrainResult:
    import torch
    from transformers.trainer_utils import get_last_checkpoint

    folder = AdapterDir(out_dir)
    trainer, facts = build_trainer(dataset_dir, out_dir, cfg, progress=progress)
    ckpt_dir = folder.checkpoints_dir
    resume = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=resume)
    runtime = time.perf_counter() - t0
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    if not evals and facts["eval_ds"] is not None and len(facts["eval_ds"]) > 0:
        evals = [trainer.evaluate(eval_dataset=facts["eval_ds"])["eval_loss"]]
    tokens = int(getattr(trainer, "_total_train_tokens", 0))
    trainer.save_model(str(out_dir))  # Trainer writes from the main process only
    base_id = ""
    if trainer.is_world_process_zero():
        base_id = make_portable(out_dir, cfg.model)  # the hub id, not this machine's cache path
    res = TrainResult(
        adapter_dir=out_dir,
        base_model=cfg.model,
        base_model_path=facts["base_model_path"],
        base_model_id=base_id,
        dataset_dir=str(dataset_dir),
        train_examples=facts["train_examples"],
        validation_examples=facts["validation_examples"],
        steps=trainer.state.global_step,
        epochs=float(trainer.state.epoch or 0.0),
        train_loss=float(out.training_loss) if out.training_loss is not None else None,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        eval_loss=evals[-1] if evals else None,
        train_runtime_s=round(runtime, 3),
        train_tokens=tokens,
        tokens_per_s=round(tokens / runtime, 2) if runtime > 0 else 0.0,
        peak_rss_mb=round(peak_rss_mb(), 1),
        peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if torch.cuda.is_available()
        else None,
        device=facts["device"],
        dtype=facts["dtype"],
        config=cfg.model_dump(),
        versions=_versions(),
    )
    if trainer.is_world_process_zero():
        if ckpt_dir.exists():
            shutil.rmtree(ckpt_dir, ignore_errors=True)
        folder.write_result(res)
        folder.card_file.write_text(adapter_card(out_dir), encoding="utf-8")
    return res


if __name__ == "__main__":
    # ``python -m clca.training.train ARGS`` is ``clca train ARGS`` (one entry point, one set of options; the
    # module is run by name so that this layer does not import the CLI)
    import runpy

    sys.argv = ["clca", "train", *sys.argv[1:]]
    runpy.run_module("clca", run_name="__main__", alter_sys=True)
