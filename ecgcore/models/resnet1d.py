"""``resnet1d_wang``: the 1D ResNet of Wang et al. as configured in the PTB-XL benchmark.

Diagram (defaults)::

    x [B, L, S]
    -> stem: conv k=7 (128) -> BN -> ReLU                                   (stride 1, no pooling)
    -> block1: [conv k=5 -> BN -> ReLU -> conv k=3 -> BN] + identity -> ReLU            (stride 1)
    -> block2, block3: the same with stride 2, shortcut = 1x1 conv stride 2 -> BN
    -> concat(adaptive max pool, adaptive avg pool)                          [B, 256]  (backbone ends)
    -> head: BN -> Dropout .25 -> Linear 256->128 -> ReLU -> BN -> Dropout .5 -> Linear 128->outputs
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ecgcore.models.base import Backbone, ConcatPool1d, ECGModel, Head, LayerGroup, conv1d, conv_bn_relu
from ecgcore.models.registry import register


class BasicBlock(nn.Module):
    """Two convolutions with a residual connection (projected when the stride or width changes)."""

    def __init__(self, n_in: int, n_out: int, kernel_sizes: Sequence[int], stride: int) -> None:
        super().__init__()
        k1, k2 = kernel_sizes
        self.convs = nn.Sequential(
            conv1d(n_in, n_out, k1, stride),
            nn.BatchNorm1d(n_out),
            nn.ReLU(),
            conv1d(n_out, n_out, k2),
            nn.BatchNorm1d(n_out),
        )
        self.shortcut = (
            nn.Sequential(nn.Conv1d(n_in, n_out, 1, stride=stride, bias=False), nn.BatchNorm1d(n_out))
            if stride != 1 or n_in != n_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.convs(x) + self.shortcut(x))


class ResNetBackbone(Backbone):
    """Stem convolution, one residual block per stage (stride 1, then 2), concat pooling."""

    def __init__(
        self, n_leads: int, width: int, n_blocks: int, stem_kernel: int, kernel_sizes: Sequence[int]
    ) -> None:
        super().__init__()
        self.stem = conv_bn_relu(n_leads, width, stem_kernel)
        self.blocks = nn.ModuleList(
            BasicBlock(width, width, kernel_sizes, stride=1 if i == 0 else 2) for i in range(n_blocks)
        )
        self.pool = ConcatPool1d()
        self.feature_dim = 2 * width

    def groups(self) -> list[LayerGroup]:
        return [("stem", [self.stem])] + [(f"block{i + 1}", [b]) for i, b in enumerate(self.blocks)]

    def last_conv(self) -> nn.Module:
        """The last residual block (its output is the final time-resolved map)."""
        return self.blocks[-1]


@register(
    "resnet1d_wang",
    description="1D ResNet (stem k=7, three residual blocks of k=5/3 convolutions, 128 channels, concat "
    "pooling head); a strong PTB-XL benchmark model",
    reference="Wang, Yan, Oates, Time series classification from scratch with deep neural networks, IJCNN 2017; "
    "Strodthoff et al., IEEE JBHI 2021",
)
def resnet1d_wang(
    n_leads: int,
    n_outputs: int,
    width: int = 128,
    n_blocks: int = 3,
    stem_kernel: int = 7,
    kernel_sizes: Sequence[int] = (5, 3),
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``resnet1d_wang`` (see the module docstring)."""
    backbone = ResNetBackbone(n_leads, width, n_blocks, stem_kernel, tuple(kernel_sizes))
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))
