"""The evaluation's settings: how the survey is asked and scored (:class:`EvalSettings`, the ``eval:`` section
of a run config and the options of ``clca eval``) and what one evaluation covers (:class:`EvalConfig`: the
settings plus the output folder, the model's tag, the countries and seeds)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clca.errors import ClcaError

PAPER_STYLES = ["paper_persona", "paper_cultural"]
#: the languages of the CLCA paper's multilingual evaluation (its §6.4: Chinese, German, Japanese, Spanish (Mexico))
PAPER_LANGUAGES = ["zh", "de", "ja", "es"]
#: a language code: ISO 639-1/-3, optionally with a region or script subtag (``zh``, ``es-mx``, ``zh-hant``)
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")
#: the code that means "no translation" in ``eval.languages``
ENGLISH = "en"


def parse_languages(value: object) -> object:
    """``eval.languages`` from the CLI's ``"China=zh,Germany=de"`` form (a mapping passes through)."""
    if not isinstance(value, str):
        return value
    out: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        country, sep, code = part.partition("=")
        if not sep or not country.strip() or not code.strip():
            raise ValueError(f'{part!r} is not of the form country=code (e.g. "China=zh,Germany=de")')
        out[country.strip()] = code.strip()
    return out


def check_language(code: str) -> str:
    """A language code, lower case; ``ValueError`` for anything else."""
    code = code.strip().lower().replace("_", "-")
    if not LANGUAGE_CODE.match(code):
        raise ValueError(f"{code!r} is not a language code such as zh, de, ja, es")
    return code


def known_styles(styles: list[str], style_files: list[Path], example: str) -> list[str]:
    """``styles`` without repeats, each one known (built in, or defined in ``style_files``); else a ValueError
    naming the problem (validators of :class:`EvalSettings` and :class:`TranslateSettings`)."""
    from clca.evaluation.styles import resolve_styles

    if not styles:
        raise ValueError(f"list at least one prompting style, e.g. {example}")
    out = list(dict.fromkeys(styles))
    try:
        resolve_styles(out, [str(p) for p in style_files])
    except ClcaError as exc:
        raise ValueError(str(exc).split(" Fix:")[0]) from None
    return out


def _no_languages(value: dict[str, str]) -> bool:
    return not value


