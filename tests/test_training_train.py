"""Training on the real embedded SmolLM2: assistant-only masks, a tiny overfit run, save/reload, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from chat_templates import MISTRAL_LIKE
from test_training_mix import make_run_dir

from clca.llm.chat_template import CHATML_TRAINING_TEMPLATE, training_chat_template
from clca.training.config import MixConfig
from clca.training.mix import build_mix
from clca.training.presets import TrainConfig, preset
from clca.training.train import build_trainer

MODEL = "embedded:smollm2-135m"


@pytest.fixture(autouse=True)
def _one_torch_thread() -> object:
    """Train with one intra-op thread in these tests, restored afterwards.

    On the shared 2-core test machines (load ~8), two OpenMP threads spin-wait on each other and a training
    step took 5-10x longer than with one thread (measured: 4.7-9.4 vs 49-57 tokens/s), making the test time
    erratic. One thread keeps the slow tests within budget.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def labelled_spans(ids: list[int], labels: list[int]) -> list[list[int]]:
    """The contiguous runs of labelled positions (label != -100) as token ids; each label equals its token."""
    spans: list[list[int]] = []
    prev = False
    for tok_id, lab in zip(ids, labels, strict=True):
        on = lab != -100
        if on:
            assert lab == tok_id
            if not prev:
                spans.append([])
            spans[-1].append(tok_id)
        prev = on
    return spans


def _tiny_cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "max_steps": 8,
        "per_device_batch_size": 1,
        "grad_accum": 1,
        "max_length": 256,
        "learning_rate": 5e-3,
        "logging_steps": 1,
        "warmup_ratio": 0.0,
        "save_checkpoints": False,
        "eval_each_epoch": False,
    }
    base.update(kw)
    return preset("cpu", **base)


def test_chatml_training_template_matches_smollm2_template() -> None:
    """The marked template renders like SmolLM2's own (whenever a system message is present)."""
    from jinja2 import Template

    own = (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
        "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]
    marked = CHATML_TRAINING_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    for gen in (False, True):
        assert Template(own).render(messages=msgs, add_generation_prompt=gen) == Template(marked).render(
            messages=msgs, add_generation_prompt=gen
        )


@pytest.mark.slow
def test_only_assistant_tokens_carry_labels(tmp_path: Path) -> None:
    """Through the trainer's own dataset processing and collator, labels are set exactly on assistant replies."""
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=6))
    trainer, _ = build_trainer(mix.path, tmp_path / "out", _tiny_cfg(max_length=1024), progress=False)
    tok = trainer.processing_class
    assert training_chat_template(tok) is None  # the trainer installed the marked template
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    from datasets import load_from_disk

    rows = list(load_from_disk(str(mix.path))["train"])
    assert len(rows) == len(ds) == 6
    for row, labels, ids in zip(rows, batch["labels"], batch["input_ids"], strict=True):
        expected = [m["content"] + "<|im_end|>" for m in row["messages"] if m["role"] == "assistant"]
        spans = labelled_spans(ids.tolist(), labels.tolist())
        assert [tok.decode(s) for s in spans] == expected  # so no system/user token is labelled
        assert "<|im_start|>system" in tok.decode(ids)  # the sequence itself holds the whole conversation

    # our CPU loss path (LM head only on labelled positions) equals TRL's fused-head loss on the same batch
    small = trainer.data_collator([ds[0], ds[1]])
    trainer.model.eval()
    with torch.no_grad():
        trainer.sparse_lm_head = True
        ours = trainer.compute_loss(trainer.model, dict(small))
        trainer.sparse_lm_head = False
        trl_loss = trainer.compute_loss(trainer.model, dict(small))
    assert abs(float(ours) - float(trl_loss)) < 1e-4, (float(ours), float(trl_loss))


