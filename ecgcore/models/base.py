"""The shape every model shares: a backbone (signal -> feature vector) and a head (features -> outputs).

Transfer learning swaps heads and freezes backbones, Grad-CAM needs the last convolution, and the
trainer freezes or unfreezes by *named* layer groups; all of that relies on the pieces defined here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: A named group of modules, e.g. ``("block3", [module, ...])``.
LayerGroup = tuple[str, list[nn.Module]]


class Backbone(nn.Module):
    """Base class of the backbones: ``[B, leads, samples] -> [B, feature_dim]``.

    Subclasses set :attr:`feature_dim` and implement :meth:`groups` (every parameter in exactly one
    group, input side first) and :meth:`last_conv`. A convolutional backbone made of an optional
    ``stem``, a sequence of ``blocks`` and a ``pool`` needs no forward of its own: the default
    :meth:`features` runs the stem and the blocks, and :meth:`forward` pools the result. Others
    override :meth:`forward` (and :meth:`features` where they have a time-resolved map).
    """

    feature_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last time-resolved feature map ``[B, C, T]``: ``stem`` (when there is one), then each block."""
        stem = getattr(self, "stem", None)
        if stem is not None:
            x = stem(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, leads, samples] -> [B, feature_dim]``: ``pool`` of :meth:`features`."""
        return self.pool(self.features(x))

    def groups(self) -> list[LayerGroup]:
        """Named layer groups, input side first."""
        raise NotImplementedError

    def last_conv(self) -> nn.Module | None:
        """The module whose output is the last time-resolved feature map ``[B, C, T]`` (Grad-CAM target).

        Usually the last convolution (or the block or residual sum ending with it); ``None`` when the
        backbone has none.
        """
        raise NotImplementedError


class ECGModel(nn.Module):
    """A backbone followed by a head.

    Attributes
    ----------
    backbone
        ``[B, L, S] -> [B, feature_dim]``.
    head
        ``[B, feature_dim] -> [B, n_outputs]``.
    feature_dim
        Width of the backbone's feature vector.
    config
        ``{"name", "n_leads", "n_outputs", **kwargs}``: :func:`ecgcore.models.create_model` ``(**config)``
        rebuilds the same architecture (set by ``create_model``).
    """

    def __init__(self, backbone: Backbone, head: nn.Module, config: dict | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = backbone.feature_dim
        self.config = dict(config or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def layer_groups(self) -> list[LayerGroup]:
        """Named groups of modules, input side first and ``"head"`` last (for freezing / learning rates)."""
        return [*self.backbone.groups(), ("head", [self.head])]

    def last_conv(self) -> nn.Module | None:
        """The backbone's last convolution (for Grad-CAM), ``None`` when it has none."""
        return self.backbone.last_conv()


class Head(nn.Module):
    """The classification / regression head of the PTB-XL benchmark models (fastai ``create_head1d``).

    ``BatchNorm -> Dropout(p0) -> Linear(F, hidden) -> ReLU -> BatchNorm -> Dropout(p1) -> Linear(hidden, n)``;
    with ``hidden=None`` just ``Dropout(p1) -> Linear(F, n)``. The pooling that precedes it in the
    papers' diagrams lives at the end of the backbone, so that the backbone yields a feature vector.
    """

    def __init__(
        self,
        feature_dim: int,
        n_outputs: int,
        hidden: int | None = 128,
        dropout: Sequence[float] = (0.25, 0.5),
    ) -> None:
        super().__init__()
        p0, p1 = dropout
        if hidden is None:
            self.layers = nn.Sequential(nn.Dropout(p1), nn.Linear(feature_dim, n_outputs))
        else:
            self.layers = nn.Sequential(
                nn.BatchNorm1d(feature_dim),
                nn.Dropout(p0),
                nn.Linear(feature_dim, hidden),
                nn.ReLU(),
                nn.BatchNorm1d(hidden),
                nn.Dropout(p1),
                nn.Linear(hidden, n_outputs),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ConcatPool1d(nn.Module):
    """Adaptive max and average pooling over time, concatenated: ``[B, C, T] -> [B, 2C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.amax(dim=-1), x.mean(dim=-1)], dim=1)


def conv1d(n_in: int, n_out: int, kernel_size: int, stride: int = 1, groups: int = 1) -> nn.Conv1d:
    """A bias-free 1D convolution (a BatchNorm follows) with 'same' padding (``ceil(length / stride)`` out)."""
    return nn.Conv1d(
        n_in, n_out, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, bias=False, groups=groups
    )


def conv_bn_relu(n_in: int, n_out: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Convolution -> BatchNorm -> ReLU, the basic unit of the convolutional stems."""
    return nn.Sequential(conv1d(n_in, n_out, kernel_size, stride), nn.BatchNorm1d(n_out), nn.ReLU())
