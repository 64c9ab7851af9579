"""The model zoo: every model is a backbone (``[B, leads, samples] -> [B, features]``) plus a head.

>>> model = create_model("inception1d", n_leads=8, n_outputs=4)
>>> model_stats(model, n_leads=8, n_samples=5000)["params"] > 0
True

Importing this package registers every family (one module each).
"""

from ecgcore.models import (  # noqa: F401  (each module registers its models)
    cnn,
    cnn2d,
    cnn_bilstm_attention,
    concat,
    fusion,
    inception1d,
    resnet1d,
    rnn,
    vision,
    vit1d,
    xresnet1d,
)
from ecgcore.models.base import Backbone, ECGModel, Head, LayerGroup
from ecgcore.models.concat import ConcatBackbone
from ecgcore.models.registry import (
    ModelInfo,
    create_model,
    example_input,
    list_models,
    model_efficiency,
    model_stats,
    register,
)

__all__ = [
    "Backbone",
    "ConcatBackbone",
    "ECGModel",
    "Head",
    "LayerGroup",
    "ModelInfo",
    "create_model",
    "example_input",
    "list_models",
    "model_efficiency",
    "model_stats",
    "register",
]
