"""``cnn_bilstm_attention``: separable residual convolutions, a bidirectional LSTM, attention pooling.

Diagram (defaults)::

    x [B, L, S]
    -> stem: conv k=7 stride 2 (64) -> BN -> ReLU                                          [B, 64, S/2]
    -> block1..block3: [depthwise k=9 -> pointwise 1x1 -> BN -> ReLU] x 2 + identity -> maxpool 2
                                                                                           [B, 64, S/16]
    -> BiLSTM, hidden 64 per direction                                                     [B, S/16, 128]
    -> attention pooling: weights = softmax_t(w . tanh(W h_t)); features = sum_t weights_t h_t
                                                                                   [B, 128]  (backbone ends)
    -> head: BN -> Dropout .25 -> Linear 128->128 -> ReLU -> BN -> Dropout .5 -> Linear 128->outputs

The convolutions shorten the signal 16x before the LSTM, so it runs on a CPU (313 steps for 10 s at 500 Hz).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ecgcore.models.base import Backbone, ECGModel, Head, LayerGroup, conv1d, conv_bn_relu
from ecgcore.models.registry import register


def separable_conv_bn_relu(channels: int, kernel_size: int) -> nn.Sequential:
    """Depthwise convolution, pointwise 1x1 convolution, BatchNorm, ReLU."""
    return nn.Sequential(
        conv1d(channels, channels, kernel_size, groups=channels),
        conv1d(channels, channels, 1),
        nn.BatchNorm1d(channels),
        nn.ReLU(),
    )


class SeparableResBlock(nn.Module):
    """Two separable convolutions with an identity shortcut, then max pooling by 2."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            separable_conv_bn_relu(channels, kernel_size), separable_conv_bn_relu(channels, kernel_size)
        )
        self.pool = nn.MaxPool1d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x + self.convs(x))


class AttentionPool(nn.Module):
    """Additive attention over time: a learned weighted mean of the sequence ``[B, T, D] -> [B, D]``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(h), dim=1)  # [B, T, 1]
        return (weights * h).sum(dim=1)


class CNNBiLSTMAttentionBackbone(Backbone):
    """Conv stem, separable residual blocks, BiLSTM, attention pooling."""

    def __init__(
        self,
        n_leads: int,
        channels: int,
        n_blocks: int,
        kernel_size: int,
        lstm_hidden: int,
        attention_hidden: int,
    ) -> None:
        super().__init__()
        self.stem = conv_bn_relu(n_leads, channels, 7, stride=2)
        self.blocks = nn.ModuleList(SeparableResBlock(channels, kernel_size) for _ in range(n_blocks))
        self.lstm = nn.LSTM(channels, lstm_hidden, batch_first=True, bidirectional=True)
        self.attention = AttentionPool(2 * lstm_hidden, attention_hidden)
        self.feature_dim = 2 * lstm_hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        outputs, _ = self.lstm(x.transpose(1, 2))
        return self.attention(outputs)

    def groups(self) -> list[LayerGroup]:
        return (
            [("stem", [self.stem])]
            + [(f"block{i + 1}", [b]) for i, b in enumerate(self.blocks)]
            + [("lstm", [self.lstm]), ("attention", [self.attention])]
        )

    def last_conv(self) -> nn.Module:
        """The last residual block (its output feeds the LSTM)."""
        return self.blocks[-1]


@register(
    "cnn_bilstm_attention",
    description="Separable residual CNN (16x downsampling) -> BiLSTM (2x64) -> attention pooling",
    reference="Mousavi & Afghah, Inter- and intra-patient ECG heartbeat classification for arrhythmia "
    "detection: a sequence to sequence deep learning approach, ICASSP 2019 (CNN-BiLSTM with attention)",
)
def cnn_bilstm_attention(
    n_leads: int,
    n_outputs: int,
    channels: int = 64,
    n_blocks: int = 3,
    kernel_size: int = 9,
    lstm_hidden: int = 64,
    attention_hidden: int = 64,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.25, 0.5),
) -> ECGModel:
    """Build ``cnn_bilstm_attention`` (see the module docstring)."""
    backbone = CNNBiLSTMAttentionBackbone(
        n_leads, channels, n_blocks, kernel_size, lstm_hidden, attention_hidden
    )
    return ECGModel(backbone, Head(backbone.feature_dim, n_outputs, head_hidden, head_dropout))


@register(
    "cnn_bilstm_attention_beat",
    description="Beat-window CNN-BiLSTM-attention (the blocks of cnn_bilstm_attention, sized for one beat)",
    reference="AI ECG analysis framework for 24-hour recordings (the study's beat-vs-artefact and beat "
    "classifiers: separable residual convolutions -> BiLSTM -> attention, about 170 k parameters)",
    listed=False,  # trained on beat windows (ecgcore.beats), not picked from the 10 s model menu
)
def cnn_bilstm_attention_beat(
    n_leads: int,
    n_outputs: int,
    channels: int = 64,
    n_blocks: int = 3,
    kernel_size: int = 7,
    lstm_hidden: int = 80,
    attention_hidden: int = 64,
    head_hidden: int | None = 128,
    head_dropout: Sequence[float] = (0.1, 0.3),
) -> ECGModel:
    """The same backbone and head as :func:`cnn_bilstm_attention`, with the study's beat-model sizes.

    A window of 300 samples (150 either side at 360 Hz) leaves 19 LSTM steps after the 16x
    downsampling; 100 samples (the beat-vs-artefact model) leave 7. About 156 k parameters (the study: about 170 k) at the
    defaults with 4 input channels; smaller ``channels`` and ``lstm_hidden`` make it cheap enough for
    a day-long record on a CPU.
    """
    return cnn_bilstm_attention(
        n_leads,
        n_outputs,
        channels=channels,
        n_blocks=n_blocks,
        kernel_size=kernel_size,
        lstm_hidden=lstm_hidden,
        attention_hidden=attention_hidden,
        head_hidden=head_hidden,
        head_dropout=head_dropout,
    )
