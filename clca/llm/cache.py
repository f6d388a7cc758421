"""A content-addressed SQLite cache of every LLM call.

The key is ``sha256(kind, backend fingerprint, parameters, input)``; the value is the JSON answer.
A rerun or a resumed run therefore never pays twice for the same call, and changing the model, an adapter,
a sampling parameter or a single character of the prompt is a miss. Safe for several processes (WAL mode).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from clca.errors import BatchError
from clca.llm.base import Backend, Chat, GenerationParams, ScoreRequest, ScoreResult
from clca.settings import call_cache_path


def cache_key(kind: str, fingerprint: str, params: object, payload: object) -> str:
    blob = json.dumps([kind, fingerprint, params, payload], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    """Key/value store of LLM answers in one SQLite file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else call_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                q = f"SELECT key, value FROM calls WHERE key IN ({','.join('?' * len(chunk))})"
                out.update(dict(self._db.execute(q, chunk).fetchall()))
        return out

    def put_many(self, items: dict[str, str]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO calls (key, value) VALUES (?, ?)", items.items())
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedBackend(Backend):
    """Wraps a backend so that every ``generate``/``score`` call is looked up in the cache first.

    Only the misses of a batch are sent to the inner backend, still as one batch.
    """

    def __init__(self, inner: Backend, cache: CallCache) -> None:
        self.inner = inner
        self.cache = cache
        self.spec = inner.spec
        self.hits = 0  # of this backend (the cache's own counters are shared by every backend using it)
        self.misses = 0

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def generation_fingerprint(self) -> str:
        return self.inner.generation_fingerprint

    def manifest_info(self) -> dict[str, str]:
        return self.inner.manifest_info()

    def _count(self, keys: list[str], found: dict[str, str]) -> list[int]:
        """The indices to compute: the first of each key not in the cache (a request repeated within one batch,
        such as a plain survey prompt asked for several countries, is computed once); counts hits and misses."""
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in found:
                first.setdefault(k, i)
        miss = list(first.values())
        hits = len(keys) - len(miss)
        self.cache.hits += hits
        self.cache.misses += len(miss)
        self.hits += hits
        self.misses += len(miss)
        return miss

    def generate(
        self, chats: Sequence[Chat], params: GenerationParams, seeds: Sequence[int] | None = None
    ) -> list[str]:
        p = params.model_dump(mode="json")
        item_seeds = list(seeds) if seeds is not None else [None] * len(chats)
        keys = [
            cache_key("generate", self.inner.generation_fingerprint, p, [list(c), sd])
            for c, sd in zip(chats, item_seeds, strict=True)
        ]
        found = self.cache.get_many(keys)
        miss = self._count(keys, found)
        if miss:
            miss_seeds = [item_seeds[i] for i in miss] if seeds is not None else None
            try:
                outs = self.inner.generate([chats[i] for i in miss], params, miss_seeds)  # type: ignore[arg-type]
            except BatchError as exc:  # keep the finished answers, then fail
                self.cache.put_many({keys[miss[j]]: json.dumps(o) for j, o in exc.done.items()})
                raise exc.error from None
            new = {keys[i]: json.dumps(o) for i, o in zip(miss, outs, strict=True)}
            self.cache.put_many(new)
            found.update(new)
        return [json.loads(found[k]) for k in keys]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        keys = [cache_key("score", self.fingerprint, None, r.model_dump(mode="json")) for r in requests]
        found = self.cache.get_many(keys)
        miss = self._count(keys, found)
        if miss:
            try:
                outs = self.inner.score([requests[i] for i in miss])
            except BatchError as exc:  # keep the finished answers, then fail
                done = {j: o for j, o in exc.done.items() if isinstance(o, ScoreResult)}
                self.cache.put_many({keys[miss[j]]: o.model_dump_json() for j, o in done.items()})
                raise exc.error from None
            new = {keys[i]: o.model_dump_json() for i, o in zip(miss, outs, strict=True)}
            self.cache.put_many(new)
            found.update(new)
        return [ScoreResult.model_validate_json(found[k]) for k in keys]

    def usage(self) -> dict[str, int]:
        return {"cache.hits": self.hits, "cache.misses": self.misses, **self.inner.usage()}

    def close(self) -> None:
        self.inner.close()
