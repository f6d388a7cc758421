"""Run directories and resumable, append-only JSONL stores.

A stage writes one pydantic record per line and flushes after every append, so a killed process loses at
most the record being written. On reopening, a torn last line (no trailing newline) is truncated away, and
``ids()`` tells the stage which records to skip. Records with an id already present are never appended twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from clca.errors import DataError

T = TypeVar("T", bound=BaseModel)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(record)"
    return f"{loc}: {err.get('msg', 'invalid')}"


class JsonlStore(Generic[T]):
    """An append-only JSONL file of ``model`` records keyed by their ``id`` attribute (or ``key``)."""

    def __init__(self, path: str | Path, model: type[T], key: str = "id") -> None:
        self.path = Path(path)
        self.model = model
        self.key = key
        self._ids: set[str] | None = None

    def _repair_tail(self) -> None:
        """Drop a partial last line left by a crash mid-write."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            cut = fh.read().rfind(b"\n") + 1
            fh.truncate(cut)

    def read(self) -> Iterator[T]:
        """Yield every record; a malformed line raises a one-line :class:`DataError` naming file and line."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                if not line.endswith("\n"):
                    break  # torn tail from a crash; ignored and repaired on the next append
                try:
                    yield self.model.model_validate_json(line)
                except ValidationError as exc:
                    raise DataError(
                        f"{self.path}, line {lineno}: not a valid {self.model.__name__} record ({_first_error(exc)}).",
                        fix="correct or delete that line; the stage will regenerate a deleted record on rerun.",
                    ) from None

    def all(self) -> list[T]:
        return list(self.read())

    def ids(self) -> set[str]:
        if self._ids is None:
            self._ids = {str(getattr(r, self.key)) for r in self.read()}
        return self._ids

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.ids()

    def __len__(self) -> int:
        return len(self.ids())

    def append(self, record: T) -> bool:
        """Append ``record`` unless its id is already stored. Returns True when written."""
        return self.extend([record]) == 1

    def extend(self, records: Iterable[T]) -> int:
        ids = self.ids()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        n = 0
        with self.path.open("a", encoding="utf-8") as fh:
            for rec in records:
                rid = str(getattr(rec, self.key))
                if rid in ids:
                    continue
                fh.write(rec.model_dump_json() + "\n")
                ids.add(rid)
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        return n


def write_json_atomic(path: str | Path, obj: object) -> None:
    """Write JSON to ``path`` atomically (tmp file + rename) so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
