"""clca's batched decoding engine for local models: prefix-KV reuse, shared-prompt dedup, static KV cache.

Why not ``model.generate`` alone: on a CPU, prefill is compute-bound and costs the same per row whether rows
are batched or not, so lock-step batching of long chat prompts (role-play: ~600-700 prompt tokens, <= 48 new
tokens) gains little unless the prompt is not recomputed. Role-play prompts are append-only per agent (the
fixed context is the system message, the history grows at the end), so almost all of an agent's prompt at its
next turn was already processed at its previous turn. This module keeps those KV states and decodes
efficiently:

1. **Prefix store** (:class:`PrefixStore`): an LRU of prompt KV caches (one ``[layers, 2, kv_heads, T, d]``
   tensor per prompt, bounded in bytes). A new prompt reuses the entry with the longest common token prefix;
   only the rest (at least one token) is run. The KV of token ``i`` depends only on tokens ``0..i``, so reuse
   is exact (up to float summation order).
2. **Shared-prompt dedup**: identical prompts in one call (the samples of a scenario at its first turn) are
   prefilled once.
3. **Prefill** of the unique prompts' new tokens, rows grouped by new-token count into passes of at most
   ``prefill_tokens`` padded tokens (on this 2-core CPU a 12.8k-token pass ran 672 tokens/s against 791–958
   for 3.2k-token passes, bench/bench_decode.py), each over a :class:`~transformers.DynamicCache` holding the
   rows' reused prefixes (layout ``[pad | reused | pad | new]``, attention mask and per-row
   ``position_ids``), ``logits_to_keep=1``.
4. **Decode** over a preallocated :class:`~transformers.StaticCache` (each row's prompt right-aligned, one
   column per step, no ``torch.cat`` of the whole cache every step; the static layers are filled in place),
   rows that finished are dropped from the batch (one ``index_select`` of the cache) once they are at least
   ``compact_at`` (half) of a batch of 4 or more rows (dropping them at a quarter saved 17 % of the decode
   row-steps but no time: finished rows cost little at these batch sizes; bench/bench_engine_ab.py).
5. **Decode-shaped matmuls as W·xᵀ** (:class:`WeightFirstLinear`): on a CPU, fp32 ``F.linear`` of a few rows
   (every linear layer of a decode step: one row per live sequence) runs 1.5–4× slower than the same product
   computed as ``(weight @ xᵀ)ᵀ`` (the BLAS picks a poor kernel for a short ``M``; bench/bench_roofline.py
   prints both). Decode steps of 2–8 rows on CPU fp32 weights compute it that way: a whole step ran 1.5× (SmolLM2)
   and 2.4× (Qwen2.5-0.5B) faster at 4 rows, about even at 8 and slower from 12 rows on
   (bench/bench_weight_first.py). The sums are the same products in another order (differences ~1e-6 relative,
   as between batch sizes); 1 row, more than 8 rows and prefill are untouched.
6. **Sampling per row**: greedy at temperature 0, else temperature + nucleus (top-p) sampling with one
   ``torch.Generator`` per row seeded from the row's seed and ``params.seed``, so a row's sample does not
   depend on which other rows share its batch. Stops at an end-of-turn/EOS token or a stop string.

Models whose cache is not plain full attention (sliding-window or hybrid layers, state-space models) are not
handled here; :class:`~clca.llm.local.LocalBackend` uses ``model.generate`` for them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from clca.llm.base import GenerationParams


@dataclass
class _Entry:
    ids: np.ndarray  # int64 token ids of the prompt
    kv: torch.Tensor  # [layers, 2, kv_heads, len(ids), head_dim]

    @property
    def nbytes(self) -> int:
        return int(self.kv.numel() * self.kv.element_size())


@dataclass
class PrefixStore:
    """LRU of prompt KV caches, looked up by longest common token prefix, bounded by ``budget_bytes``."""

    budget_bytes: int
    entries: OrderedDict[bytes, _Entry] = field(default_factory=OrderedDict)
    used_bytes: int = 0
    #: tokens served from the store / tokens looked up (for benchmarks and logs)
    hit_tokens: int = 0
    lookup_tokens: int = 0

    def lookup(self, ids: Sequence[int]) -> tuple[_Entry | None, int]:
        """The entry sharing the longest token prefix with ``ids`` and that prefix's length (0 if none)."""
        arr = np.asarray(ids, dtype=np.int64)
        best: tuple[_Entry | None, int] = (None, 0)
        best_key = b""
        for key, e in self.entries.items():
            m = min(len(arr), len(e.ids))
            if m <= best[1] or e.ids[0] != arr[0]:
                continue
            diff = np.flatnonzero(e.ids[:m] != arr[:m])
            n = int(diff[0]) if diff.size else m
            if n > best[1]:
                best, best_key = (e, n), key
        if best[0] is not None:
            self.entries.move_to_end(best_key)
        self.lookup_tokens += len(arr)
        self.hit_tokens += best[1]
        return best

    def add(self, ids: Sequence[int], kv: torch.Tensor) -> None:
        """Keep ``kv`` (the prompt's KV, ``[layers, 2, kv_heads, len(ids), d]``) for later prompts."""
        e = _Entry(np.asarray(ids, dtype=np.int64), kv)
        if self.budget_bytes <= 0 or e.nbytes > self.budget_bytes:
            return
        key = e.ids.tobytes()
        # an entry whose ids are a prefix of the new ids serves nothing the new one does not
        for k in [k for k, old in self.entries.items() if k == key or _is_prefix(old.ids, e.ids)]:
            self.used_bytes -= self.entries.pop(k).nbytes
        while self.entries and self.used_bytes + e.nbytes > self.budget_bytes:
            self.used_bytes -= self.entries.popitem(last=False)[1].nbytes
        self.entries[key] = e
        self.used_bytes += e.nbytes

    def clear(self) -> None:
        self.entries.clear()
        self.used_bytes = 0


