"""``rnn`` and ``lstm``: recurrent baselines of the seed study, on a downsampled sequence.

A recurrent layer stepping through 5000 samples one at a time is unusably slow on a CPU, so both
models first shorten the sequence with a strided convolutional stem (default: stride 4 then 4, i.e.
500 Hz -> 31.25 steps per second, 313 steps for 10 s); the recurrent layers then read that sequence.

Diagram (defaults)::

    x [B, L, S]
    -> stem: conv k=9 stride 4 (32) -> BN -> ReLU -> conv k=5 stride 4 (64) -> BN -> ReLU   [B, 64, S/16]
    -> 2-layer RNN (tanh) / LSTM, hidden 128, over time
    -> concat(last hidden state of the top layer, mean of the top layer's outputs)  [B, 256] (backbone ends)
    -> head: BN -> Dropout .25 -> Linear 256->128 -> ReLU -> BN -> Dropout .5 -> Linear 128->outputs
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from ecgcore.models.base import Backbone, ECGModel, Head, LayerGroup, conv_bn_relu
from ecgcore.models.registry import register


def downsampling_stem(
    n_leads: int, widths: Sequence[int], kernel_sizes: Sequence[int], strides: Sequence[int]
) -> nn.Sequential:
    """Strided conv-BN-ReLU units that shorten the signal before a recurrent layer."""
    ins = [n_leads, *widths[:-1]]
    return nn.Sequential(
        *(conv_bn_relu(i, o, k, s) for i, o, k, s in zip(ins, widths, kernel_sizes, strides))
    )


class RecurrentBackbone(Backbone):
    """Downsampling stem, then a stacked RNN or LSTM; features = last hidden state and mean output."""

    def __init__(
        self,
        n_leads: int,
        cell: str,
        hidden: int,
        n_layers: int,
        stem_widths: Sequence[int],
        stem_kernels: Sequence[int],
        stem_strides: Sequence[int],
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = downsampling_stem(n_leads, stem_widths, stem_kernels, stem_strides)
        recurrent = {"rnn": nn.RNN, "lstm": nn.LSTM}[cell]
        self.rnn = recurrent(
            stem_widths[-1],
            hidden,
            num_layers=n_layers,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.feature_dim = 2 * hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(self.stem(x).transpose(1, 2))  # [B, T, hidden]
        return torch.cat([outputs[:, -1], outputs.mean(dim=1)], dim=1)

    def groups(self) -> list[LayerGroup]:
        return [("stem", [self.stem]), ("rnn", [self.rnn])]

    def last_conv(self) -> nn.Module:
        """The stem's last conv unit (the recurrent layers have no convolution)."""
        return self.stem[-1]


def _recurrent(
    cell: str,
    n_leads: int,
    n_outputs: int,
    hidden: int = 128,
    n_layers: int = 2,
    stem_widths: Sequence[int] = (32, 64),
    stem_kernels: Sequence[int] = (9, 5),
    stem_strides: Sequence[int] = (4, 4),
    dropout: float = 0.1,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``rnn`` or ``lstm`` (``cell``; see the module docstring), checking the stem description first."""
    if not len(stem_widths) == len(stem_kernels) == len(stem_strides) >= 1:
        raise ValueError(
            f"{cell}: stem_widths, stem_kernels and stem_strides need the same (non-zero) length, "
            f"got {list(stem_widths)}, {list(stem_kernels)}, {list(stem_strides)}"
        )
    backbone = RecurrentBackbone(
        n_leads, cell, hidden, n_layers, tuple(stem_widths), tuple(stem_kernels), tuple(stem_strides), dropout
    )
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))


rnn = register(
    "rnn",
    description="Vanilla (tanh) RNN, 2 layers x 128, on a 16x strided-conv downsampled signal; "
    "seed-study baseline",
    reference="Elman, Finding structure in time, Cognitive Science 1990 (RNN baseline of the seed study)",
)(partial(_recurrent, "rnn"))

lstm = register(
    "lstm",
    description="LSTM, 2 layers x 128, on a 16x strided-conv downsampled signal; seed-study baseline",
    reference="Hochreiter & Schmidhuber, Long short-term memory, Neural Computation 1997 "
    "(LSTM baseline of the seed study)",
)(partial(_recurrent, "lstm"))