class EvalSettings(BaseModel):
    """How the survey is asked and scored (the ``eval:`` section; :class:`EvalConfig` adds
    where and for which model).

    ``protocol``: ``logprob`` (clca's default: the styles' answer distributions from option log-probs) or
    ``paper`` (the CLCA paper's protocol: the persona prompt of its Table 20 for ``personas`` respondents per
    culture from WorldValuesBench files (``respondents``) and its cultural-prompting baseline, greedy generation,
    answers read by the released code's parser (``parser: paper``) with a safeguard bucket; styles
    ``paper_persona`` and ``paper_cultural``, mode ``generate``, temperature 0, one sample, unless set otherwise).
    Without respondent files a run stops before any work, or uses the ``logprob`` protocol when
    ``fallback_to_logprob`` is true.
    """

    model_config = ConfigDict(extra="forbid")

    protocol: Literal["logprob", "paper"] = Field(
        default="logprob",
        description="logprob (option log-probs) or paper (persona prompts, greedy, parsed).",
    )
    fallback_to_logprob: bool = Field(
        default=False,
        description="protocol paper without respondent files: use the logprob protocol instead.",
    )

    questions: str = Field(
        default="Q1-Q41,Q43-Q45", description='Question ids and ranges: "Q1-Q41,Q43-Q45", "Q7,Q10", "all".'
    )
    styles: list[str] = Field(
        default_factory=lambda: ["plain", "cultural"],
        description="Prompting styles: plain, cultural, persona, anthropological, or the name of a style in --style-files.",
    )
    style_files: list[Path] = Field(default_factory=list, description="Extra style YAML files.")
    mode: Literal["logprob", "generate"] = Field(
        default="logprob", description="logprob (option scoring) or generate (parse answers, like the paper)."
    )
    survey: str = Field(
        default="wvs7", description="wvs7 (the data bundle), a WVS-format .jsonl or a GlobalOpinionQA CSV."
    )
    respondents: Path | None = Field(
        default=None,
        description="WorldValuesBench dir (full_value_qa.tsv, full_demographic_qa.tsv) for persona.",
    )
    personas: int = Field(
        default=20, ge=1, le=100_000, description="Respondents sampled per country (persona style)."
    )
    samples: int = Field(default=1, ge=1, le=10_000, description="Generation mode: answers per prompt.")
    parser: Literal["paper", "clca"] | None = Field(
        default=None,
        description="Generation mode: the answer parser, paper (the released code's, strict) or clca (never reads "
        "an echoed scale or question number); default paper under protocol paper, clca otherwise.",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Generation mode: 0 = greedy.")
    max_new_tokens: int = Field(default=16, ge=1, le=4096, description="Generation mode: tokens per answer.")
    bootstrap: int = Field(default=1000, ge=10, le=1_000_000, description="Bootstrap resamples for the CIs.")
    server: str | None = Field(
        default=None,
        description="Evaluate through an OpenAI-compatible server (clca run): openai:<served base>@<url>; each "
        "adapter is asked for by its model tag (vLLM --lora-modules <tag>=<adapter dir>, or a merged model "
        "served under that name).",
    )

    @field_validator("server")
    @classmethod
    def _server(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from clca.llm.spec import served_spec

        try:
            served_spec(v, "base")
        except ClcaError as exc:
            raise ValueError(exc.message) from None
        return v

    languages: dict[str, str] = Field(
        default_factory=dict,
        description='Also evaluate these countries in a language: "China=zh,Germany=de" (country=code; en: English '
        "only). The translated styles are named <style>@<code>; needs translation files (--translations).",
        exclude_if=_no_languages,
    )
    translations: Path | None = Field(
        default=None,
        description="Folder of translation files (<code>.machine.yaml from `clca translate`, <code>.reviewed.yaml "
        "yours); a run config defaults to run_dir/translations.",
        exclude_if=lambda v: v is None,
    )

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, v: object) -> object:
        return parse_languages(v)

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for country, code in v.items():
            if not country.strip():
                raise ValueError("a country name in eval.languages is empty")
            lang = check_language(code)
            if lang != ENGLISH:  # English is what every country is evaluated in anyway
                out[country.strip()] = lang
        return out

    check_sampling: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="Log-prob mode: also sample N answers per prompt (temperature 1) and compare their histogram "
        "with the scored distribution (calibration.jsonl).",
    )

    @field_validator("questions")
    @classmethod
    def _questions(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('empty question selection; write "all" for every question')
        return v.strip()

    @field_validator("styles", mode="before")
    @classmethod
    def _split_styles(cls, v: object) -> object:
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _known_styles(self) -> EvalSettings:
        if self.protocol == "paper":
            given = self.model_fields_set
            if "mode" in given and self.mode != "generate":
                raise ValueError("the paper protocol generates answers (mode: generate)")
            self.mode = "generate"
            if "styles" not in given:
                self.styles = list(PAPER_STYLES)
            if "temperature" not in given:
                self.temperature = 0.0
            if "samples" not in given:
                self.samples = 1
            if "paper_persona" not in self.styles:
                raise ValueError("the paper protocol needs the paper_persona style")

        if self.parser is None:
            from clca.evaluation.parsers import default_parser

            self.parser = default_parser(self.protocol)
        self.styles = known_styles(self.styles, self.style_files, "[plain, cultural]")
        return self


class TranslateSettings(BaseModel):
    """What ``clca translate`` translates (the ``translate`` stage of a run with ``eval.languages``): the survey
    questions (text and option labels) and the prompt styles' templates, into each language, by a teacher model.
    Styles with a translation in the CLCA paper's released code (``paper_persona`` in zh, de, ja, es) are taken
    from it unless ``include_released`` asks the model too."""

    model_config = ConfigDict(extra="forbid")

    languages: list[str] = Field(
        default_factory=lambda: list(PAPER_LANGUAGES),
        description="Language codes to translate into: zh, de, ja, es (the paper's), or any other code.",
    )
    questions: str = Field(
        default="Q1-Q41,Q43-Q45", description='Question ids and ranges: "Q1-Q41,Q43-Q45", "Q7,Q10", "all".'
    )
    styles: list[str] = Field(
        default_factory=lambda: list(PAPER_STYLES),
        description="Prompt styles whose templates to translate (built-in names or names in --style-files).",
    )
    style_files: list[Path] = Field(default_factory=list, description="Extra style YAML files.")
    survey: str = Field(
        default="wvs7", description="wvs7 (the data bundle), a WVS-format .jsonl or a GlobalOpinionQA CSV."
    )
    include_released: bool = Field(
        default=False,
        description="Also ask the model for styles the paper's released code translated (they are used "
        "only where no reviewed entry exists and the country is theirs).",
    )
    max_retries: int = Field(default=2, ge=0, le=10, description="Re-asks of an unusable reply.")
    max_new_tokens: int = Field(default=1024, ge=16, le=16_384, description="Tokens per translation reply.")

    @field_validator("languages", "styles", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @field_validator("languages")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        codes = [check_language(c) for c in v]
        if ENGLISH in codes:
            raise ValueError("en is the language of the sources; list the languages to translate into")
        if not codes:
            raise ValueError("list at least one language, e.g. zh,de,ja,es")
        return list(dict.fromkeys(codes))

    @field_validator("questions")
    @classmethod
    def _questions(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('empty question selection; write "all" for every question')
        return v.strip()

    @model_validator(mode="after")
    def _known_styles(self) -> TranslateSettings:
        self.styles = known_styles(self.styles, self.style_files, "paper_persona,paper_cultural")
        return self


class EvalConfig(EvalSettings):
    """What to evaluate: the survey settings (:class:`EvalSettings`) plus where, for which model
    (``model_tag``) and countries."""

    out_dir: Path
    model_tag: str = "model"
    countries: list[str] = Field(default_factory=lambda: ["Great Britain", "China", "Germany", "Japan"])
    persona_seed: int = 0
    batch_size: int = Field(default=16, ge=1, le=4096)
    seed: int = 0
