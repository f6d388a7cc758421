"""Translation files: the survey questions and prompt styles in another language (``clca translate`` writes
them, ``clca eval`` with ``eval.languages`` reads them; :class:`clca.rundir.TranslationDir` names the files).

One YAML file per language and origin: ``<lang>.machine.yaml`` (written by ``clca translate``: every entry
records its English source and the model that translated it) and ``<lang>.reviewed.yaml`` (written by a
person, optional: its entries win over the machine ones, entry by entry). The styles with a translation in the
CLCA paper's released code ship with clca (status ``released``). :class:`TranslationFile` is the shape of all of
them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: where an entry comes from: a teacher model (``clca translate``), a person, or the paper's released code
TranslationStatus = Literal["machine", "reviewed", "released"]


class QuestionTranslation(BaseModel):
    """One survey question in the file's language: its text and its option labels (as many as the English
    ones, in the same order), with the English source and the model that translated it."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    options: list[str] = Field(min_length=1)
    source_text: str = ""
    source_options: list[str] = Field(default_factory=list)
    model: str = ""
    status: TranslationStatus = "machine"
    prompt: str = ""  # the translation prompt's version (clca.evaluation.translate.PROMPT_VERSION)


class StyleTranslation(BaseModel):
    """One prompt style's templates in the file's language (placeholders such as ``{question}`` kept), with
    the English templates it was made from. ``country``: the country a template names in words instead of
    ``{country}`` (the released templates: "中国", "Deutschland"); it is used for that country only.
    ``source``: where a released or reviewed template comes from."""

    model_config = ConfigDict(extra="forbid")
    system: str | None = None
    user: str = Field(min_length=1)
    answer_instruction: str = ""
    source_system: str | None = None
    source_user: str = ""
    source_answer_instruction: str = ""
    model: str = ""
    status: TranslationStatus = "machine"
    prompt: str = ""
    country: str = ""
    source: str = ""


class TranslationFile(BaseModel):
    """A translation file: its language code (``zh``, ``de``, ``ja``, ``es``, ...), questions by id and styles by
    name."""

    model_config = ConfigDict(extra="forbid")
    language: str = Field(min_length=2)
    questions: dict[str, QuestionTranslation] = Field(default_factory=dict)
    styles: dict[str, StyleTranslation] = Field(default_factory=dict)
