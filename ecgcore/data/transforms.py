"""Seeded training augmentations on batches ``[B, L, S]`` (torch tensors of preprocessed signals).

Each transform draws its randomness from the ``torch.Generator`` it is given, and :class:`Augment`
owns one generator seeded once, so a training run with a seed sees the same augmented batches.
Applied to training batches only, after the cache (the cache holds un-augmented signals).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AmplitudeScale:
    """Multiply each record by a factor drawn uniformly from ``[low, high]``."""

    low: float = 0.8
    high: float = 1.2

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        scale = torch.rand(x.shape[0], 1, 1, generator=gen, device=x.device, dtype=x.dtype)
        return x * (self.low + (self.high - self.low) * scale)


@dataclass
class GaussianNoise:
    """Add white Gaussian noise of standard deviation ``std`` (in the units of the input)."""

    std: float = 0.05

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return x + self.std * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)


@dataclass
class TimeShift:
    """Shift each record by up to ``max_fraction`` of its length either way, filling with zeros."""

    max_fraction: float = 0.1

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, n_leads, n = x.shape
        limit = int(self.max_fraction * n)
        if limit == 0:
            return x
        shifts = torch.randint(-limit, limit + 1, (b,), generator=gen, device=x.device)
        source = torch.arange(n, device=x.device)[None, :] - shifts[:, None]  # [B, S]
        valid = (source >= 0) & (source < n)
        out = x.gather(2, source.clamp(0, n - 1)[:, None, :].expand(b, n_leads, n))
        return out * valid[:, None, :].to(x.dtype)


@dataclass
class LeadDropout:
    """Zero each lead with probability ``p``; a record that would lose them all keeps one at random."""

    p: float = 0.1

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        keep = torch.rand(x.shape[0], x.shape[1], generator=gen, device=x.device) >= self.p  # [B, L]
        lost = ~keep.any(dim=1)  # records that would lose every lead keep one, chosen at random
        rescue = torch.randint(0, x.shape[1], (x.shape[0],), generator=gen, device=x.device)
        # torch.where over a one-hot, not keep[lost, ...] = True: a boolean index syncs host and device
        chosen = torch.nn.functional.one_hot(rescue, x.shape[1]).bool()
        keep = torch.where(lost[:, None] & chosen, True, keep)
        return x * keep[:, :, None].to(x.dtype)


class Augment:
    """Apply transforms in order with one generator seeded by ``seed`` (created on the batch's device).

    ``Augment()`` with no transforms uses the defaults: amplitude scaling, Gaussian noise, time
    shift and lead dropout.
    """

    def __init__(self, *transforms, seed: int = 0):
        self.transforms = transforms or (AmplitudeScale(), GaussianNoise(), TimeShift(), LeadDropout())
        self.seed = int(seed)
        self._gen: torch.Generator | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"augmentations expect a batch [B, L, S], got shape {tuple(x.shape)}")
        if self._gen is None or self._gen.device != x.device:
            self._gen = torch.Generator(device=x.device).manual_seed(self.seed)
        for transform in self.transforms:
            x = transform(x, self._gen)
        return x

    def __repr__(self) -> str:
        return f"Augment({', '.join(map(repr, self.transforms))}, seed={self.seed})"
