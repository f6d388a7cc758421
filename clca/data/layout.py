"""The data bundle: the one owner of its layout.

Every file of a data bundle is named here and nowhere else; the readers (WVS, Sotopia, culture profiles,
the leakage check, the culture map), the bundle builder (:data:`clca.data.bundle.PRODUCTS`) and the
pipeline's data hashes reach them through :class:`DataBundle`::

    data/
      wvs7/question_metadata.json               WorldValuesBench question wording and answer types
      wvs7/codebook.json                        WorldValuesBench codebook (variables, answer codes)
      wvs7/answer_adjustment.json               WorldValuesBench answer-code adjustments
      wvs7/country_distributions.jsonl          WVS wave 7 answer shares per country (clca.data.wvs)
      sotopia/environment_profiles.jsonl        Sotopia scenarios
      sotopia/agent_profiles.jsonl              Sotopia characters
      sotopia/relationship_profiles.jsonl       Sotopia relationships
      sotopia/env_agent_combo_storages.jsonl    Sotopia (scenario, character pair) combinations
      sotopia/env_subsets.json                  Sotopia's scenario subsets (all, hard)
      sotopia/sotopia_pi_inspirational_prompts.csv  Sotopia-pi's situations and norms
      culture/hofstede_2015.csv                 Hofstede's six dimensions (2015 release)
      culture/inglehart_welzel.csv              Inglehart-Welzel map points (the edition: clca.data.editions)
      README.md                                 terms and citations (written by ``clca data pull``)
      bundle_manifest.json                      sources and sha256 (only in a pulled bundle)

Where the bundle is comes from :mod:`clca.settings` (:func:`~clca.settings.data_dir`). A missing file is a
one-line :class:`DataError` naming the file and the bundle it should be in.

Older bundles (the shared ``../shared/data``, pulls made before the map file had editions) name the map points
``culture/inglehart_welzel_2022.csv``; :meth:`DataBundle.path` reads that name when the current one is absent,
so every reader of the map file accepts both (:data:`DataBundle.LEGACY_NAMES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from clca.errors import DataError
from clca.settings import BUNDLE_MANIFEST, data_dir


class DataBundle:
    """A data bundle directory (see the module docstring for its layout)."""

    WVS_METADATA = "wvs7/question_metadata.json"
    WVS_CODEBOOK = "wvs7/codebook.json"
    WVS_ANSWER_ADJUSTMENT = "wvs7/answer_adjustment.json"
    WVS_DISTRIBUTIONS = "wvs7/country_distributions.jsonl"
    SOTOPIA_ENVIRONMENTS = "sotopia/environment_profiles.jsonl"
    SOTOPIA_AGENTS = "sotopia/agent_profiles.jsonl"
    SOTOPIA_RELATIONSHIPS = "sotopia/relationship_profiles.jsonl"
    SOTOPIA_COMBOS = "sotopia/env_agent_combo_storages.jsonl"
    SOTOPIA_ENV_SUBSETS = "sotopia/env_subsets.json"
    SOTOPIA_NORMS = "sotopia/sotopia_pi_inspirational_prompts.csv"
    HOFSTEDE = "culture/hofstede_2015.csv"
    INGLEHART_WELZEL = "culture/inglehart_welzel.csv"
    #: the map file's name in older bundles (``../shared/data``, earlier pulls), read when the new one is absent
    INGLEHART_WELZEL_LEGACY = "culture/inglehart_welzel_2022.csv"
    README = "README.md"
    MANIFEST = BUNDLE_MANIFEST

    #: the bundle's data files, in the order ``clca data pull`` builds them
    FILES: tuple[str, ...] = (
        WVS_METADATA,
        WVS_CODEBOOK,
        WVS_ANSWER_ADJUSTMENT,
        WVS_DISTRIBUTIONS,
        SOTOPIA_ENVIRONMENTS,
        SOTOPIA_AGENTS,
        SOTOPIA_RELATIONSHIPS,
        SOTOPIA_COMBOS,
        SOTOPIA_ENV_SUBSETS,
        SOTOPIA_NORMS,
        HOFSTEDE,
        INGLEHART_WELZEL,
    )
    #: the Sotopia files the seed scenarios and norms come from
    SOTOPIA_INPUTS: tuple[str, ...] = (
        SOTOPIA_ENVIRONMENTS,
        SOTOPIA_AGENTS,
        SOTOPIA_COMBOS,
        SOTOPIA_RELATIONSHIPS,
        SOTOPIA_NORMS,
    )
    #: the files a pipeline run reads, hashed into its manifest
    RUN_INPUTS: tuple[str, ...] = (WVS_DISTRIBUTIONS, HOFSTEDE, INGLEHART_WELZEL, *SOTOPIA_INPUTS)
    #: older names of a file, tried in order when the file is absent under its current name
    LEGACY_NAMES: ClassVar[Mapping[str, tuple[str, ...]]] = {INGLEHART_WELZEL: (INGLEHART_WELZEL_LEGACY,)}

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def current(cls) -> DataBundle:
        """The bundle in use (:func:`clca.settings.data_dir`; a one-line error when there is none)."""
        return cls(data_dir())

    def __repr__(self) -> str:
        return f"DataBundle({str(self.root)!r})"

    def __truediv__(self, rel: str) -> Path:
        """The path of ``rel`` in the bundle, whether or not it exists (for optional files; see :meth:`path`)."""
        return self.path(rel)

    def path(self, rel: str) -> Path:
        """Where ``rel`` is in this bundle: under its name, else under an older name that exists
        (:data:`LEGACY_NAMES`), else under its name (a path that does not exist). The one place that decides."""
        path = self.root / rel
        if path.exists():
            return path
        for old in self.LEGACY_NAMES.get(rel, ()):
            if (self.root / old).exists():
                return self.root / old
        return path

    def file(self, rel: str) -> Path:
        """The path of ``rel`` in the bundle; a one-line :class:`DataError` naming it when it is missing."""
        path = self.path(rel)
        if not path.exists():
            old = "".join(f" or, in an older bundle, {o}" for o in self.LEGACY_NAMES.get(rel, ()))
            raise DataError(
                f"data file {path} is missing.",
                fix=f"check that {self.root} is a complete clca data bundle (it needs {rel}{old}); "
                "`clca data pull` builds one.",
            )
        return path

    def run_input_paths(self) -> list[Path]:
        """The files a pipeline run reads (:data:`RUN_INPUTS`), each where this bundle has it (:meth:`path`)."""
        return [self.path(rel) for rel in self.RUN_INPUTS]

    # ------------------------------------------------------------------------------------------- files
    @property
    def wvs_metadata(self) -> Path:
        return self.file(self.WVS_METADATA)

    @property
    def wvs_codebook(self) -> Path:
        return self.file(self.WVS_CODEBOOK)

    @property
    def wvs_answer_adjustment(self) -> Path:
        return self.file(self.WVS_ANSWER_ADJUSTMENT)

    @property
    def wvs_distributions(self) -> Path:
        return self.file(self.WVS_DISTRIBUTIONS)

    @property
    def sotopia_environments(self) -> Path:
        return self.file(self.SOTOPIA_ENVIRONMENTS)

    @property
    def sotopia_agents(self) -> Path:
        return self.file(self.SOTOPIA_AGENTS)

    @property
    def sotopia_relationships(self) -> Path:
        return self.file(self.SOTOPIA_RELATIONSHIPS)

    @property
    def sotopia_combos(self) -> Path:
        return self.file(self.SOTOPIA_COMBOS)

    @property
    def sotopia_env_subsets(self) -> Path:
        return self.file(self.SOTOPIA_ENV_SUBSETS)

    @property
    def sotopia_norms(self) -> Path:
        return self.file(self.SOTOPIA_NORMS)

    @property
    def hofstede(self) -> Path:
        return self.file(self.HOFSTEDE)

    @property
    def inglehart_welzel(self) -> Path:
        """The map points: ``culture/inglehart_welzel.csv``, or the older ``culture/inglehart_welzel_2022.csv``."""
        return self.file(self.INGLEHART_WELZEL)
