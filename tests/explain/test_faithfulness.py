"""Faithfulness measurements: deletion against random deletion, and the randomisation sanity check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcore.data import open_source
from ecgcore.explain.attributions import attribute
from ecgcore.explain.faithfulness import (
    deletion_curve,
    deletion_test,
    randomisation_test,
    rank_correlation,
)
from ecgcore.predict import load_predictor
from tests.explain.helpers import WindowReader, synthetic_record, tiny_model, window_mask


def test_deletion_curve_runs_from_the_score_to_the_baseline_score():
    ecg = synthetic_record(fs=100.0)
    x = np.abs(ecg.signal)  # every sample the model reads is evidence for its output
    model = WindowReader(window_mask(ecg, "V2", "qrs_on", "qrs_off"))
    attr = attribute(model, x, target=0, method="ig", fs=100.0)
    curve = deletion_curve(model, x, attr, fs=100.0, n_steps=10)
    assert curve.scores[0] == pytest.approx(attr.score, abs=1e-5)
    assert curve.scores[-1] == pytest.approx(attr.baseline_score, abs=1e-5)
    # the model reads ~2 % of the samples: deleting the top 10 % removes everything it sees
    assert curve.scores[1] == pytest.approx(attr.baseline_score, abs=1e-4)
    assert curve.normalised_auc() < 0.1


def test_integrated_gradients_beat_random_deletion_on_a_trained_model(regression_run):
    predictor = load_predictor(regression_run["run_id"], runs_dir=regression_run["runs_dir"])
    records = json.loads((regression_run["runs_dir"] / regression_run["run_id"] / "records.json").read_text())
    dataset = open_source(f"deepfake:{regression_run['data']}")
    results = []
    for record_id in (records["test"] + records["val"])[:6]:
        x = predictor.prepare(dataset.read(record_id))[0]
        attr = attribute(predictor.model, x, target=3, method="ig", fs=predictor.prep.fs, n_steps=20)
        results.append(deletion_test(predictor.model, x, attr, fs=predictor.prep.fs, n_steps=10, n_repeats=3))
    ig = np.array([r["normalised_auc"] for r in results])
    rand = np.array([r["random_normalised_auc"] for r in results])
    assert np.median(ig) < np.median(rand) - 0.1, (ig, rand)
    assert np.mean([r["beats_random"] for r in results]) >= 0.8


def test_randomising_the_model_changes_the_attributions():
    ecg = synthetic_record(fs=100.0)
    x = (ecg.signal - ecg.signal.mean(axis=1, keepdims=True)) / ecg.signal.std(axis=1, keepdims=True)
    model = tiny_model(seed=1)
    attr = attribute(model, x, target=0, method="saliency", fs=100.0)
    assert rank_correlation(attr.values, attr.values) == pytest.approx(1.0)
    full = randomisation_test(model, x, attr, mode="full", fs=100.0, seed=5)
    assert full["spearman"] < 0.5
    cascade = randomisation_test(model, x, attr, mode="cascading", fs=100.0, seed=5)
    names = [step["randomised_through"] for step in cascade["steps"]]
    assert names == [name for name, _ in reversed(model.layer_groups())]
    assert cascade["steps"][-1]["spearman"] < 0.5
    # the original model is untouched
    assert attribute(model, x, target=0, method="saliency", fs=100.0).values == pytest.approx(attr.values)