@pytest.mark.slow
def test_tiny_training_lowers_loss_and_reloads_identically(tmp_path: Path) -> None:
    """Overfit 2 examples for 8 steps: the adapter changes, the loss drops, save/reload gives equal logits."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=2, ablation="dialogue_only"))
    out = tmp_path / "adapter"
    trainer, facts = build_trainer(mix.path, out, _tiny_cfg(), progress=False)
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    assert before and all(float(p.abs().sum()) == 0.0 for p in before.values())  # LoRA B starts at zero
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.7 * (sum(losses[:2]) / 2), losses
    after = {n: p.detach() for n, p in model.named_parameters()}
    assert any(float((after[n] - p).abs().max()) > 1e-4 for n, p in before.items())
    trainer.save_model(str(out))
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()

    model.eval()
    text = trainer.processing_class.apply_chat_template(
        [{"role": "system", "content": "You are Li."}, {"role": "user", "content": "Hello, how are you?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = trainer.processing_class(text, return_tensors="pt").input_ids
    with torch.no_grad():
        trained_logits = model(input_ids=ids).logits
    base = AutoModelForCausalLM.from_pretrained(facts["base_model_path"], dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, str(out)).eval()
    with torch.no_grad():
        reloaded_logits = reloaded(input_ids=ids).logits
    torch.testing.assert_close(reloaded_logits, trained_logits, atol=1e-5, rtol=0)
    with torch.no_grad(), reloaded.disable_adapter():
        base_logits = reloaded(input_ids=ids).logits
    assert float((base_logits - trained_logits).abs().max()) > 1e-3  # the adapter does something


@pytest.mark.slow
def test_cli_mix_train_skip_and_load_backend(tmp_path: Path) -> None:
    """`clca mix` + `clca train` write the adapter, logs and result; a rerun skips; load_backend loads it."""
    from clca.cli import main
    from clca.llm.base import GenerationParams
    from clca.llm.cache import CallCache
    from clca.llm.registry import load_backend

    run = make_run_dir(tmp_path / "run")
    assert main(["mix", "--run", str(run.path), "--culture", "China", "--max-examples", "3"]) == 0
    args = ["train", "--run", str(run.path), "--culture", "China", "--model", MODEL, "--preset", "cpu"]
    args += ["--max-steps", "2", "--per-device-batch-size", "1", "--grad-accum", "1", "--max-length", "160"]
    assert main(args) == 0
    out = run.adapter_dir("China")
    res = json.loads((out / "train_result.json").read_text())
    assert res["steps"] == 2 and res["train_tokens"] > 0 and res["tokens_per_s"] > 0
    assert res["eval_loss"] is not None  # the validation split was evaluated
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("loss" in r and "tokens_per_s" in r and "peak_rss_mb" in r for r in log)
    assert any("eval_loss" in r for r in log)
    assert not (out / "checkpoints").exists()
    mtime = (out / "adapter_model.safetensors").stat().st_mtime
    assert main(args) == 0  # finished: skipped, not retrained
    assert (out / "adapter_model.safetensors").stat().st_mtime == mtime

    backend = load_backend(f"{MODEL}+adapter={out}", cache=CallCache(tmp_path / "c.sqlite"))
    texts = backend.generate(
        [[{"role": "user", "content": "Hello"}]], GenerationParams(max_new_tokens=4, temperature=0.0)
    )
    assert len(texts) == 1 and isinstance(texts[0], str)


@pytest.mark.slow
def test_interrupted_training_resumes_from_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the first epoch's checkpoint: the rerun resumes at step 2 instead of starting over."""
    from clca.training import train as train_mod

    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=2, ablation="dialogue_only"))
    out = tmp_path / "adapter"
    cfg = _tiny_cfg(max_steps=None, num_epochs=2, per_device_batch_size=2, save_checkpoints=True)
    orig = train_mod._callback_class

    def crashing() -> type:
        base = orig()

        class Crash(base):  # type: ignore[misc, valid-type]
            def on_step_begin(self, args: object, state: object, control: object, **kw: object) -> None:
                if getattr(state, "global_step", 0) == 1:
                    raise RuntimeError("simulated crash")

        return Crash

    monkeypatch.setattr(train_mod, "_callback_class", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_mod.train_adapter(mix.path, out, cfg, progress=False)
    assert (out / "checkpoints" / "checkpoint-1").is_dir() and not (out / "train_result.json").exists()
    monkeypatch.setattr(train_mod, "_callback_class", orig)
    res = train_mod.train_adapter(mix.path, out, cfg, progress=False)
    assert res.steps == 2 and not res.skipped
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    step_losses = [r["step"] for r in log if "loss" in r]
    assert step_losses == [1, 2]  # step 1 from the first run only, then the resumed step 2
    assert not (out / "checkpoints").exists()


def test_presets_and_4bit_needs_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paper preset values; overrides; a clear error for QLoRA without CUDA (before any model is loaded)."""
    from clca.errors import ClcaError
    from clca.training.train import train_adapter

    p = preset("paper")
    assert (p.lora_r, p.target_modules, p.learning_rate, p.num_epochs, p.per_device_batch_size) == (
        4,
        ["q_proj", "v_proj"],
        1e-4,
        3,
        8,
    )
    assert (p.lora_alpha, p.lora_dropout) == (0.1, 0.5)  # Table 14, as published
    assert p.modules_to_save == ["embed_tokens", "lm_head"] and p.load_in_4bit and p.max_length == 2048
    # the paper's per-family exceptions, unless overridden
    assert preset("paper", model="hf:Qwen/Qwen2.5-7B-Instruct").num_epochs == 1
    assert preset("paper", model="hf:mistralai/Mistral-7B-Instruct-v0.3").learning_rate == 5e-5
    assert preset("paper", model="hf:meta-llama/Llama-3.1-8B-Instruct").num_epochs == 3
    assert preset("paper", model="hf:Qwen/Qwen2.5-0.5B-Instruct", num_epochs=2).num_epochs == 2
    assert preset("cpu", model="hf:Qwen/Qwen2.5-0.5B-Instruct").num_epochs == 1.0  # only the paper preset
    c = preset("cpu", lora_r=16, learning_rate=None)
    assert c.lora_r == 16 and c.learning_rate == preset("cpu").learning_rate and c.lora_dropout == 0.0
    with pytest.raises(ClcaError, match="unknown training preset"):
        preset("fast")
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ClcaError, match=r"4-bit QLoRA needs a CUDA GPU.*--no-load-in-4bit"):
        train_adapter(mix.path, tmp_path / "a", preset("paper"))
    assert not (tmp_path / "a" / "train_result.json").exists()


def _tiny_llama_without_pad(path: Path) -> Path:
    """A randomly initialised Llama-architecture model and a byte-level BPE tokenizer with a ChatML template
    and no pad token, built here (no hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from tokenizers import decoders as tk_decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|im_start|>", "<|im_end|>", "<s>", "</s>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = tk_decoders.ByteLevel()
    corpus = [
        "Scenario: a teahouse in Suzhou. Hello Wei, shall we talk? Intent: to greet.",
        "system user assistant",
    ]
    tk.train_from_iterator(corpus * 20, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="<|im_end|>")
    tok.chat_template = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    assert tok.pad_token is None
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.mark.slow
def test_student_without_pad_token_round_trips(tmp_path: Path) -> None:
    """The paper preset on a student without a pad token (Llama-like): a pad token is added and the embeddings
    and LM head are trained; the adapter then evaluates through clca's local backend and loads in plain PEFT
    (base resized to the adapter's tokenizer) with the same logits."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clca.llm.base import GenerationParams, ScoreRequest
    from clca.llm.registry import load_backend
    from clca.training.train import train_adapter

    base = _tiny_llama_without_pad(tmp_path / "tiny-llama")
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=4))
    cfg = preset(
        "paper", model=f"hf:{base}", load_in_4bit=False, bf16=False, max_steps=2, per_device_batch_size=2,
        max_length=1024, gradient_checkpointing=False, save_checkpoints=False, eval_each_epoch=False,
    )  # fmt: skip
    out = tmp_path / "adapter"
    res = train_adapter(mix.path, out, cfg, progress=False)
    assert res.steps == 2
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["r"] == 4 and saved["lora_alpha"] == 0.1 and saved["lora_dropout"] == 0.5
    assert set(saved["target_modules"]) == {"q_proj", "v_proj"}
    assert set(saved["modules_to_save"]) == {"embed_tokens", "lm_head"}
    adapter_tok = AutoTokenizer.from_pretrained(str(out))
    assert (
        adapter_tok.pad_token is not None
        and len(adapter_tok) == len(AutoTokenizer.from_pretrained(str(base))) + 1
    )

    be = load_backend(f"hf:{base}+adapter={out}", cache=False, batch_size=2)
    chat = [{"role": "user", "content": "Hello Wei, shall we talk?"}]
    assert len(be.generate([chat], GenerationParams(max_new_tokens=3))) == 1
    scored = be.score([ScoreRequest(messages=chat, options=["1", "2"])])[0]
    assert len(scored.logprobs) == 2

    plain = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    plain.resize_token_embeddings(len(adapter_tok))
    plain = PeftModel.from_pretrained(plain, str(out)).eval()
    ids = adapter_tok("Hello Wei, shall we talk?", return_tensors="pt").input_ids
    with torch.inference_mode():
        ours = be.model(input_ids=ids).logits  # type: ignore[attr-defined]
        theirs = plain(input_ids=ids).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
    be.close()


def test_template_without_generation_markers_trains_on_assistant_tokens(tmp_path: Path) -> None:
    """A chat template no marked template matches (Mistral-like: the system prompt moved into the last user
    turn, contents trimmed): the assistant tokens are located in the rendered text, labels are set exactly on
    the replies and their end-of-turn marker, and training runs."""
    from transformers import AutoTokenizer

    from clca.training.train import train_adapter

    base = _tiny_llama_without_pad(tmp_path / "tiny")
    tok = AutoTokenizer.from_pretrained(str(base))
    tok.chat_template = MISTRAL_LIKE
    tok.save_pretrained(str(base))
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=6))
    cfg = _tiny_cfg(model=f"hf:{base}", max_length=2048, max_steps=2, per_device_batch_size=2)
    trainer, facts = build_trainer(mix.path, tmp_path / "out", cfg, progress=False)
    assert facts["assistant_masks"] == "rendered text"
    from datasets import load_from_disk

    rows = list(load_from_disk(str(mix.path))["train"])
    ds = trainer.train_dataset
    assert len(ds) == len(rows) == 6
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    for row, labels, ids in zip(rows, batch["labels"], batch["input_ids"], strict=True):
        decoded = [tok.decode(s).strip() for s in labelled_spans(ids.tolist(), labels.tolist())]
        assert decoded == [m["content"].strip() + "</s>" for m in row["messages"] if m["role"] == "assistant"]
        assert "[INST]" in tok.decode(ids)
    res = train_adapter(mix.path, tmp_path / "adapter", cfg, progress=False)
    assert res.steps == 2 and res.first_loss is not None


def _tiny_with_template(path: Path, template: str, *, tied: bool = False) -> Path:
    """The tiny Llama with another chat template (Mistral's BOS/EOS when it is an [INST] one), optionally with
    tied input embeddings and LM head (as Llama-3.2 1B/3B and Qwen2.5 0.5B/1.5B have)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = _tiny_llama_without_pad(path)
    tok = AutoTokenizer.from_pretrained(str(base))
    tok.chat_template = template
    if "[INST]" in template:
        tok.eos_token = "</s>"
    tok.save_pretrained(str(base))
    if tied:
        model = AutoModelForCausalLM.from_pretrained(str(base))
        model.config.tie_word_embeddings = True
        model.tie_weights()
        model.save_pretrained(str(base))
    return base


def _mistral_v03_template() -> str:
    fixture = Path(__file__).parent / "fixtures" / "mistral_7b_instruct_v0.3_chat_template.json"
    return str(json.loads(fixture.read_text())["chat_template"])


def test_mistral_student_trains_with_every_system_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A student with Mistral-7B-Instruct-v0.3's real template (fixture): its own template would drop the system
    prompt of every example, so training stops in one line naming the template; by default clca trains with the
    released CLCA code's Mistral template instead, every example keeps its system prompt, only the replies and
    their </s> are labelled, and the adapter saves that template (evaluation renders the same way)."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from clca.errors import ModelError
    from clca.llm.chat_template import CLCA_MISTRAL_TEMPLATE
    from clca.training import train as train_mod

    base = _tiny_with_template(tmp_path / "tiny", _mistral_v03_template())
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=6))
    cfg = _tiny_cfg(model=f"hf:{base}", max_length=2048, max_steps=1, per_device_batch_size=2)
    with monkeypatch.context() as m:  # the student's own template, as before the fix
        m.setattr(train_mod, "student_chat_template", lambda tok: None)
        with pytest.raises(ModelError, match=r"chat template of .*tiny drops the system prompt") as exc:
            build_trainer(mix.path, tmp_path / "out0", cfg, progress=False)
        assert len(str(exc.value).splitlines()) == 1

    trainer, facts = build_trainer(mix.path, tmp_path / "out", cfg, progress=False)
    assert facts["chat_template"] == "clca-mistral" and facts["assistant_masks"] == "rendered text"
    tok = trainer.processing_class
    rows = list(load_from_disk(str(mix.path))["train"])
    ds = trainer.train_dataset
    assert len(ds) == len(rows) == 6
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    for row, labels, ids in zip(rows, batch["labels"], batch["input_ids"], strict=True):
        text = tok.decode(ids)
        assert text.startswith("<s>" + row["messages"][0]["content"].strip())  # the system prompt first
        decoded = [tok.decode(s).strip() for s in labelled_spans(ids.tolist(), labels.tolist())]
        assert decoded == [m["content"].strip() + "</s>" for m in row["messages"] if m["role"] == "assistant"]
    res = train_mod.train_adapter(mix.path, tmp_path / "adapter", cfg, progress=False)
    assert res.steps == 1
    assert AutoTokenizer.from_pretrained(str(tmp_path / "adapter")).chat_template == CLCA_MISTRAL_TEMPLATE


def test_marked_template_that_drops_the_system_prompt_stops(tmp_path: Path) -> None:
    """The marker path (TRL renders the examples) checks the rendered text too."""
    from clca.errors import ModelError

    no_system = (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
        "{% generation %}{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
        "{% elif m['role'] == 'user' %}{{ '<|im_start|>user\\n' + m['content'] + '<|im_end|>\\n' }}{% endif %}"
        "{% endfor %}"
    )
    base = _tiny_with_template(tmp_path / "tiny", no_system)
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=3))
    with pytest.raises(ModelError, match="drops the system prompt of a training example"):
        build_trainer(
            mix.path, tmp_path / "out", _tiny_cfg(model=f"hf:{base}", max_length=1024), progress=False
        )


