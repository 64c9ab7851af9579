"""Multi-lead QRS detection: a small wave close before a QRS or a baseline step is not a beat; a
tachycardia and a narrow QRS keep their beats."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.measure import measure, rpeaks
from ecgcore.vocab import LEADS_8


def test_small_wave_before_each_qrs_is_not_a_beat():
    """A 40 ms, 0.3 mV biphasic wave 280 ms before every QRS (an atrial pacing artefact, a peaked
    P wave) clears the detection threshold; it is dropped as less than half its neighbour's size
    within 360 ms, so HR stays 60 bpm (122 bpm without that rule)."""
    ecg = synthetic_ecg(60, 160, 90, 400, leads=LEADS_8, noise_mv=0.01, seed=2)
    signal, width = ecg.signal.copy(), int(0.04 * ecg.fs)
    for onset in ecg.fiducials["qrs_on"] - int(0.28 * ecg.fs):
        signal[:, onset : onset + width] += 0.3 * np.sin(np.linspace(0, 2 * np.pi, width))
    m = measure(signal, ecg.fs, ecg.leads)
    assert m.hr == pytest.approx(60, abs=1) and len(m.r_peaks) == len(ecg.fiducials["r_peak"])


def test_tachycardia_keeps_every_beat():
    """At 180 bpm beats are 333 ms apart, closer than the 360 ms rule, and alike: none is dropped."""
    ecg = synthetic_ecg(180, 110, 70, 230, p_duration=70, leads=LEADS_8, noise_mv=0.01, seed=3)
    m = measure(ecg.signal, ecg.fs, ecg.leads)
    assert m.hr == pytest.approx(180, abs=1.5) and len(m.r_peaks) == len(ecg.fiducials["r_peak"])


@pytest.mark.parametrize("fs", [250.0, 500.0, 1000.0])
def test_baseline_step_is_not_a_beat(monkeypatch, fs):
    """An electrode pop: the baseline of every lead jumps by 1 mV mid-way between two beats and
    stays there (LUDB record 15 has one). Its slopes are narrower than any QRS's, so it is no beat
    and HR stays 60 bpm; counted as one, it would add a beat and raise HR. It is as sharp as a
    pacemaker spike but is not removed as one: bridged by interpolation it became, at 250 Hz, a
    ramp as wide as a 40 ms QRS's slopes, and a beat."""
    ecg = synthetic_ecg(60, 160, 90, 400, fs=fs, leads=LEADS_8, noise_mv=0.01, seed=4)
    signal = ecg.signal.copy()
    r = ecg.fiducials["r_peak"]
    signal[:, (r[4] + r[5]) // 2 :] += 1.0 * np.where(np.arange(len(ecg.leads)) % 3, 1.0, -1.0)[:, None]
    m = measure(signal, ecg.fs, ecg.leads)
    assert m.hr == pytest.approx(60, abs=1) and len(m.r_peaks) == len(r)
    monkeypatch.setattr(rpeaks, "MIN_SLOPE_WIDTH_MS", 0.0)
    assert len(measure(signal, ecg.fs, ecg.leads).r_peaks) == len(r) + 1


def test_narrow_qrs_is_still_a_beat():
    """A 40 ms QRS (an infant's) has the narrowest slopes a QRS has; at 150 bpm every beat is kept."""
    ecg = synthetic_ecg(150, 100, 40, 250, p_duration=60, leads=LEADS_8, noise_mv=0.01, seed=5)
    m = measure(ecg.signal, ecg.fs, ecg.leads)
    assert m.hr == pytest.approx(150, abs=1.5) and len(m.r_peaks) == len(ecg.fiducials["r_peak"])


@pytest.mark.parametrize("after", [1, 2])
def test_a_strip_cut_just_after_an_r_peak_reports_no_beat_for_its_falling_limb(after):
    """The envelope of the limb after an R peak that lies before the strip peaks inside it (about 45 ms in);
    that detection's R extremum is the strip's first sample, so it is dropped: a strip starting 1-2 samples
    after an R peak gave a 12th beat among 11 without the edge check."""
    ecg = synthetic_ecg(hr=75, fs=250, duration=30, leads=("II",), rr_jitter=0.05, noise_mv=0.01, seed=4)
    r = ecg.fiducials["r_peak"]
    start, stop = r[3] + after, r[14] + int(0.3 * ecg.fs)
    found = rpeaks.detect_qrs(ecg.signal[:, start:stop], ecg.fs)
    truth = r[(r >= start) & (r < stop)] - start
    assert truth.size == 11 and found.size == 11
    assert np.abs(found - truth).max() <= int(0.05 * ecg.fs)
