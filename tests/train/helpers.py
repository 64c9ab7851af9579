"""Shared pieces of the trainer tests: tiny configs that train fast on the factories' small folders."""

from __future__ import annotations

from ecgcore.train.config import TrainConfig

#: A small CNN that trains in well under a second per epoch at 100 Hz on ~60 records.
TINY_MODEL = {"model": "cnn", "model_kwargs": {"widths": [16, 16, 32], "head_hidden": 32}}


def tiny_config(data: str, task: str = "regression", **overrides) -> TrainConfig:
    """A regression or classification config that trains fast on the factories' folders."""
    values = dict(task=task, data=data, fs=100.0, epochs=6, batch_size=16, lr=3e-3, **TINY_MODEL)
    values.update(overrides)
    return TrainConfig(**values)
