"""clca: cultural learning-based culture adaptation of language models."""

__version__ = "0.1.0"
