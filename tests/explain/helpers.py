"""Small models with known behaviour for the explanation tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.models import create_model
from ecgcore.vocab import LEADS_8

#: A small inception1d (3 blocks, 8 filters) that runs in milliseconds on 100 Hz records.
TINY_INCEPTION = dict(depth=3, n_filters=8, bottleneck=8, kernel_sizes=(9, 5, 3), head_hidden=16)


def tiny_model(name: str = "inception1d", n_outputs: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    kwargs = TINY_INCEPTION if name == "inception1d" else {"hidden": 16, "head_hidden": 16}
    return create_model(name, n_leads=8, n_outputs=n_outputs, **kwargs).eval()


def synthetic_record(fs: float = 100.0, seed: int = 0, duration: float = 5.0):
    """A noisy 8-lead synthetic ECG with its true fiducials."""
    return synthetic_ecg(72, 160, 100, 400, fs=fs, duration=duration, leads=LEADS_8, noise_mv=0.01, seed=seed)


class WindowReader(nn.Module):
    """Reads only ``mask`` (``[L, S]``, 0/1) of its input: ``s + 0.1 s^2`` with ``s`` the masked mean.

    Its output depends on nothing else, so a faithful attribution must lie inside the mask.
    """

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32))
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x * self.mask).sum(dim=(1, 2)) / self.mask.sum() * self.scale
        return (s + 0.1 * s**2)[:, None]


def window_mask(ecg, lead: str, start_key: str, stop_key: str) -> np.ndarray:
    """0/1 mask over ``lead`` between two true fiducials of every beat."""
    mask = np.zeros(ecg.signal.shape, dtype=np.float32)
    row = ecg.leads.index(lead)
    for a, b in zip(ecg.fiducials[start_key], ecg.fiducials[stop_key]):
        mask[row, a:b] = 1.0
    return mask
