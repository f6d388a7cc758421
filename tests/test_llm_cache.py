"""The content-addressed call cache: hits, misses, invalidation; only misses reach the inner backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from clca.llm.base import GenerationParams, Message, ScoreRequest
from clca.llm.cache import CachedBackend, CallCache
from clca.llm.testing import ScriptedBackend


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def Scripted(fingerprint: str = "scripted-v1") -> ScriptedBackend:
    """Answers deterministically from its input (and records every batch it receives)."""
    return ScriptedBackend(
        lambda chat, seed: f"{fingerprint}:{chat[-1]['content']}:{seed}",
        fingerprint=fingerprint,
        score_fn=lambda r: [-float(len(o)) for o in r.options],
    )


def gen_batches(b: ScriptedBackend) -> list[list[tuple[str, int | None]]]:
    return [
        [(chat[-1]["content"], c.seeds[i] if c.seeds is not None else None) for i, chat in enumerate(c.chats)]
        for c in b.calls
    ]


def test_generate_hits_misses_and_batched_misses(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    inner = Scripted()
    b = CachedBackend(inner, cache)
    p = GenerationParams(max_new_tokens=8)
    first = b.generate([[_user("a")], [_user("b")]], p)
    assert first == ["scripted-v1:a:0", "scripted-v1:b:0"]
    assert (cache.hits, cache.misses) == (0, 2)
    again = b.generate([[_user("a")], [_user("c")], [_user("b")], [_user("d")]], p)
    assert again[0] == first[0] and again[2] == first[1]
    assert gen_batches(inner)[-1] == [("c", None), ("d", None)]  # only the misses, as one batch
    assert (cache.hits, cache.misses) == (2, 4)


def test_invalidation_by_params_seed_messages_and_fingerprint(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    inner = Scripted()
    b = CachedBackend(inner, cache)
    chat = [_user("a")]
    p = GenerationParams()
    b.generate([chat], p, seeds=[1])
    n = len(gen_batches(inner))
    b.generate([chat], p, seeds=[1])
    assert len(gen_batches(inner)) == n  # hit
    b.generate([chat], p, seeds=[2])  # other seed
    b.generate([chat], GenerationParams(temperature=0.5), seeds=[1])  # other params
    b.generate([[_user("a ")]], p, seeds=[1])  # other message (one character)
    b.generate([[{"role": "system", "content": "x"}, _user("a")]], p, seeds=[1])
    assert len(gen_batches(inner)) == n + 4
    other = CachedBackend(Scripted("scripted-v2"), cache)  # other model/adapter fingerprint
    assert other.generate([chat], p, seeds=[1]) == ["scripted-v2:a:1"]


def test_score_cache_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    inner = Scripted()
    b = CachedBackend(inner, CallCache(path))
    reqs = [
        ScoreRequest(messages=[_user("q")], options=["1", "10"]),
        ScoreRequest(messages=[_user("r")], options=["a"]),
    ]
    res = b.score(reqs)
    assert res[0].logprobs == [-1.0, -2.0]
    b.score([*reqs, ScoreRequest(messages=[_user("q")], options=["1", "10"], answer_prefix="A: ")])
    assert [len(c) for c in inner.score_calls] == [2, 1]
    # a new process (new CallCache on the same file) sees the stored answers
    inner2 = Scripted()
    b2 = CachedBackend(inner2, CallCache(path))
    assert b2.score(reqs) == res and inner2.score_calls == []
    assert b2.generate([[_user("z")]], GenerationParams()) == ["scripted-v1:z:0"]


def test_default_call_cache_is_node_local_under_slurm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite over NFS/Lustre is unsafe with writers on several nodes: under SLURM the default call cache is a
    node-local file; CLCA_CALL_CACHE names another; outside SLURM it is <cache>/llm_cache.sqlite."""
    import os

    from clca.settings import cache_root, call_cache_path

    monkeypatch.delenv("CLCA_CALL_CACHE", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert call_cache_path() == cache_root() / "llm_cache.sqlite"
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv("SLURM_TMPDIR", str(tmp_path / "node"))
    user = os.environ.get("USER") or os.getuid()
    assert call_cache_path() == tmp_path / "node" / f"clca-{user}" / "llm_cache.sqlite"
    assert CallCache().path == call_cache_path()
    monkeypatch.setenv("CLCA_CALL_CACHE", str(tmp_path / "mine.sqlite"))
    assert call_cache_path() == tmp_path / "mine.sqlite"
