"""Attribution maps: shapes for every method, IG completeness, and per-lead / per-wave summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgcore.explain.attributions import (
    BASELINES,
    METHODS,
    attribute,
    lead_importance,
    make_baseline,
    wave_coverage,
    wave_importance,
    wave_masks,
)
from ecgcore.measure import measure
from ecgcore.vocab import LEADS_8
from tests.explain.helpers import WindowReader, synthetic_record, tiny_model, window_mask


@pytest.fixture(scope="module")
def record_input() -> np.ndarray:
    sig = synthetic_record(fs=100.0).signal
    return (sig - sig.mean(axis=1, keepdims=True)) / sig.std(axis=1, keepdims=True)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_one_value_per_input_sample(method, record_input):
    model = tiny_model()
    attr = attribute(model, record_input, target=1, method=method, fs=100.0, n_steps=8, n_samples=4)
    assert attr.values.shape == record_input.shape
    assert attr.values.dtype == np.float32 and np.isfinite(attr.values).all()
    assert np.abs(attr.values).sum() > 0
    assert attr.method == method and attr.target == 1
    assert attr.baseline == ("zeros" if method in ("ig", "gradientshap", "occlusion") else None)
    assert not model.training


def test_recurrent_models_can_be_attributed_and_keep_their_mode(record_input):
    model = tiny_model("lstm", n_outputs=2).train()
    attr = attribute(model, record_input[None], target=0, method="ig", fs=100.0, n_steps=8)
    assert attr.values.shape == record_input.shape and np.isfinite(attr.values).all()
    assert model.training  # restored after the call
    cam = attribute(model, record_input, target=0, method="gradcam", fs=100.0)
    assert cam.values.shape == record_input.shape and not cam.lead_resolved


@pytest.mark.parametrize("baseline", BASELINES)
def test_integrated_gradients_are_complete(baseline, record_input):
    """Sum of attributions = f(x) - f(baseline), up to the integral's discretisation error."""
    model = tiny_model(seed=3)
    attr = attribute(model, record_input, target=2, method="ig", baseline=baseline, fs=100.0, n_steps=50)
    gap = attr.score - attr.baseline_score
    assert abs(gap) > 1e-3  # otherwise the check says nothing
    assert attr.values.sum() == pytest.approx(gap, rel=0.05, abs=1e-3)
    assert attr.baseline == baseline


def test_baselines_are_what_they_claim(record_input):
    x = torch.as_tensor(record_input)[None]
    assert torch.all(make_baseline(x, "zeros", 100.0) == 0)
    lead_mean = make_baseline(x, "lead_mean", 100.0)
    assert torch.allclose(lead_mean[..., 0], x.mean(dim=-1), atol=1e-6) and torch.all(
        lead_mean.std(dim=-1) == 0
    )
    low = make_baseline(x, "lowpass", 100.0).numpy()[0]
    # the waves are gone: far less high-frequency content than the record
    assert np.abs(np.diff(low, axis=1)).mean() < 0.05 * np.abs(np.diff(record_input, axis=1)).mean()
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline(x, "noise", 100.0)


def test_bad_requests_are_clear_errors(record_input):
    model = tiny_model()
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute(model, record_input, target=0, method="lime")
    with pytest.raises(ValueError, match="unknown baseline"):
        attribute(model, record_input, target=0, method="saliency", baseline="noise")
    with pytest.raises(ValueError, match="out of range"):
        attribute(model, record_input, target=3, method="saliency")
    with pytest.raises(ValueError, match="shape"):
        attribute(model, record_input[:, None], target=0, method="saliency")


@pytest.mark.parametrize(
    "lead, wave, start, stop", [("V2", "QRS", "qrs_on", "qrs_off"), ("V5", "T", "t_on", "t_off")]
)
@pytest.mark.parametrize("method", ["ig", "saliency", "occlusion"])
def test_summaries_find_where_a_model_looks(lead, wave, start, stop, method):
    """A model that reads one wave of one lead: most mass in that lead and that wave (measured fiducials)."""
    ecg = synthetic_record(fs=500.0, duration=10.0)
    model = WindowReader(window_mask(ecg, lead, start, stop))
    attr = attribute(
        model, ecg.signal, target=0, method=method, baseline="zeros", fs=500.0, occlusion_window_s=0.02
    )
    leads = lead_importance(attr.values, LEADS_8)
    assert max(leads, key=leads.get) == lead and leads[lead] > 0.9
    assert sum(leads.values()) == pytest.approx(1.0)
    beats = measure(ecg.signal, 500.0, LEADS_8).beat_fiducials  # the interval measurement, not the truth
    waves = wave_importance(attr.values, beats)
    assert sum(waves.values()) == pytest.approx(1.0)
    assert max(waves, key=waves.get) == wave and waves[wave] > 0.6
    assert waves[wave] > 3 * wave_coverage(ecg.signal.shape[1], beats)[wave]


def test_wave_masks_follow_the_fiducials_and_skip_missing_values():
    beats = {
        "p_on": np.array([10.0, np.nan]),
        "qrs_on": np.array([30, 130]),
        "qrs_off": np.array([40, 140]),
        "t_off": np.array([90, -1]),
    }
    masks = wave_masks(200, beats)
    assert np.flatnonzero(masks["P"]).tolist() == list(range(10, 30))  # p_on..qrs_on (no p_off), beat 1 only
    assert np.flatnonzero(masks["QRS"]).tolist() == list(range(30, 40)) + list(range(130, 140))
    assert np.flatnonzero(masks["ST"]).tolist() == list(range(40, 60))  # 40 % of qrs_off..t_off
    assert np.flatnonzero(masks["T"]).tolist() == list(range(60, 90))
    half = wave_masks(100, beats, scale=0.5)  # fiducials of a 2x faster record
    assert np.flatnonzero(half["QRS"]).tolist() == list(range(15, 20)) + list(range(65, 70))
    with pytest.raises(ValueError, match="qrs_on and qrs_off"):
        wave_masks(100, {"p_on": np.array([1])})
