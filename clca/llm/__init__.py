"""The LLM interface (see :mod:`clca.llm.base`) and its backends."""

from clca.llm.base import Backend, Chat, GenerationParams, Message, ScoreRequest, ScoreResult

__all__ = ["Backend", "Chat", "GenerationParams", "Message", "ScoreRequest", "ScoreResult"]
