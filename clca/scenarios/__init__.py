"""Culture-adapted social scenarios (CLCA's scenario step): ``clca scenarios``.

Sources (``ScenariosConfig.source``):

``adapt`` (the paper's first source)
    The teacher rewrites Sotopia seeds (:mod:`clca.data.sotopia`) so that they are believable in the culture.
    Names first (default): step 1 asks only for two new names of the culture (placeholders such as "John Doe"
    and the source names are rejected and re-asked with a fresh prompt naming the rejects); the seed is
    renamed in code; step 2 asks for the adaptation of the renamed scenario, so a model that copies the
    scenario back cannot keep a source name. ``names_first: false``: one prompt for everything, as in the
    paper. The reply must be the same JSON with every field filled and no source name left anywhere; an
    invalid reply gets a repair turn quoting the problem.
``norms`` (the paper's second source)
    The teacher writes a NEW scenario set in the culture around one social norm or situation of Sotopia-π's
    inspirational prompts, with the same schema, validation and retries; the norm is kept as provenance.
``both``
    ``norm_share`` of each culture's scenarios from norms, the rest adapted (the paper used both).
``seeds``
    The seeds as they are, tagged with the culture (no LLM).

- :mod:`clca.scenarios.config`: the stage's settings (:class:`ScenariosConfig`);
- :mod:`clca.scenarios.names`: the names step (ask, check, rename);
- :mod:`clca.scenarios.adapt`: the adaptation prompts (``adapt-paper-v1``, ``adapt-v2``) and their checks;
- :mod:`clca.scenarios.norms`: norm-based scenarios (``norm-v1``);
- :mod:`clca.scenarios.ids`: the record id rule (:func:`scenario_id`);
- :mod:`clca.scenarios.stage`: the batched, resumable stage (:func:`make_scenarios`).
"""

from clca.scenarios.adapt import (
    NAMES_FIRST_PROMPT_VERSION,
    PROMPT_VERSION,
    AdaptedCharacter,
    AdaptedScenario,
    adaptation_chat,
    changed_fields,
    paper_adaptation_chat,
    repair_chat,
    scenario_payload,
    validate_adaptation,
)
from clca.scenarios.config import ScenariosConfig
from clca.scenarios.ids import scenario_id
from clca.scenarios.names import PLACEHOLDER_NAMES, names_chat, parse_names, rename, source_names
from clca.scenarios.norms import (
    NORM_PROMPT_VERSION,
    NormScenario,
    norm_chat,
    norm_record_id,
    pick_norms,
    validate_norm_scenario,
)
from clca.scenarios.stage import ScenarioSummary, make_control_scenarios, make_scenarios, split_counts

__all__ = [
    "NAMES_FIRST_PROMPT_VERSION",
    "NORM_PROMPT_VERSION",
    "PLACEHOLDER_NAMES",
    "PROMPT_VERSION",
    "AdaptedCharacter",
    "AdaptedScenario",
    "NormScenario",
    "ScenarioSummary",
    "ScenariosConfig",
    "adaptation_chat",
    "changed_fields",
    "make_control_scenarios",
    "make_scenarios",
    "names_chat",
    "norm_chat",
    "norm_record_id",
    "paper_adaptation_chat",
    "parse_names",
    "pick_norms",
    "rename",
    "repair_chat",
    "scenario_id",
    "scenario_payload",
    "source_names",
    "split_counts",
    "validate_adaptation",
    "validate_norm_scenario",
]
