"""``fusion``: one model over several inputs (a signal and an image, or two images), one backbone each.

Input: one tensor per branch, as separate arguments in the order of ``branches`` (``model(signal, chart)``
with ``signal [B, L, S]`` and ``chart [B, 1, H, W]`` for the ``signal+chart`` representation), as the
trainer calls a model with a tuple of inputs.

* ``mode="late"``: each backbone's feature vector, concatenated, into one head (late fusion by
  concatenated embeddings).
* ``mode="intermediate"``: each branch's last feature map is turned into a sequence along time (an
  image's map is averaged over its height: the x axis of a chart, and of a GAF / MTF / RP, is time),
  pooled to ``length`` steps, the sequences concatenated channel-wise and passed through shared
  convolution blocks before pooling and the head, so the branches interact before the decision.

``branches`` are model configs ``{"model": name, "channels": C, **kwargs}``; the first branch's channels
default to ``n_leads``. ``create_model(**model.config)`` rebuilds the same architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ecgcore.models.base import Backbone, ConcatPool1d, ECGModel, Head, LayerGroup, conv_bn_relu
from ecgcore.models.registry import create_model, register

FUSION_MODES: tuple[str, ...] = ("late", "intermediate")


class FusionBackbone(Backbone):
    """Backbones over a tuple of inputs, joined late (features) or at their last feature maps."""

    def __init__(self, backbones: list[Backbone], mode: str, length: int = 16, width: int = 128) -> None:
        super().__init__()
        if mode not in FUSION_MODES:
            raise ValueError(f"fusion mode must be one of {FUSION_MODES}, not {mode!r}")
        self.branches = nn.ModuleList(backbones)
        self.mode = mode
        self.length = int(length)
        if mode == "late":
            self.feature_dim = sum(b.feature_dim for b in backbones)
            self.shared = None
            return
        if any(b.last_conv() is None for b in backbones):
            raise ValueError("intermediate fusion needs every branch to have a convolutional feature map")
        channels = sum(_out_channels(b) for b in backbones)
        self.shared = nn.Sequential(conv_bn_relu(channels, width, 3), conv_bn_relu(width, width, 3))
        self.pool = ConcatPool1d()
        self.feature_dim = 2 * width

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.branches):
            raise ValueError(f"fusion model takes {len(self.branches)} inputs, got {len(inputs)}")
        if self.mode == "late":
            return torch.cat([b(x) for b, x in zip(self.branches, inputs)], dim=1)
        maps: dict[int, torch.Tensor] = {}
        handles = [
            b.last_conv().register_forward_hook(_keeper(maps, i)) for i, b in enumerate(self.branches)
        ]  # hooks live for this call only, so copies and pickles of the model carry none
        try:
            for b, x in zip(self.branches, inputs):
                b(x)
        finally:
            for h in handles:
                h.remove()
        seqs = []
        for i in range(len(self.branches)):
            seq = maps[i].mean(dim=-2) if maps[i].dim() == 4 else maps[i]
            seqs.append(F.adaptive_avg_pool1d(seq, self.length))
        return self.pool(self.shared(torch.cat(seqs, dim=1)))

    def groups(self) -> list[LayerGroup]:
        named = [
            (f"branch{i + 1}.{name}", mods) for i, b in enumerate(self.branches) for name, mods in b.groups()
        ]
        return named + ([("shared", [self.shared])] if self.shared is not None else [])

    def last_conv(self) -> nn.Module | None:
        """The shared convolution (intermediate fusion); ``None`` for late fusion (no joint feature map)."""
        return self.shared


class FusionModel(ECGModel):
    """An :class:`ECGModel` over several inputs: ``model(x1, x2, ...)``."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(*inputs))


def _keeper(maps: dict[int, torch.Tensor], i: int):
    def keep(module: nn.Module, inputs, output: torch.Tensor) -> None:
        maps[i] = output

    return keep


def _out_channels(backbone: Backbone) -> int:
    """Channels of the backbone's last feature map (the last conv / BN layer's width inside it)."""
    width = None
    for module in backbone.last_conv().modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            width = module.out_channels
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            width = module.num_features
        elif isinstance(module, nn.LayerNorm):
            width = module.normalized_shape[0]
    if width is None:
        raise ValueError(f"cannot tell the feature-map width of {type(backbone).__name__}")
    return int(width)


@register(
    "fusion",
    description="Signal + image (or two images) fusion: one backbone per input, late (concatenated "
    "embeddings) or intermediate (shared convolutions over the time-aligned feature maps)",
    reference="Multimodal fusion of the ECG representation study (signal, GAF, MTF, RP, chart)",
)
def fusion(
    n_leads: int,
    n_outputs: int,
    branches: Sequence[dict] = ({"model": "resnet1d_wang"}, {"model": "cnn2d", "channels": 1}),
    mode: str = "late",
    length: int = 16,
    width: int = 128,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``fusion`` (see the module docstring)."""
    if len(branches) < 2:
        raise ValueError("a fusion model needs at least two branches")
    backbones = []
    for i, spec in enumerate(branches):
        spec = dict(spec)
        name = spec.pop("model")
        channels = spec.pop("channels", n_leads if i == 0 else None)
        if channels is None:
            raise ValueError(f"fusion branch {i + 1} ({name}) needs 'channels'")
        backbones.append(create_model(name, int(channels), 1, **spec).backbone)
    backbone = FusionBackbone(backbones, mode, length, width)
    return FusionModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, tuple(head_dropout)))