def _is_prefix(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) <= len(b) and bool(np.array_equal(a, b[: len(a)]))


def supports_engine(model: Any) -> bool:
    """True when the model's KV cache is plain full attention in every layer (what this engine assumes)."""
    from transformers import StaticCache
    from transformers.cache_utils import StaticLayer

    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "is_encoder_decoder", False):
        return False
    try:
        cache = StaticCache(config=cfg, max_cache_len=8)
    except Exception:
        return False
    # the engine fills static layers in place (lazy_initialization, keys/values, cumulative_length)
    return (
        bool(cache.layers)
        and all(type(layer) is StaticLayer for layer in cache.layers)
        and hasattr(StaticLayer, "lazy_initialization")
        and hasattr(cache.layers[0], "cumulative_length")
    )


def _sample(
    logits: torch.Tensor, params: GenerationParams, gens: Sequence[torch.Generator | None]
) -> torch.Tensor:
    """Next token per row: argmax at temperature 0, else temperature + top-p sampling with each row's generator."""
    if params.temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sp, si = probs.sort(dim=-1, descending=True)
        before = sp.cumsum(dim=-1) - sp  # mass of the strictly more likely tokens
        sp = sp.masked_fill(before >= params.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, si, sp)
    out = torch.empty(probs.shape[0], dtype=torch.long)
    for r in range(probs.shape[0]):
        out[r] = torch.multinomial(probs[r], 1, generator=gens[r])[0]
    return out


#: rows of a decode step whose linear layers run as ``weight @ xᵀ`` (:class:`WeightFirstLinear`)
WEIGHT_FIRST_ROWS = (2, 8)


