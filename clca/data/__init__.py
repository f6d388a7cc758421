"""Data-bundle readers: WVS wave-7 distributions, GlobalOpinionQA CSVs, WorldValuesBench respondents, Sotopia."""

from __future__ import annotations

from clca.data.survey import Survey, SurveyItem, parse_question_spec, resolve_countries

__all__ = ["Survey", "SurveyItem", "parse_question_spec", "resolve_countries"]
