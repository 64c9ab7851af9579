"""Grad-CAM and Integrated Gradients on one beat of a beat model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgcore.explain.attributions import attribute_beat
from ecgcore.models import create_model


@pytest.fixture
def beat_model():
    torch.manual_seed(0)
    return create_model(
        "cnn_bilstm_attention_beat", 4, 5, channels=8, lstm_hidden=8, attention_hidden=8, head_hidden=8
    )


def _beat() -> np.ndarray:
    t = np.linspace(-150, 149, 300)
    leads = np.stack([np.exp(-((t / 10) ** 2)), -0.5 * np.exp(-((t / 14) ** 2))])
    rr = np.full((2, 300), -0.3)  # premature: RR before 0.7 of the local RR
    rr[1] = 0.4
    return np.concatenate([leads, rr]).astype(np.float32)


def test_integrated_gradients_on_a_beat_is_complete_over_leads_and_context(beat_model):
    result = attribute_beat(beat_model, _beat(), target=2, method="ig", n_steps=64)
    assert result.values.shape == (2, 300)
    total = float(result.values.sum()) + result.extra["context"]
    assert total == pytest.approx(
        result.score - result.baseline_score, abs=0.02 * max(1.0, abs(result.score))
    )
    assert result.extra["context"] != 0.0  # the RR channels differ from the baseline, so they get a share


def test_gradcam_on_a_beat_is_a_time_course(beat_model):
    result = attribute_beat(beat_model, _beat(), target=0, method="gradcam")
    assert result.values.shape == (2, 300) and not result.lead_resolved
    assert np.all(result.values >= 0)
    assert np.array_equal(result.values[0], result.values[1])


def test_other_methods_are_refused(beat_model):
    with pytest.raises(ValueError, match="gradcam"):
        attribute_beat(beat_model, _beat(), target=0, method="occlusion")
