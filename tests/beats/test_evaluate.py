"""Matching within 150 ms and the per-class counts, on annotation files the tests write."""

from __future__ import annotations

import json

import numpy as np
import pytest
import wfdb

from ecgcore.beats.aami import CLASS_INDEX, SYMBOL_TO_CLASS
from ecgcore.beats.evaluate import match_beats, read_reference, score
from ecgcore.cli import main
from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record


def _write_atr(path, samples, symbols, fs=250):
    wfdb.wrann(path.name, "atr", np.asarray(samples), symbol=list(symbols), fs=fs, write_dir=str(path.parent))


def test_aami_mapping_is_ec57s():
    groups = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
    for cls, symbols in groups.items():
        assert all(SYMBOL_TO_CLASS[s] == cls for s in symbols)
    assert "+" not in SYMBOL_TO_CLASS and "~" not in SYMBOL_TO_CLASS and "|" not in SYMBOL_TO_CLASS


def test_matching_is_one_to_one_and_closest_first():
    # the detection at 120 is 20 from 100 and 10 from 130: it goes to 130, and 100 stays unmatched
    assert match_beats(np.array([100, 130]), np.array([120]), 38).tolist() == [[1, 0]]
    # two detections near one reference: only the closer one matches
    assert match_beats(np.array([500]), np.array([480, 505]), 38).tolist() == [[0, 1]]
    # 39 samples at 250 Hz is 156 ms: outside the 150 ms tolerance (37.5 samples, rounded to 38)
    assert match_beats(np.array([500]), np.array([539]), 38).size == 0


def test_read_reference_keeps_beats_only(tmp_path):
    path = tmp_path / "rec"
    write_record(tmp_path, "rec", np.zeros((1, 2000)), 250, leads=("MLII",))
    _write_atr(path, [50, 100, 300, 500, 700, 800], ["+", "N", "V", "A", "~", "/"])
    ref = read_reference(path)
    assert ref.samples.tolist() == [100, 300, 500, 800]
    assert ref.classes.tolist() == [CLASS_INDEX[c] for c in "NVSQ"]


def test_score_counts_per_class(tmp_path):
    path = tmp_path / "rec"
    write_record(tmp_path, "rec", np.zeros((1, 2000)), 250, leads=("MLII",))
    _write_atr(path, [100, 300, 500, 700], ["N", "V", "A", "N"])
    ref = read_reference(path)
    detected = np.array([10, 110, 340, 495, 705, 900])  # 10 and 900 lie outside the annotated span
    classes = np.array([CLASS_INDEX[c] for c in "NNVSVN"])
    lines = {x["class"]: x for x in score(ref, detected, classes).lines()}
    # 340 is 40 samples (160 ms) from 300: no match; 110, 495 and 705 match
    assert lines["beat"] == {
        "class": "beat",
        "n_reference": 4,
        "n_detected": 4,
        "se": 0.75,
        "ppv": 0.75,
        "f1": 0.75,
    }
    assert (lines["N"]["n_reference"], lines["N"]["se"], lines["N"]["ppv"]) == (2, 0.5, 1.0)
    assert (lines["V"]["n_reference"], lines["V"]["n_detected"], lines["V"]["se"], lines["V"]["ppv"]) == (
        1,
        2,
        0.0,
        0.0,
    )
    assert (lines["S"]["se"], lines["S"]["ppv"]) == (1.0, 1.0)
    assert lines["F"]["se"] is None and lines["F"]["n_reference"] == 0


def test_cli_eval_detection_only(tmp_path, capsys):
    ecg = synthetic_ecg(
        hr=80, fs=250, duration=120, leads=("II", "V1"), rr_jitter=0.05, noise_mv=0.02, seed=5
    )
    path = write_record(tmp_path, "rec", ecg.signal, ecg.fs)
    r_peaks = ecg.fiducials["r_peak"]
    _write_atr(path, r_peaks, ["N"] * len(r_peaks))
    assert main(["beats", "--eval-annotations", "atr", "--detection-only", "--per-record", str(path)]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert out[0]["record"] == "rec" and out[-1]["class"] == "beat"
    assert out[-1]["n_reference"] == len(r_peaks)
    assert out[-1]["se"] == 1.0 and out[-1]["ppv"] == 1.0


def test_cli_refuses_noise_without_detection_only(long_record, capsys):
    path, _ = long_record
    assert main(["beats", "--eval-annotations", "atr", "--noise", "em:6", str(path)]) == 2
    assert "--detection-only" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["xx:6", "em", "em:loud"])
def test_bad_noise_spec(text):
    from ecgcore.beats.noise import parse_noise

    with pytest.raises(ValueError, match="noise"):
        parse_noise(text)
