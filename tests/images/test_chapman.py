"""The figshare Chapman-Shaoxing layout: 4 rhythm classes, microvolt CSVs, patient-level splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgcore.data import DatasetError, open_source
from ecgcore.data.base import MissingFilesWarning
from ecgcore.data.chapman import RHYTHM_CLASSES
from ecgcore.io import ECGFormatError
from ecgcore.vocab import LEADS_12

RHYTHMS = ["SB", "AFIB", "AF", "SVT", "AT", "SAAWR", "ST", "AVNRT", "AVRT", "SR", "SI"] * 3
EXPECTED = ["SB", "AFIB", "AFIB", "GSVT", "GSVT", "GSVT", "GSVT", "GSVT", "GSVT", "SR", "SR"] * 3


def make_chapman(root: Path, excel: bool = False, header: bool = True) -> Path:
    rng = np.random.default_rng(0)
    names = [f"MUSE_2018{i:04d}_{i:06d}_{i:05d}" for i in range(len(RHYTHMS))]
    table = pd.DataFrame(
        {
            "FileName": names,
            "Rhythm": RHYTHMS,
            "PatientAge": 60,
            "Gender": "MALE",
            "VentricularRate": 70,
            "QRSDuration": 90,
            "QTInterval": 400,
        }
    )
    if excel:
        table.to_excel(root / "Diagnostics.xlsx", index=False)
    else:
        table.to_csv(root / "Diagnostics.csv", index=False)
    (root / "ECGData").mkdir()
    for k, name in enumerate(names):
        uv = np.round(rng.standard_normal((5000, 12)) * 100 + k).astype(int)
        pd.DataFrame(uv, columns=list(LEADS_12)).to_csv(
            root / "ECGData" / f"{name}.csv", index=False, header=header
        )
    return root


def test_rhythm_grouping_splits_and_microvolts(tmp_path):
    root = make_chapman(tmp_path)
    ds = open_source(f"chapman:{root}")
    assert ds.classes == RHYTHM_CLASSES == ("AFIB", "GSVT", "SB", "SR")
    assert ds.index["rhythm_class"].tolist() == EXPECTED
    onehot = ds.index[list(RHYTHM_CLASSES)].to_numpy()
    assert (onehot.sum(axis=1) == 1).all()
    assert onehot[:, RHYTHM_CLASSES.index("GSVT")].sum() == 18
    # one record per patient: a patient's records are in one split
    assert ds.index.groupby("patient_id")["split"].nunique().max() == 1
    assert set(ds.index["split"]) <= {"train", "val", "test"}
    rec = ds.read(ds.index["record_id"][5])
    raw = pd.read_csv(root / "ECGData" / f"{rec.record_id}.csv").to_numpy().T
    assert rec.leads == LEADS_12 and rec.fs == 500.0 and rec.signal.shape == (12, 5000)
    np.testing.assert_allclose(rec.signal, raw / 1000.0, rtol=1e-6)


def test_excel_table_and_headerless_csv(tmp_path):
    root = make_chapman(tmp_path, excel=True, header=False)
    ds = open_source(f"chapman:{root}")
    assert len(ds) == len(RHYTHMS)
    assert ds.read(ds.index["record_id"][0]).signal.shape == (12, 5000)


def test_missing_csv_unknown_rhythm_and_bad_csv(tmp_path):
    root = make_chapman(tmp_path)
    first = sorted((root / "ECGData").iterdir())[0]
    first.unlink()
    with pytest.warns(MissingFilesWarning):
        ds = open_source(f"chapman:{root}")
    assert len(ds) == len(RHYTHMS) - 1
    second = sorted((root / "ECGData").iterdir())[0]
    second.write_text("I,II\n1,2\n")
    with pytest.raises(ECGFormatError, match=second.name):
        ds.read(second.stem)
    table = pd.read_csv(root / "Diagnostics.csv")
    table.loc[0, "Rhythm"] = "XYZ"
    table.to_csv(root / "Diagnostics.csv", index=False)
    with pytest.raises(DatasetError, match="unknown Rhythm codes XYZ"):
        open_source(f"chapman:{root}")
    with pytest.raises(DatasetError, match="Diagnostics"):
        open_source(f"chapman:{tmp_path / 'ECGData'}")


def test_four_class_rhythm_training_through_the_common_trainer(tmp_path):
    from ecgcore.train.config import TrainConfig
    from ecgcore.train.recorder import MemoryRecorder
    from ecgcore.train.trainer import train

    root = tmp_path / "chapman"
    root.mkdir()
    make_chapman(root)
    config = TrainConfig(
        task="classification",
        data=f"chapman:{root}",
        representation="gaf",
        model="cnn2d",
        model_kwargs={"widths": [4, 4]},
        fs=100.0,
        epochs=1,
        batch_size=8,
        amp=False,
        device="cpu",
        schedule="none",
        leads="12",
    )
    recorder = MemoryRecorder()
    summary = train(config, tmp_path / "run", recorder=recorder)
    assert recorder.status == "done"
    assert np.isfinite(summary["metrics"]["test"]["accuracy"])
    from ecgcore.predict import load_predictor

    predictor = load_predictor(tmp_path / "run")
    assert predictor.meta["classes"] == list(RHYTHM_CLASSES)
    ds = open_source(f"chapman:{root}")
    probabilities = predictor.predict(ds.read(ds.index["record_id"][0]))["probabilities"]
    assert list(probabilities) == list(RHYTHM_CLASSES) and sum(probabilities.values()) == pytest.approx(1.0)


def test_challenge_layout_maps_snomed_codes_to_the_four_classes(tmp_path):
    from tests.challenge_factories import FakeRecord, make_challenge_dir

    records = [
        FakeRecord("JS00001", ("426177001",)),  # SB
        FakeRecord("JS00002", ("164890007", "59118001")),  # atrial flutter (+ RBBB): AFIB
        FakeRecord("JS00003", ("427084000",)),  # sinus tachycardia: GSVT
        FakeRecord("JS00004", ("427393009",)),  # sinus arrhythmia (SI): SR
        FakeRecord("JS00005", ("426177001", "164889003")),  # SB and AF: ambiguous, no class
        FakeRecord("JS20000", ("426177001",)),  # Ningbo by its number: not Chapman
    ]
    root = make_challenge_dir(tmp_path / "challenge", records)
    ds = open_source(f"chapman_challenge:{root}")
    assert list(ds.index["record_id"]) == ["JS00001", "JS00002", "JS00003", "JS00004", "JS00005"]
    assert list(ds.index["rhythm_class"]) == ["SB", "AFIB", "GSVT", "SR", ""]
    assert ds.classes == RHYTHM_CLASSES and ds.index[list(RHYTHM_CLASSES)].sum(axis=1).tolist() == [
        1,
        1,
        1,
        1,
        0,
    ]
    assert open_source(ds.spec).index["rhythm_class"].tolist() == list(ds.index["rhythm_class"])
