"""Per-utterance intent labelling (stage 4, ``clca intents``).

- :mod:`clca.intents.config`: the stage's settings (:class:`IntentsConfig`);
- :mod:`clca.intents.stage`: the paper's prompts, the ``INTENT:`` parser, the cultural-context heuristic and the
  stage function :func:`label_intents`.
"""

from clca.intents.config import IntentsConfig
from clca.intents.stage import (
    CULTURAL_PATTERNS,
    PROMPT_VERSION,
    IntentSummary,
    intent_chat,
    intent_system_prompt,
    is_cultural,
    label_intents,
    parse_intent,
)

__all__ = [
    "CULTURAL_PATTERNS",
    "PROMPT_VERSION",
    "IntentSummary",
    "IntentsConfig",
    "intent_chat",
    "intent_system_prompt",
    "is_cultural",
    "label_intents",
    "parse_intent",
]
