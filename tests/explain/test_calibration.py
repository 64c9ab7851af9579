"""Reliability, ECE, temperature and Platt scaling, and calibration stored with a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcore.data import open_source
from ecgcore.explain.calibration import (
    CALIBRATION_FILE,
    TEMPERATURE_RANGE,
    calibrate_run,
    calibrated_prediction,
    calibration_report,
    fit_calibration,
    load_calibration,
    reliability,
)
from ecgcore.predict import load_predictor

CLASSES = ["a", "b", "c", "d"]


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def overconfident(n: int, seed: int, multi: bool):
    """Labels drawn from calibrated logits ``z``; the 'model' outputs ``5 z`` (overconfident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, (n, len(CLASSES)))
    if multi:
        labels = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(np.float32)
    else:
        p = _softmax(z)
        labels = np.array([rng.choice(len(CLASSES), p=row) for row in p])
    return 5.0 * z, labels


def test_reliability_bins_and_ece_by_hand():
    probs = np.array([0.05, 0.15, 0.95, 0.85, 0.9])
    events = np.array([0, 1, 1, 1, 0])
    r = reliability(probs, events, n_bins=2)
    assert r["count"] == [2, 3]
    assert r["confidence"] == pytest.approx([0.10, 0.90])
    assert r["frequency"] == pytest.approx([0.5, 2 / 3])
    assert r["ece"] == pytest.approx((2 * 0.4 + 3 * (0.9 - 2 / 3)) / 5)


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_calibration_lowers_the_ece_of_an_overconfident_model(method, multi):
    val_logits, val_y = overconfident(3000, seed=0, multi=multi)
    test_logits, test_y = overconfident(3000, seed=1, multi=multi)
    calib = fit_calibration(val_logits, val_y, CLASSES, method=method, multi_label=multi)
    if method == "temperature":
        assert calib.temperature == pytest.approx(5.0, rel=0.2)
    raw = (1 / (1 + np.exp(-test_logits))) if multi else _softmax(test_logits)
    before = calibration_report(raw, test_y, CLASSES)
    after = calibration_report(calib.probabilities(test_logits), test_y, CLASSES)
    assert before["ece_mean"] > 0.05
    assert after["ece_mean"] < 0.5 * before["ece_mean"]
    if not multi:
        assert after["top_label"]["ece"] < 0.5 * before["top_label"]["ece"]
        assert calib.probabilities(test_logits).sum(axis=1) == pytest.approx(np.ones(len(test_logits)))
    if method == "temperature":  # temperature never changes the decision
        assert (calib.probabilities(test_logits).argmax(1) == test_logits.argmax(1)).all()


def test_calibration_is_stored_with_the_run_and_applied_to_predictions(classification_run, monkeypatch):
    monkeypatch.setenv("ECGLAB_HOME", str(classification_run["home"]))  # the run's cache lives there
    runs_dir, run_id = classification_run["runs_dir"], classification_run["run_id"]
    assert load_calibration(run_id, runs_dir) is None
    calib = calibrate_run(run_id, runs_dir=runs_dir)
    stored = json.loads((runs_dir / run_id / CALIBRATION_FILE).read_text())
    assert stored["method"] == "temperature" and stored["temperature"] == pytest.approx(calib.temperature)
    assert set(stored["metrics"]) == {"val", "test"}
    assert (
        stored["metrics"]["val"]["after"]["top_label"]["ece"]
        <= stored["metrics"]["val"]["before"]["top_label"]["ece"] + 1e-9
    )
    loaded = load_calibration(run_id, runs_dir)
    predictor = load_predictor(run_id, runs_dir=runs_dir)
    records = json.loads((runs_dir / run_id / "records.json").read_text())
    record = open_source(f"ptbxl:{classification_run['data']}").read(records["test"][0])
    result = calibrated_prediction(predictor, record, loaded)
    probs = result["calibrated_probabilities"]
    assert list(probs) == loaded.classes and sum(probs.values()) == pytest.approx(1.0)
    assert max(probs, key=probs.get) == result["predicted"][0]  # same decision as uncalibrated


def test_a_chance_level_model_gets_the_largest_temperature_not_infinity():
    logits = np.tile([2.0, 1.0, 0.0, -1.0], (8, 1))  # the same output whatever the class
    labels = np.arange(8) % 4
    calib = fit_calibration(logits, labels, CLASSES)
    assert calib.temperature == pytest.approx(TEMPERATURE_RANGE[1])
    assert calib.probabilities(logits) == pytest.approx(np.full((8, 4), 0.25), abs=0.02)
