"""Records written by the evaluation: one :class:`QuestionResult` per (model, country, style, question)."""

from __future__ import annotations

from typing import Literal

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
    prompts: list[PromptResult]
    model_dist: list[float]  # over options; in generation mode sums to 1 - invalid_share
    invalid_share: float = 0.0
    human_dist: list[float]
    metrics: dict[str, float | None]
