"""Integrated Gradients' execution (issue 20): folded network, batched steps, convergence check, precision;
GradientSHAP's seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from ecgcore.explain.attributions import attribute
from tests.explain.helpers import WindowReader, synthetic_record, tiny_model, window_mask


@pytest.fixture(scope="module")
def record_input() -> np.ndarray:
    sig = synthetic_record(fs=100.0).signal
    return (sig - sig.mean(axis=1, keepdims=True)) / sig.std(axis=1, keepdims=True)


def _with_statistics(model: nn.Module) -> nn.Module:
    """Batch norms with non-trivial running statistics, so folding them is not a no-op."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 8, 500) * 1.5 + 0.2)
    return model.eval()


def test_ig_on_the_folded_network_equals_captum_on_the_training_network(record_input):
    model = _with_statistics(tiny_model(seed=3))
    x = torch.as_tensor(record_input, dtype=torch.float32)[None]
    expected = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=2, n_steps=16)
    got = attribute(model, record_input, target=2, method="ig", fs=100.0, n_steps=16, internal_batch_size=5)
    assert np.allclose(got.values, expected[0].numpy(), rtol=1e-3, atol=1e-4 * float(expected.abs().max()))
    assert got.extra["ig_steps"] == 16 and got.extra["ig_precision"] == "fp32"


def test_steps_double_until_the_completeness_gap_is_under_the_tolerance(record_input):
    model = _with_statistics(tiny_model(seed=3))
    loose = attribute(model, record_input, target=2, method="ig", fs=100.0, n_steps=2, tolerance=10.0)
    assert loose.extra["ig_steps"] == 2 and len(loose.extra["ig_tried"]) == 1
    tight = attribute(model, record_input, target=2, method="ig", fs=100.0, n_steps=2, tolerance=1e-3)
    steps = [s for _, s, _ in tight.extra["ig_tried"]]
    assert steps[:3] == [2, 4, 8] and tight.extra["ig_steps"] == steps[-1]
    gap = abs(tight.values.sum() - (tight.score - tight.baseline_score)) / abs(
        tight.score - tight.baseline_score
    )
    assert tight.extra["ig_gap"] == pytest.approx(gap, rel=1e-2, abs=1e-5)
    assert tight.extra["ig_gap"] < 1e-3 or tight.extra["ig_steps"] == 512
    assert tight.extra["ig_tried"][-2][2] >= 1e-3  # it stopped at the first count under the tolerance


def test_bf16_integrated_gradients_stay_close_to_fp32(record_input):
    model = _with_statistics(tiny_model(seed=3))
    fp32 = attribute(model, record_input, target=2, method="ig", fs=100.0, n_steps=32)
    bf16 = attribute(model, record_input, target=2, method="ig", fs=100.0, n_steps=32, precision="bf16")
    assert bf16.extra["ig_precision"] == "bf16"
    corr = np.corrcoef(fp32.values.ravel(), bf16.values.ravel())[0, 1]
    assert corr > 0.95
    with pytest.raises(ValueError, match="precision"):
        attribute(model, record_input, target=2, method="ig", fs=100.0, precision="fp8")


def test_gradientshap_is_reproducible_and_leaves_the_global_generators_alone(record_input):
    # its gradient depends on where between baseline and input it is taken: the random points matter
    ecg = synthetic_record(fs=100.0)
    model = WindowReader(window_mask(ecg, "II", "qrs_on", "qrs_off"))
    x = record_input + 1.0
    np.random.seed(123)
    torch.manual_seed(123)
    before = (np.random.random(), torch.rand(1).item())
    np.random.seed(123)
    torch.manual_seed(123)
    a = attribute(model, x, target=0, method="gradientshap", n_samples=4, seed=7)
    after = (np.random.random(), torch.rand(1).item())
    np.random.seed(5)  # the caller's global state does not decide the result
    b = attribute(model, x, target=0, method="gradientshap", n_samples=4, seed=7)
    c = attribute(model, x, target=0, method="gradientshap", n_samples=4, seed=8)
    assert np.array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)
    assert after == before  # the caller's random streams continue as if the call had not happened
