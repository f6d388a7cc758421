"""Data-bundle readers: WVS wave-7 distributions, GlobalOpinionQA CSVs, WorldValuesBench respondents, Sotopia.

:class:`~clca.data.layout.DataBundle` names the bundle's files; :mod:`clca.data.bundle` builds a bundle
from its pinned public sources; :func:`~clca.data.editions.inglehart_welzel_edition` says which edition of the
Inglehart–Welzel map points a bundle holds.
"""

from __future__ import annotations

from clca.data.editions import MapEdition, inglehart_welzel_edition
from clca.data.layout import DataBundle
from clca.data.survey import Survey, SurveyItem, parse_question_spec, resolve_countries
from clca.data.wvs import WvsRow, read_wvs_rows

__all__ = [
    "DataBundle",
    "MapEdition",
    "Survey",
    "SurveyItem",
    "WvsRow",
    "inglehart_welzel_edition",
    "parse_question_spec",
    "read_wvs_rows",
    "resolve_countries",
]
