"""Representative beats: which detections enter them and count as beats."""

from __future__ import annotations

import numpy as np

from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.measure.delineate import build_template
from ecgcore.measure.rpeaks import bandpass, detect_r_peaks
from ecgcore.vocab import LEADS_8


def _record_and_peaks() -> tuple[np.ndarray, float, np.ndarray]:
    ecg = synthetic_ecg(60, 160, 100, 400, leads=LEADS_8, noise_mv=0.01, wander_mv=0.1, seed=3)
    x = bandpass(ecg.signal, ecg.fs)
    return x, ecg.fs, detect_r_peaks(x, ecg.fs)


def test_unlike_detection_just_before_a_qrs_is_no_beat():
    """A false detection on the P wave, 130 ms before a QRS (as an atrial pacing stimulus gave in
    LUDB record 45), is unlike the QRS and followed too closely by a typical one: it is no beat,
    so it neither enters the median nor the RR intervals."""
    x, fs, peaks = _record_and_peaks()
    false = peaks[4] - int(0.13 * fs)
    tpl = build_template(x, np.sort(np.append(peaks, false)), fs, 1.0)
    assert tpl.peaks.size == peaks.size
    assert np.abs(tpl.peaks - peaks).max() <= 2


def test_unlike_detection_far_from_its_neighbours_stays_a_beat():
    """The same odd detection in mid-diastole, 500 ms from either QRS, could be an ectopic beat: it
    stays in the RR intervals but not in the median."""
    x, fs, peaks = _record_and_peaks()
    odd = peaks[4] - int(0.5 * fs)
    tpl = build_template(x, np.sort(np.append(peaks, odd)), fs, 1.0)
    assert tpl.peaks.size == peaks.size + 1
    assert not tpl.used[np.argmin(np.abs(tpl.peaks - odd))]
