"""Every record that crosses a stage boundary, as a pydantic model (the one place their shapes are defined).

=================================  =========================================================  ====================
file in a run directory            model                                                      written by
=================================  =========================================================  ====================
scenarios.jsonl                    :class:`Scenario`                                          clca scenarios
scenario_failures.jsonl            :class:`ScenarioFailure`                                   clca scenarios
episodes.jsonl                     :class:`Episode` (finished only; :class:`LiveEpisode` in    clca simulate
                                   the checkpoint)
judgements.jsonl                   :class:`Judgement`                                         clca judge
intents.jsonl                      :class:`Intent`                                            clca intents
leakage.jsonl                      :class:`LeakageRecord`                                     clca stats
stats.json                         :class:`RunStats`                                          clca stats
mix/<variant>/mix_stats.json       :class:`MixStats`                                          clca mix
adapters/<variant>/train_result.json  :class:`TrainResult`                                    clca train
eval/<tag>/per_question.jsonl      :class:`QuestionResult`                                    clca eval
eval/<tag>/calibration.jsonl       :class:`CalibrationRecord`                                 clca eval
eval/<tag>/metrics.json            :class:`EvalMetrics`                                       clca eval
report/before_after.json           :class:`BeforeAfter`                                       clca report
translations/<lang>.*.yaml         :class:`TranslationFile`                                   clca translate
=================================  =========================================================  ====================

Where each file lives: :mod:`clca.rundir` (the layout owner). Records depend on nothing else in clca, so every
layer can read them. Add fields with defaults rather than renaming: run directories written by older versions
must load.
"""

from clca.records.conversations import (
    GENERIC,
    RELATIONSHIPS,
    Action,
    AnyRecord,
    Character,
    CheckpointEntry,
    Confidence,
    Episode,
    Intent,
    Judgement,
    LeakageRecord,
    LiveEpisode,
    Record,
    Relationship,
    Scenario,
    ScenarioFailure,
    StopReason,
    Turn,
    normalise_relationship,
)
from clca.records.evaluation import (
    CalibrationRecord,
    CalibrationSummary,
    EvalMetrics,
    MetricGroup,
    MetricSummary,
    PromptResult,
    QuestionResult,
    result_id,
)
from clca.records.report import (
    AdapterRef,
    Analysis,
    BeforeAfter,
    CellEstimate,
    CheckVerdict,
    Estimate,
    MatrixRow,
    ProtocolCheck,
    Reproduction,
    ReproductionRow,
    TableRow,
    Verdict,
)
from clca.records.stats import CultureStats, LeakageSummary, RunStats
from clca.records.training import MixResult, MixStats, TrainResult
from clca.records.translation import (
    QuestionTranslation,
    StyleTranslation,
    TranslationFile,
    TranslationStatus,
)

__all__ = [
    "GENERIC",
    "RELATIONSHIPS",
    "Action",
    "AdapterRef",
    "Analysis",
    "AnyRecord",
    "BeforeAfter",
    "CalibrationRecord",
    "CalibrationSummary",
    "CellEstimate",
    "Character",
    "CheckVerdict",
    "CheckpointEntry",
    "Confidence",
    "CultureStats",
    "Episode",
    "Estimate",
    "EvalMetrics",
    "Intent",
    "Judgement",
    "LeakageRecord",
    "LeakageSummary",
    "LiveEpisode",
    "MatrixRow",
    "MetricGroup",
    "MetricSummary",
    "MixResult",
    "MixStats",
    "PromptResult",
    "ProtocolCheck",
    "QuestionResult",
    "QuestionTranslation",
    "Record",
    "Relationship",
    "Reproduction",
    "ReproductionRow",
    "RunStats",
    "Scenario",
    "ScenarioFailure",
    "StopReason",
    "StyleTranslation",
    "TableRow",
    "TrainResult",
    "TranslationFile",
    "TranslationStatus",
    "Turn",
    "Verdict",
    "normalise_relationship",
    "result_id",
]
