"""Synthetic V beats: who gives and receives them, the spliced waveform, its RR inputs, training-only use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecgcore.beats import train_default
from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.dataset import BeatSet
from ecgcore.beats.features import MODEL_FS
from ecgcore.beats.splits import patient_of
from ecgcore.beats.synth import draw_pairs, splice, splice_mask, with_synthetic_v

N, V = CLASS_INDEX["N"], CLASS_INDEX["V"]
L = 300
# sel103 and 103 are one patient (a MIT-BIH record and its QT Database excerpt); sel105 is held out.
RECORDS = ["sel103", "103", "sel104", "sel105"]
TRAIN = ["sel103", "103", "sel104"]


def _beat_set() -> BeatSet:
    """Per record: (labels); sel103 has V beats, 103 many N beats (a same-patient trap), sel105 both."""
    labels_of = {
        "sel103": [N] * 10 + [V] * 6,
        "103": [N] * 200,
        "sel104": [N] * 20,
        "sel105": [N] * 10 + [V] * 5,
    }
    rng = np.random.default_rng(0)
    labels = np.concatenate([labels_of[r] for r in RECORDS])
    record = np.concatenate([np.full(len(labels_of[r]), i) for i, r in enumerate(RECORDS)])
    samples = np.concatenate([np.arange(len(labels_of[r])) * 300 + 100 for r in RECORDS])
    sel104 = record == 2  # its rate halves midway: the local rate is not the record's usual one
    samples[sel104] = np.cumsum(np.r_[100, [200] * 9, [400] * 10])
    n = labels.size
    templates = np.empty((n, 2, L), np.float32)
    templates[:, 0] = np.sin(np.linspace(0, np.pi, L))  # peak to peak 1
    templates[:, 1] = np.sin(np.linspace(0, np.pi, L))
    donor_side = record == 0
    templates[donor_side, 0] *= 2.0  # the donor patient's lead 1 is twice as large: scale 0.5
    templates[donor_side, 1] *= 0.1  # its lead 2 a tenth: scale 10, clipped to 4
    return BeatSet(
        windows=rng.normal(size=(n, 2, L)).astype(np.float16),
        rr=rng.uniform(0.9, 1.1, size=(n, 2)).astype(np.float32),
        labels=labels,
        record=record,
        records=list(RECORDS),
        samples=samples,
        templates=templates.astype(np.float16),
    )


def test_donors_and_recipients_are_training_beats_of_two_different_patients():
    beats = _beat_set()
    donors, recipients = draw_pairs(beats, TRAIN, 2.0, seed=3)
    assert donors.size == recipients.size == 12  # 2 x the 6 training V beats; none dropped
    names = np.asarray(beats.records)
    assert set(names[beats.record[donors]]) == {"sel103"}  # sel105's V beats are never donors
    assert set(names[beats.record[recipients]]) <= {"sel104"}  # not 103: the donor's own patient
    assert (beats.labels[donors] == V).all() and (beats.labels[recipients] == N).all()
    assert np.bincount(donors - donors.min()).max() == 2  # every donor used in turn
    again = draw_pairs(beats, TRAIN, 2.0, seed=3)
    assert np.array_equal(again[1], recipients)
    # 9 pairs from 6 donors: which 3 donors serve twice is the seed's draw, not the first 3 rows
    draws = [draw_pairs(beats, TRAIN, 1.5, seed=s)[0] for s in range(5)]
    twice = {tuple(np.flatnonzero(np.bincount(d) == 2)) for d in draws}
    assert len(twice) > 1


def test_no_pair_when_the_only_recipients_are_the_donors_patient():
    beats = _beat_set()
    donors, recipients = draw_pairs(beats, ["sel103", "103"], 1.0, seed=0)
    assert donors.size == recipients.size == 0


def test_the_spliced_window_is_the_donor_beat_scaled_in_its_core_and_the_recipient_outside():
    beats = _beat_set()
    donors, recipients = np.array([12, 13]), np.array([230, 231])  # sel103's V beats into sel104's N beats
    out = splice(beats, donors, recipients)
    new = out.windows[-2:].astype(np.float32)
    mask = splice_mask(L)
    t = (np.arange(L) - L // 2) * 1000 / MODEL_FS
    core = (t >= -120) & (t <= 380)
    far = (t < -160) | (t > 420)
    assert core.sum() > 150 and far.sum() > 10 and mask[core].min() == 1 and mask[far].max() == 0
    donor, recipient = beats.windows[donors].astype(np.float32), beats.windows[recipients].astype(np.float32)
    tol = 0.01  # float16 storage
    assert np.allclose(new[:, 0][:, core], 0.5 * donor[:, 0][:, core], atol=tol)
    assert np.allclose(new[:, 1][:, core], 4.0 * donor[:, 1][:, core], atol=tol * 4)
    assert np.allclose(new[:, :, far], recipient[:, :, far], atol=tol)
    assert (out.labels[-2:] == V).all() and out.record[-2:].tolist() == [2, 2]
    assert np.array_equal(out.templates[-2:], beats.templates[recipients])
    assert out.windows.shape[0] == beats.windows.shape[0] + 2


def test_the_synthetic_beat_is_as_premature_as_its_donor_at_the_recipients_rate():
    beats = _beat_set()
    beats.rr[12] = [0.6, 1.4]  # a premature donor with its compensatory pause
    original = beats.rr_record.copy()
    out = splice(beats, np.array([12]), np.array([220]))  # sel104's fifth beat, at twice its usual rate
    rate = original[220, 1]
    assert abs(rate - 1) > 0.2
    assert np.allclose(out.rr[-1], [0.6, 1.4])
    assert np.allclose(out.rr_record[-1], [0.6 * rate, rate])
    assert np.array_equal(out.rr_record[:-1], original)  # real beats keep their RR
    x = out.inputs(np.array([out.labels.size - 1]), "leads2+rr4+template2")
    assert np.allclose(x[0, 2:6, 0], [0.6 - 1, 1.4 - 1, 0.6 * rate - 1, rate - 1], atol=1e-6)


def test_training_splices_within_the_training_records_only(monkeypatch):
    beats = _beat_set()
    seen = {}

    def capture(beats, records, ratio, seed):
        seen.update(records=list(records), ratio=ratio, seed=seed)
        out = with_synthetic_v(beats, records, ratio, seed)
        patients = {patient_of(beats.records[i]) for i in out.record[beats.labels.size :]}
        seen["patients"] = patients
        raise RuntimeError("stop before training")

    monkeypatch.setattr(train_default, "with_synthetic_v", capture)
    split = {"train": TRAIN, "val": [], "test": ["sel105"]}
    recipe = replace(train_default.FINAL, synthetic_v=1.0, seed=4)
    with pytest.raises(RuntimeError, match="stop before training"):
        train_default.train_model(beats, split, Path("unused"), Path("unused"), recipe)
    assert seen["records"] == TRAIN and seen["ratio"] == 1.0 and seen["seed"] == 4
    assert seen["patients"] == {patient_of("sel104")}
    with pytest.raises(ValueError, match="synthetic V"):
        train_default.train_model(
            beats, split, Path("unused"), Path("unused"), recipe, labels=np.zeros(beats.labels.size)
        )


def test_the_shipped_recipe_trains_on_the_real_beats_only(monkeypatch):
    beats = _beat_set()
    seen = {}

    def capture(beats, *args, **kwargs):
        seen["beats"] = beats
        raise RuntimeError("stop before training")

    monkeypatch.setattr(train_default, "prepared", capture)
    split = {"train": TRAIN, "val": [], "test": ["sel105"]}
    with pytest.raises(RuntimeError, match="stop before training"):
        train_default.train_model(beats, split, Path("unused"), Path("unused"), train_default.FINAL)
    assert seen["beats"] is beats  # no synthetic rows unless a recipe asks for them
