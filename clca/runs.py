"""Resumable, append-only JSONL stores and atomic JSON writes.

A stage writes one pydantic record per line and flushes after every batch, so a killed process loses at
most the records being written. Rules for the last line of a file:

* a last line that parses as a complete record is a record, with or without its trailing newline (a user's
  own file often lacks it); the next append adds the newline and keeps it;
* only a last line that does not parse is a torn tail (a crash mid-write): it is ignored when reading, and
  the next append moves it to ``<file>.torn`` (appended, never silently dropped) before writing.

``ids()`` tells the stage which records to skip; records with an id already present are never appended twice.
A file that is not UTF-8, or a malformed line before the last, is a one-line :class:`DataError` naming the file,
the line and the fix.
"""

from __future__ import annotations

import json
import os
import re
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


def slug(name: str) -> str:
    """A file- and id-safe form of a name: ``Great Britain`` -> ``great-britain`` (``""`` when nothing is left)."""
    return re.sub(r"[^0-9a-z]+", "-", name.casefold()).strip("-")


def tmp_path(path: Path) -> Path:
    """A temporary sibling of ``path`` unique to this process (no two writers share one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


class JsonlStore(Generic[T]):
    """An append-only JSONL file of ``model`` records keyed by their ``id`` attribute (or ``key``)."""

    def __init__(self, path: str | Path, model: type[T], key: str = "id") -> None:
        self.path = Path(path)
        self.model = model
        self.key = key
        self._ids: set[str] | None = None
        #: torn tail lines moved to ``<file>.torn`` by this store
        self.torn_moved = 0

    @property
    def torn_path(self) -> Path:
        return self.path.with_name(self.path.name + ".torn")

    def _parse(self, line: str, lineno: int) -> T:
        try:
            return self.model.model_validate_json(line)
        except ValidationError as exc:
            raise DataError(
                f"{self.path}, line {lineno}: not a valid {self.model.__name__} record ({_first_error(exc)}).",
                fix="correct or delete that line; the stage will regenerate a deleted record on rerun.",
            ) from None

    def _lines(self) -> list[str]:
        try:
            with self.path.open(encoding="utf-8", newline="") as fh:
                return fh.read().splitlines(keepends=True)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{self.path} is not UTF-8 text (byte {exc.start}).",
                fix="restore the file, or move it aside to let the stage regenerate its records.",
            ) from None
        except OSError as exc:
            raise DataError(
                f"{self.path} cannot be read ({exc.strerror}).", fix="check the path and its permissions."
            ) from None

    def read(self) -> Iterator[T]:
        """Yield every record (see the module docstring for the last line)."""
        if not self.path.exists():
            return
        if self.path.is_dir():
            raise DataError(f"{self.path} is a folder, not a JSONL file.", fix="move it aside and rerun.")
        lines = self._lines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if lineno == len(lines) and not line.endswith("\n"):
                try:
                    last = self.model.model_validate_json(line)
                except ValidationError:
                    return  # a torn tail: ignored here, moved aside on the next append
                yield last
                return
            yield self._parse(line, lineno)

    def all(self) -> list[T]:
        return list(self.read())

    def latest(self) -> list[T]:
        """Every record, the last one per id, in first-seen order."""
        out: dict[str, T] = {}
        for r in self.read():
            out[str(getattr(r, self.key))] = r
        return list(out.values())

    def ids(self) -> set[str]:
        if self._ids is None:
            self._ids = {str(getattr(r, self.key)) for r in self.read()}
        return self._ids

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.ids()

    def __len__(self) -> int:
        return len(self.ids())

    def _repair_tail(self) -> None:
        """Before appending: end a complete last record with its newline, or move a torn tail aside."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            data = fh.read()
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            try:
                self.model.model_validate_json(tail)
            except (ValidationError, ValueError):
                with self.torn_path.open("ab") as torn:
                    torn.write(tail + b"\n")
                    torn.flush()
                    os.fsync(torn.fileno())
                fh.seek(cut)
                fh.truncate(cut)
                self.torn_moved += 1
            else:
                fh.seek(0, os.SEEK_END)
                fh.write(b"\n")

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
    """Write JSON to ``path`` atomically (a per-process tmp file + rename): a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, what: str, fix: str) -> object:
    """A JSON file's content; a missing, non-UTF-8 or malformed file is a one-line :class:`DataError`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist ({what}).", fix=fix) from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text ({what}).", fix=fix) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({what}).", fix=fix) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a JSON file ({what}).", fix=fix) from None
