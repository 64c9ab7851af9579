"""Multi-lead QRS detection: a small wave close before a QRS is not a beat; a tachycardia keeps its beats."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.measure import measure
from ecgcore.vocab import LEADS_8


def test_small_wave_before_each_qrs_is_not_a_beat():
    """A 40 ms, 0.3 mV biphasic wave 280 ms before every QRS (an atrial pacing artefact, a peaked
    P wave) clears the detection threshold; it is dropped as less than half its neighbour's size
    within 360 ms, so HR stays 60 bpm (122 bpm without that rule)."""
    ecg = synthetic_ecg(60, 160, 90, 400, leads=LEADS_8, noise_mv=0.01, seed=2)
    signal, width = ecg.signal.copy(), int(0.04 * ecg.fs)
    for onset in ecg.fiducials["qrs_on"] - int(0.28 * ecg.fs):
        signal[:, onset:onset + width] += 0.3 * np.sin(np.linspace(0, 2 * np.pi, width))
    m = measure(signal, ecg.fs, ecg.leads)
    assert m.hr == pytest.approx(60, abs=1) and len(m.r_peaks) == len(ecg.fiducials["r_peak"])


def test_tachycardia_keeps_every_beat():
    """At 180 bpm beats are 333 ms apart, closer than the 360 ms rule, and alike: none is dropped."""
    ecg = synthetic_ecg(180, 110, 70, 230, p_duration=70, leads=LEADS_8, noise_mv=0.01, seed=3)
    m = measure(ecg.signal, ecg.fs, ecg.leads)
    assert m.hr == pytest.approx(180, abs=1.5) and len(m.r_peaks) == len(ecg.fiducials["r_peak"])
