"""The 10 s strip benchmark: cutting strips from annotated records, the edge rule and the halves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import wfdb

from ecgcore.beats.artefact import ArtefactFilter
from ecgcore.beats.classify import BeatClassifier
from ecgcore.beats.splits import patient_of
from ecgcore.beats.strips import (
    DETECTORS,
    ProductDetector,
    Strip,
    atr_strips,
    evaluate_strips,
    half_of,
    ludb_strips,
    rates,
    score_strip,
    strip_starts,
)
from ecgcore.io import ECGFormatError, RecordNotFoundError

from .conftest import write_record

FS = 250.0


def _annotate(folder, name, extension, samples, symbols):
    wfdb.wrann(
        name, extension, np.asarray(samples, dtype=np.int64), symbol=list(symbols), write_dir=str(folder)
    )


@pytest.fixture
def atr_record(tmp_path):
    """A 60 s, 2-lead record whose .atr holds a beat every second (at 0.5 s, 1.5 s, ...) plus a rhythm note."""
    signal = np.random.default_rng(0).normal(0, 0.01, (2, int(60 * FS)))
    path = write_record(tmp_path, "rec", signal, FS)
    beats = (np.arange(60) + 0.5) * FS
    samples = np.concatenate([beats, [FS * 2.2]])
    symbols = ["N"] * 59 + ["V"] + ["+"]
    order = np.argsort(samples)
    _annotate(tmp_path, "rec", "atr", samples[order], np.array(symbols)[order])
    return path, beats.astype(np.int64)


def test_atr_strips_cut_seeded_non_overlapping_windows_with_beats_in_strip_time(atr_record):
    path, beats = atr_record
    strips = list(atr_strips(path.parent, per_record=3))
    assert len(strips) == 6  # 3 windows x 2 leads
    starts = sorted({s.start for s in strips})
    assert starts == strip_starts("rec", int(60 * FS), FS, 3).tolist()
    assert all(start % int(10 * FS) == 0 for start in starts) and len(set(starts)) == 3
    for s in strips:
        assert s.signal.size == int(10 * FS)
        expected = beats[(beats >= s.start) & (beats < s.start + s.signal.size)] - s.start
        assert s.reference.tolist() == expected.tolist()  # the rhythm note '+' is not a beat
        assert s.lead in ("MLII", "V1") and s.patient == "record:rec"
    # the same draw again, another one with another seed
    assert [s.start for s in atr_strips(path.parent, per_record=3)] == [s.start for s in strips]
    assert sorted({s.start for s in atr_strips(path.parent, per_record=3, seed=1)}) != starts


def test_ludb_strips_read_each_leads_own_qrs_peaks(tmp_path):
    signal = np.zeros((3, int(10 * 500)))
    write_record(tmp_path, "7", signal, 500.0, leads=("i", "ii", "v1"))
    _annotate(tmp_path, "7", "i", [900, 1000, 1100, 1900, 2000], ["(", "N", ")", "p", "N"])
    _annotate(tmp_path, "7", "ii", [1010, 2010, 3010], ["N", "N", "t"])
    strips = {s.lead: s for s in ludb_strips(tmp_path, leads=("i", "ii"))}
    assert strips["i"].reference.tolist() == [1000, 2000]
    assert strips["ii"].reference.tolist() == [1010, 2010]
    assert strips["ii"].span == (1010, 2010) and strips["i"].patient == "ludb:7"
    with pytest.raises(RecordNotFoundError, match="7.v1"):
        list(ludb_strips(tmp_path, leads=("i", "v1")))
    with pytest.raises(ECGFormatError, match="no lead 'avr'"):
        list(ludb_strips(tmp_path, leads=("avr",)))


def _strip(reference, span=None, n=2500):
    return Strip("t", "r", "p", "II", 0, np.zeros(n), FS, np.asarray(reference, dtype=np.int64), span)


def test_edge_rule_counts_only_inside_the_scored_span():
    # beats at 0.04 s (edge), 1 s, 2 s and 9.97 s (edge); detections: the edge beats, 1 s, a false one at 5 s
    strip = _strip([10, 250, 500, 2492])
    detected = np.array([12, 250, 1250, 2499])
    strict = score_strip(strip, detected, 0.15, 0.0)
    guarded = score_strip(strip, detected, 0.15, 0.1)
    # [n_reference, found, n_detected, right]
    assert strict.tolist() == [4, 3, 4, 3]
    assert guarded.tolist() == [2, 1, 2, 1]
    assert rates(guarded) == {"se": 0.5, "ppv": 0.5, "f1": 0.5}
    # a reference beat inside the span matched to a detection just outside it is found, the detection not counted
    # (the guard is 25 samples), and a detection inside matched to a reference outside is right
    assert score_strip(_strip([30]), np.array([20]), 0.15, 0.1).tolist() == [1, 1, 0, 0]
    assert score_strip(_strip([20]), np.array([30]), 0.15, 0.1).tolist() == [0, 0, 1, 1]


def test_annotated_span_limits_a_ludb_strip():
    strip = _strip([1000, 2000], span=(1000, 2000))
    # an unannotated beat at 500 is neither missed nor false; a detection 100 ms after the last one is false
    counts = score_strip(strip, np.array([500, 1000, 2000, 2025]), 0.15, 0.1)
    assert counts.tolist() == [2, 2, 3, 2]
    # at 75 ms the span ends 19 samples after the last beat: 2025 lies outside it, 2015 inside
    assert score_strip(strip, np.array([1000, 2000, 2025]), 0.075, 0.1).tolist() == [2, 2, 2, 2]
    assert score_strip(strip, np.array([1000, 2000, 2015]), 0.075, 0.1).tolist() == [2, 2, 3, 2]


def test_halves_are_by_patient_and_fixed():
    assert half_of(patient_of("sel100")) == half_of(patient_of("100"))
    assert {half_of(f"ludb:{i}") for i in range(1, 61)} == {"tune", "confirm"}
    assert half_of("ludb:1") == half_of("ludb:1")


def test_evaluate_strips_pools_counts_per_condition_and_half(atr_record):
    path, _ = atr_record
    strips = list(atr_strips(path.parent, per_record=2))
    half = strips[0].half

    def perfect(signal, fs):
        return next(s.reference for s in strips if np.array_equal(s.signal, signal))

    rows = evaluate_strips(strips, perfect, [("clean", None)], tolerances_s=(0.15,), edges_s=(0.0,))
    (row,) = [r for r in rows if r["lead_kind"] == "all"]
    assert (row["half"], row["n_strips"], row["n_reference"], row["f1"]) == (half, 4, 40, 1.0)
    assert evaluate_strips(strips, perfect, [("clean", None)], halves=("nobody",)) == []


def test_bench_strips_command_scores_the_detector_and_writes_json(tmp_path, capsys, monkeypatch):
    from ecgcore.cli import main
    from ecgcore.data.synthetic import synthetic_ecg

    monkeypatch.setenv("ECGLAB_HOME", str(tmp_path / "home"))
    ecg = synthetic_ecg(
        hr=70, fs=250, duration=120, leads=("II", "V1"), rr_jitter=0.05, noise_mv=0.02, seed=5
    )
    folder = tmp_path / "db"
    folder.mkdir()
    write_record(folder, "rec", ecg.signal, ecg.fs)
    r = ecg.fiducials["r_peak"]
    _annotate(folder, "rec", "atr", r, ["N"] * r.size)
    out = tmp_path / "strips.json"
    assert main(["bench", "--strips", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "matching within 150 ms" in printed and "matching within 75 ms" in printed
    rows = json.loads(out.read_text())["rows"]
    clean = [
        x for x in rows if x["noise"] == "clean" and x["lead_kind"] == "all" and x["tolerance_s"] == 0.15
    ]
    assert {x["edge_s"] for x in clean} == {0.1, 0.0}
    assert all(x["n_strips"] == 20 and x["f1"] == 1.0 for x in clean)
    noisy = {x["noise"] for x in rows}
    assert noisy == {"clean", "em", "ma", "bw"}


class LastRejected(ArtefactFilter):
    """A fake filter: P(artefact) 1 for the last detection of each call, 0 otherwise; keeps its inputs."""

    def __init__(self) -> None:
        super().__init__(BeatClassifier(model=None, half=50, source="last"), threshold=0.5)
        self.inputs: list[np.ndarray] = []

    def probability(self, inputs: np.ndarray) -> np.ndarray:
        self.inputs.append(inputs)
        return (np.arange(len(inputs)) == len(inputs) - 1).astype(np.float32)


def _clean_strip(seed: int = 5) -> Strip:
    from ecgcore.data.synthetic import synthetic_ecg

    ecg = synthetic_ecg(hr=70, fs=FS, duration=10, leads=("II",), rr_jitter=0.05, noise_mv=0.02, seed=seed)
    return Strip("atr", "syn", "syn", "II", 0, ecg.signal[0], FS, ecg.fiducials["r_peak"])


def test_product_detector_drops_what_the_filter_rejects_from_the_strips_own_detections():
    strip = _clean_strip()
    fake = LastRejected()
    product = ProductDetector(fake)
    kept = product(strip.signal, strip.fs)
    before, p_artefact = product.last
    # before the filter: the detector's beats on the strip written as a record (16-bit), one per beat
    assert score_strip(strip, before, 0.15, 0.0).tolist() == [strip.reference.size] * 4
    assert np.array_equal(kept, before[:-1]) and product.rejected == 1 and p_artefact[-1] == 1.0
    # the filter saw one [n, 4, 100] input for the one-lead strip: the lead twice, then the RR context
    (inputs,) = fake.inputs
    assert inputs.shape == (before.size, 4, 100)
    assert np.array_equal(inputs[:, 0], inputs[:, 1])
    n_ref = strip.reference.size
    assert score_strip(strip, kept, 0.15, 0.0).tolist() == [n_ref, n_ref - 1, n_ref - 1, n_ref - 1]


def test_product_detector_with_the_shipped_filter_keeps_every_beat_of_clean_strips():
    product = DETECTORS["product"]()
    for seed in (5, 6):
        strip = _clean_strip(seed)
        kept = product(strip.signal, strip.fs)
        assert score_strip(strip, kept, 0.15, 0.0).tolist() == [strip.reference.size] * 4
    assert product.rejected == 0 and product.last[0].size == kept.size
