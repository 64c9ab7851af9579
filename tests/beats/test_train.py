"""Beat models train through the common fit loop; record-level splits keep records apart."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgcore.beats import train_default
from ecgcore.beats.classify import BeatClassifier
from ecgcore.beats.dataset import build_beat_set
from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record


@pytest.fixture
def folder(tmp_path):
    """Four annotated 1-minute records: every 4th beat labelled V (its RR context differs, not its shape)."""
    for i in range(4):
        ecg = synthetic_ecg(
            hr=75 + 5 * i, fs=250, duration=60, leads=("II", "V1"), rr_jitter=0.05, seed=10 + i
        )
        write_record(tmp_path, f"r{i}", ecg.signal, ecg.fs)
        r = ecg.fiducials["r_peak"]
        wfdb.wrann(
            f"r{i}",
            "atr",
            r,
            symbol=["V" if k % 4 == 0 else "N" for k in range(len(r))],
            fs=250,
            write_dir=str(tmp_path),
        )
    return tmp_path


def test_split_keeps_every_record_on_one_side():
    names = [f"rec{i:02d}" for i in range(65)]
    split = train_default.split_records(names)
    sides = [set(v) for v in split.values()]
    assert sum(len(s) for s in sides) == 65 and len(set.union(*sides)) == 65
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (45, 7, 13)


def test_prepared_rows_come_from_their_own_records_only(folder):
    beats = build_beat_set(train_default.annotated_records(folder), cache=False)
    split = {"train": ["r0", "r1"], "val": ["r2"], "test": ["r3"]}
    recipe = train_default.Recipe(epochs=1, epoch_rows=300)
    data = train_default.prepared(beats, split, train_default._config(folder, recipe), recipe)
    for name, records in split.items():
        assert set(data.record_ids[data.rows[name]]) == set(records)
        assert np.all(beats.labels[data.rows[name]] >= 0)
    # balanced: V is a quarter of the beats but about half of the training rows (power 0.75 -> ~0.43)
    assert 0.35 < np.mean(beats.labels[data.rows["train"]] == 2) < 0.55


TINY = (("channels", 8), ("lstm_hidden", 8), ("attention_hidden", 8), ("head_hidden", 8))


def test_a_beat_model_trains_through_the_fit_loop(folder, tmp_path):
    beats = build_beat_set(train_default.annotated_records(folder), cache=False)
    split = {"train": ["r0", "r1"], "val": ["r2"], "test": ["r3"]}
    recipe = train_default.Recipe(epochs=2, epoch_rows=256, sizes=TINY, redraw=True, augment=True)
    model, summary = train_default.train_model(beats, split, tmp_path / "run", folder, recipe)
    assert summary["status"] == "done" and summary["epochs_run"] == 2
    assert (tmp_path / "run" / "best.safetensors").exists()
    counts = train_default.score_records(beats, ["r3"], folder, BeatClassifier(model))
    assert counts.lines()[0]["n_reference"] == len(beats.rows_of(["r3"]))


def test_cross_validation_tests_every_record_once_against_the_majority_class(folder):
    beats = build_beat_set(train_default.annotated_records(folder), cache=False)
    recipe = train_default.Recipe(epochs=1, epoch_rows=128, sizes=TINY)
    out = train_default.cross_validate(folder, 2, recipe, quiet=True, beats=beats)
    assert out["records"] == 4 and sorted(out["folds"]) == [2, 2]
    lines = {x["class"]: x for x in out["model"]}
    base = {x["class"]: x for x in out["majority_baseline"]}
    assert lines["V"]["n_reference"] == base["V"]["n_reference"] == int(np.sum(beats.labels == 2))
    assert base["V"]["se"] == 0.0 and base["N"]["se"] == 1.0
    lo, hi = lines["N"]["se_ci"]
    assert lo <= lines["N"]["se"] <= hi
