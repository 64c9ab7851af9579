"""Labelled beat windows from written annotations, class-balanced rows, the batch source."""

from __future__ import annotations

import numpy as np
import torch
import wfdb

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.dataset import (
    ARTEFACT,
    BeatSource,
    balanced_indices,
    balanced_rows,
    build_beat_set,
    record_beats,
)
from ecgcore.beats.features import CLASSIFIER_HALF
from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record


def _annotated(tmp_path, name="rec", seed=5):
    ecg = synthetic_ecg(
        hr=80, fs=250, duration=90, leads=("II", "V1"), rr_jitter=0.05, noise_mv=0.02, seed=seed
    )
    path = write_record(tmp_path, name, ecg.signal, ecg.fs)
    r = ecg.fiducials["r_peak"]
    symbols = ["V" if i % 10 == 5 else "A" if i % 10 == 7 else "N" for i in range(len(r))]
    # the 20th beat is left unannotated: its detection must come out as ARTEFACT (no reference there)
    keep = np.arange(len(r)) != 20
    wfdb.wrann(
        name, "atr", r[keep], symbol=[s for s, k in zip(symbols, keep) if k], fs=250, write_dir=str(tmp_path)
    )
    return path, r, symbols


def test_record_beats_labels_detections_by_their_reference(tmp_path):
    path, r, symbols = _annotated(tmp_path)
    data = record_beats(path)
    assert data["windows"].shape == (len(r), 2, 2 * CLASSIFIER_HALF) and data["windows"].dtype == np.float16
    expected = [CLASS_INDEX[{"A": "S"}.get(s, s)] for s in symbols]
    expected[20] = ARTEFACT
    assert data["labels"].tolist() == expected
    assert np.abs(data["samples"] - r).max() <= 0.15 * 250


def test_balanced_indices_equalise_classes_at_power_one():
    labels = np.array([0] * 1000 + [2] * 10)
    rng = np.random.default_rng(0)
    drawn = labels[balanced_indices(labels, 4000, rng, power=1.0)]
    assert abs(np.mean(drawn == 2) - 0.5) < 0.03
    drawn = labels[balanced_indices(labels, 4000, rng, power=0.0)]
    assert np.mean(drawn == 2) < 0.02


def test_balanced_rows_stay_within_the_rows_given():
    labels = np.array([0] * 100 + [1] * 5 + [0] * 100 + [1] * 5)
    rows = np.arange(105)  # the first "record" only
    out = balanced_rows(labels, rows, 500, seed=1, power=1.0)
    assert out.max() < 105 and abs(np.mean(labels[out] == 1) - 0.5) < 0.06
    assert np.array_equal(out, balanced_rows(labels, rows, 500, seed=1, power=1.0))  # seeded


def test_beat_source_batches_inputs_and_targets(tmp_path):
    path, _, _ = _annotated(tmp_path)
    beats = build_beat_set([path], cache=False)
    source = BeatSource(beats)
    rows = np.flatnonzero(beats.labels >= 0)[:8]
    ((x, y),) = list(source.iterate([rows]))
    assert x.shape == (8, 4, 2 * CLASSIFIER_HALF) and x.dtype == torch.float32
    assert y.tolist() == beats.labels[rows].tolist()
    # channels 2 and 3 are the RR context (ratio - 1), constant along the window
    assert torch.allclose(x[:, 2, 0], torch.from_numpy(beats.rr[rows, 0] - 1).float())
    assert torch.all(x[:, 2:].std(dim=2) == 0)


def test_beat_set_cache_gives_the_same_beats(tmp_path):
    path, _, _ = _annotated(tmp_path)
    fresh = build_beat_set([path], cache=False)
    first = build_beat_set([path])  # builds the cache
    again = build_beat_set([path])  # reads it
    for b in (first, again):
        assert np.array_equal(b.labels, fresh.labels) and np.array_equal(b.windows, fresh.windows)
