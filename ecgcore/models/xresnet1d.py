"""``xresnet1d101``: fastai's XResNet (bag-of-tricks ResNet) in 1D, as in the PTB-XL benchmark.

Diagram (defaults)::

    x [B, L, S]
    -> stem: conv k=5 stride 2 (32) -> conv k=5 (32) -> conv k=5 (64), each BN + ReLU -> maxpool 3/2
    -> stage1..stage4 of 3 / 4 / 23 / 3 bottleneck blocks (64 -> 256 channels, stride 1 / 2 / 2 / 2):
         [1x1 conv -> k=5 conv (stride) -> 1x1 conv (BN initialised to zero)] + shortcut -> ReLU
         shortcut: avg-pool 2 when strided, then 1x1 conv + BN when the width changes
    -> concat(adaptive max pool, adaptive avg pool)                            [B, 512]  (backbone ends)
    -> head: BN -> Dropout .25 -> Linear 512->128 -> ReLU -> BN -> Dropout .5 -> Linear 128->outputs
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ecgcore.models.base import Backbone, ConcatPool1d, ECGModel, Head, LayerGroup, conv1d, conv_bn_relu
from ecgcore.models.registry import register


def _conv_bn(n_in: int, n_out: int, kernel_size: int, zero_bn: bool = False) -> nn.Sequential:
    """Convolution -> BatchNorm without activation; ``zero_bn`` starts the residual branch at zero."""
    bn = nn.BatchNorm1d(n_out)
    if zero_bn:
        nn.init.zeros_(bn.weight)
    return nn.Sequential(conv1d(n_in, n_out, kernel_size), bn)


class Bottleneck(nn.Module):
    """XResNet bottleneck block: 1x1 -> k x1 (strided) -> 1x1, with an avg-pool shortcut when strided."""

    def __init__(self, n_in: int, n_mid: int, n_out: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(n_in, n_mid, 1),
            conv_bn_relu(n_mid, n_mid, kernel_size, stride),
            _conv_bn(n_mid, n_out, 1, zero_bn=True),
        )
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.AvgPool1d(stride, ceil_mode=True))
        if n_in != n_out:
            shortcut.append(_conv_bn(n_in, n_out, 1))
        self.shortcut = nn.Sequential(*shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.convs(x) + self.shortcut(x))


class XResNetBackbone(Backbone):
    """Three-convolution stem, max pooling, four stages of bottleneck blocks, concat pooling."""

    def __init__(
        self,
        n_leads: int,
        blocks_per_stage: Sequence[int],
        stem_widths: Sequence[int],
        width: int,
        expansion: int,
        kernel_size: int,
        stem_kernel: int,
    ) -> None:
        super().__init__()
        widths = [n_leads, *stem_widths]
        self.stem = nn.Sequential(
            *(
                conv_bn_relu(widths[i], widths[i + 1], stem_kernel, stride=2 if i == 0 else 1)
                for i in range(len(stem_widths))
            ),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        n_in = stem_widths[-1]
        stages = []
        for s, n_blocks in enumerate(blocks_per_stage):
            blocks = []
            for b in range(n_blocks):
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(Bottleneck(n_in, width, width * expansion, kernel_size, stride))
                n_in = width * expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = ConcatPool1d()
        self.feature_dim = 2 * n_in
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight)

    @property
    def blocks(self) -> nn.ModuleList:
        """The stages, in order: what the backbone's default :meth:`features` runs after the stem."""
        return self.stages

    def groups(self) -> list[LayerGroup]:
        return [("stem", [self.stem])] + [(f"stage{i + 1}", [s]) for i, s in enumerate(self.stages)]

    def last_conv(self) -> nn.Module:
        """The last bottleneck block (its output is the final time-resolved map)."""
        return self.stages[-1][-1]


@register(
    "xresnet1d101",
    description="XResNet-101 in 1D (3-conv stem, 3/4/23/3 bottleneck blocks, 256 channels, concat pooling "
    "head); among the best PTB-XL benchmark models",
    reference="He et al., Bag of tricks for image classification with CNNs, CVPR 2019; "
    "Strodthoff et al., IEEE JBHI 2021",
)
def xresnet1d101(
    n_leads: int,
    n_outputs: int,
    blocks_per_stage: Sequence[int] = (3, 4, 23, 3),
    stem_widths: Sequence[int] = (32, 32, 64),
    width: int = 64,
    expansion: int = 4,
    kernel_size: int = 5,
    stem_kernel: int = 5,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``xresnet1d101`` (see the module docstring)."""
    backbone = XResNetBackbone(
        n_leads, tuple(blocks_per_stage), tuple(stem_widths), width, expansion, kernel_size, stem_kernel
    )
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))
