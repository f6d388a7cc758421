"""Advisory locks for run directories that also work on shared cluster file systems.

A lock is a file. Two kinds of holder: **exclusive** (one writer of the whole run directory, or of one unit of
it) and **shared** (many unit writers side by side, which an exclusive whole-run writer must wait for). Two
mechanisms:

* ``fcntl.flock`` on the lock file, where the file system supports it (local disks; most NFS v4 and Lustre
  mounts with ``flock``): the kernel drops the lock when its process dies, so a crashed holder never blocks.
* Where ``flock`` is unavailable (``ENOLCK`` / ``EOPNOTSUPP``, e.g. NFS mounted ``nolock``, some FUSE file
  systems), **lock files**: a holder creates ``<lock>.x`` (exclusive) or ``<lock>.s.<host>.<pid>`` (shared)
  atomically (``O_CREAT | O_EXCL``) with its host, PID, command and a heartbeat that a thread refreshes every
  :data:`HEARTBEAT_S` seconds. A holder file is **stale** when its heartbeat is older than :data:`STALE_S`, or
  when it was made on this host by a process that no longer exists; a stale holder is taken over (its file
  removed, with a note on stderr).

A lock that is held raises a one-line :class:`~clca.errors.DataError` naming the holder (host, PID, command).
Locks are re-entrant within a process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from clca.errors import DataError

#: seconds between heartbeats of a lock-file holder
HEARTBEAT_S = 10.0
#: a lock-file holder whose heartbeat is older than this is taken over
STALE_S = 60.0
#: environment variable that forces the lock-file mechanism (tests; file systems whose flock lies)
FORCE_FILES_ENV = "CLCA_LOCK_FILES"

#: environment variable through which a process hands the locks it holds to a child it waits for (the
#: ``accelerate launch`` of a training): the child treats them as held
INHERITED_ENV = "CLCA_INHERITED_LOCKS"

#: locks this process holds: lock path -> depth
_HELD: dict[str, int] = {}


def inherited_env() -> dict[str, str]:
    """The environment entry that hands this process's locks to a child process it waits for."""
    paths = sorted({k.rsplit("|", 1)[0] for k in _HELD} | _inherited())
    return {INHERITED_ENV: os.pathsep.join(paths)}


def _inherited() -> set[str]:
    return {p for p in os.environ.get(INHERITED_ENV, "").split(os.pathsep) if p}


def _holder_text(what: str) -> str:
    return f"PID {os.getpid()} on {socket.gethostname()} ({what})"


def _flock_unsupported(exc: OSError) -> bool:
    return exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@contextlib.contextmanager
def hold(
    path: Path,
    what: str,
    *,
    shared: bool = False,
    fix: str,
    subject: str | None = None,
    wait_s: float = 0.0,
) -> Iterator[None]:
    """Hold the lock at ``path`` (exclusive, or ``shared``) for ``what`` (named to a waiting holder); ``subject``
    says what the lock protects in the refusal (default: the run directory of a ``.lock``, else the path);
    ``wait_s``: how long to wait for a holder to let go before refusing (short critical sections)."""
    if str(path.absolute()) in _inherited():  # the parent process holds it for us
        yield
        return
    key = f"{path.absolute()}|{'s' if shared else 'x'}"
    if shared and f"{path.absolute()}|x" in _HELD:  # an exclusive holder has the shared right too
        key = f"{path.absolute()}|x"
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    mech = _lock_files if os.environ.get(FORCE_FILES_ENV) else _flock
    name = subject or _subject(path)
    deadline = time.monotonic() + wait_s
    pause = 0.02
    while True:
        try:
            try:
                cm = mech(path, what, shared=shared, fix=fix, subject=name)
                cm.__enter__()
            except _Unsupported:
                mech = _lock_files
                continue
            break
        except DataError:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
    _HELD[key] = 1
    try:
        yield
    finally:
        _HELD.pop(key, None)
        cm.__exit__(None, None, None)


class _Unsupported(Exception):
    """``flock`` does not work on this file system."""


@contextlib.contextmanager
def _flock(path: Path, what: str, *, shared: bool, fix: str, subject: str) -> Iterator[None]:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            if _flock_unsupported(exc):
                raise _Unsupported from None
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
            raise DataError(f"{subject} is in use by {holder}.", fix=fix) from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text(what).encode() + b"\n", 0)
        try:
            yield
        finally:
            if not shared:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _subject(path: Path) -> str:
    """What a lock protects, in words (the folder of a run directory's ``.lock``, else the file)."""
    return f"run directory {path.parent}" if path.name == ".lock" else str(path.with_suffix(""))


# ----------------------------------------------------------------------------------------- lock files


def _read(holder: Path) -> dict[str, object] | None:
    try:
        data = json.loads(holder.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _stale(holder: Path) -> bool:
    """A holder file whose heartbeat stopped, or whose process (on this host) is gone."""
    try:
        age = time.time() - holder.stat().st_mtime
    except FileNotFoundError:
        return True
    if age > STALE_S:
        return True
    info = _read(holder)
    if info is None:
        return age > HEARTBEAT_S  # being written right now, or garbage
    if info.get("host") == socket.gethostname():
        try:
            os.kill(int(str(info.get("pid"))), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
    return False


def _describe(holder: Path) -> str:
    info = _read(holder) or {}
    return f"PID {info.get('pid', '?')} on {info.get('host', '?')} ({info.get('what', '?')})"


def _create(holder: Path, what: str) -> bool:
    try:
        fd = os.open(holder, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "what": what, "since": time.time()}, fh)
    return True


def _take_over(holder: Path) -> None:
    print(f"clca: taking over the stale lock {holder} of {_describe(holder)}", file=sys.stderr)
    holder.unlink(missing_ok=True)


@contextlib.contextmanager
def _lock_files(path: Path, what: str, *, shared: bool, fix: str, subject: str) -> Iterator[None]:
    exclusive = path.with_name(path.name + ".x")
    mine = path.with_name(f"{path.name}.s.{socket.gethostname()}.{os.getpid()}") if shared else exclusive
    if exclusive.exists() and _stale(exclusive):
        _take_over(exclusive)
    if shared:
        if exclusive.exists():
            raise DataError(f"{subject} is in use by {_describe(exclusive)}.", fix=fix)
        _create(mine, what)
        if exclusive.exists() and not _stale(exclusive):  # an exclusive holder came in between: back off
            mine.unlink(missing_ok=True)
            raise DataError(f"{subject} is in use by {_describe(exclusive)}.", fix=fix)
    else:
        if not _create(exclusive, what):
            raise DataError(f"{subject} is in use by {_describe(exclusive)}.", fix=fix)
        for other in path.parent.glob(path.name + ".s.*"):
            if _stale(other):
                _take_over(other)
            elif other.exists():
                exclusive.unlink(missing_ok=True)
                raise DataError(f"{subject} is in use by {_describe(other)}.", fix=fix)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(mine)

    thread = threading.Thread(target=beat, name="clca-lock-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        mine.unlink(missing_ok=True)
