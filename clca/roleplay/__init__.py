"""Two-agent role-play of culture-adapted scenarios (CLCA / Sotopia format), lock-step batched.

- :mod:`clca.roleplay.config`: the stage's settings (:class:`SimulateConfig`);
- :mod:`clca.roleplay.prompts`: what each agent is told (``roleplay-v3``);
- :mod:`clca.roleplay.parse`: reading a raw output into an act;
- :mod:`clca.roleplay.simulate`: the episode state machine and the lock-step simulation (``clca simulate``).
"""

from clca.roleplay.config import SimulateConfig
from clca.roleplay.parse import ParsedAction, normalize_action, parse_action
from clca.roleplay.prompts import PROMPT_VERSION, build_messages, culture_words
from clca.roleplay.simulate import (
    RETRY_SEED_STEP,
    EpisodeState,
    SimulationSummary,
    apply_output,
    episode_id,
    simulate,
)

__all__ = [
    "PROMPT_VERSION",
    "RETRY_SEED_STEP",
    "EpisodeState",
    "ParsedAction",
    "SimulateConfig",
    "SimulationSummary",
    "apply_output",
    "build_messages",
    "culture_words",
    "episode_id",
    "normalize_action",
    "parse_action",
    "simulate",
]
