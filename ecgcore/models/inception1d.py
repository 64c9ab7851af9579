"""``inception1d``: InceptionTime for 1D ECGs, as in the PTB-XL benchmark (Strodthoff et al. 2021).

Diagram (defaults)::

    x [B, L, S]
    -> 6 x InceptionBlock: bottleneck 1x1 conv (32) -> convs k=39, 19, 9 (32 each)
                           + maxpool(3) -> 1x1 conv (32) branch on the block input
                           concat (128) -> BatchNorm -> ReLU
       after blocks 3 and 6: out = ReLU(out + BN(1x1 conv(input of the 3-block stage)))
    -> concat(adaptive max pool, adaptive avg pool)                      [B, 256]   (backbone ends here)
    -> BN -> Dropout .25 -> Linear 256->128 -> ReLU -> BN -> Dropout .5 -> Linear 128->outputs  (head)

Every convolution is 'same'-padded with stride 1, so any input length works.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ecgcore.models.base import Backbone, ConcatPool1d, ECGModel, Head, LayerGroup, conv1d
from ecgcore.models.registry import register


class InceptionBlock(nn.Module):
    """Parallel convolutions of several widths on a bottleneck, plus a max-pool branch."""

    def __init__(self, n_in: int, n_filters: int, kernel_sizes: Sequence[int], bottleneck: int) -> None:
        super().__init__()
        self.bottleneck = conv1d(n_in, bottleneck, 1)
        self.convs = nn.ModuleList(conv1d(bottleneck, n_filters, k) for k in kernel_sizes)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), conv1d(n_in, n_filters, 1))
        n_out = n_filters * (len(kernel_sizes) + 1)
        self.bn_relu = nn.Sequential(nn.BatchNorm1d(n_out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.bottleneck(x)
        branches = [conv(squeezed) for conv in self.convs] + [self.pool_branch(x)]
        return self.bn_relu(torch.cat(branches, dim=1))


class Shortcut(nn.Module):
    """Residual connection around a stage of blocks: ``ReLU(out + BN(1x1 conv(stage input)))``."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = conv1d(n_in, n_out, 1)
        self.bn = nn.BatchNorm1d(n_out)

    def forward(self, stage_input: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.relu(out + self.bn(self.conv(stage_input)))


class InceptionBackbone(Backbone):
    """Inception blocks with a residual shortcut every ``residual_every`` blocks, then concat pooling."""

    def __init__(
        self,
        n_leads: int,
        depth: int,
        n_filters: int,
        kernel_sizes: Sequence[int],
        bottleneck: int,
        residual_every: int,
    ) -> None:
        super().__init__()
        if residual_every and depth % residual_every:
            raise ValueError(
                f"inception1d: depth={depth} must be a multiple of residual_every={residual_every}"
            )
        width = n_filters * (len(kernel_sizes) + 1)
        self.blocks = nn.ModuleList(
            InceptionBlock(n_leads if i == 0 else width, n_filters, kernel_sizes, bottleneck)
            for i in range(depth)
        )
        n_shortcuts = depth // residual_every if residual_every else 0
        self.shortcuts = nn.ModuleList(
            Shortcut(n_leads if i == 0 else width, width) for i in range(n_shortcuts)
        )
        self.residual_every = residual_every
        self.pool = ConcatPool1d()
        self.feature_dim = 2 * width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output ``[B, 128, S]`` (before pooling)."""
        stage_input = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if self.residual_every and (i + 1) % self.residual_every == 0:
                x = self.shortcuts[i // self.residual_every](stage_input, x)
                stage_input = x
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x))

    def groups(self) -> list[LayerGroup]:
        """``block1`` ... ``blockN``; a stage's shortcut belongs to the block it closes."""
        groups = []
        for i, block in enumerate(self.blocks):
            modules: list[nn.Module] = [block]
            if self.residual_every and (i + 1) % self.residual_every == 0:
                modules.append(self.shortcuts[i // self.residual_every])
            groups.append((f"block{i + 1}", modules))
        return groups

    def last_conv(self) -> nn.Module:
        """The module producing the final time-resolved map: the last shortcut, else the last block."""
        return self.shortcuts[-1] if len(self.shortcuts) else self.blocks[-1]


@register(
    "inception1d",
    description="InceptionTime 1D CNN (6 inception blocks, kernels 39/19/9 + max-pool branch, residual every "
    "3 blocks, concat pooling head); the seed study's best model",
    reference="Ismail Fawaz et al., InceptionTime, Data Min. Knowl. Disc. 2020; Strodthoff et al., "
    "Deep learning for ECG analysis: benchmarks and insights from PTB-XL, IEEE JBHI 2021",
)
def inception1d(
    n_leads: int,
    n_outputs: int,
    depth: int = 6,
    n_filters: int = 32,
    kernel_sizes: Sequence[int] = (39, 19, 9),
    bottleneck: int = 32,
    residual_every: int = 3,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``inception1d`` (see the module docstring)."""
    backbone = InceptionBackbone(n_leads, depth, n_filters, tuple(kernel_sizes), bottleneck, residual_every)
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))
