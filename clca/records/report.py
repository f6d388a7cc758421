"""``report/before_after.json``: the numbers behind the run report (:class:`BeforeAfter`).

The controls' analysis (:class:`Analysis`, computed by :mod:`clca.report.controls`): per prompting style and
metric a matrix of Δ = adapter − base for every adapter family on every evaluated culture, specificity,
adapter − control and the verdicts; then the Table-2-style rows (:class:`TableRow`) of
:mod:`clca.report.before_after` and the reproduction view (:mod:`clca.report.reproduction`). Every estimate is
an :class:`Estimate` with its crossed-bootstrap CI.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def _absent(value: object) -> bool:
    return value is None


class Estimate(BaseModel):
    """A statistic with its 95% CI (``mean`` ``None``: no estimate; ``ci`` ``None``: too little data for one);
    ``n`` questions, ``seeds`` the most training seeds of a term."""

    model_config = ConfigDict(extra="forbid")
    mean: float | None = None
    ci: list[float] | None = None
    n: int = 0
    seeds: int = 0


class CellEstimate(Estimate):
    """A matrix cell: the estimate plus each seed's mean Δ and their standard deviation (``None`` with one
    seed)."""

    per_seed: list[float]
    seed_sd: float | None


class AdapterRef(BaseModel):
    """One evaluated adapter: its model tag, the culture it was trained on (``generic`` = the no-culture
    control) and its training seed (``None`` when the run trained one seed)."""

    model_config = ConfigDict(extra="forbid")
    tag: str
    trained_on: str
    seed: int | None


class MatrixRow(BaseModel):
    """One adapter family's row of the cross-culture matrix (one style and metric)."""

    model_config = ConfigDict(extra="forbid")
    trained_on: str
    label: str
    cells: dict[str, CellEstimate]  # evaluated culture -> Δ adapter − base
    specificity: Estimate | None = Field(default=None, exclude_if=_absent)  # own − mean of the others
    vs_control: Estimate | None = Field(default=None, exclude_if=_absent)  # own culture: adapter − control


class Verdict(BaseModel):
    """The three answers of a before/after claim for one culture and style, on the primary metric."""

    model_config = ConfigDict(extra="forbid")
    culture: str
    style: str
    metric: str
    improved_over_base: str  # "yes" | "no" | "not shown" | "n/a"
    beyond_control: str
    specific: str
    change: CellEstimate
    vs_control: Estimate | None
    specificity: Estimate | None
    sentence: str


class Analysis(BaseModel):
    """The controls of a run's evaluation (see :func:`clca.report.controls.analyse`)."""

    model_config = ConfigDict(extra="forbid")
    cultures: list[str]
    primary_metric: str
    adapters: list[AdapterRef]
    families: dict[str, list[int | None]]  # trained_on -> the seeds of its adapters
    matrix: dict[str, dict[str, list[MatrixRow]]]  # style -> metric -> rows
    verdicts: list[Verdict]
    method: str


class TableRow(BaseModel):
    """A culture's row of the before/after table (or the ``Average`` row, which has no ``adapted_tags``):
    ``cells`` ``base|<style>|<metric>`` / ``adapted|<style>|<metric>`` (adapted = the mean over the culture's
    own adapters' seeds) and ``change`` ``<style>|<metric>`` (adapted − base with its CI). A row of the
    multilingual table has the ``language`` its prompts were in (``all`` for the average over languages) and
    keys its cells by the English style's name."""

    model_config = ConfigDict(extra="forbid")
    culture: str
    language: str | None = Field(default=None, exclude_if=_absent)
    adapted_tags: list[str] | None = Field(default=None, exclude_if=_absent)
    cells: dict[str, float | None] = Field(default_factory=dict)
    change: dict[str, CellEstimate | Estimate] = Field(default_factory=dict)  # a matrix cell, or the average

    def cell(self, who: str, style: str, metric: str) -> float | None:
        """``who`` (``base`` / ``adapted``) under ``style`` on ``metric``."""
        return self.cells.get(f"{who}|{style}|{metric}")


class ReproductionRow(BaseModel):
    """One published number next to the run's."""

    model_config = ConfigDict(extra="forbid")
    table: str
    metric: str
    culture: str
    run_base: float | None
    paper_base: float | None
    base_diff: float | None
    run_clca: float | None
    paper_clca: float | None
    clca_diff: float | None


#: a protocol check's outcome: the paper's value; a difference that leaves the numbers comparable (a caveat, such as
#: a different actor of the paper's actor's size); a difference that makes them not comparable
CheckVerdict = Literal["match", "caveat", "mismatch"]


class ProtocolCheck(BaseModel):
    """One condition the paper's published numbers depend on (``name``: the config key or aspect, e.g.
    ``train.preset``, ``models.actor``, ``questions``): the paper's value, the run's, and the ``verdict``.
    ``required``: a condition of the comparison (its verdict can be ``mismatch``); the others (personas, scale,
    seeds, ...) can only give caveats. ``note``: what a difference means."""

    model_config = ConfigDict(extra="forbid")
    name: str
    paper: str
    run: str
    verdict: CheckVerdict
    required: bool = True
    note: str = Field(default="", exclude_if=lambda v: not v)

    @property
    def sentence(self) -> str:
        """``name: run (the paper: paper); note``: the line a mismatch or caveat is listed with."""
        return f"{self.name}: {self.run} (the paper: {self.paper})" + (f"; {self.note}" if self.note else "")


class Reproduction(BaseModel):
    """The reproduction view: comparable with the paper's tables or not, caveats, the rows.

    ``checks``: every protocol condition with the paper's and the run's value and its verdict; ``mismatches``:
    the names of those with verdict ``mismatch`` (the view is comparable only when there is none); ``why``: their
    sentences; ``caveats`` (comparable runs): the sentences of the checks with verdict ``caveat``. Files written
    before the checks existed have neither ``checks`` nor ``mismatches`` (they load with empty lists)."""

    model_config = ConfigDict(extra="forbid")
    comparable: bool
    why: list[str] = Field(default_factory=list)
    mismatches: list[str] = Field(default_factory=list)
    caveats: list[str] | None = Field(default=None, exclude_if=_absent)
    model: str | None = None
    rows: list[ReproductionRow] = Field(default_factory=list)
    checks: list[ProtocolCheck] = Field(default_factory=list)


class BeforeAfter(Analysis):
    """The whole ``before_after.json``: the controls, then the before/after table and the reproduction."""

    styles: list[str]  # the English prompt styles of the rows
    rows: list[TableRow]
    average: TableRow
    #: the cultures also evaluated in another language: a row per culture and language (styles <style>@<lang>,
    #: cells keyed by <style>), then their average over languages; empty without eval.languages
    languages: list[TableRow] = Field(default_factory=list, exclude_if=lambda v: not v)
    reproduction: Reproduction | None = Field(default=None, exclude_if=_absent)

    def row(self, culture: str) -> TableRow | None:
        return next((r for r in self.rows if r.culture == culture), None)
