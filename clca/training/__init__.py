"""Cultural-learning training: build the multi-task data mix, then train one LoRA adapter per culture.

- :mod:`clca.training.config` holds the stages' settings (:class:`~clca.training.config.MixConfig`,
  :class:`~clca.training.config.TrainSection`).
- :mod:`clca.training.mix` turns kept episodes and their intents into a Hugging Face ``DatasetDict``
  (conversational ``messages`` format, both speakers' perspectives plus intent understanding).
- :mod:`clca.training.train` trains a LoRA adapter on that mix with TRL's ``SFTTrainer`` (loss on assistant
  tokens only); :mod:`clca.training.presets` holds the ``paper`` and ``cpu`` settings.
"""