@pytest.mark.slow
@pytest.mark.parametrize("tie", [True, False])
def test_tied_student_trains_one_matrix_or_two_copies(tmp_path: Path, tie: bool) -> None:
    """`tie_trained_embeddings` on a student with tied embeddings and LM head (the paper preset, which adds a pad
    token and trains both fully): True keeps them one trained matrix; False (the paper preset: what the
    released code's PEFT did, peft#2777) trains two copies, which the saved adapter holds. Either way the
    adapter loads, through PEFT and through clca's local backend, with the trained model's logits."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clca.llm.registry import load_backend

    assert preset("paper").tie_trained_embeddings is False and preset("cpu").tie_trained_embeddings is True
    own = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    base = _tiny_with_template(tmp_path / "tiny", own, tied=True)
    run = make_run_dir(tmp_path / "run")
    mix = build_mix(run, "China", MixConfig(val_fraction=0.0, max_examples=4, ablation="dialogue_only"))
    cfg = preset(
        "paper", model=f"hf:{base}", load_in_4bit=False, bf16=False, max_steps=3, per_device_batch_size=2,
        max_length=1024, gradient_checkpointing=False, save_checkpoints=False, eval_each_epoch=False,
        learning_rate=1e-2, warmup_ratio=0.0, lora_dropout=0.0, tie_trained_embeddings=tie,
    )  # fmt: skip
    out = tmp_path / "adapter"
    trainer, _ = build_trainer(mix.path, out, cfg, progress=False)
    trainer.train()
    trainer.save_model(str(out))
    model = trainer.model.eval()
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert (emb.data_ptr() == head.data_ptr()) is tie
    assert torch.equal(emb, head) is tie  # two copies drift apart

    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["ensure_weight_tying"] is tie
    weights = load_file(str(out / "adapter_model.safetensors"))
    trained = [w for k, w in weights.items() if "lora" not in k and "original_module" not in k]
    distinct: list[torch.Tensor] = []
    for w in trained:
        if not any(torch.equal(w, d) for d in distinct):
            distinct.append(w)
    assert len(distinct) == (1 if tie else 2)  # one trained matrix, or the embeddings and the LM head apart

    tok = AutoTokenizer.from_pretrained(str(out))
    ids = tok("Hello Wei, shall we talk?", return_tensors="pt").input_ids
    with torch.no_grad():
        trained_logits = model(input_ids=ids).logits
    plain = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    plain.resize_token_embeddings(len(tok))
    reloaded = PeftModel.from_pretrained(plain, str(out)).eval()
    be = load_backend(f"hf:{base}+adapter={out}", cache=False)
    with torch.inference_mode():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, trained_logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(be.model(input_ids=ids).logits, trained_logits, atol=1e-5, rtol=0)  # type: ignore[attr-defined]
    be.close()


def test_an_adapter_trained_before_a_setting_existed_is_adopted(tmp_path: Path) -> None:
    """A finished adapter whose recorded config lacks a newer setting (tie_trained_embeddings) counts it at its
    default: adopted when the default is what is asked, refused otherwise."""
    from clca.errors import ClcaError
    from clca.records import TrainResult
    from clca.rundir import AdapterDir
    from clca.training.train import train_adapter

    cfg = preset("cpu", max_steps=3)
    old = {k: v for k, v in cfg.model_dump(mode="json").items() if k != "tie_trained_embeddings"}
    out = tmp_path / "adapter"
    out.mkdir()
    AdapterDir(out).write_result(
        TrainResult(
            adapter_dir=out, base_model=cfg.model, base_model_path="x", dataset_dir=str(tmp_path / "mix"),
            train_examples=1, validation_examples=0, steps=3, epochs=1.0, train_loss=None, first_loss=None,
            last_loss=None, eval_loss=None, train_runtime_s=1.0, train_tokens=1, tokens_per_s=1.0, peak_rss_mb=1.0,
            peak_gpu_mb=None, device="cpu", dtype="float32", config=old, versions={},
        )
    )  # fmt: skip
    assert train_adapter(tmp_path / "mix", out, cfg).skipped
    with pytest.raises(ClcaError, match=r"other settings \(tie_trained_embeddings: True there, False now\)"):
        train_adapter(tmp_path / "mix", out, preset("cpu", max_steps=3, tie_trained_embeddings=False))
