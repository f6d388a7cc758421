"""Survey evaluation: prompt styles, option scoring / answer generation, metrics, aggregation."""

from __future__ import annotations

from clca.evaluation.runner import EvalConfig, EvalResult, aggregate, evaluate, load_survey

__all__ = ["EvalConfig", "EvalResult", "aggregate", "evaluate", "load_survey"]
