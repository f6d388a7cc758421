"""The resumable JSONL store: append, skip duplicates, survive a torn write, name bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clca.errors import DataError
from clca.records import Episode, Turn
from clca.runs import JsonlStore, write_json_atomic


def _ep(i: int) -> Episode:
    return Episode(
        id=f"gb-1#s{i}",
        scenario_id="gb-1",
        culture="Great Britain",
        sample=i,
        seed=i,
        model="m",
        turns=[Turn(speaker=0, name="Ann", action="speak", text=f"hello {i}")],
        stop_reason="leave",
    )


def test_append_skips_existing_ids_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    store = JsonlStore(path, Episode)
    assert store.extend([_ep(0), _ep(1), _ep(0)]) == 2
    again = JsonlStore(path, Episode)  # a resumed process
    assert again.ids() == {"gb-1#s0", "gb-1#s1"}
    assert not again.append(_ep(1))
    assert again.append(_ep(2))
    assert [e.sample for e in JsonlStore(path, Episode).all()] == [0, 1, 2]
    assert len(path.read_text().splitlines()) == 3


def test_torn_tail_is_ignored_then_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    JsonlStore(path, Episode).extend([_ep(0), _ep(1)])
    torn = _ep(2).model_dump_json()[:25]
    with path.open("a") as fh:  # a crash in the middle of writing record 2
        fh.write(torn)
    store = JsonlStore(path, Episode)
    assert [e.sample for e in store.all()] == [0, 1]
    assert store.append(_ep(2))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["id"] for line in lines)
    assert store.torn_moved == 1 and store.torn_path.read_text() == torn + "\n"  # kept, never dropped


def test_complete_last_record_without_newline_is_kept(tmp_path: Path) -> None:
    """A user-written file whose last complete record lacks the newline loses nothing."""
    path = tmp_path / "episodes.jsonl"
    path.write_text(_ep(0).model_dump_json() + "\n" + _ep(1).model_dump_json())
    store = JsonlStore(path, Episode)
    assert [e.sample for e in store.all()] == [0, 1] and store.ids() == {"gb-1#s0", "gb-1#s1"}
    assert not store.append(_ep(1)) and store.append(_ep(2))
    assert [e.sample for e in JsonlStore(path, Episode).all()] == [0, 1, 2]
    assert not store.torn_path.exists() and path.read_text().endswith("\n")


def test_non_utf8_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    path.write_bytes(b"\xff\xfe garbage\n")
    with pytest.raises(DataError) as err:
        JsonlStore(path, Episode).all()
    assert "not UTF-8" in str(err.value) and "\n" not in str(err.value)


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    JsonlStore(path, Episode).append(_ep(0))
    with path.open("a") as fh:
        fh.write('{"id": "x", "scenario_id": "s"}\n')
    with pytest.raises(DataError) as err:
        JsonlStore(path, Episode).all()
    msg = str(err.value)
    assert "episodes.jsonl, line 2" in msg and "Fix:" in msg and "\n" not in msg


def test_write_json_atomic_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert not list(path.parent.glob("*.tmp"))