class WeightFirstLinear(TorchFunctionMode):
    """Inside this mode, ``F.linear`` of fp32 CPU tensors with ``rows`` (2–8) rows runs as ``(weight @ xᵀ)ᵀ``, made
    contiguous (a transposed view slows the next operations; see the module docstring, item 5); every other call
    is passed through unchanged. ``calls`` counts the rewritten ones."""

    def __init__(self, rows: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.rows = rows or WEIGHT_FIRST_ROWS
        self.calls = 0

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.linear and len(args) >= 2:
            x, w = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            n = x.numel() // x.shape[-1] if x.dim() >= 1 and x.shape[-1] else 0
            if (
                self.rows[0] <= n <= self.rows[1]
                and x.dtype == w.dtype == torch.float32
                and x.device.type == w.device.type == "cpu"
                and w.dim() == 2
            ):
                self.calls += 1
                y = torch.mm(w, x.reshape(n, x.shape[-1]).T).T.contiguous().reshape(*x.shape[:-1], w.shape[0])
                return y + bias if bias is not None else y
        return func(*args, **kwargs)


def weight_first_applies(model: Any, device: str) -> bool:
    """True where :class:`WeightFirstLinear` is used for decode steps: a CPU and fp32 weights."""
    try:
        dtype = next(model.parameters()).dtype
    except (StopIteration, AttributeError):
        return False
    return device == "cpu" and dtype == torch.float32


@dataclass
class EngineStats:
    """Token counts of the engine's work (summed over calls)."""

    prompt_tokens: int = 0  # prompt tokens of all rows
    prefilled_tokens: int = 0  # prompt tokens actually run through the model (after reuse and dedup)
    generated_tokens: int = 0
    decode_steps: int = 0
    decode_rows: int = 0  # rows summed over decode steps (finished rows still in the batch included)
    #: positions attended, summed over decode steps and their rows: each row's real context (prompt + tokens so
    #: far, padding excluded); what a decode step must read of the KV cache at the least (bench_roofline)
    decode_kv_positions: int = 0
    prefill_s: float = 0.0  # wall seconds in prefill (incl. prefix lookup and storing)
    setup_s: float = 0.0  # building the decode cache
    decode_s: float = 0.0  # decode steps and sampling


class DecodeEngine:
    """Batched generation for one local causal LM (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: str,
        pad_id: int,
        eos_ids: Sequence[int],
        prefix_cache_bytes: int,
        prefill_tokens: int = 3072,
        compact_at: float = 0.5,
        weight_first: bool | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.pad_id = int(pad_id)
        self.eos_ids = {int(e) for e in eos_ids}
        self.store = PrefixStore(int(prefix_cache_bytes))
        #: padded new tokens per prefill pass
        self.prefill_tokens = max(1, int(prefill_tokens))
        #: drop finished rows from a decode batch of >= 4 rows once they are at least this share of it (>1: never)
        self.compact_at = float(compact_at)
        #: decode steps compute their linear layers as ``weight @ xᵀ`` (None: where it applies, CPU + fp32)
        self.weight_first = (
            weight_first_applies(model, device) if weight_first is None else bool(weight_first)
        )
        self.stats = EngineStats()

    # ------------------------------------------------------------------ prefill
    def _prefill(self, prompts: list[list[int]]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the unique ``prompts`` (reusing stored prefixes); last-position logits and each prompt's KV.

        Rows are grouped by the length of their un-cached part into passes of at most ``prefill_tokens``
        padded tokens: on a CPU large passes are slower per token (bench/bench_decode.py).
        """
        reuse: list[tuple[_Entry | None, int]] = []
        for ids in prompts:
            entry, lcp = self.store.lookup(ids) if self.store.budget_bytes > 0 else (None, 0)
            reuse.append((entry, min(lcp, len(ids) - 1)))
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) - reuse[i][1])
        logits: list[torch.Tensor | None] = [None] * len(prompts)
        kvs: list[torch.Tensor | None] = [None] * len(prompts)
        group: list[int] = []
        for i in [*order, -1]:
            if i >= 0:
                need = len(prompts[i]) - reuse[i][1]  # sorted: the newcomer is the widest
                if not group or (len(group) + 1) * need <= self.prefill_tokens:
                    group.append(i)
                    continue
            lg, kv = self._prefill_pass([prompts[j] for j in group], [reuse[j] for j in group])
            for n, j in enumerate(group):
                logits[j], kvs[j] = lg[n], kv[n]
            group = [i]
        return torch.stack([x for x in logits if x is not None]), [x for x in kvs if x is not None]

    def _prefill_pass(
        self, prompts: list[list[int]], reuse: list[tuple[_Entry | None, int]]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        from transformers import DynamicCache

        n = len(prompts)
        width_p = max(c for _, c in reuse)
        width_s = max(len(ids) - c for ids, (_, c) in zip(prompts, reuse, strict=True))
        cache = DynamicCache()
        if width_p > 0:
            ref = next(e for e, c in reuse if e is not None and c > 0).kv
            n_layers, _, heads, _, dim = ref.shape
            past = torch.zeros((n_layers, 2, n, heads, width_p, dim), dtype=ref.dtype, device=ref.device)
            for r, (e, c) in enumerate(reuse):
                if e is not None and c > 0:
                    past[:, :, r, :, width_p - c :] = e.kv[:, :, :, :c]
            for layer in range(n_layers):
                cache.update(past[layer, 0], past[layer, 1], layer)
        ids_t = torch.full((n, width_s), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width_p + width_s), dtype=torch.long)
        pos = torch.zeros((n, width_s), dtype=torch.long)
        for r, (ids, (_, c)) in enumerate(zip(prompts, reuse, strict=True)):
            k = len(ids) - c
            ids_t[r, width_s - k :] = torch.tensor(ids[c:])
            mask[r, width_p - c : width_p] = 1
            mask[r, width_p + width_s - k :] = 1
            pos[r, width_s - k :] = torch.arange(c, len(ids))
        self.stats.prefilled_tokens += sum(len(ids) - c for ids, (_, c) in zip(prompts, reuse, strict=True))
        out = self.model(
            input_ids=ids_t.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=pos.to(self.device),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1].float().cpu()
        kvs: list[torch.Tensor] = []
        layers: list[Any] = list(
            out.cache.layers if getattr(out, "cache", None) is not None else cache.layers
        )
        first = layers[0].keys
        for r, (ids, (_, c)) in enumerate(zip(prompts, reuse, strict=True)):
            k = len(ids) - c
            kv = torch.empty(
                (len(layers), 2, first.shape[1], len(ids), first.shape[-1]),
                dtype=first.dtype,
                device=first.device,
            )
            for li, layer in enumerate(layers):
                for j, t in enumerate((layer.keys, layer.values)):
                    kv[li, j, :, :c] = t[r, :, width_p - c : width_p]
                    kv[li, j, :, c:] = t[r, :, width_p + width_s - k :]
            kvs.append(kv)
            if self.store.budget_bytes > 0:
                self.store.add(ids, kv)
        return logits, kvs

    # ------------------------------------------------------------------- decode
    def generate(
        self, prompts: Sequence[Sequence[int]], params: GenerationParams, seeds: Sequence[int]
    ) -> list[list[int]]:
        """New token ids per prompt (end token and anything after a stop string excluded by the caller)."""
        from transformers import StaticCache

        rows = [list(p) for p in prompts]
        if not rows:
            return []
        uniq: dict[tuple[int, ...], int] = {}
        row_u = [uniq.setdefault(tuple(ids), len(uniq)) for ids in rows]
        u_prompts = [list(k) for k in uniq]
        self.stats.prompt_tokens += sum(len(r) for r in rows)
        t0 = time.perf_counter()
        logits_u, kv_u = self._prefill(u_prompts)
        t1 = time.perf_counter()
        self.stats.prefill_s += t1 - t0

        b = len(rows)
        lens = torch.tensor([len(r) for r in rows])
        width = int(lens.max())
        total = width + params.max_new_tokens
        static = StaticCache(config=self.model.config, max_cache_len=total)
        ref = kv_u[0]
        proto = torch.empty((b, ref.shape[2], 0, ref.shape[-1]), dtype=ref.dtype, device=ref.device)
        static_layers: list[Any] = list(static.layers)
        for li, layer in enumerate(static_layers):
            layer.lazy_initialization(proto, proto)  # zero-filled [b, kv_heads, total, d], written in place
            keys, values = layer.keys, layer.values
            for r in range(b):
                e = kv_u[row_u[r]]
                keys[r, :, width - len(rows[r]) : width] = e[li, 0]
                values[r, :, width - len(rows[r]) : width] = e[li, 1]
            layer.cumulative_length.fill_(width)
        del kv_u
        mask = torch.zeros((b, total), dtype=torch.long)
        for r in range(b):
            mask[r, width - len(rows[r]) : width] = 1
        t2 = time.perf_counter()
        self.stats.setup_s += t2 - t1

        gens: list[torch.Generator | None] = []
        for s in seeds:
            if params.temperature > 0:
                g = torch.Generator().manual_seed(int(s) + params.seed * 1_000_003)
                gens.append(g)
            else:
                gens.append(None)
        new: list[list[int]] = [[] for _ in rows]
        done = [False] * b
        alive = list(range(b))  # original row index of each batch row
        tok = _sample(logits_u[torch.tensor(row_u)], params, gens)
        step = 0
        while True:
            keep: list[int] = []
            for j, r in enumerate(alive):
                if done[r]:
                    continue
                t = int(tok[j])
                if t in self.eos_ids:
                    done[r] = True
                    continue
                new[r].append(t)
                if params.stop and _hits_stop(self.tokenizer, new[r], params.stop):
                    done[r] = True
                    continue
                keep.append(j)
            step += 1
            if not keep or step >= params.max_new_tokens:
                break
            finished = len(alive) - len(keep)
            if len(alive) >= 4 and finished >= self.compact_at * len(alive):  # drop finished rows
                idx = torch.tensor(keep)
                dev_idx = idx.to(self.device)
                for layer in static_layers:
                    layer.keys = layer.keys.index_select(0, dev_idx)
                    layer.values = layer.values.index_select(0, dev_idx)
                    layer.batch_size = len(keep)
                alive = [alive[j] for j in keep]
                mask, lens, tok = mask[idx], lens[idx], tok[idx]
                gens = [gens[j] for j in keep]
            col = width + step - 1
            mask[:, col] = 1
            lo, hi = (
                WEIGHT_FIRST_ROWS  # the mode itself costs ~7 ms per SmolLM2 step: entered only where it pays
            )
            with WeightFirstLinear() if self.weight_first and lo <= len(alive) <= hi else nullcontext():
                out = self.model(
                    input_ids=tok.view(-1, 1).to(self.device),
                    attention_mask=mask[:, : col + 1].to(self.device),
                    position_ids=(lens + step - 1).view(-1, 1).to(self.device),
                    cache=static,
                    use_cache=True,
                )
            self.stats.decode_steps += 1
            self.stats.decode_rows += len(alive)
            self.stats.decode_kv_positions += int(lens.sum()) + step * len(alive)
            tok = _sample(out.logits[:, -1].float().cpu(), params, gens)
        self.stats.generated_tokens += sum(len(x) for x in new)
        self.stats.decode_s += time.perf_counter() - t2
        return new


