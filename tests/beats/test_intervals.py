"""Per-beat intervals of a long record from its clusters, the QT/QTc trend, and their place in the analysis."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.analysis import analyse_record
from ecgcore.beats.classify import load_classifier
from ecgcore.beats.intervals import MIN_TREND_BEATS, delineate_record, interval_trend
from ecgcore.beats.longrecord import open_record
from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record
from tests.measure.test_perbeat import PACED, paced_beats

FS = 250.0
NORMAL = {"pr": 160.0, "qrs": 90.0, "qt": 380.0}
WIDE = {"qrs": 160.0, "qt": 480.0}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """3 minutes at 60 bpm, 2 leads, every 6th beat a wide beat of its own QRS and QT (true values known)."""
    common = {"fs": FS, "duration": 180.0, "leads": ("II", "V1"), "seed": 5}
    normal = synthetic_ecg(60, NORMAL["pr"], NORMAL["qrs"], NORMAL["qt"], **common)
    wide = synthetic_ecg(
        60, NORMAL["pr"], WIDE["qrs"], WIDE["qt"], polarity=-1.0, t_scale=-1.0, amplitude_scale=1.5, **common
    )
    signal = normal.signal.copy()
    onsets = normal.fiducials["qrs_on"]
    kind = np.zeros(onsets.size, dtype=np.int64)
    kind[3::6] = 1
    for k in np.flatnonzero(kind):
        cut = slice(int(onsets[k] - 0.01 * FS), int(onsets[k] + 0.7 * FS))
        signal[:, cut] = wide.signal[:, cut]
    signal = signal + np.random.default_rng(0).normal(0, 0.01, signal.shape)
    path = write_record(tmp_path_factory.mktemp("mixed"), "mixed", signal, FS)
    return path, normal.fiducials["r_peak"], kind


def test_each_cluster_gets_its_own_intervals_window_by_window(mixed):
    path, r_peaks, kind = mixed
    info = open_record(path)
    clock: dict[str, float] = {}
    found = delineate_record(info, r_peaks, kind, window_s=60.0, clock=clock)
    assert clock["delineate"] > 0 and clock["read"] > 0
    inner = np.arange(r_peaks.size)[1:-1]  # the first and last beats lack a whole beat window
    for group, truth in ((0, NORMAL), (1, WIDE)):
        beats = inner[kind[inner] == group]
        assert np.all(np.abs(found.qrs_ms[beats] - truth["qrs"]) <= 16)
        assert np.all(np.abs(found.qt_ms[beats] - truth["qt"]) <= 24)
    normal = inner[kind[inner] == 0]
    assert np.all(np.abs(found.pr_ms[normal] - NORMAL["pr"]) <= 24)
    # one group for all: the wide beats get the normal template's QT, about 100 ms short
    dominant = delineate_record(info, r_peaks, np.zeros_like(kind), window_s=60.0)
    wide = inner[kind[inner] == 1]
    assert np.all(np.abs(dominant.qt_ms[wide] - WIDE["qt"]) > 50)


def test_trend_is_per_minute_over_n_beats_with_bazett_and_fridericia():
    fs = 100.0
    rr = 0.64  # s: QTc Bazett = QT / 0.8, Fridericia = QT / 0.64 ** (1/3)
    samples = np.round(np.arange(0.3, 180, rr) * fs).astype(np.int64)
    classes = np.full(samples.size, CLASS_INDEX["N"])
    qt = np.full(samples.size, 400.0, dtype=np.float32)
    qt[::10] = 600.0  # a few long ones: the median ignores them
    classes[5::10] = CLASS_INDEX["V"]
    qt[5::10] = 900.0  # ectopic beats' QT is left out
    in_third = samples >= 120 * fs
    qt[in_third] = np.nan  # the third minute has no QT ...
    qt[np.flatnonzero(in_third)[: MIN_TREND_BEATS - 1]] = 420.0  # ... bar too few beats for a value
    ectopic = (np.arange(samples.size) % 2 == 1) & ~in_third  # half the beats V: they would move the median
    classes[ectopic] = CLASS_INDEX["V"]
    qt[ectopic] = 900.0
    trend = interval_trend(samples, classes, qt, fs, n_samples=int(180 * fs))
    assert trend.qt_ms == [400.0, 400.0, None]
    assert trend.rr_ms == [640.0, 640.0, None]
    assert trend.qtc_ms["bazett"] == [500.0, 500.0, None]
    assert trend.qtc_ms["fridericia"] == [round(400 / rr ** (1 / 3), 1)] * 2 + [None]
    assert trend.beats[2] == MIN_TREND_BEATS - 1
    assert "Bazett" in trend.to_json()["method"] and trend.to_json()["qtc_fridericia_ms"][0] == 464.2


def test_analysis_reports_intervals_per_beat_and_per_minute(long_record):
    path, _ = long_record
    classifier = load_classifier()
    result = analyse_record(path, classifier, window_s=120.0)
    assert result.timings["delineate"] > 0
    qt = result.intervals.qt_ms
    # synthetic_ecg's defaults: PR 160, QRS 90, QT 400 ms
    assert np.nanmedian(qt) == pytest.approx(400, abs=20) and np.isfinite(qt).mean() > 0.95
    report = result.to_json()
    assert report["intervals"]["median_n_beats_ms"]["qrs_ms"] == pytest.approx(90, abs=16)
    trend = report["intervals"]["trend_per_minute"]
    assert len(trend["qt_ms"]) == 8 and all(v == pytest.approx(400, abs=20) for v in trend["qt_ms"])
    beat = report["beats"][10]
    assert beat["qt_ms"] == pytest.approx(float(qt[10]), abs=0.05)
    bare = analyse_record(path, classifier, window_s=120.0, intervals=False)
    assert bare.intervals is None and "intervals" not in bare.to_json() and "delineate" not in bare.timings


def test_cli_prints_intervals_unless_asked_not_to(tmp_path, capsys):
    from ecgcore.cli import main

    ecg = synthetic_ecg(hr=75, fs=250, duration=130, leads=("II", "V1"), seed=8)
    path = write_record(tmp_path, "cli", ecg.signal, ecg.fs)
    assert main(["beats", str(path), "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(report["intervals"]["trend_per_minute"]) >= {
        "qt_ms",
        "qtc_bazett_ms",
        "qtc_fridericia_ms",
        "rr_ms",
    }
    assert report["beats"][5]["qt_ms"] == pytest.approx(400, abs=24) and "delineate" in report["timings"]
    assert main(["beats", str(path), "--quiet", "--no-beats", "--no-intervals"]) == 0
    bare = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "intervals" not in bare and "beats" not in bare


def test_paced_beats_get_the_wide_complexs_qrs_and_qt(tmp_path):
    """A paced Holter record (2 leads, 250 Hz; the pacing spike smeared by the recorder's filter, as in
    the QT Database's sel104) through the Holter path: every beat's QRS ends after the wide complex, not
    at its trough (~100 ms early before the fix), and its QT is within 40 ms of the truth (the CSE T-offset
    limit plus the ~20 ms by which the smeared spike starts the QRS early)."""
    signal, peaks = paced_beats(seconds=130.0)
    info = open_record(write_record(tmp_path, "paced", signal, FS))
    found = delineate_record(info, peaks, np.zeros(peaks.size, dtype=np.int64), window_s=60.0)
    inner = slice(1, -1)
    qrs_off = (found.qrs_off[inner] - peaks[inner]) * 1000 / FS
    assert np.all(np.abs(qrs_off - PACED["qrs_off"]) <= 40)
    assert np.all(np.abs(found.qt_ms[inner] - (PACED["t_off"] - PACED["qrs_on"])) <= 40)
