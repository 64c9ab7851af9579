"""The noise-robust detector and window-by-window detection of long records."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.beats.detect import detect_record
from ecgcore.beats.evaluate import match_beats
from ecgcore.beats.longrecord import analysis_windows, open_record, read_span
from ecgcore.beats.noise import add_noise
from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.measure.rpeaks import bandpass, detect_qrs, detect_r_peaks


def _f1(truth: np.ndarray, found: np.ndarray, fs: float) -> float:
    hits = len(match_beats(truth, found, int(0.15 * fs)))
    return 2 * hits / (truth.size + found.size)


def test_windows_tile_the_record_once(long_record):
    info = open_record(long_record[0])
    parts = list(analysis_windows(info, 60, 10))
    kept = np.concatenate([np.arange(w.keep_start, w.keep_stop) for w in parts])
    assert kept.tolist() == list(range(info.n_samples))
    # each window keeps its 60 s and is read with 10 s either side (none before the first, none past the end)
    fs = int(info.fs)
    assert (parts[1].start, parts[1].start + parts[1].signal.shape[1]) == (50 * fs, 130 * fs)
    assert (parts[1].keep_start, parts[1].keep_stop) == (60 * fs, 120 * fs)
    assert parts[-1].start + parts[-1].signal.shape[1] == info.n_samples
    strip = read_span(info, 61 * fs, 63 * fs)
    assert np.array_equal(strip, parts[1].signal[:, 11 * fs : 13 * fs])


@pytest.mark.parametrize("window_s", [475.0, 470.0, 480.0, 60.0])
def test_windows_tile_the_record_once_whatever_is_left_after_the_first(long_record, window_s):
    # 480 s with 10 s margins: 475 s leaves 5 s after the first window, inside its trailing margin
    info = open_record(long_record[0])
    parts = list(analysis_windows(info, window_s, 10))
    kept = np.concatenate([np.arange(w.keep_start, w.keep_stop) for w in parts])
    assert kept.tolist() == list(range(info.n_samples))
    beats = detect_record(info, window_s=window_s, margin_s=10)
    assert np.all(np.diff(beats) > 0.2 * info.fs)
    assert _f1(long_record[1], beats, info.fs) == 1.0


def test_chunked_detection_gives_the_beats_of_one_pass(long_record):
    path, r_peaks = long_record
    info = open_record(path)
    whole = detect_qrs(read_span(info, 0, info.n_samples), info.fs)
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


def test_a_short_strip_keeps_a_beat_at_its_last_samples_and_no_half_beat_at_its_start():
    ecg = synthetic_ecg(hr=75, fs=250, duration=30, leads=("II",), rr_jitter=0.05, noise_mv=0.01, seed=4)
    r = ecg.fiducials["r_peak"]
    # a 10 s strip that starts 20 ms after one R peak and ends 20 ms after another
    start, stop = r[3] + 5, r[15] + 5
    truth = r[(r >= start) & (r < stop)] - start
    found = detect_qrs(ecg.signal[:, start:stop], ecg.fs)
    assert truth[-1] == stop - start - 5
    assert found.size == truth.size == 12
    assert len(match_beats(truth, found, int(0.15 * ecg.fs))) == 12


def test_r_positions_sit_on_the_r_wave():
    ecg = synthetic_ecg(hr=70, fs=250, duration=10, leads=("II",), qrs=110, seed=2)
    truth = ecg.fiducials["r_peak"]
    envelope = detect_qrs(ecg.signal, ecg.fs)
    r = detect_qrs(ecg.signal, ecg.fs, positions="r")
    pairs = match_beats(truth, r, int(0.15 * ecg.fs))
    assert len(pairs) == truth.size == r.size == envelope.size
    assert np.abs(r[pairs[:, 1]] - truth[pairs[:, 0]]).max() <= 1
    with pytest.raises(ValueError, match="positions"):
        detect_qrs(ecg.signal, ecg.fs, positions="peak")
