"""Training: :class:`~ecgcore.train.config.TrainConfig`, :func:`~ecgcore.train.trainer.train`,
metrics with trivial baselines, safe checkpoints and the predictor, and data-parallel helpers.

Modules are imported where used (``from ecgcore.train.trainer import train``), so importing the
configuration does not import torch.
"""
