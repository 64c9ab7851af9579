"""The Challenge reader: databases by prefix, labels, the training-shape policy, patients and leakage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcore.cli import main as cli_main
from ecgcore.data import DatasetError, Preprocessing, load_cached, open_source
from ecgcore.data.base import MissingFilesWarning
from ecgcore.data.challenge import (
    ChallengeDataset,
    LeakageError,
    check_no_shared_records,
    database_of,
)
from ecgcore.io import read_record
from tests.challenge_factories import FakeRecord, make_challenge_dir
from tests.challenge_samples import shared_dir


def test_the_sample_by_prefix_with_decoded_labels():
    cinc = shared_dir("cinc-sample")
    ds = open_source(f"challenge:{cinc}")
    assert len(ds) == 30 and ds.fs == 500 and len(ds.leads) == 12
    assert ds.index.groupby("database").size().to_dict() == {"Georgia": 10, "Ningbo": 10, "PTB_XL": 10}
    rec = ds.read("HR06002")
    names = {d["abbreviation"] for d in rec.metadata["diagnoses"]}
    assert names == {"SB", "NSR", "IRBBB"} and rec.metadata["sex"] == "Male" and rec.metadata["age"] == 29
    # the Challenge's HR06002 is PTB-XL's 06002_hr: the same signal
    ptbxl = read_record(shared_dir("ptbxl-sample") / "records500/06000/06002_hr")
    np.testing.assert_allclose(rec.signal, ptbxl.signal, atol=1e-3)
    assert ds.row("HR06002")["IRBBB"] == 1 and ds.row("HR06001")["IRBBB"] == 0


def test_js_records_follow_folder_then_number():
    assert database_of("JS00005").key == "Chapman_Shaoxing"
    assert database_of("JS10646").key == "Chapman_Shaoxing" and database_of("JS10647").key == "Ningbo"
    assert database_of("JS00005", ("training", "ningbo", "g1")).key == "Ningbo"
    assert database_of("JS40000", ("WFDB_ChapmanShaoxing",)).key == "Chapman_Shaoxing"
    assert database_of("I0001").key == "StPetersburg" and database_of("HR00001").key == "PTB_XL"
    assert database_of("06000_hr") is None


@pytest.fixture
def mixed(tmp_path):
    """INCART-like (257 Hz, 125 s), PTB-like (1000 Hz, 62 s), a 5 s, a 15 s and two 10 s records."""
    return make_challenge_dir(
        tmp_path / "mixed",
        [
            FakeRecord("I00001", ("164884008",), fs=257, seconds=125, folder="st_petersburg_incart"),
            FakeRecord("S00001", ("164865005",), fs=1000, seconds=62, sex="Male", folder="ptb"),
            FakeRecord("A00001", ("164889003",), seconds=5, age="NaN"),
            FakeRecord("Q00001", ("426783006", "999999"), seconds=15),
            FakeRecord("E00001", ("713427006",), sex="F"),
            FakeRecord("JS00001", ("59118001",), folder="ningbo"),
        ],
    )


def test_shape_policy_crop_pad_windows(mixed):
    ds = ChallengeDataset(mixed, labels="CRBBB,AF")
    per_record = ds.index.groupby("record").size().to_dict()
    assert per_record == {"I00001": 12, "S00001": 6, "A00001": 1, "Q00001": 1, "E00001": 1, "JS00001": 1}
    windows = ds.index[ds.index["record"] == "I00001"]
    assert windows["patient_id"].nunique() == 1 and windows["fold"].nunique() == 1  # never split apart
    full = ds.read_full("I00001#w0003")
    window = ds.read("I00001#w0003")
    assert window.signal.shape == (12, 2570)
    np.testing.assert_array_equal(window.signal, full.signal[:, 3 * 2570 : 4 * 2570])
    short = ds.read("A00001")
    assert short.signal.shape == (12, 5000) and short.metadata["padded_s"] == pytest.approx(5.0)
    assert not short.signal[:, 2500:].any() and short.signal[:, :2500].any()
    assert ds.read("Q00001").signal.shape == (12, 5000)
    assert ds.row("E00001")["CRBBB"] == 1 and ds.row("JS00001")["CRBBB"] == 1  # RBBB is scored as CRBBB
    assert ds.row("JS00001")["database"] == "Ningbo" and ds.row("A00001")["AF"] == 1
    summary = ds.describe()
    assert summary["records"] == 6 and summary["examples"] == 22
    assert summary["sampling_rates_hz"] == {"257": 1, "500": 4, "1000": 1}
    assert summary["lengths_s"]["min"] == 5 and summary["lengths_s"]["max"] == 125
    policy = summary["shape_policy"]
    assert (policy["padded"], policy["cropped"], policy["exact"], policy["windowed_records"]) == (1, 1, 2, 2)
    assert policy["windows"] == 18 and policy["resampled_at_500_hz"] == 2
    assert summary["unmapped_codes"] == {"999999": 1} and summary["label_counts"]["CRBBB|RBBB"] == 2
    assert summary["age"]["known"] == 5 and summary["sex"] == {"Female": 5, "Male": 1}


def test_every_example_reaches_the_training_shape(mixed):
    ds = ChallengeDataset(mixed)
    cached = load_cached(ds, Preprocessing(leads="12", fs=100, duration=10))
    assert cached.signals.shape == (22, 12, 1000) and np.isfinite(np.asarray(cached.signals)).all()


def test_options_and_bad_input(mixed, tmp_path):
    only = open_source(f"challenge:{mixed};db=E,StPetersburg;labels=study18")
    assert set(only.index["database"]) == {"Georgia", "StPetersburg"} and only.classes[0] == "1AVB"
    assert "db=E,StPetersburg" in only.spec and open_source(only.spec).classes == only.classes
    with pytest.raises(DatasetError, match="unknown database 'X'"):
        ChallengeDataset(mixed, db="X")
    with pytest.raises(DatasetError, match="unknown label 'NOPE'"):
        ChallengeDataset(mixed, labels="NOPE")
    bad = make_challenge_dir(tmp_path / "bad", [FakeRecord("E00002", ("164889003",))])
    header = bad / "E00002.hea"
    header.write_text(header.read_text().replace("# Dx: 164889003", "# Dx: AF"))
    with pytest.raises(DatasetError, match=r"E00002\.hea: # Dx has \['AF'\]"):
        ChallengeDataset(bad)
    with pytest.raises(DatasetError, match="holds no Challenge records"):
        ChallengeDataset(tmp_path / "bad", db="Ningbo")


def test_ptbxl_patients_and_folds_when_ptbxl_is_given():
    cinc, ptbxl = shared_dir("cinc-sample"), shared_dir("ptbxl-sample")
    alone = ChallengeDataset(cinc, db="PTB_XL")
    assert alone.row("HR06000")["patient_id"] == "HR06000"
    linked = ChallengeDataset(cinc, db="PTB_XL", ptbxl=ptbxl)
    row = linked.row("HR06000")
    assert row["patient_id"] == "ptbxl-5028" and row["fold"] == 10 and row["split"] == "test"
    assert linked.describe()["ptbxl_patients_matched"] == 10


def test_leakage_check_fires_on_the_same_ptbxl_record():
    cinc, ptbxl = shared_dir("cinc-sample"), shared_dir("ptbxl-sample")
    with pytest.warns(MissingFilesWarning, match="ecg_id 1 "):  # the sample's one 100 Hz-only record
        ptbxl_index = open_source(f"ptbxl:{ptbxl};fs=500").index
    challenge = ChallengeDataset(cinc)
    with pytest.raises(LeakageError, match=r"10 PTB-XL records .*ecg_id 6000 \(HR06000\)"):
        check_no_shared_records(ptbxl_index, challenge.index, "pretraining vs test")
    check_no_shared_records(ptbxl_index, ChallengeDataset(cinc, db="Georgia,Ningbo").index)
    only_6003 = challenge.index[challenge.index["record"] == "HR06003"]
    with pytest.raises(LeakageError, match="1 PTB-XL records"):
        check_no_shared_records(ptbxl_index, only_6003)


def test_data_summary_command(capsys):
    cinc = shared_dir("cinc-sample")
    assert cli_main(["data", "summary", "--source", "challenge", "--path", str(cinc)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == 30 and summary["unmapped_codes"] == {}
    assert {k: v["prefix"] for k, v in summary["databases"].items()} == {
        "Georgia": "E",
        "Ningbo": "JS",
        "PTB_XL": "HR",
    }
    assert summary["sampling_rates_hz"] == {"500": 30} and summary["lengths_s"]["median"] == 10
    assert summary["label_counts"]["IRBBB"] == 1 and summary["label_counts"]["STach"] >= 1
