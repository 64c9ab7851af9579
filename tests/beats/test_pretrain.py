"""``beats transfer-study``: pretraining, transfer and scratch, inter-patient, through the command line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import wfdb

from ecgcore.beats import pretrain
from ecgcore.beats.splits import patient_of
from ecgcore.beats.train_default import Recipe
from ecgcore.cli import main as cli
from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record

PRE = ["sel100", "sel103"]
TARGET = [f"t{i}" for i in range(6)]
TINY = Recipe(
    epochs=1,
    epoch_rows=96,
    sizes=(("channels", 8), ("lstm_hidden", 8), ("attention_hidden", 8), ("head_hidden", 8)),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two MIT-BIH-named (pretraining) and six other 30 s records, every 4th beat V."""
    out = tmp_path_factory.mktemp("study")
    for i, name in enumerate(PRE + TARGET):
        ecg = synthetic_ecg(
            hr=70 + 3 * i, fs=250, duration=30, leads=("II", "V1"), rr_jitter=0.05, seed=20 + i
        )
        write_record(out, name, ecg.signal, ecg.fs)
        r = ecg.fiducials["r_peak"]
        symbols = ["V" if k % 4 == 0 else "N" for k in range(len(r))]
        wfdb.wrann(name, "atr", r, symbol=symbols, fs=250, write_dir=str(out))
    return out


def test_subsample_keeps_the_share_of_each_class_of_the_rows_only():
    labels = np.array([0] * 10 + [2] * 4 + [0] * 5)
    rows = np.arange(14)
    out = pretrain.subsample(labels, rows, 0.5, seed=0)
    assert np.sum(out[:10] == 0) == 5 and np.sum(out[10:14] == 2) == 2  # half of each class, at least one
    assert np.array_equal(out[14:], labels[14:])  # rows outside are untouched
    assert np.array_equal(pretrain.subsample(labels, rows, 0.5, seed=0), out)  # seeded


def test_transfer_study_from_the_cli_is_inter_patient_and_starts_transfer_from_pretraining(
    folder, monkeypatch, capsys
):
    calls = []
    real = pretrain.train_model

    def spy(beats, split, run_dir, folder, recipe, model=None, labels=None, **kw):
        init = None if model is None else {k: v.clone() for k, v in model.state_dict().items()}
        trained, summary = real(beats, split, run_dir, folder, recipe, model=model, labels=labels, **kw)
        calls.append((split, init, {k: v.clone() for k, v in trained.state_dict().items()}))
        return trained, summary

    monkeypatch.setattr(pretrain, "train_model", spy)
    monkeypatch.setattr(pretrain, "RECIPE", TINY)
    assert cli(["beats", "transfer-study", str(folder), "--folds", "3", "--fractions", "1", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)

    assert out["pretraining_records"] == PRE
    assert sorted(n for fold in out["target_folds"] for n in fold) == TARGET
    (pre_split, pre_init, pretrained), *tuned = calls
    assert pre_init is None and {n for side in pre_split.values() for n in side} <= set(PRE)
    assert len(tuned) == 3 * 2  # per rotation: transfer, then scratch
    for i, fold in enumerate(out["target_folds"]):
        (split, init, _), (split2, scratch_init, _) = tuned[2 * i : 2 * i + 2]
        assert split == split2 and sorted(split["train"] + split["val"]) == fold
        assert sorted(split["test"]) == sorted(set(TARGET) - set(fold))
        sides = [set(map(patient_of, side)) for side in (PRE, split["train"] + split["val"], split["test"])]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert scratch_init is None
        assert all(torch.equal(init[k], pretrained[k]) for k in pretrained)  # transfer starts pretrained

    # every target record is evaluated by the k - 1 rotations that do not fine-tune on it, pooled
    target_beats = sum(len(wfdb.rdann(str(folder / n), "atr").sample) for n in TARGET)
    for name in ("pretrained only", "transfer 1", "scratch 1"):
        lines = {x["class"]: x for x in out["models"][name]}
        assert sum(lines[c]["n_reference"] for c in "NSVFQ") == 2 * target_beats


def test_transfer_study_without_pretraining_records_names_the_folder(folder, tmp_path, capsys):
    for name in TARGET[:3]:
        for f in folder.glob(f"{name}.*"):
            shutil.copy(f, tmp_path)
    assert cli(["beats", "transfer-study", str(tmp_path), "--quiet"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
