"""Seeded training augmentations."""

from __future__ import annotations

import pytest
import torch

from ecgcore.data.transforms import AmplitudeScale, Augment, GaussianNoise, LeadDropout, TimeShift


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randn(16, 8, 500, generator=torch.Generator().manual_seed(0))


def test_augment_is_reproducible_for_a_seed(batch):
    a, b, c = Augment(seed=1), Augment(seed=1), Augment(seed=2)
    first = a(batch)
    assert torch.equal(first, b(batch)) and not torch.equal(first, c(batch))
    assert not torch.equal(a(batch), first)  # successive batches get fresh randomness
    assert first.shape == batch.shape


def test_each_transform_does_what_it_says(batch):
    gen = torch.Generator().manual_seed(3)
    scaled = AmplitudeScale(0.5, 0.6)(batch, gen)
    ratio = scaled[:, 0, 0] / batch[:, 0, 0]
    assert ((ratio >= 0.5 - 1e-6) & (ratio <= 0.6 + 1e-6)).all()
    assert torch.allclose(
        scaled / batch, ratio[:, None, None].expand_as(batch), atol=1e-4
    )  # one factor per record
    noise = GaussianNoise(0.2)(batch, gen) - batch
    assert abs(noise.std().item() - 0.2) < 0.01
    ones = torch.ones(64, 2, 100)
    shifted = TimeShift(0.1)(ones, gen)
    zeros = (shifted == 0).sum(dim=2)[:, 0]
    assert zeros.max() <= 10 and zeros.max() > 0 and torch.equal(shifted[:, 0], shifted[:, 1])
    ramp = torch.arange(100.0).repeat(1, 1, 1)
    moved = TimeShift(0.1)(ramp, torch.Generator().manual_seed(5))
    nz = moved[0, 0][moved[0, 0] != 0]
    assert torch.all(nz[1:] - nz[:-1] == 1)  # a shift, not a shuffle
    dropped = LeadDropout(0.99)(torch.ones(32, 8, 10), gen)
    per_record = (dropped[:, :, 0] != 0).sum(dim=1)
    assert per_record.min() == 1 and per_record.float().mean() < 1.5


def test_augment_rejects_unbatched_input():
    with pytest.raises(ValueError, match=r"expect a batch \[B, L, S\]"):
        Augment()(torch.zeros(8, 100))
