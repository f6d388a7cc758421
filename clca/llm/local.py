"""Local transformers backend: batched chat generation and prefix-shared option scoring.

Precision: fp32 on CPU (bf16 is faster only on a CPU that computes it natively, with AVX-512-BF16 or AMX, and
1.4-7x slower on others: bench/RESULTS.md), bf16 on CUDA (fp16 when the GPU has no bf16). The model is in eval mode and every call runs under ``torch.inference_mode``. A spec's
``+quant=bf16`` generates on a bfloat16 copy of the weights; ``+quant=auto`` does so only where the device computes
bf16 natively (:mod:`clca.llm.hardware`), and the backend says what it chose and why (``quant_choice``,
``quant_reason``, :meth:`LocalBackend.manifest_info`).

Generation
    Chats are rendered with the tokenizer's chat template (``add_generation_prompt=True``), sorted by length
    (less padding) and split into micro-batches of ``batch_size``. Engine ``clca`` (default, for models with a
    plain full-attention KV cache): :mod:`clca.llm.decode` -- prompt KV states are kept in a bounded LRU
    (``prefix_cache_mb``) and reused by longest common token prefix, identical prompts of a call are prefilled
    once, decoding runs over a static cache, and each row samples with its own generator (seeded from the row's
    seed and ``params.seed``), so its output does not depend on its batch-mates. Engine ``hf`` (and any model
    the engine does not support): left-padded ``model.generate``, seeded per micro-batch from its first seed.
    Greedy when ``temperature == 0``, else ``temperature``/``top_p`` sampling; decoded text is cut at the
    first stop string.

Scoring (``score``)
    The quantity is log P(the reply gives option k) (:mod:`clca.llm.base`): the option's tokens at the start of
    the reply, times the probability that the next token does not continue the option (no digit after a
    number; the full next-token distribution is summed over the tokens that would continue it). Prompt and
    prompt + option are tokenised separately; the option's tokens start where the two token sequences first
    differ (so a BPE merge across the prompt/option boundary is scored as part of the option). Exact: the
    whole vocabulary is seen (``uncovered`` = 0).

    The shared context of a question (all tokens common to its options, minus the last one) is run ONCE for a
    micro-batch of questions (left padding, ``position_ids`` from the mask, ``logits_to_keep=1``); its KV cache
    is then gathered to one row per option and all options of all questions in the micro-batch run in one
    batched forward pass (right padding, positions continuing each row's own context length, the attention
    mask = context mask ++ option mask). Only option positions produce logits. :meth:`score_naive` is the
    reference (lm-eval-harness style: one full sequence per option, no prefix sharing, logits everywhere).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clca.errors import ModelError
from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult, continues, gives
from clca.llm.chat_template import end_of_turn_id, render_prompt
from clca.llm.hardware import Hardware, probe, resolve_gen_quant, warn_slow_bf16
from clca.manifest import sha256_file

log = logging.getLogger(__name__)


def pick_device(device: str | None) -> str:
    """``device`` if given, else ``cuda`` when available, else ``cpu``."""
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str | None) -> Any:
    """fp32 on CPU, bf16 on CUDA (fp16 if the GPU lacks bf16); an explicit ``dtype`` name wins."""
    import torch

    if dtype:
        try:
            dt = getattr(torch, dtype)
        except AttributeError:
            raise ModelError(f"unknown dtype {dtype!r}.", fix="use float32, bfloat16 or float16.") from None
        if not isinstance(dt, torch.dtype):
            raise ModelError(f"unknown dtype {dtype!r}.", fix="use float32, bfloat16 or float16.")
        return dt
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


@dataclass
class _Prepared:
    """One score request, tokenised: the full ids per option and where its scored tokens start."""

    options: list[str]
    full: list[list[int]]  # prompt + answer_prefix + option, per option
    starts: list[int]  # index of the first scored token, per option
    ctx_len: int  # tokens shared by all options that go into the cached context pass (>= 1)


class LocalBackend(Backend):
    """A transformers causal LM (optionally with a PEFT adapter) on CPU or one GPU."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        spec: str,
        identity: str,
        adapter: str | Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        score_batch_size: int | None = None,
        engine: str = "clca",
        prefix_cache_mb: float = 4096,
        quant: str | None = None,
        hardware: Hardware | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = spec
        self.model_dir = Path(model_dir)
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        self.batch_size = max(1, int(batch_size))
        #: sequences per option-scoring pass (options of several questions share it)
        self.score_batch_size = max(1, int(score_batch_size or 4 * self.batch_size))
        adapter_dir = Path(adapter).expanduser() if adapter is not None else None
        weights = adapter_dir / "adapter_model.safetensors" if adapter_dir is not None else None
        if (
            adapter_dir is not None
            and weights is not None
            and (not (adapter_dir / "adapter_config.json").exists() or not weights.exists())
        ):
            raise ModelError(
                f"adapter folder {adapter_dir} has no adapter_config.json + adapter_model.safetensors.",
                fix="point +adapter= at a folder written by `clca train` (PEFT save_pretrained).",
            )
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(self.model_dir))
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model: Any = AutoModelForCausalLM.from_pretrained(str(self.model_dir), dtype=self.dtype)
        adapter_part = ""
        if adapter_dir is not None and weights is not None:
            model, tok = attach_adapter(model, adapter_dir)
            if tok is not None:
                self.tokenizer = tok
            adapter_part = f"|adapter={adapter_dir.resolve()}#{sha256_file(weights)[:16]}"
        self.model: Any = model.to(self.device).eval()
        own_dtype = str(self.dtype).removeprefix("torch.")
        #: what the device computes natively (probed only for a spec with ``+quant=``; ``hardware=`` fakes it)
        self.hardware: Hardware | None = None
        #: the generation weight format the spec's ``+quant=`` came to on this device (``auto``: ``bf16`` where
        #: bf16 is native, else None = the model's own dtype), and why; None and "" without ``+quant=``
        self.quant_choice: str | None = None
        self.quant_reason = ""
        if quant is not None:
            self.hardware = hardware if hardware is not None else probe(self.device)
            self.quant_choice, self.quant_reason = resolve_gen_quant(quant, self.hardware, own_dtype)
            if quant == "bf16":
                warn_slow_bf16(self.hardware)
            if self.quant_choice == "bf16" and own_dtype == "bfloat16":
                self.quant_reason += f" (the model already runs in {own_dtype}: no copy)"
        #: the weights generation runs on: the model itself, or a bf16 copy (the spec's ``+quant=bf16``, or
        #: ``+quant=auto`` on a device with native bf16); scoring always uses ``self.model``
        self.gen_model: Any = self.model
        if self.quant_choice is not None and not (
            self.quant_choice == "bf16" and str(self.dtype) == "torch.bfloat16"
        ):
            self.gen_model = generation_copy(self.model, self.quant_choice)
        #: the generation weight format when it differs from the model's own (part of the generation fingerprint:
        #: ``+quant=auto`` gets the fingerprint of the spec it resolved to, so the call cache never mixes formats)
        self.quant = self.quant_choice if self.gen_model is not self.model else None
        self._fingerprint = f"{identity}{adapter_part}|dtype={str(self.dtype).removeprefix('torch.')}"
        self._fingerprint += f"|dev={self.device.split(':')[0]}"
        #: the token that closes an assistant turn (generation stops on it)
        self.end_id = end_of_turn_id(self.tokenizer, self.spec)
        self._masks: dict[tuple[str, int], Any] = {}
        #: option scoring's work (requests, and the tokens run through the model: shared contexts and options)
        self.score_counts: Counter[str] = Counter()
        if engine not in ("clca", "hf"):
            raise ModelError(f"unknown generation engine {engine!r}.", fix="use engine=clca or engine=hf.")
        from clca.llm.decode import DecodeEngine, supports_engine

        #: the batched decoding engine (None: ``model.generate`` is used)
        self.engine: DecodeEngine | None = None
        if engine == "clca" and supports_engine(self.model):
            self.engine = DecodeEngine(
                self.gen_model,
                self.tokenizer,
                device=self.device,
                pad_id=int(self.tokenizer.pad_token_id),
                eos_ids=sorted({self.end_id, *self._eos_ids()}),
                prefix_cache_bytes=int(prefix_cache_mb * 2**20),
            )

    # ------------------------------------------------------------------ basics
    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def generation_fingerprint(self) -> str:
        # the two engines sample differently (per-row vs per-batch generators): separate cache entries
        quant = f"|quant={self.quant}" if self.quant is not None else ""
        return self._fingerprint + ("|gen=clca1" if self.engine is not None else "|gen=hf") + quant

    def manifest_info(self) -> dict[str, str]:
        """For a spec with ``+quant=``: the format generation runs in (``bf16``, or ``none``: the model's own
        dtype), why, and the device probed; nothing for other specs (their manifest entries stay as they were)."""
        if self.hardware is None:
            return {}
        return {
            "quant": self.quant_choice or "none",
            "quant_reason": self.quant_reason,
            "hardware": self.hardware.describe(),
        }

    def usage(self) -> dict[str, int]:
        """The work done so far: the decoding engine's token counts and times (``engine.*``: prompt, prefilled
        and generated tokens, decode steps, rows and attended KV positions; milliseconds in prefill, cache
        setup and decode; only once the engine has run) and option scoring's (``score.*``: requests, context and
        option tokens run; only those above zero). Generation through ``engine=hf`` is not counted."""
        out: dict[str, int] = {}
        if self.engine is not None and self.engine.stats.prompt_tokens:
            st = self.engine.stats
            for name in (
                "prompt_tokens",
                "prefilled_tokens",
                "generated_tokens",
                "decode_steps",
                "decode_rows",
            ):
                out[f"engine.{name}"] = int(getattr(st, name))
            out["engine.decode_kv_positions"] = int(st.decode_kv_positions)
            for name in ("prefill", "setup", "decode"):
                out[f"engine.{name}_ms"] = round(getattr(st, f"{name}_s") * 1000)
        out.update({f"score.{k}": v for k, v in self.score_counts.items() if v})
        return out

    def render(self, chat: Chat) -> str:
        """The prompt text of a chat, ending where the assistant's reply starts."""
        try:
            return render_prompt(self.tokenizer, chat)
        except Exception as exc:
            raise ModelError(
                f"model {self.spec} cannot render a chat ({exc}).",
                fix="use an instruct/chat model whose tokenizer has a chat template.",
            ) from exc

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    # ---------------------------------------------------------------- generate
    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        import torch

        if not chats:
            return []
        encoded = [self._encode(self.render(c)) for c in chats]
        order = sorted(range(len(chats)), key=lambda i: len(encoded[i]))
        out: list[str] = [""] * len(chats)
        if self.engine is not None:
            row_seeds = [int(s) for s in seeds] if seeds is not None else [params.seed] * len(chats)
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                with torch.inference_mode():
                    new = self.engine.generate([encoded[i] for i in idx], params, [row_seeds[i] for i in idx])
                for i, toks in zip(idx, new, strict=True):
                    out[i] = cut_at_stop(self.tokenizer.decode(toks, skip_special_tokens=True), params.stop)
            return out
        pad = int(self.tokenizer.pad_token_id)
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                seq = encoded[i]
                ids[r, width - len(seq) :] = torch.tensor(seq)
                mask[r, width - len(seq) :] = 1
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "pad_token_id": pad,
                "eos_token_id": sorted({self.end_id, *self._eos_ids()}),
            }
            if params.temperature > 0:
                kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
                seed = seeds[idx[0]] if seeds is not None else params.seed
                torch.manual_seed(int(seed) + params.seed * 1_000_003)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if params.stop:
                kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
            with torch.inference_mode():
                gen = self.gen_model.generate(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs
                )
            new = gen[:, width:].cpu()
            for r, i in enumerate(idx):
                text = self.tokenizer.decode(new[r], skip_special_tokens=True)
                out[i] = cut_at_stop(text, params.stop)
        return out

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            return [] if self.tokenizer.eos_token_id is None else [int(self.tokenizer.eos_token_id)]
        return [int(e) for e in (eos if isinstance(eos, list) else [eos])]

    # ------------------------------------------------------------------- score
    def prepare(self, req: ScoreRequest) -> _Prepared:
        """Tokenise a request: full ids per option and the index of each option's first scored token."""
        prompt = self.render(req.messages) + req.answer_prefix
        p_ids = self._encode(prompt)
        full: list[list[int]] = []
        starts: list[int] = []
        for opt in req.options:
            f_ids = self._encode(prompt + opt)
            k = 0
            limit = min(len(p_ids), len(f_ids) - 1)
            while k < limit and p_ids[k] == f_ids[k]:
                k += 1
            full.append(f_ids)
            starts.append(k)
        ctx_len = min(starts)
        if ctx_len < 2:
            raise ModelError(
                f"model {self.spec}: the rendered prompt of a score request is shorter than 2 tokens.",
                fix="use a chat template that starts with a fixed marker.",
            )
        # the context pass covers tokens [0, ctx_len - 1); the option pass starts at ctx_len - 1 so that its
        # first position predicts token ctx_len.
        return _Prepared(options=list(req.options), full=full, starts=starts, ctx_len=ctx_len)

    def continuation_mask(self, option: str, size: int) -> Any:
        """Boolean mask over the vocabulary (``size`` logits) of the tokens that would continue ``option``."""
        import torch

        last = option[-1:]
        kind = "digit" if last and last in "0123456789" else ("alpha" if last.isalpha() else "")
        if not kind:
            return torch.zeros(size, dtype=torch.bool)
        key = (kind, size)
        if key not in self._masks:
            probe = "0" if kind == "digit" else "a"
            mask = torch.zeros(size, dtype=torch.bool)
            tok = self.tokenizer
            for i in range(min(size, len(tok))):
                text = tok.convert_tokens_to_string([tok.convert_ids_to_tokens(i)])
                mask[i] = continues(probe, text)
            self._masks[key] = mask
        return self._masks[key]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if not requests:
            return []
        prepared = [self.prepare(r) for r in requests]
        self.score_counts["requests"] += len(requests)
        order = sorted(range(len(requests)), key=lambda i: prepared[i].ctx_len)
        results: list[ScoreResult | None] = [None] * len(requests)
        group: list[int] = []
        n_seq = 0
        for i in order:
            n_opt = len(prepared[i].full)
            if group and (n_seq + n_opt > self.score_batch_size or len(group) >= self.batch_size):
                self._score_group(group, prepared, results)
                group, n_seq = [], 0
            group.append(i)
            n_seq += n_opt
        if group:
            self._score_group(group, prepared, results)
        return [r for r in results if r is not None]

    def _score_group(
        self, group: list[int], prepared: list[_Prepared], results: list[ScoreResult | None]
    ) -> None:
        import torch

        pad = int(self.tokenizer.pad_token_id)
        dev = self.device
        # 1) shared contexts, left padded, one pass
        ctx = [prepared[i].full[0][: prepared[i].ctx_len - 1] for i in group]
        self.score_counts["context_tokens"] += sum(len(c) for c in ctx)
        c_width = max(len(c) for c in ctx)
        c_ids = torch.full((len(group), c_width), pad, dtype=torch.long)
        c_mask = torch.zeros((len(group), c_width), dtype=torch.long)
        for r, c in enumerate(ctx):
            if c:
                c_ids[r, c_width - len(c) :] = torch.tensor(c)
                c_mask[r, c_width - len(c) :] = 1
        past = None
        with torch.inference_mode():
            if c_width > 0:
                c_pos = (c_mask.cumsum(-1) - 1).clamp(min=0)
                out = self.model(
                    input_ids=c_ids.to(dev),
                    attention_mask=c_mask.to(dev),
                    position_ids=c_pos.to(dev),
                    use_cache=True,
                    logits_to_keep=1,
                )
                past = out.cache
            # 2) all options of the group, right padded, over the gathered context cache
            rows: list[tuple[int, int]] = []  # (group row, option index)
            seqs: list[list[int]] = []
            for r, i in enumerate(group):
                p = prepared[i]
                for o, f in enumerate(p.full):
                    rows.append((r, o))
                    seqs.append(f[p.ctx_len - 1 :])
            o_width = max(len(s) for s in seqs)
            self.score_counts["option_tokens"] += sum(len(s) for s in seqs)
            o_ids = torch.full((len(seqs), o_width), pad, dtype=torch.long)
            o_mask = torch.zeros((len(seqs), o_width), dtype=torch.long)
            o_pos = torch.zeros((len(seqs), o_width), dtype=torch.long)
            for n, s in enumerate(seqs):
                r = rows[n][0]
                o_ids[n, : len(s)] = torch.tensor(s)
                o_mask[n, : len(s)] = 1
                base = len(ctx[r])
                o_pos[n] = torch.arange(base, base + o_width)
            gather = torch.tensor([r for r, _ in rows], dtype=torch.long)
            if past is not None:
                past.batch_select_indices(gather.to(dev))
                full_mask = torch.cat([c_mask[gather], o_mask], dim=1)
            else:
                full_mask = o_mask
            out = self.model(
                input_ids=o_ids.to(dev),
                attention_mask=full_mask.to(dev),
                position_ids=o_pos.to(dev),
                cache=past,
                use_cache=past is not None,
            )
            logp = torch.log_softmax(out.logits.float(), dim=-1).cpu()
        per_q: dict[int, tuple[list[float], list[int]]] = {r: ([], []) for r in range(len(group))}
        for n, s in enumerate(seqs):
            r, o = rows[n]
            p = prepared[group[r]]
            first = p.starts[o] - (p.ctx_len - 1)  # local index of the first scored token
            tgt = torch.tensor(s[first:])
            lp = logp[n, first - 1 : len(s) - 1].gather(-1, tgt.unsqueeze(-1)).sum()
            nxt = logp[n, len(s) - 1]  # the token after the option
            cont = float(nxt.exp()[self.continuation_mask(p.options[o], nxt.shape[-1])].sum())
            per_q[r][0].append(gives(float(lp), cont))
            per_q[r][1].append(len(s) - first)
        for r, i in enumerate(group):
            results[i] = ScoreResult(logprobs=per_q[r][0], n_tokens=per_q[r][1])

    def score_naive(
        self, requests: Sequence[ScoreRequest], batch_size: int | None = None
    ) -> list[ScoreResult]:
        """Reference scoring, lm-eval-harness style: one full sequence per option, no prefix sharing.

        Options of a request are batched (right padding), logits are computed at every position. Same
        quantity as :meth:`score`; used by the tests as the oracle and by ``bench/bench_scoring.py``.
        """
        import torch

        pad = int(self.tokenizer.pad_token_id)
        bs = batch_size or self.score_batch_size
        out: list[ScoreResult] = []
        for req in requests:
            p = self.prepare(req)
            lps: list[float] = []
            for b in range(0, len(p.full), bs):
                chunk = p.full[b : b + bs]
                width = max(len(f) for f in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for n, f in enumerate(chunk):
                    ids[n, : len(f)] = torch.tensor(f)
                    mask[n, : len(f)] = 1
                with torch.inference_mode():
                    logits = self.model(
                        input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
                    ).logits
                logp = torch.log_softmax(logits.float(), dim=-1).cpu()
                for n, f in enumerate(chunk):
                    st = p.starts[b + n]
                    tgt = torch.tensor(f[st:])
                    lp = float(logp[n, st - 1 : len(f) - 1].gather(-1, tgt.unsqueeze(-1)).sum())
                    nxt = logp[n, len(f) - 1]
                    cont = float(nxt.exp()[self.continuation_mask(p.options[b + n], nxt.shape[-1])].sum())
                    lps.append(gives(lp, cont))
            out.append(
                ScoreResult(
                    logprobs=lps, n_tokens=[len(f) - s for f, s in zip(p.full, p.starts, strict=True)]
                )
            )
        return out

    def close(self) -> None:
        import gc

        if self.engine is not None:  # it holds the model and the prefix store
            self.engine.store.clear()
            self.engine = None
        del self.model, self.gen_model
        gc.collect()


def generation_copy(model: Any, quant: str) -> Any:
    """A copy of ``model`` that generation runs on, in a faster weight format; scoring keeps ``model``.

    ``bf16``: every weight, activation and the KV cache in bfloat16 (on a CPU with AVX-512-BF16 or AMX, oneDNN's
    bf16 matrix kernels run 2-4x faster than fp32 and a decode step reads half the bytes), decode steps with
    :func:`clca.llm.decode.use_decode_attention`. An adapter is merged into the copy first. Speed and cost:
    ``bench/bench_formats.py`` and ``bench/bench_peer.py`` (bench/RESULTS.md)."""
    import copy

    import torch

    from clca.llm.spec import GEN_FORMATS, check_gen_quant

    check_gen_quant(quant, "the local backend", GEN_FORMATS)
    # normal tensors even when called under torch.inference_mode: bf16 weights made there as inference tensors
    # ran the survey scoring 1.7x slower (bench/bench_formats.py)
    with torch.inference_mode(False):
        dup = copy.deepcopy(model)
        if hasattr(dup, "merge_and_unload"):  # a PEFT model: fold the adapter into the weights
            dup = dup.merge_and_unload()
        dup = dup.to(torch.bfloat16).eval()
    if getattr(dup.config, "_attn_implementation", None) == "sdpa":
        from clca.llm.decode import use_decode_attention

        use_decode_attention(dup)  # decode steps as two matmuls: faster than SDPA's kernel in bf16 here
    return dup


def attach_adapter(model: Any, adapter_dir: Path) -> tuple[Any, Any]:
    """``model`` with the PEFT adapter of ``adapter_dir`` on top, and the adapter's tokenizer (or None).

    An adapter trained with tokens its base lacks (the paper preset adds a pad token to students without one,
    such as Llama and Mistral, and trains the embeddings and LM head) saves its tokenizer beside it: the base's
    embeddings are resized to that tokenizer first, as the paper's evaluation does, so the saved embedding and
    LM-head rows fit.
    """
    from peft import PeftModel

    tok = None
    if (adapter_dir / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(adapter_dir))
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        if len(tok) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tok))
    return PeftModel.from_pretrained(model, str(adapter_dir)), tok


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Truncate ``text`` at the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            pos = text.find(s)
            if pos != -1:
                cut = min(cut, pos)
    return text[:cut]
