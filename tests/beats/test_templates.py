"""The dominant-template input channels: the template itself, and the same inputs at training and analysis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import wfdb

from ecgcore.beats import features as feat
from ecgcore.beats.analysis import analyse_record
from ecgcore.beats.classify import BeatClassifier, describe, load_classifier
from ecgcore.beats.dataset import BeatAugment, build_beat_set, record_beats
from ecgcore.beats.train_default import MODEL, SMALL
from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.models import create_model
from ecgcore.train.checkpoint import save_checkpoint
from tests.beats.conftest import write_record


def test_dominant_template_is_the_median_of_the_beats_like_the_usual_one():
    t = np.linspace(0, 1, 40)
    usual = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)])  # [2 leads, 40]
    other = np.stack([np.exp(-((t - 0.3) ** 2) / 0.01), -np.exp(-((t - 0.6) ** 2) / 0.02)])
    scales = [0.9, 0.95, 1.0, 1.05, 1.1, 1.2]
    windows = np.stack([s * usual for s in scales] + [3.0 * other] * 4)  # 6 usual beats, 4 others
    # all six usual beats correlate alike with the plain median, better than the others: the template
    # is their median, usual x median(scales); the plain median of all ten is pulled towards the others
    expected = usual * np.median(scales)
    np.testing.assert_allclose(feat.dominant_template(windows), expected, atol=1e-5)
    assert np.abs(np.median(windows, axis=0) - expected).max() > 0.1
    assert feat.dominant_template(np.zeros((0, 2, 40))).shape == (2, 40)


def test_layouts_build_four_six_or_eight_channels():
    windows = np.random.default_rng(0).normal(size=(3, 2, 10)).astype(np.float32)
    template = np.ones((2, 10), dtype=np.float32)
    rr = np.array([[0.8, 1.2], [1.0, 1.0], [1.1, 0.9]])
    f = {"window5": windows, "template5": template}
    old = feat.layout_input(feat.INPUTS, f, 5, rr)
    new = feat.layout_input(feat.TEMPLATE_INPUTS, f, 5, rr)
    assert old.shape == (3, 4, 10) and new.shape == (3, 6, 10)
    assert np.array_equal(new[:, :4], old) and np.all(new[:, 4:] == 1.0)
    wide = feat.layout_input("leads2+rr4+template2", f, 5, np.concatenate([rr, rr], axis=1))
    assert wide.shape == (3, 8, 10) and np.array_equal(wide[:, 6:], new[:, 4:])
    diff = feat.layout_input("leads2+rr4+diff2", f, 5, np.concatenate([rr, rr], axis=1))
    np.testing.assert_allclose(diff[:, 6:], windows - 1.0)  # each lead's beat minus its template
    assert np.array_equal(diff[:, :6], wide[:, :6])
    with pytest.raises(ValueError, match="layout"):
        feat.layout_input("leads2", f, 5, rr)


def test_augmentation_scales_the_template_and_keeps_it_constant():
    x = torch.ones(16, 6, 300)
    out = BeatAugment(seed=1, shift=0, layout=feat.TEMPLATE_INPUTS)(x)
    # a template channel stays one constant along the window (no noise, offset or shift), but is scaled
    assert torch.all(out[:, 4:].std(dim=2) < 1e-6)
    assert not torch.allclose(out[:, 4:, 0], torch.ones(16, 2))
    assert BeatAugment(seed=1)(torch.ones(4, 4, 300)).shape == (4, 4, 300)  # the old layout still works
    wide = BeatAugment(seed=1, shift=0, layout="leads2+rr4+template2")(torch.ones(16, 8, 300))
    assert torch.all(wide[:, 6:].std(dim=2) < 1e-6) and not torch.allclose(wide[:, 6:, 0], torch.ones(16, 2))
    assert torch.allclose(wide[:, 5], torch.ones(16, 300))  # the rate channel is not jittered


def test_augmentation_keeps_a_difference_channel_the_augmented_beat_minus_the_scaled_template():
    rng = np.random.default_rng(3)
    beat = torch.from_numpy(rng.normal(size=(16, 2, 300)).astype(np.float32))
    template = torch.from_numpy(rng.normal(size=(16, 2, 1)).astype(np.float32)).expand(16, 2, 300)
    rr = torch.zeros(16, 4, 300)
    kept = BeatAugment(seed=2, layout="leads2+rr4+template2")(torch.cat([beat, rr, template], dim=1))
    diff = BeatAugment(seed=2, layout="leads2+rr4+diff2")(torch.cat([beat, rr, beat - template], dim=1))
    # same draws: same augmented beat and RR, and the difference of the augmented beat and template
    assert torch.allclose(diff[:, :6], kept[:, :6])
    assert torch.allclose(diff[:, 6:], kept[:, :2] - kept[:, 6:], atol=1e-5)


@pytest.fixture(scope="module")
def annotated_long(tmp_path_factory):
    """A 7-minute 2-lead record (two analysis windows) with every beat annotated N."""
    folder = tmp_path_factory.mktemp("annotated")
    ecg = synthetic_ecg(
        hr=75, fs=250, duration=420, leads=("II", "V1"), rr_jitter=0.05, noise_mv=0.02, seed=7
    )
    path = write_record(folder, "rec", ecg.signal, ecg.fs)
    r = ecg.fiducials["r_peak"]
    wfdb.wrann("rec", "atr", r, symbol=["N"] * len(r), fs=250, write_dir=str(folder))
    return path


def test_rr_record_is_rr_over_the_records_usual_rr():
    samples = np.array([0, 100, 200, 260, 360, 460, 560])  # RR 100 x5 and one 60: usual RR 100
    out = feat.rr_record(samples)
    np.testing.assert_allclose(out[:, 0], [1.0, 1.0, 1.0, 0.6, 1.0, 1.0, 1.0])
    # the local median of all 6 intervals is 100: rate 1 everywhere
    np.testing.assert_allclose(out[:, 1], 1.0)
    fast = feat.rr_record(np.arange(0, 50 * 80, 80))  # a run of 80-sample beats only: usual = local
    np.testing.assert_allclose(fast, 1.0)
    assert feat.rr_record(np.array([5])).shape == (1, 2)
    # the rate channel: 30 beats at the usual RR 100, then 10 at 60: the local median there is 60
    slowing = feat.rr_record(np.cumsum([0] + [100] * 30 + [60] * 10))
    np.testing.assert_allclose(slowing[[1, -1]], [[1.0, 1.0], [0.6, 0.6]])


@pytest.mark.parametrize("layout", [feat.TEMPLATE_INPUTS, "leads2+rr4+template2", "leads2+rr4+diff2"])
def test_analysis_feeds_the_model_the_inputs_it_was_trained_on(annotated_long, layout):
    """Windows, RR channels and templates built for training equal those the long-record analysis
    builds, window by window (the template is per analysis window: both sides must use the same windows)."""
    data = record_beats(annotated_long)
    beats = build_beat_set([annotated_long], cache=False)
    model = create_model(MODEL, feat.LAYOUTS[layout], 5, **SMALL)
    seen = []

    class Capture(BeatClassifier):
        def predict_proba(self, inputs, batch_size=2048):
            seen.append(np.array(inputs))
            return np.full((len(inputs), 5), 0.2, dtype=np.float32)

    result = analyse_record(
        annotated_long, Capture(model, inputs=layout), n_clusters=2, artefact_model=None, intervals=False
    )
    analysed = np.concatenate(seen)
    assert analysed.shape[1] == feat.LAYOUTS[layout] and len(seen) == 2  # two analysis windows
    rows = np.searchsorted(result.samples, data["samples"])
    assert np.array_equal(result.samples[rows], data["samples"])
    np.testing.assert_allclose(analysed[rows], beats.inputs(None, layout), atol=2e-2, rtol=2e-3)
    # one template per analysis window, and the two windows' templates differ (not one global median)
    assert len({t.tobytes() for t in data["templates"]}) == 2


def test_a_template_checkpoint_loads_with_its_layout(tmp_path, annotated_long):
    model = create_model(MODEL, 6, 5, **SMALL).eval()
    save_checkpoint(tmp_path / "m.safetensors", model, {"beats": describe(inputs=feat.TEMPLATE_INPUTS)})
    classifier = load_classifier(tmp_path / "m.safetensors")
    assert classifier.inputs == feat.TEMPLATE_INPUTS and classifier.templates
    beats = build_beat_set([annotated_long], cache=False)
    probs = classifier.predict_proba(beats.inputs(np.arange(5), classifier.inputs))
    assert probs.shape == (5, 5)
    save_checkpoint(tmp_path / "bad.safetensors", model, {"beats": describe(inputs="leads2+rr9")})
    with pytest.raises(ValueError, match="not a beat classifier"):
        load_classifier(tmp_path / "bad.safetensors")


def test_rr4_augmentation_jitters_the_record_relative_rr_before_with_the_local_one():
    x = torch.ones(16, 8, 300)
    out = BeatAugment(seed=1, shift=0, layout="leads2+rr4+template2")(x)
    # one beat's prematurity, seen against the local and the record's usual RR: the same jitter
    assert torch.allclose(out[:, 4], out[:, 2]) and not torch.allclose(out[:, 2], x[:, 2])
