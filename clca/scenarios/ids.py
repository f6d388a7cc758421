"""The one rule for scenario record ids (what resume, the role-play and the episodes refer to).

A scenario made for culture ``c`` is ``{slug(c)}-{seed_id}`` when it comes from a Sotopia seed (adapted,
or unadapted under ``source: seeds``) and ``{slug(c)}-norm-{pk}`` when it was written around a norm. The
no-culture control is the seed rule with culture ``generic`` (``generic-{seed_id}``). Ids are stable across
runs, so a rerun skips what ``scenarios.jsonl`` or ``scenario_failures.jsonl`` already holds.
"""

from __future__ import annotations

from clca.culture import slug
from clca.data.sotopia import Norm
from clca.records import Scenario


def scenario_id(culture: str, source: Scenario | Norm) -> str:
    """The record id of the scenario made for ``culture`` (a country, or ``generic``) from ``source`` (a Sotopia
    seed or a norm); see the module doc."""
    if isinstance(source, Norm):
        return f"{slug(culture)}-norm-{source.pk}"
    return f"{slug(culture)}-{source.seed_id}"