#: the attention implementation :func:`use_decode_attention` registers with transformers
DECODE_ATTENTION = "clca_decode_sdpa"


def _decode_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention for one new token per row as two matrix products (the query heads that share a key/value head
    side by side, softmax in fp32); longer queries (prefill) go to transformers' SDPA. PyTorch's SDPA kernel is
    slower than this for bf16 decode steps on a CPU (``bench/bench_formats.py``, bench/RESULTS.md)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    b, heads, q_len, dim = query.shape
    if q_len != 1 or dropout:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    kv_heads = key.shape[1]
    q = query.reshape(b, kv_heads, heads // kv_heads, dim)  # query head h uses key/value head h // groups
    scores = torch.matmul(q, key.transpose(-1, -2)).float() * (dim**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        mask = attention_mask[:, :, -1:, : key.shape[2]]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    out = torch.matmul(scores.softmax(dim=-1).to(value.dtype), value)  # [b, kv_heads, groups, dim]
    return out.reshape(b, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_decode_attention(model: Any) -> None:
    """Switch ``model`` (a transformers causal LM using SDPA) to :func:`_decode_attention` for decode steps."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(DECODE_ATTENTION, _decode_attention)
    AttentionMaskInterface.register(DECODE_ATTENTION, sdpa_mask)
    model.set_attn_implementation(DECODE_ATTENTION)


def _hits_stop(tokenizer: Any, ids: list[int], stop: Sequence[str]) -> bool:
    """Whether the text of ``ids`` contains a stop string. Checked after every token, so a stop string can
    only newly appear at the end: decoding the last 32 tokens is enough for stop strings shorter than that."""
    text = tokenizer.decode(ids[-32:], skip_special_tokens=True)
    return any(s and s in text for s in stop)
