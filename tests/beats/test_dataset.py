"""Labelled beat windows from written annotations, class-balanced rows, the batch source."""

from __future__ import annotations

import numpy as np
import torch
import wfdb

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.dataset import (
    ARTEFACT,
    BeatAugment,
    BeatSet,
    BeatSource,
    balanced_indices,
    balanced_rows,
    build_beat_set,
    label_detections,
    record_beats,
)
from ecgcore.beats.evaluate import ReferenceBeats
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


def test_natural_classes_keep_their_share_beside_the_most_common_one():
    labels = np.array([0] * 1000 + [1] * 10 + [4] * 50)
    drawn = labels[balanced_indices(labels, 20_000, np.random.default_rng(0), power=1.0, natural=(4,))]
    # class 1 is balanced up to class 0's share; class 4 keeps 50 rows per 1000 of class 0
    share = np.bincount(drawn, minlength=5) / drawn.size
    assert abs(share[1] - share[0]) < 0.03
    assert abs(share[4] / share[0] - 0.05) < 0.015


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


def test_detections_matching_no_reference_beat_are_artefacts():
    ref = ReferenceBeats(np.array([1000, 1250, 1500, 1750]), np.array([0, 2, 0, 1]), 250.0)
    # 10 (before the span), 1010 (N), 1120 (480 ms from any beat: artefact),
    # 1240 (V), 1290 (40 samples from 1250 but 1240 is closer: artefact), 1760 (S), 5000 (after the span)
    samples, labels = label_detections(ref, np.array([10, 1010, 1120, 1240, 1290, 1760, 5000]), 250.0)
    assert samples.tolist() == [1010, 1120, 1240, 1290, 1760]
    assert labels.tolist() == [0, ARTEFACT, 2, ARTEFACT, 1]


def test_noisy_copies_add_detections_that_match_no_beat_and_only_those_are_artefacts(tmp_path):
    path, r, _ = _annotated(tmp_path)
    clean = record_beats(path, half=50)
    noisy = record_beats(path, half=50, noise=("em", -6.0, 3))
    assert noisy["windows"].shape[-1] == 100
    assert np.sum(noisy["labels"] == ARTEFACT) > np.sum(clean["labels"] == ARTEFACT)
    # an artefact is a detection farther than 150 ms from every reference beat, or the farther of two
    reference = np.delete(r, 20)
    distance = np.abs(noisy["samples"][:, None] - reference[None, :]).min(axis=1)
    tolerance = round(0.15 * 250)
    assert np.all(distance[noisy["labels"] >= 0] <= tolerance)
    far = distance > tolerance
    assert np.all(noisy["labels"][far] == ARTEFACT)


def test_source_redraws_training_rows_within_their_class_only():
    labels = np.array([0] * 50 + [2] * 5 + [0] * 20)
    rows_train = np.arange(55)  # rows 55.. are another record (validation)

    class Beats:  # the part of a BeatSet a source reads
        def __init__(self):
            self.labels = labels

        def inputs(self, rows, layout=None):
            return np.asarray(rows, dtype=np.float32)[:, None, None] * np.ones((1, 4, 3), np.float32)

    source = BeatSource(Beats(), redraw=rows_train, seed=1)
    batch = np.array([0, 1, 50, 51, 60, 61])
    served = np.concatenate([x[:, 0, 0].numpy() for x, _ in source.iterate([batch] * 20)]).astype(int)
    targets = np.concatenate([y.numpy() for _, y in source.iterate([batch])])
    assert targets.tolist() == labels[batch].tolist()
    assert np.all(labels[served] == np.tile(labels[batch], 20))
    assert set(served[np.tile(batch, 20) >= 55]) == {60, 61}  # validation rows untouched
    assert len(set(served[np.tile(batch, 20) < 50])) > 10  # N slots show many different N beats


def test_augmentation_changes_leads_not_the_rr_context():
    x = torch.randn(16, 4, 300)
    x[:, 2:] = 0.3
    out = BeatAugment(seed=0)(x)
    assert out.shape == x.shape and not torch.allclose(out[:, :2], x[:, :2])
    assert torch.all(out[:, 2:].std(dim=2) < 1e-6) and torch.allclose(out[:, 2:], x[:, 2:], atol=0.15)
    assert torch.equal(BeatAugment(seed=0)(x), out)  # seeded


def test_record_relative_rr_is_taken_within_each_record():
    # record a beats every 100 samples, record b every 200 with one beat 120 after the one before it
    a, b = np.arange(0, 1000, 100), np.array([0, 200, 400, 520, 720, 920, 1120])
    n = a.size + b.size
    beats = BeatSet(
        windows=np.zeros((n, 2, 6), dtype=np.float16),
        rr=np.ones((n, 2), dtype=np.float32),
        labels=np.zeros(n, dtype=np.int64),
        record=np.array([0] * a.size + [1] * b.size),
        records=["a", "b"],
        samples=np.concatenate([a, b]),
    )
    # each record over its own usual RR: every beat of a is at rate 1, b's early beat at 120 / 200
    np.testing.assert_allclose(beats.rr_record[: a.size], 1.0)
    np.testing.assert_allclose(beats.rr_record[a.size :, 0], [1.0, 1.0, 1.0, 0.6, 1.0, 1.0, 1.0])
    beats.templates = np.zeros_like(beats.windows)
    inputs = beats.inputs(layout="leads2+rr4+template2")  # channels 4, 5: the record-relative RR - 1
    np.testing.assert_allclose(inputs[:, 4:6, 0], beats.rr_record - 1.0)
