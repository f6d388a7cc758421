"""``run_dir/manifest.json``: what produced a run directory and how far it got.

The manifest records the software (clca, torch, transformers, peft, trl, datasets versions, Python,
platform), the models (spec and fingerprint per role), the sha256 of every data file used, the seeds, and
per stage its status (``pending``/``running``/``done``/``failed``), start/end time, duration, record counts,
the error message of a failure, and ``inputs``: a hash of the settings the stage depends on. The pipeline
uses ``inputs`` to refuse to mix settings in one run directory. Every write is atomic (tmp file + rename).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clca.errors import DataError
from clca.runs import write_json_atomic

PACKAGES = ("clca", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "numpy")
Status = Literal["pending", "running", "done", "failed"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` ("not installed" where absent)."""
    out: dict[str, str] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_inputs(obj: object) -> str:
    """Stable short hash of a JSON-able object (the settings a stage depends on)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class StageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status = "pending"
    inputs: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)  # what ``inputs`` hashes (to name a change)
    started: str | None = None
    ended: str | None = None
    duration_s: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    created: str = Field(default_factory=now_iso)
    updated: str = Field(default_factory=now_iso)
    python: str = Field(default_factory=lambda: sys.version.split()[0])
    platform: str = Field(default_factory=platform.platform)
    packages: dict[str, str] = Field(default_factory=package_versions)
    #: role -> {spec, fingerprint}, and for a local model with ``+quant=``: quant (bf16 | none), quant_reason,
    #: hardware (what +quant=auto decided on; Backend.manifest_info)
    models: dict[str, dict[str, str]] = Field(default_factory=dict)
    data_files: dict[str, str] = Field(default_factory=dict)  # path -> sha256
    #: which edition of a data file the run read (``inglehart_welzel``: the map points; see clca.data.editions)
    data_editions: dict[str, dict[str, str]] = Field(default_factory=dict)
    seeds: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)  # e.g. a protocol fallback
    stages: dict[str, StageRecord] = Field(default_factory=dict)


def load_manifest(path: Path) -> Manifest:
    """Read a manifest; a non-UTF-8 or invalid file is a one-line :class:`DataError`."""
    fix = "restore it, or delete it to rerun every stage's bookkeeping (outputs are kept)."
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text.", fix=fix) from None
    except ValidationError as exc:
        raise DataError(
            f"{path} is not a valid clca manifest ({exc.errors()[0].get('msg')}).", fix=fix
        ) from None


class RunManifest:
    """The manifest of one run directory (at ``path``), saved after every change.

    Several processes may write one manifest (the units of ``clca run --executor`` run side by side): a save
    re-reads the file under a short lock and writes it back with this process's changes (the stage records,
    models and data files it touched) on top, so no process loses another's records.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.exists():
            self.data = load_manifest(self.path)
            self.data.packages = package_versions()
            self.data.python = sys.version.split()[0]
            self.data.platform = platform.platform()
        else:
            self.data = Manifest()
        self._stages: set[str] = set()  # what this process changed (merged into the file on save)
        self._models: set[str] = set()
        self._run_wide = False  # seeds and notes

    def save(self) -> None:
        from clca.locks import hold

        with hold(
            self.path.with_name(self.path.name + ".lock"),
            "saving the manifest",
            fix="retry; a process has held the manifest for a minute (a stale lock file can be deleted).",
            wait_s=60.0,
        ):
            if self.path.exists():
                disk = load_manifest(self.path)
                for name, rec in disk.stages.items():
                    if name not in self._stages:
                        self.data.stages[name] = rec
                for role, model in disk.models.items():
                    if role not in self._models:
                        self.data.models[role] = model
                self.data.data_files = {**disk.data_files, **self.data.data_files}
                self.data.data_editions = {**disk.data_editions, **self.data.data_editions}
                if not self._run_wide:
                    self.data.seeds, self.data.notes = disk.seeds, disk.notes
                self.data.created = disk.created
                order = list(disk.stages) + [n for n in self.data.stages if n not in disk.stages]
                self.data.stages = {n: self.data.stages[n] for n in order}
            self.data.updated = now_iso()
            write_json_atomic(self.path, self.data.model_dump(mode="json"))

    def set_run_wide(self, *, seeds: dict[str, int], notes: list[str]) -> None:
        """The run's seeds and notes (written by the process that starts the run)."""
        self.data.seeds, self.data.notes = seeds, notes
        self._run_wide = True

    def stage(self, name: str) -> StageRecord:
        """The record of ``name`` for this process to change (its changes win when the file is saved)."""
        self._stages.add(name)
        return self.data.stages.setdefault(name, StageRecord())

    def declare(self, name: str) -> None:
        """List ``name`` as pending when the manifest has no record of it yet; not claimed as this process's to
        change, so a record another process saves for it wins at the next save."""
        self.data.stages.setdefault(name, StageRecord())

    def is_done(self, name: str, inputs: str | None = None) -> bool:
        rec = self.data.stages.get(name)
        return rec is not None and rec.status == "done" and (inputs is None or rec.inputs == inputs)

    def record_model(
        self, role: str, spec: str, fingerprint: str, info: Mapping[str, str] | None = None
    ) -> None:
        """Record the model of ``role``; ``info``: what else its backend states (``Backend.manifest_info()``:
        the weight format ``+quant=auto`` chose and why), after spec and fingerprint."""
        self._models.add(role)
        extra = {k: v for k, v in (info or {}).items() if k not in ("spec", "fingerprint")}
        self.data.models[role] = {"spec": spec, "fingerprint": fingerprint, **extra}
        self.save()

    def record_data_file(self, path: Path) -> None:
        key = str(path)
        if key not in self.data.data_files and path.is_file():
            self.data.data_files[key] = sha256_file(path)
            self.save()

    def reset(self, name: str) -> None:
        self._stages.add(name)
        self.data.stages[name] = StageRecord()
        self.save()

    @contextmanager
    def running(
        self, name: str, inputs: str | None = None, settings: dict[str, Any] | None = None
    ) -> Iterator[StageRecord]:
        """Mark ``name`` running; done on normal exit (with the counts the body set), failed on an error."""
        rec = self.stage(name)
        rec.status, rec.inputs, rec.error = "running", inputs, None
        rec.settings = dict(settings or {})
        rec.started, rec.ended, rec.duration_s = now_iso(), None, None
        self.save()
        t0 = time.perf_counter()
        try:
            yield rec
        except BaseException as exc:
            rec.status = "failed"
            rec.error = f"{type(exc).__name__}: {exc}".strip()[:2000]
            raise
        else:
            rec.status = "done"
        finally:
            rec.ended = now_iso()
            rec.duration_s = round(time.perf_counter() - t0, 3)
            self.save()

    def summary(self) -> list[dict[str, Any]]:
        return [
            {"stage": k, "status": v.status, "duration_s": v.duration_s, "counts": v.counts, "error": v.error}
            for k, v in self.data.stages.items()
        ]
