"""The options every stage command shares, as one typed model (:class:`CommonOptions`).

``clca scenarios | simulate | judge | intents | stats | mix | train | eval`` and ``python -m clca.training.train``
take these with the same names, meanings and defaults as the run config: ``--model`` (the stage's model role in
``models:``; its default is that role's default), ``--batch-size`` (``models.batch_size``), ``--seed`` (the
run's ``seed``), ``--cache PATH`` / ``--no-cache`` (``cache``: the LLM call cache file), ``--progress /
--no-progress`` and ``--data-dir`` (``data_dir``). A command uses the fields that mean something for it (a
training has no call cache). Precedence everywhere: an option on the command line beats the environment
(``CLCA_DATA_DIR``), which beats the config file; defaults fill the rest.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

#: the defaults of the model roles (``models:`` in a run config and each stage command's ``--model``)
DEFAULT_TEACHER = "embedded:qwen2.5-coder-0.5b"
DEFAULT_ACTOR = "embedded:smollm2-135m"
DEFAULT_STUDENT = "embedded:smollm2-135m"
#: requests per backend call (``models.batch_size``)
DEFAULT_BATCH_SIZE = 8


class CommonOptions(BaseModel):
    """The shared options of the stage commands (see the module doc)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(default=DEFAULT_STUDENT, description="Model spec (see `clca models list`).")
    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        ge=1,
        le=4096,
        description="Requests per backend call (local: per forward).",
    )
    seed: int = Field(
        default=0, description="The run's seed: sampling, selections and splits derive from it."
    )
    cache: Path | None = Field(
        default=None, description="LLM call cache file (default: <CLCA_CACHE_DIR>/llm_cache.sqlite)."
    )
    no_cache: bool = Field(default=False, description="Do not use the LLM call cache.")
    progress: bool = Field(default=True, description="Show progress (a bar on a terminal, lines in a log).")
    data_dir: Path | None = Field(
        default=None,
        description="The clca data bundle (beats CLCA_DATA_DIR; default: a pulled bundle, then ../shared/data).",
    )

    def call_cache(self) -> Path | bool:
        """What :func:`clca.llm.registry.load_backend` takes as ``cache``: the file, ``True`` (the default file)
        or ``False`` (no cache)."""
        if self.no_cache:
            return False
        return self.cache if self.cache is not None else True
