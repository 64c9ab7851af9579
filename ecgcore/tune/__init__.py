"""Hyperparameter search on Optuna: spaces (:mod:`ecgcore.tune.spaces`) and studies (:mod:`ecgcore.tune.study`)."""

from ecgcore.tune.spaces import PRESETS, Space, Stage, load_space
from ecgcore.tune.study import default_storage, load_studies, run_study

__all__ = ["PRESETS", "Space", "Stage", "default_storage", "load_space", "load_studies", "run_study"]
