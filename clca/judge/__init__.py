"""The LLM judge and the filter rule (stage 3, ``clca judge``).

- :mod:`clca.judge.config`: the stage's settings (:class:`JudgeConfig`) and the filter rule (:class:`FilterRule`);
- :mod:`clca.judge.stage`: the paper's three questions (quality, culture alignment, meta), their typed answers
  and the stage function :func:`judge_episodes`.
"""

from clca.judge.config import NAMED_RULES, FilterRule, JudgeConfig
from clca.judge.stage import (
    CONFIDENCES,
    PROMPT_VERSION,
    AlignmentAnswer,
    JudgeSummary,
    MetaAnswer,
    QualityAnswer,
    alignment_chat,
    judge_episodes,
    meta_chat,
    normalise_confidence,
    parse_alignment,
    parse_meta,
    parse_quality,
    quality_chat,
    scenario_json,
)

__all__ = [
    "CONFIDENCES",
    "NAMED_RULES",
    "PROMPT_VERSION",
    "AlignmentAnswer",
    "FilterRule",
    "JudgeConfig",
    "JudgeSummary",
    "MetaAnswer",
    "QualityAnswer",
    "alignment_chat",
    "judge_episodes",
    "meta_chat",
    "normalise_confidence",
    "parse_alignment",
    "parse_meta",
    "parse_quality",
    "quality_chat",
    "scenario_json",
]
