"""Survey evaluation (stage 6, ``clca eval``).

- :mod:`clca.evaluation.config`: the settings (:class:`EvalSettings`, the ``eval:`` section) and one
  evaluation's scope (:class:`EvalConfig`);
- :mod:`clca.evaluation.styles`, :mod:`clca.evaluation.prompts`: prompt styles as data and their rendering;
- :mod:`clca.evaluation.parsers`: reading an option code from a generated answer (the paper's released parser
  and clca's own, ``eval.parser``);
- :mod:`clca.evaluation.ask`: asking the survey (option scoring or generation) into records;
- :mod:`clca.evaluation.calibrate`: the sampling check of log-prob scoring;
- :mod:`clca.evaluation.metrics`, :mod:`clca.evaluation.aggregate`: per-question metrics and their means with
  CIs (``metrics.json``);
- :mod:`clca.evaluation.runner`: :func:`evaluate`, the three in order, resumable.
"""

from __future__ import annotations

from clca.evaluation.aggregate import aggregate
from clca.evaluation.ask import load_survey
from clca.evaluation.config import EvalConfig, EvalSettings
from clca.evaluation.runner import EvalResult, evaluate

__all__ = ["EvalConfig", "EvalResult", "EvalSettings", "aggregate", "evaluate", "load_survey"]
