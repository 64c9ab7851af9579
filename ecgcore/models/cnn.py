"""``cnn``: a plain small CNN, one of the seed study's baselines.

Diagram (defaults)::

    x [B, L, S]
    -> block1..block4: conv k=7 -> BN -> ReLU -> maxpool 2        (32, 64, 128, 128 channels)
    -> concat(adaptive max pool, adaptive avg pool)                [B, 256]  (backbone ends)
    -> head: BN -> Dropout .25 -> Linear 256->128 -> ReLU -> BN -> Dropout .5 -> Linear 128->outputs
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ecgcore.models.base import Backbone, ConcatPool1d, ECGModel, Head, LayerGroup, conv_bn_relu
from ecgcore.models.registry import register


class CNNBackbone(Backbone):
    """Conv-BN-ReLU-MaxPool blocks, then concat pooling."""

    def __init__(self, n_leads: int, widths: Sequence[int], kernel_size: int) -> None:
        super().__init__()
        ins = [n_leads, *widths[:-1]]
        self.blocks = nn.ModuleList(
            nn.Sequential(conv_bn_relu(n_in, n_out, kernel_size), nn.MaxPool1d(2, ceil_mode=True))
            for n_in, n_out in zip(ins, widths)
        )
        self.pool = ConcatPool1d()
        self.feature_dim = 2 * widths[-1]

    def groups(self) -> list[LayerGroup]:
        return [(f"block{i + 1}", [b]) for i, b in enumerate(self.blocks)]

    def last_conv(self) -> nn.Module:
        """The last block's convolution unit (conv -> BN -> ReLU), before its max pooling."""
        return self.blocks[-1][0]


@register(
    "cnn",
    description="Plain small CNN (4 conv-BN-ReLU-maxpool blocks, concat pooling head); seed-study baseline",
    reference="LeCun et al., Gradient-based learning applied to document recognition, Proc. IEEE 1998 "
    "(generic CNN baseline of the seed study)",
)
def cnn(
    n_leads: int,
    n_outputs: int,
    widths: Sequence[int] = (32, 64, 128, 128),
    kernel_size: int = 7,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``cnn`` (see the module docstring)."""
    backbone = CNNBackbone(n_leads, tuple(widths), kernel_size)
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))
