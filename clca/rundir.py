"""The run directory: the one owner of its layout.

Every file and folder of a run directory is named here and nowhere else; every stage, the pipeline, the
stats, the leakage check, the training mix and the report reach them through a :class:`RunDir`::

    run_dir/
      config.resolved.yaml      the resolved run config (clca run)
      manifest.json             software, models, data hashes, per-stage status (clca.manifest)
      .lock                     the run directory's lock (exclusive: one whole-run writer; shared: unit writers)
      .locks/<unit>.lock        the lock of one unit of work (clca run --executor, parallel clca train)
      scenarios.jsonl           Scenario            (clca scenarios)
      scenario_failures.jsonl   ScenarioFailure
      episodes.jsonl            Episode             (clca simulate)
      episodes.checkpoint.json  in-progress episodes of an interrupted simulate
      judgements.jsonl          Judgement           (clca judge)
      intents.jsonl             Intent              (clca intents)
      stats.json                per-culture statistics (clca stats)
      leakage.jsonl             LeakageRecord       (WVS n-gram overlap)
      mix/<culture>[--<ablation>]/                  MixDir: training mix (datasets.DatasetDict), mix_stats.json
      adapters/<culture>[--<ablation>][--seed<k>]/  AdapterDir: LoRA adapter (PEFT), train_log.jsonl,
                                                    train_result.json, README.md (model card)
      translations/                                 TranslationDir: <lang>.machine.yaml (clca translate),
                                                    <lang>.reviewed.yaml (a person's corrections)
      eval/<model tag>/                             EvalDir: per_question.jsonl, metrics.json, calibration.jsonl
    (the no-culture control is the culture ``no-culture``; model tags: ``base``, ``clca-<culture>[-s<k>]``,
    ``control-no-culture[-s<k>]``; seed suffixes only when a run trains several seeds)
      report/                               index.html, before_after.json, culture_map.json, figures
      superseded/<time>/                    outputs moved aside by --force-stage

The folders one level down have owners of their own (:class:`MixDir`, :class:`AdapterDir`, :class:`EvalDir`,
:class:`TranslationDir`), which also serve folders outside a run directory (``clca eval --out DIR``,
``clca train --out DIR``, ``clca translate --out DIR``). Readers
return typed records (:mod:`clca.records`; the last record per id where a file may hold several). Missing inputs
are one-line :class:`DataError` s that name the command producing them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from clca.errors import DataError
from clca.locks import hold
from clca.records import (
    GENERIC,
    BeforeAfter,
    CalibrationRecord,
    CheckpointEntry,
    Episode,
    EvalMetrics,
    Intent,
    Judgement,
    LeakageRecord,
    LiveEpisode,
    MixStats,
    QuestionResult,
    RunStats,
    Scenario,
    ScenarioFailure,
    TrainResult,
    TranslationFile,
)
from clca.runs import JsonlStore, read_json, tmp_path, write_json_atomic
from clca.runs import slug as runs_slug

if TYPE_CHECKING:
    from clca.manifest import Manifest

M = TypeVar("M", bound=BaseModel)

#: the stage command that writes each file (named in "missing input" errors)
_PRODUCER = {
    "scenarios.jsonl": "clca scenarios",
    "episodes.jsonl": "clca simulate",
    "judgements.jsonl": "clca judge",
    "intents.jsonl": "clca intents",
}


#: the name of the no-culture control in folder names and model tags
CONTROL = "no-culture"


def slug(name: str) -> str:
    """File-name form of a culture or tag: ``Great Britain`` -> ``great-britain``."""
    return runs_slug(name) or "culture"


def read_model(path: Path, model: type[M], what: str, fix: str) -> M | None:
    """``path`` read as ``model`` (``None`` when absent); unreadable or ill-shaped content is a one-line
    :class:`DataError` naming the file."""
    if not path.exists():
        return None
    data = read_json(path, what, fix)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        raise DataError(f"{path}: key '{loc}': {err.get('msg', 'invalid')} ({what}).", fix=fix) from None


def write_model(path: Path, record: BaseModel) -> Path:
    """Write ``record`` as indented JSON, atomically."""
    write_json_atomic(path, record.model_dump(mode="json"))
    return path


class MixDir:
    """A training mix folder (``datasets.DatasetDict.save_to_disk`` plus ``mix_stats.json``)."""

    STATS = "mix_stats.json"
    DATASET = "dataset_dict.json"  # written by ``save_to_disk``: its presence marks a complete mix

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"MixDir({str(self.path)!r})"

    @property
    def stats_file(self) -> Path:
        return self.path / self.STATS

    def exists(self) -> bool:
        return (self.path / self.DATASET).exists()

    def stats(self) -> MixStats | None:
        return read_model(self.stats_file, MixStats, "mix statistics", "rebuild the mix with `clca mix`.")

    def write_stats(self, stats: MixStats) -> Path:
        return write_model(self.stats_file, stats)


class AdapterDir:
    """An adapter folder: the PEFT adapter, the tokenizer, ``train_log.jsonl``, ``train_result.json`` (its
    presence marks the training finished), ``README.md`` (model card) and ``checkpoints/`` while training."""

    RESULT = "train_result.json"
    LOG = "train_log.jsonl"
    CARD = "README.md"
    CHECKPOINTS = "checkpoints"
    CONFIG = "adapter_config.json"
    WEIGHTS = "adapter_model.safetensors"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"AdapterDir({str(self.path)!r})"

    @property
    def result_file(self) -> Path:
        return self.path / self.RESULT

    @property
    def log_file(self) -> Path:
        return self.path / self.LOG

    @property
    def card_file(self) -> Path:
        return self.path / self.CARD

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def weights_file(self) -> Path:
        return self.path / self.WEIGHTS

    def finished(self) -> bool:
        return self.result_file.exists()

    def result(self) -> TrainResult | None:
        return read_model(
            self.result_file, TrainResult, "training result", "retrain the adapter with `clca train`."
        )

    def write_result(self, result: TrainResult) -> Path:
        return write_model(self.result_file, result)


class EvalDir:
    """An evaluation folder (``eval/<model tag>/`` of a run, or ``clca eval --out DIR``): ``per_question.jsonl``
    (one :class:`QuestionResult` per model, country, style and question; several models may share a folder),
    ``metrics.json``, ``calibration.jsonl`` and, for ``clca eval``, ``report.html``."""

    PER_QUESTION = "per_question.jsonl"
    METRICS = "metrics.json"
    CALIBRATION = "calibration.jsonl"
    REPORT = "report.html"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"EvalDir({str(self.path)!r})"

    @property
    def per_question_file(self) -> Path:
        return self.path / self.PER_QUESTION

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def calibration_file(self) -> Path:
        return self.path / self.CALIBRATION

    @property
    def report_file(self) -> Path:
        return self.path / self.REPORT

    def store(self) -> JsonlStore[QuestionResult]:
        return JsonlStore(self.per_question_file, QuestionResult)

    def calibration_store(self) -> JsonlStore[CalibrationRecord]:
        return JsonlStore(self.calibration_file, CalibrationRecord)

    def records(self) -> list[QuestionResult]:
        """Every record (``[]`` when there is none yet)."""
        return self.store().all()

    def metrics(self) -> EvalMetrics | None:
        return read_model(
            self.metrics_file, EvalMetrics, "evaluation metrics", "rerun `clca eval` to rewrite it."
        )

    def write_metrics(self, metrics: EvalMetrics) -> Path:
        return write_model(self.metrics_file, metrics)


class _YamlDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, so that a person can read and correct a translation file."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_YamlDumper.add_representer(str, _str_representer)


class TranslationDir:
    """A folder of translation files (``run_dir/translations/`` or ``clca translate --out DIR``; shapes in
    :mod:`clca.records.translation`): ``<lang>.machine.yaml``, written by ``clca translate`` only, and
    ``<lang>.reviewed.yaml``, written by a person (entries there win over the machine ones, entry by entry).
    A file that is not valid YAML or not a valid :class:`~clca.records.TranslationFile` is a one-line
    :class:`DataError` naming the file and the entry."""

    MACHINE = "machine"
    REVIEWED = "reviewed"
    SUFFIX = ".yaml"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TranslationDir({str(self.path)!r})"

    def file(self, language: str, kind: str) -> Path:
        """``<language>.<kind>.yaml`` (kind: ``machine`` or ``reviewed``)."""
        return self.path / f"{language}.{kind}{self.SUFFIX}"

    def machine_file(self, language: str) -> Path:
        return self.file(language, self.MACHINE)

    def reviewed_file(self, language: str) -> Path:
        return self.file(language, self.REVIEWED)

    def languages(self) -> list[str]:
        """The language codes with a machine or reviewed file here."""
        found = {
            p.name.split(".")[0]
            for kind in (self.MACHINE, self.REVIEWED)
            for p in self.path.glob(f"*.{kind}{self.SUFFIX}")
        }
        return sorted(found)

    def read(self, path: Path) -> TranslationFile | None:
        """The translation file at ``path`` (``None`` when absent), checked: valid YAML, a valid
        :class:`~clca.records.TranslationFile`, its ``language`` that of its name."""
        if not path.is_file():
            return None
        language = path.name.split(".")[0]
        fix = (
            "correct that entry, or delete it (`clca translate` asks again for what the machine file lacks; "
            "a reviewed file may hold only the entries you corrected)."
        )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise DataError(
                f"{path} is not UTF-8 text (a translation file).", fix="save it as UTF-8."
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise DataError(
                f"{path}{where}: not valid YAML (a translation file).",
                fix="correct the YAML syntax there (quote text holding ': ' or starting with a special character).",
            ) from None
        if data is None:
            data = {"language": language}
        if not isinstance(data, dict):
            raise DataError(
                f"{path}: a translation file is a mapping with language, questions and styles.", fix=fix
            )
        data.setdefault("language", language)
        try:
            tf = TranslationFile.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            raise DataError(f"{path}: entry {loc}: {msg}.", fix=fix) from None
        if tf.language != language:
            raise DataError(
                f"{path}: says language {tf.language!r}, but its name says {language!r}.",
                fix=f"name the file {tf.language}.{path.name.split('.', 1)[1]} or correct its language.",
            )
        return tf

    def machine(self, language: str) -> TranslationFile | None:
        return self.read(self.machine_file(language))

    def reviewed(self, language: str) -> TranslationFile | None:
        return self.read(self.reviewed_file(language))

    def write_machine(self, tf: TranslationFile) -> Path:
        """Write ``<language>.machine.yaml`` atomically (a tmp file + rename), with a header that says how to
        correct it."""
        path = self.machine_file(tf.language)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# Machine translations into {tf.language!r} for clca's multilingual evaluation, written by `clca "
            "translate`\n# (each entry: the translation, its English source, the model). Do not edit this file: "
            f"copy the entries you\n# correct into {self.reviewed_file(tf.language).name} beside it, where they win "
            'entry by entry\n# (docs/evaluation.md, "Multilingual evaluation").\n'
        )
        body = yaml.dump(
            tf.model_dump(mode="json"), Dumper=_YamlDumper, sort_keys=False, allow_unicode=True, width=100_000
        )
        tmp = tmp_path(path)
        tmp.write_text(header + body, encoding="utf-8")
        tmp.replace(path)
        return path


class RunDir:
    """A run directory (see the module docstring for its layout)."""

    SCENARIOS = "scenarios.jsonl"
    FAILURES = "scenario_failures.jsonl"
    EPISODES = "episodes.jsonl"
    CHECKPOINT = "episodes.checkpoint.json"
    JUDGEMENTS = "judgements.jsonl"
    INTENTS = "intents.jsonl"
    STATS = "stats.json"
    LEAKAGE = "leakage.jsonl"
    CONFIG = "config.resolved.yaml"
    MANIFEST = "manifest.json"
    LOCK = ".lock"
    LOCKS = ".locks"
    MIX = "mix"
    ADAPTERS = "adapters"
    EVAL = "eval"
    TRANSLATIONS = "translations"
    REPORT = "report"
    BEFORE_AFTER = "before_after.json"
    CULTURE_MAP = "culture_map.json"
    SUPERSEDED = "superseded"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    # ------------------------------------------------------------------------------------------- names
    @property
    def scenarios_file(self) -> Path:
        return self.path / self.SCENARIOS

    @property
    def failures_file(self) -> Path:
        return self.path / self.FAILURES

    @property
    def episodes_file(self) -> Path:
        return self.path / self.EPISODES

    @property
    def checkpoint_file(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def judgements_file(self) -> Path:
        return self.path / self.JUDGEMENTS

    @property
    def intents_file(self) -> Path:
        return self.path / self.INTENTS

    @property
    def stats_file(self) -> Path:
        return self.path / self.STATS

    @property
    def leakage_file(self) -> Path:
        return self.path / self.LEAKAGE

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def manifest_file(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def lock_file(self) -> Path:
        return self.path / self.LOCK

    @property
    def report_dir(self) -> Path:
        return self.path / self.REPORT

    @property
    def before_after_file(self) -> Path:
        return self.path / self.REPORT / self.BEFORE_AFTER

    @property
    def culture_map_file(self) -> Path:
        return self.path / self.REPORT / self.CULTURE_MAP

    @property
    def eval_root(self) -> Path:
        return self.path / self.EVAL

    @property
    def translations_dir(self) -> Path:
        """The translation files of the run's multilingual evaluation (:class:`TranslationDir`)."""
        return self.path / self.TRANSLATIONS

    def translations(self) -> TranslationDir:
        return TranslationDir(self.translations_dir)

    def superseded_dir(self, stamp: str) -> Path:
        return self.path / self.SUPERSEDED / stamp

    @staticmethod
    def variant(culture: str, ablation: str | None = None) -> str:
        """The folder name of a culture's mix/adapter: ``<slug>[--<ablation>]`` (``no-culture`` for the
        control)."""
        return (CONTROL if culture == GENERIC else slug(culture)) + (f"--{ablation}" if ablation else "")

    def mix_dir(self, culture: str, ablation: str | None = None) -> Path:
        return self.path / self.MIX / self.variant(culture, ablation)

    def mix(self, culture: str, ablation: str | None = None) -> MixDir:
        return MixDir(self.mix_dir(culture, ablation))

    def mixes(self) -> list[MixDir]:
        """Every complete mix of the run, by folder name."""
        root = self.path / self.MIX
        return [MixDir(p) for p in sorted(root.iterdir()) if MixDir(p).exists()] if root.is_dir() else []

    def adapter_dir(self, culture: str, ablation: str | None = None, seed: int | None = None) -> Path:
        """A culture's (or the control's) adapter; ``seed`` only when the run trains several seeds."""
        suffix = f"--seed{seed}" if seed is not None else ""
        return self.path / self.ADAPTERS / (self.variant(culture, ablation) + suffix)

    def adapter(self, culture: str, ablation: str | None = None, seed: int | None = None) -> AdapterDir:
        return AdapterDir(self.adapter_dir(culture, ablation, seed))

    def adapters(self) -> list[AdapterDir]:
        """Every finished adapter of the run, by folder name."""
        root = self.path / self.ADAPTERS
        if not root.is_dir():
            return []
        return [AdapterDir(p) for p in sorted(root.iterdir()) if AdapterDir(p).finished()]

    @staticmethod
    def model_tag(culture: str, seed: int | None = None) -> str:
        """The eval tag of an adapted student: ``clca-<slug>`` or ``control-no-culture`` (``-s<k>`` per seed)."""
        base = f"control-{CONTROL}" if culture == GENERIC else f"clca-{slug(culture)}"
        return base + (f"-s{seed}" if seed is not None else "")

    @staticmethod
    def parse_model_tag(tag: str, cultures: Iterable[str]) -> tuple[str, int | None] | None:
        """The inverse of :meth:`model_tag`: (culture or ``generic``, seed), or ``None`` for other tags (the base
        model's, other tools')."""
        m = re.fullmatch(rf"(?:clca-(?P<slug>.+?)|control-{CONTROL})(?:-s(?P<seed>\d+))?", tag)
        if m is None:
            return None
        seed = int(m["seed"]) if m["seed"] is not None else None
        if m["slug"] is None:
            return GENERIC, seed
        by_slug = {slug(c): c for c in cultures}
        if m["slug"] in by_slug:
            return by_slug[m["slug"]], seed
        whole = tag.removeprefix("clca-")  # a culture slug that itself ends in -s<digits>
        return (by_slug[whole], None) if whole in by_slug else None

    def eval_dir(self, model_tag: str) -> Path:
        return self.path / self.EVAL / model_tag

    def evaluation(self, model_tag: str) -> EvalDir:
        return EvalDir(self.eval_dir(model_tag))

    def rel(self, path: Path) -> str:
        """``path`` relative to the run directory (for the manifest and messages)."""
        try:
            return str(path.relative_to(self.path))
        except ValueError:
            return str(path)

    # ------------------------------------------------------------------------------------------ stores
    def scenario_store(self) -> JsonlStore[Scenario]:
        return JsonlStore(self.scenarios_file, Scenario)

    def failure_store(self) -> JsonlStore[ScenarioFailure]:
        return JsonlStore(self.failures_file, ScenarioFailure)

    def episode_store(self) -> JsonlStore[Episode]:
        return JsonlStore(self.episodes_file, Episode)

    def judgement_store(self) -> JsonlStore[Judgement]:
        return JsonlStore(self.judgements_file, Judgement)

    def intent_store(self) -> JsonlStore[Intent]:
        return JsonlStore(self.intents_file, Intent)

    def leakage_store(self) -> JsonlStore[LeakageRecord]:
        return JsonlStore(self.leakage_file, LeakageRecord)

    # ----------------------------------------------------------------------------------------- readers
    def require(self, path: Path) -> Path:
        """``path`` if it exists, else a one-line error naming the command that writes it."""
        if not path.exists():
            cmd = _PRODUCER.get(path.name)
            fix = f"run `{cmd} --run {self.path}` first." if cmd else "run the stage that writes it first."
            raise DataError(f"{path} does not exist.", fix=fix)
        return path

    def scenarios(self) -> list[Scenario]:
        """The scenarios (last record per id); ``[]`` when there are none yet."""
        return self.scenario_store().latest()

    def require_scenarios(self) -> list[Scenario]:
        """The scenarios; a missing or empty file is a one-line error naming `clca scenarios`."""
        self.require(self.scenarios_file)
        out = self.scenarios()
        if not out:
            raise DataError(
                f"{self.scenarios_file} holds no scenarios.",
                fix=f"run `clca scenarios --run {self.path}` first (or put your own Scenario records there).",
            )
        return out

    def scenarios_by_id(self) -> dict[str, Scenario]:
        return {s.id: s for s in self.scenarios()}

    def scenario_failures(self) -> list[ScenarioFailure]:
        return self.failure_store().latest()

    def episodes(self) -> list[Episode]:
        """The finished episodes (last record per id); episodes in progress are in the checkpoint."""
        return self.episode_store().latest()

    def checkpoint(self) -> tuple[dict[str, Any], list[CheckpointEntry]]:
        """The simulation checkpoint: the settings it was written with and the episodes in progress (``({},
        [])`` when there is none); an unreadable one is a one-line error."""
        path = self.checkpoint_file
        if not path.exists():
            return {}, []
        fix = "delete it; its in-progress episodes will be restarted."
        data = read_json(path, "role-play checkpoint", fix)
        try:
            assert isinstance(data, dict)
            return dict(data.get("config", {})), [CheckpointEntry.model_validate(e) for e in data["episodes"]]
        except (AssertionError, KeyError, TypeError, ValidationError) as exc:
            raise DataError(
                f"{path} is not a valid role-play checkpoint ({type(exc).__name__}).", fix=fix
            ) from None

    def write_checkpoint(self, config: dict[str, Any], entries: Iterable[CheckpointEntry]) -> None:
        write_json_atomic(
            self.checkpoint_file, {"config": config, "episodes": [e.model_dump(mode="json") for e in entries]}
        )

    def live_episodes(self) -> list[LiveEpisode]:
        """The episodes in progress (from the checkpoint)."""
        return [e.episode for e in self.checkpoint()[1]]

    def episodes_with_scenarios(self, episodes: list[Episode]) -> dict[str, Scenario]:
        """The scenario of every episode in ``episodes`` (by scenario id); a dangling reference is an error."""
        scenarios = self.scenarios_by_id()
        for e in episodes:
            if e.scenario_id not in scenarios:
                raise DataError(
                    f"{self.episodes_file}: episode {e.id} refers to scenario {e.scenario_id}, which is not in "
                    f"{self.scenarios_file}.",
                    fix="restore scenarios.jsonl or remove that episode.",
                )
        return scenarios

    def judgements(self) -> list[Judgement]:
        return self.judgement_store().latest()

    def kept_episode_ids(self) -> set[str]:
        """Ids of the episodes the judge kept."""
        return {j.episode_id for j in self.judgements() if j.keep}

    def intents(self) -> list[Intent]:
        return self.intent_store().latest()

    def intents_by_episode(self) -> dict[str, dict[int, Intent]]:
        out: dict[str, dict[int, Intent]] = {}
        for it in self.intents():
            out.setdefault(it.episode_id, {})[it.turn_index] = it
        return out

    def leakage(self) -> list[LeakageRecord]:
        return self.leakage_store().latest()

    def stats(self) -> RunStats | None:
        """``stats.json`` (``None`` before `clca stats` ran)."""
        return read_model(
            self.stats_file, RunStats, "run statistics", f"rerun `clca stats --run {self.path}`."
        )

    def write_stats(self, stats: RunStats) -> Path:
        return write_model(self.stats_file, stats)

    def eval_tags(self) -> list[str]:
        return sorted(p.parent.name for p in self.eval_root.glob(f"*/{EvalDir.PER_QUESTION}"))

    def eval_records(self) -> list[QuestionResult]:
        """Every evaluation record of the run (``eval/<model_tag>/per_question.jsonl``)."""
        return [r for tag in self.eval_tags() for r in self.evaluation(tag).store().read()]

    def before_after(self) -> BeforeAfter | None:
        """``report/before_after.json`` (``None`` before a report with evaluation records was built)."""
        return read_model(
            self.before_after_file,
            BeforeAfter,
            "the report's numbers",
            f"rerun `clca report --run {self.path}`.",
        )

    def write_before_after(self, ba: BeforeAfter) -> Path:
        return write_model(self.before_after_file, ba)

    def resolved_config(self) -> dict[str, Any] | None:
        """The resolved run config as plain data (``None`` when absent or unreadable)."""
        import yaml

        if not self.config_file.is_file():
            return None
        try:
            data = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def manifest(self) -> Manifest | None:
        """The manifest, read through its own model (``None`` when there is none yet)."""
        from clca.manifest import load_manifest

        return load_manifest(self.manifest_file) if self.manifest_file.exists() else None

    # ---------------------------------------------------------------------------------------- locking
    def check_writable(self) -> None:
        """A one-line error when the run directory is a file or cannot be created."""
        if self.path.exists() and not self.path.is_dir():
            raise DataError(
                f"run directory {self.path} is a file.", fix="choose a folder for the run directory."
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"run directory {self.path} cannot be created ({exc.strerror}).",
                fix="choose a writable folder for the run directory.",
            ) from None

    @contextlib.contextmanager
    def lock(self, what: str, *, shared: bool = False) -> Iterator[None]:
        """Hold the run directory's lock (``.lock``; :mod:`clca.locks`) for ``what``: exclusive for a writer of
        the whole run directory (``clca run``, a stage command), ``shared`` for writers of single units that run
        side by side (:meth:`unit_lock`). A second exclusive writer, or an exclusive writer while units run, gets
        a one-line error naming the holder. Re-entrant within one process."""
        self.check_writable()
        with hold(
            self.lock_file,
            what,
            shared=shared,
            fix="wait for that process to finish (one writer per run directory, or per unit of it), or use "
            "another --run.",
        ):
            yield

    def unit_lock_file(self, unit: str) -> Path:
        return self.path / self.LOCKS / f"{slug(unit)}.lock"

    @contextlib.contextmanager
    def unit_lock(self, unit: str, what: str) -> Iterator[None]:
        """Hold the lock of one unit of work (``.locks/<unit>.lock``) plus the run directory's lock, shared: units
        run side by side (``clca run --executor``, parallel ``clca train``); a whole-run writer waits for them."""
        with (
            self.lock(what, shared=True),
            hold(
                self.unit_lock_file(unit),
                what,
                fix=f"wait for that process to finish: unit {unit} has one writer at a time.",
                subject=f"unit {unit} of run directory {self.path}",
            ),
        ):
            yield
