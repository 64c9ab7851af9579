"""The representation study's 2D CNNs for GAF / MTF / RP images: AlexNet-style, VGG-style, a small CNN.

``alexnet2d`` (64 x 64 input; defaults)::

    x [B, C, 64, 64]
    -> conv 5x5 b -> ReLU -> maxpool 2          b = base filters (32)
    -> conv 3x3 2b -> ReLU -> maxpool 2
    -> conv 3x3 4b -> ReLU -> conv 3x3 4b -> ReLU -> conv 3x3 8b -> ReLU -> maxpool 2
    -> adaptive avg pool 4x4 -> flatten           [B, 8b * 16]  (backbone ends)
    -> head: Dropout .5 -> Linear -> 4096 -> ReLU -> Dropout .5 -> Linear -> 2048 -> ReLU -> Linear -> outputs

``vgg2d``: blocks of two 3x3 conv-BN-ReLU and a 2x2 max pool (widths base, 2 base, 4 base, 8 base), global
average pool, linear head. ``cnn2d``: three conv-BN-ReLU-maxpool blocks (32, 64, 128), concat pooling,
the 1D models' head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ecgcore.models.base import Backbone, ECGModel, Head, LayerGroup
from ecgcore.models.registry import register


class ConvStack2d(Backbone):
    """Named convolutional blocks, then a pooling that yields the feature vector."""

    def __init__(self, blocks: list[nn.Module], pool: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.pool = pool
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.pool(x)

    def groups(self) -> list[LayerGroup]:
        return [(f"block{i + 1}", [b]) for i, b in enumerate(self.blocks)]

    def last_conv(self) -> nn.Module:
        """The last block (its output is the last ``[B, C, H, W]`` feature map)."""
        return self.blocks[-1]


class DenseHead(nn.Module):
    """AlexNet's classifier: ``(Dropout -> Linear -> ReLU)`` per hidden width, then ``Linear -> outputs``."""

    def __init__(self, n_in: int, hidden: Sequence[int], n_outputs: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        self.layers = nn.Sequential(*layers, nn.Linear(n_in, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _conv(n_in: int, n_out: int, k: int, bn: bool) -> list[nn.Module]:
    return [
        nn.Conv2d(n_in, n_out, k, padding=k // 2, bias=not bn),
        *([nn.BatchNorm2d(n_out)] if bn else []),
        nn.ReLU(),
    ]


@register(
    "alexnet2d",
    description="AlexNet-style CNN for 64x64 GAF/MTF/RP images (widths grow from a base; dense 4096-2048 head)",
    reference="Krizhevsky et al., ImageNet classification with deep CNNs, NeurIPS 2012; representation study "
    "of ECG images (GAF/MTF/RP of leads I, II, V2 on PTB-XL)",
)
def alexnet2d(
    n_leads: int,
    n_outputs: int,
    base: int = 32,
    dense: Sequence[int] = (4096, 2048),
    dropout: float = 0.5,
) -> ECGModel:
    """Build ``alexnet2d`` (see the module docstring)."""
    b = int(base)
    blocks: list[nn.Module] = [
        nn.Sequential(*_conv(n_leads, b, 5, False), nn.MaxPool2d(2)),
        nn.Sequential(*_conv(b, 2 * b, 3, False), nn.MaxPool2d(2)),
        nn.Sequential(
            *_conv(2 * b, 4 * b, 3, False), *_conv(4 * b, 4 * b, 3, False), *_conv(4 * b, 8 * b, 3, False)
        ),
    ]
    pool = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.AdaptiveAvgPool2d(4), nn.Flatten(1))
    backbone = ConvStack2d(blocks, pool, 8 * b * 16)
    return ECGModel(backbone, DenseHead(backbone.feature_dim, tuple(dense), n_outputs, dropout))


@register(
    "vgg2d",
    description="VGG-style CNN for images (blocks of two 3x3 conv-BN-ReLU + max pool, global average pool)",
    reference="Simonyan & Zisserman, Very deep convolutional networks, ICLR 2015",
)
def vgg2d(n_leads: int, n_outputs: int, base: int = 32, n_blocks: int = 4, dropout: float = 0.5) -> ECGModel:
    """Build ``vgg2d`` (see the module docstring)."""
    widths = [int(base) * 2**i for i in range(int(n_blocks))]
    ins = [n_leads, *widths[:-1]]
    blocks: list[nn.Module] = [
        nn.Sequential(*_conv(a, w, 3, True), *_conv(w, w, 3, True), nn.MaxPool2d(2, ceil_mode=True))
        for a, w in zip(ins, widths)
    ]
    backbone = ConvStack2d(blocks, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)), widths[-1])
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, hidden=None, dropout=(0.0, dropout)))


class ConcatPool2d(nn.Module):
    """Global max and average pooling, concatenated: ``[B, C, H, W] -> [B, 2C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.amax(dim=(-2, -1)), x.mean(dim=(-2, -1))], dim=1)


@register(
    "cnn2d",
    description="Small custom 2D CNN (3 conv-BN-ReLU-maxpool blocks, concat pooling head)",
    reference="Generic small CNN baseline of the representation study",
)
def cnn2d(
    n_leads: int,
    n_outputs: int,
    widths: Sequence[int] = (32, 64, 128),
    kernel_size: int = 3,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``cnn2d`` (see the module docstring)."""
    ins = [n_leads, *widths[:-1]]
    blocks: list[nn.Module] = [
        nn.Sequential(*_conv(a, w, kernel_size, True), nn.MaxPool2d(2, ceil_mode=True))
        for a, w in zip(ins, widths)
    ]
    backbone = ConvStack2d(blocks, ConcatPool2d(), 2 * widths[-1])
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, tuple(head_dropout)))
