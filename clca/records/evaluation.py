"""What the evaluation writes into an evaluation folder (:class:`clca.rundir.EvalDir`): one
:class:`QuestionResult` per (model, country, style, question) in ``per_question.jsonl``, the sampling check's
:class:`CalibrationRecord` s in ``calibration.jsonl``, and the aggregates in ``metrics.json`` (:class:`EvalMetrics`,
with a :class:`ParserSummary` per model tag that generated answers).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def result_id(model_tag: str, country: str, style: str, qid: str) -> str:
    """The stable record key ``{model_tag}|{country}|{style}|{qid}``."""
    return f"{model_tag}|{country}|{style}|{qid}"


class PromptResult(BaseModel):
    """One prompt of a question (one per persona in persona mode, else exactly one)."""

    model_config = ConfigDict(extra="forbid")
    messages: list[dict[str, str]]
    persona_id: str | None = None
    answer_prefix: str = ""  # text scored before the option (the rationale + "Answer: " in reasoning styles)
    option_logprobs: list[float] | None = None  # log-prob mode: log P(reply gives option k), per option
    format_mass: float | None = (
        None  # log-prob mode: P(the reply gives any option) = sum_k exp(option_logprobs)
    )
    uncovered: float = 0.0  # log-prob mode: mass the scoring route could not attribute (server top-k limits)
    distribution: list[float]  # this prompt's distribution over the options
    generations: list[str] = Field(default_factory=list)  # raw texts (generation mode, or rationale)
    parsed: list[int | None] = Field(default_factory=list)  # parsed codes per generation (None = invalid)
    # the other parser's reading of each generation (QuestionResult.parser read `parsed`); empty before it existed
    parsed_other: list[int | None] = Field(default_factory=list, exclude_if=lambda v: not v)
    respondent_answer: int | None = None  # persona mode: the respondent's own answer code


class QuestionResult(BaseModel):
    """Everything needed to recheck every number of one (model, country, style, question)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    model_tag: str
    model_spec: str
    model_fingerprint: str = ""
    survey: str
    country: str
    style: str
    qid: str
    question: str
    options: list[str]
    codes: list[int]
    ordinal: bool
    mode: Literal["logprob", "generate"]
    # generation mode: the parser behind `parsed` ("paper" or "clca"); "" in log-prob mode and in older records
    parser: str = Field(default="", exclude_if=lambda v: not v)
    # a country evaluated in another language (eval.languages): its code ("" for English, left out) and where the
    # translated question and style come from ({"question": "machine: <file> (<model>)", "style": ...})
    language: str = Field(default="", exclude_if=lambda v: not v)
    translation: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)
    prompts: list[PromptResult]
    model_dist: list[float]  # over options; in generation mode sums to 1 - invalid_share
    invalid_share: float = 0.0
    human_dist: list[float]
    metrics: dict[str, float | None]


class CalibrationRecord(BaseModel):
    """The sampling check of one question (``id`` as its :class:`QuestionResult`)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    model_tag: str
    samples: int  # answers sampled (temperature 1), over all prompts of the question
    valid: int  # of which parsed to an option
    unparseable_share: float
    sampled: list[float]  # histogram of the valid sampled answers, over the options
    scored: list[float]  # the scored distribution (the record's model_dist)
    jsd: float | None  # JS distance (base 2) between the sampled histogram and the scored distribution
    jsd_noise: float | None  # expected JS distance of a histogram of `valid` draws from `scored` itself


class MetricSummary(BaseModel):
    """A metric's mean over a group's questions with its bootstrap CI (``None`` when no question has it)."""

    model_config = ConfigDict(extra="forbid")
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


class MetricGroup(BaseModel):
    """The aggregates of one (model tag, country, style); country ``ALL`` = over every country."""

    model_config = ConfigDict(extra="forbid")
    model_tag: str
    country: str
    style: str
    n_questions: int
    metrics: dict[str, MetricSummary]
    spearman_expected: float | None


class CalibrationSummary(BaseModel):
    """Means of the sampling check of one model tag."""

    model_config = ConfigDict(extra="forbid")
    questions: int
    mean_jsd_sampled_vs_scored: float | None
    mean_jsd_sampling_noise: float | None
    mean_unparseable_share: float


class ParserSummary(BaseModel):
    """Which parser read one model tag's generated answers, and how often the other parser reads them
    differently (over the answers whose records carry both readings)."""

    model_config = ConfigDict(extra="forbid")
    parser: str  # the parser behind the records' `parsed` ("paper", "clca"; several joined by "+")
    other: str  # the parser behind `parsed_other`
    answers: int  # generated answers read by both
    disagreements: int  # of which the two parsers read differently (another code, or one of them none)
    disagreement_share: float | None  # disagreements / answers
    unchecked: int = 0  # generated answers of older records, read by one parser only


class EvalMetrics(BaseModel):
    """``metrics.json``: the definitions, each model tag's evaluation settings, the aggregates of every record
    in the folder, notes, and the calibration summary when the sampling check ran."""

    model_config = ConfigDict(extra="forbid")
    metric_definitions: dict[str, str]
    configs: dict[str, Any]
    groups: list[MetricGroup]
    n_records: int
    notes: list[str]
    calibration: dict[str, CalibrationSummary] | None = Field(default=None, exclude_if=lambda v: v is None)
    # per model tag with generated answers: the parser that scored them and the two parsers' disagreement
    parsers: dict[str, ParserSummary] | None = Field(default=None, exclude_if=lambda v: v is None)

    def group(self, model_tag: str, country: str, style: str) -> MetricGroup | None:
        """The group of (model tag, country, style), ``None`` when there is none."""
        return next(
            (g for g in self.groups if (g.model_tag, g.country, g.style) == (model_tag, country, style)), None
        )
