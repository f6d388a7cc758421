"""Survey loaders: WVS wave-7 country distributions, GlobalOpinionQA CSVs, WorldValuesBench respondents."""

from __future__ import annotations

from clca.data.survey import Survey, SurveyItem, parse_question_spec, resolve_countries

__all__ = ["Survey", "SurveyItem", "parse_question_spec", "resolve_countries"]
