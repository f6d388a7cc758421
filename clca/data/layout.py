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
      culture/inglehart_welzel_2022.csv         Inglehart-Welzel map points (2022)
      README.md                                 terms and citations (written by ``clca data pull``)
      bundle_manifest.json                      sources and sha256 (only in a pulled bundle)

Where the bundle is comes from :mod:`clca.settings` (:func:`~clca.settings.data_dir`). A missing file is a
one-line :class:`DataError` naming the file and the bundle it should be in.
"""

from __future__ import annotations

from pathlib import Path

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
    INGLEHART_WELZEL = "culture/inglehart_welzel_2022.csv"
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

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def current(cls) -> DataBundle:
        """The bundle in use (:func:`clca.settings.data_dir`; a one-line error when there is none)."""
        return cls(data_dir())

    def __repr__(self) -> str:
        return f"DataBundle({str(self.root)!r})"

    def __truediv__(self, rel: str) -> Path:
        """The path of ``rel`` in the bundle, whether or not it exists (for optional files)."""
        return self.root / rel

    def file(self, rel: str) -> Path:
        """The path of ``rel`` in the bundle; a one-line :class:`DataError` naming it when it is missing."""
        path = self.root / rel
        if not path.exists():
            raise DataError(
                f"data file {path} is missing.",
                fix=f"check that {self.root} is a complete clca data bundle (it needs {rel}).",
            )
        return path

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
        return self.file(self.INGLEHART_WELZEL)
