"""The noise-robust detector and window-by-window detection of long records."""

from __future__ import annotations

import numpy as np

from ecgcore.beats.detect import detect_record
from ecgcore.beats.evaluate import match_beats
from ecgcore.beats.longrecord import read_window, record_info, windows
from ecgcore.beats.noise import add_noise
from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.measure.rpeaks import bandpass, detect_qrs, detect_r_peaks


def _f1(truth: np.ndarray, found: np.ndarray, fs: float) -> float:
    hits = len(match_beats(truth, found, int(0.15 * fs)))
    return 2 * hits / (truth.size + found.size)


def test_windows_tile_the_record_once():
    parts = list(windows(1000, 300, 20))
    kept = np.concatenate([np.arange(a, b) for _, _, a, b in parts])
    assert kept.tolist() == list(range(1000))
    assert parts[1][:2] == (280, 620) and parts[-1][1] == 1000


def test_chunked_detection_gives_the_beats_of_one_pass(long_record):
    path, r_peaks = long_record
    info = record_info(path)
    whole = detect_qrs(read_window(info, 0, info.n_samples), info.fs)
    chunked = detect_record(info, window_s=60, margin_s=10)
    # the same beats; a few sit one sample apart, since each window scales its leads by its own blocks
    assert chunked.size == whole.size
    assert np.abs(chunked - whole).max() <= 1
    assert _f1(r_peaks, chunked, info.fs) == 1.0


def test_robust_detector_holds_up_under_muscle_noise_where_the_old_one_does_not():
    ecg = synthetic_ecg(hr=70, fs=250, duration=120, leads=("II",), rr_jitter=0.05, seed=2)
    truth = ecg.fiducials["r_peak"]
    noisy = add_noise(ecg.signal, ecg.fs, "ma", 6.0, truth, seed=1)
    old = detect_r_peaks(bandpass(noisy, ecg.fs), ecg.fs)
    assert _f1(truth, detect_qrs(noisy, ecg.fs), ecg.fs) > 0.99
    assert _f1(truth, old, ecg.fs) < 0.9


def test_noise_reaches_the_asked_snr():
    ecg = synthetic_ecg(hr=70, fs=250, duration=60, leads=("II", "V1"), seed=2)
    truth = ecg.fiducials["r_peak"]
    from ecgcore.beats.noise import qrs_power

    for kind in ("bw", "ma", "em"):
        noisy = add_noise(ecg.signal, ecg.fs, kind, 6.0, truth, seed=0)
        noise_power = np.mean((noisy - ecg.signal) ** 2, axis=1)
        snr = 10 * np.log10(qrs_power(ecg.signal, truth, ecg.fs) / noise_power)
        assert np.allclose(snr, 6.0, atol=0.01)
