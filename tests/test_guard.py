"""The prediction guard: refusals (no number) and flags (beside the number) in plain words."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.guard import OUTSIDE, check_prediction, check_record
from ecgcore.io import Record
from ecgcore.vocab import LEADS_12

META = {
    "task": "regression",
    "preprocessing": {"leads": list(LEADS_12), "fs": 100.0, "duration": 10.0},
    "label_range": {"hr": [50.0, 110.0], "qrs": [70.0, 120.0], "qt": [340.0, 460.0]},
    "source_fs": 500.0,
}


def _record(signal, fs=500.0, leads=LEADS_12) -> Record:
    return Record(signal, fs, leads, "r1")


@pytest.fixture(scope="module")
def ecg():
    return synthetic_ecg(68, 160, 90, 400, fs=500.0, duration=10.0, noise_mv=0.01, seed=3)


def test_a_plausible_record_passes_without_flags(ecg):
    verdict = check_record(_record(ecg.signal), META)
    assert verdict.refused is None and verdict.flags == []
    assert verdict.measurement.hr == pytest.approx(68, abs=2)


def test_a_flat_line_is_refused():
    verdict = check_record(_record(np.zeros((12, 5000))), META)
    assert verdict.refused is not None and "flat" in verdict.refused
    assert verdict.lines() == [f"No prediction: {verdict.refused}"]


def test_a_saturated_lead_set_is_refused(ecg):
    rail = np.percentile(ecg.signal, 90, axis=1, keepdims=True)
    verdict = check_record(_record(np.minimum(ecg.signal, rail)), META)
    assert verdict.refused is not None and "saturated" in verdict.refused


def test_a_record_without_qrs_is_refused():
    t = np.arange(5000) / 500.0
    drift = np.tile(np.sin(2 * np.pi * 0.1 * t), (12, 1))  # 1 mV of slow wander, no beats
    verdict = check_record(_record(drift), META)
    assert verdict.refused is not None and "no detectable QRS" in verdict.refused


def test_a_halved_header_rate_is_flagged_with_the_rate_that_fits(ecg):
    verdict = check_record(_record(ecg.signal, fs=250.0), META)  # 500 Hz samples, header says 250
    assert verdict.refused is None
    rate = [f for f in verdict.flags if "implausible" in f]
    assert len(rate) == 1 and "header's sampling rate of 250 Hz" in rate[0] and "at 500 Hz" in rate[0]
    assert any("measured HR" in f and OUTSIDE in f for f in verdict.flags)


def test_predictions_and_measurements_outside_the_training_range_are_flagged(ecg):
    flags = check_prediction({"intervals": {"hr": 70.0, "qt": 520.0}}, META)
    assert flags == [f"predicted QT 520 ms is {OUTSIDE} (training QT 340-460 ms)"]
    assert check_prediction({"intervals": {"hr": 70.0, "qt": 420.0}}, META) == []
    narrow = {**META, "label_range": {"hr": [80.0, 110.0]}}
    assert any(
        f.startswith("measured HR 68 bpm is " + OUTSIDE)
        for f in check_record(_record(ecg.signal), narrow).flags
    )


def test_preparation_differing_from_the_runs_is_flagged(ecg):
    two = [LEADS_12.index("I"), LEADS_12.index("II")]
    verdict = check_record(
        Record(ecg.signal[two][:, :5000], 500.0, ("I", "II"), "r2"),
        {
            **META,
            "preprocessing": {"leads": ["I", "II", "III"], "fs": 100.0, "duration": 5.0},
            "source_fs": 100.0,
        },
    )
    text = " | ".join(verdict.flags)
    assert "III are not in the record" in text
    assert "sampled at 500 Hz, the run's training records at 100 Hz" in text
    assert "only the first 5 s of the 10.0 s record" in text


def test_one_flat_lead_is_flagged_not_refused(ecg):
    signal = ecg.signal.copy()
    signal[LEADS_12.index("V3")] = 0.0
    verdict = check_record(_record(signal), META)
    assert verdict.refused is None and "lead V3 is flat" in verdict.flags


def test_noise_is_not_read_as_a_plausible_rhythm():
    # the QRS detector finds "beats" in white noise (~220 bpm, QRS 200 ms): the guard cannot refuse
    # it as beat-less, but it flags the rhythm as implausible
    noise = np.random.default_rng(0).normal(0.0, 0.1, (12, 5000))
    verdict = check_record(_record(noise), META)
    assert verdict.refused is not None or any("implausible" in f for f in verdict.flags)
