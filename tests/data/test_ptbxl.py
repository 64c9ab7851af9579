"""PTB-XL: labels and folds against the real sample's own columns, missing files, PTB-XL+ labels."""

from __future__ import annotations

import ast
import shutil

import numpy as np
import pandas as pd
import pytest

from ecgcore.data import DatasetError, open_source
from ecgcore.data.base import MissingFilesWarning
from ecgcore.data.ptbxl import PTBXL
from ecgcore.data.ptbxl_plus import load_ptbxl_plus
from ecgcore.vocab import LEADS_12, SUPERCLASSES
from tests.factories import PTBXL_TRUTH_CSV, SCP_FOR_CLASS, make_ptbxl_dir, make_ptbxl_plus_dir

pytestmark = pytest.mark.filterwarnings("ignore::ecgcore.data.base.MissingFilesWarning")


@pytest.fixture(scope="module")
def sample_db(ptbxl_sample) -> pd.DataFrame:
    return pd.read_csv(ptbxl_sample / "ptbxl_database.csv", index_col="ecg_id")


def test_bundled_sample_counts_and_missing(ptbxl_sample):
    with pytest.warns(MissingFilesWarning, match=r"1 of 11 records .* ecg_id 1 \(500 Hz\)"):
        ds = open_source("ptbxl:bundled")
    assert ds.root == ptbxl_sample.resolve() and ds.fs == 500 and ds.leads == LEADS_12
    assert ds.missing == ["1"] and ds.index["record_id"].tolist() == [str(i) for i in range(6000, 6010)]
    summary = ds.describe()
    assert (summary["rows"], summary["records"], summary["missing_files"]) == (11, 10, 1)
    with pytest.warns(MissingFilesWarning, match="10 of 11"):
        low = PTBXL(ptbxl_sample, fs=100)
    assert low.index["record_id"].tolist() == ["1"] and low.read("1").signal.shape == (12, 1000)


def test_superclasses_match_the_scp_codes_column(ptbxl_sample, sample_db):
    ds = PTBXL(ptbxl_sample, fs=500)
    statements = pd.read_csv(ptbxl_sample / "scp_statements.csv", index_col=0)
    for _, row in ds.index.iterrows():
        codes = ast.literal_eval(sample_db.loc[int(row["record_id"]), "scp_codes"])
        expected = {
            statements.loc[c, "diagnostic_class"]
            for c in codes
            if c in statements.index and statements.loc[c, "diagnostic"] == 1
        }
        assert {c for c in SUPERCLASSES if row[c] == 1} == expected, row["record_id"]
    by_id = ds.index.set_index("record_id")
    # read off the CSV by eye: 6001 {'NST_': 100} is STTC; 6002 {'NORM', 'IRBBB'} is NORM+CD (multi-label);
    # 6005 {'NORM': 15.0} counts as NORM whatever the likelihood (as the PTB-XL benchmark aggregates)
    assert (
        by_id.loc["6001", ["NORM", "STTC"]].tolist() == [0, 1] and by_id.loc["6001", "superclass"] == "STTC"
    )
    assert (
        by_id.loc["6002", list(SUPERCLASSES)].tolist() == [1, 0, 0, 1, 0]
        and by_id.loc["6002", "superclass"] == ""
    )
    assert by_id.loc["6005", "superclass"] == "NORM"
    summary = ds.describe()
    assert summary["superclasses"] == {"NORM": 9, "MI": 0, "STTC": 1, "CD": 1, "HYP": 0}
    assert summary["single_label"] == 9


def test_folds_and_splits_come_from_strat_fold(ptbxl_sample, sample_db):
    ds = PTBXL(ptbxl_sample, fs=500)
    folds = sample_db.loc[ds.index["record_id"].astype(int), "strat_fold"].to_numpy()
    np.testing.assert_array_equal(ds.index["fold"].to_numpy(), folds)
    expected = np.where(folds == 10, "test", np.where(folds == 9, "val", "train"))
    np.testing.assert_array_equal(ds.index["split"].to_numpy(), expected)
    assert set(ds.index.loc[ds.index["split"] == "test", "record_id"]) == {"6000", "6004"}
    assert ds.index.set_index("record_id").loc["6000", "patient_id"] == "5028"


def test_read_attaches_the_index_row(ptbxl_sample):
    ds = PTBXL(ptbxl_sample, fs=500)
    record = ds.read("6002")
    assert record.signal.shape == (12, 5000) and record.record_id == "6002"
    assert record.metadata["index"]["CD"] == 1 and record.metadata["index"]["age"] == 29.0


def test_synthetic_ptbxl_labels_and_patients(tmp_path):
    root = make_ptbxl_dir(tmp_path / "ptbxl", 30, seed=3)
    ds = open_source(f"ptbxl:{root}")
    db = pd.read_csv(root / "ptbxl_database.csv")
    assert ds.fs == 100 and len(ds) == 30 and not ds.missing
    for (_, row), codes in zip(ds.index.iterrows(), db["scp_codes"]):
        wanted = {cls for cls, code in SCP_FOR_CLASS.items() if code in ast.literal_eval(codes)}
        assert {c for c in SUPERCLASSES if row[c]} == wanted
    assert ds.index.groupby("patient_id")["fold"].nunique().max() == 1  # folds are per patient
    assert ds.index["patient_id"].nunique() < len(ds)  # some patients have several records
    assert ds.read(ds.index["record_id"][0]).signal.shape == (12, 1000)


def test_not_a_ptbxl_folder(tmp_path, ptbxl_sample):
    with pytest.raises(DatasetError, match="is not a PTB-XL folder: ptbxl_database.csv not found"):
        open_source(f"ptbxl:{tmp_path}")
    with pytest.raises(DatasetError, match="is not a directory"):
        open_source(f"ptbxl:{tmp_path / 'nope'}")
    shutil.copy(ptbxl_sample / "scp_statements.csv", tmp_path)
    pd.read_csv(ptbxl_sample / "ptbxl_database.csv").drop(columns=["strat_fold"]).to_csv(
        tmp_path / "ptbxl_database.csv"
    )
    with pytest.raises(DatasetError, match="missing columns strat_fold"):
        PTBXL(tmp_path)
    db = pd.read_csv(ptbxl_sample / "ptbxl_database.csv")
    db.loc[0, "scp_codes"] = "{'NORM': 100"
    db.to_csv(tmp_path / "ptbxl_database.csv", index=False)
    with pytest.raises(DatasetError, match="ecg_id 1: scp_codes .* is not a dict literal"):
        PTBXL(tmp_path)


def test_bad_spec():
    with pytest.raises(DatasetError, match="bad data source 'mitdb:x'"):
        open_source("mitdb:x")


def test_ptbxl_plus_reads_the_right_columns(tmp_path):
    ids = [1, 2, 3]
    plus = make_ptbxl_plus_dir(tmp_path / "plus", ids)
    table = pd.read_csv(plus / "features" / "12sl_features.csv").set_index("ecg_id")
    assert (table["PR_Int_Global"] != table["QT_Int_Global"]).all()  # distinct, so a swap would show
    labels = load_ptbxl_plus(plus).labels
    np.testing.assert_allclose(labels["pr"], table.loc[ids, "PR_Int_Global"])
    np.testing.assert_allclose(labels["qt"], table.loc[ids, "QT_Int_Global"])
    np.testing.assert_allclose(labels["qrs"], table.loc[ids, "QRS_Dur_Global"])
    np.testing.assert_allclose(labels["hr"], 60000 / table.loc[ids, "RR_Mean_Global"])


def test_ptbxl_with_plus_labels(tmp_path):
    root = make_ptbxl_dir(tmp_path / "ptbxl", 12, seed=1)
    truth = pd.read_csv(root / PTBXL_TRUTH_CSV)
    plus = make_ptbxl_plus_dir(tmp_path / "plus", truth["ecg_id"][:10], intervals=truth, n_nan=2)
    ds = PTBXL(root, plus_dir=plus)
    idx = ds.index.set_index("record_id")
    assert idx.loc[["1", "2", "11", "12"], "pr"].isna().all()  # NaN rows dropped; 11, 12 not in PTB-XL+
    np.testing.assert_allclose(
        idx.loc["5", ["pr", "qrs", "qt"]].to_numpy(float),
        truth.set_index("ecg_id").loc[5, ["pr", "qrs", "qt"]].round().to_numpy(float),
    )
    report = ds.describe()["ptbxl_plus"]
    assert (report["rows"], report["dropped_nan"], report["kept"]) == (10, 2, 8)


def test_ptbxl_plus_outlier_filter(tmp_path):
    plus = make_ptbxl_plus_dir(tmp_path / "plus", range(1, 41), seed=2)
    csv = plus / "features" / "12sl_features.csv"
    table = pd.read_csv(csv)
    table.loc[5, "QRS_Dur_Global"] = 900.0
    table.to_csv(csv, index=False)
    assert 6 in load_ptbxl_plus(plus).labels.index
    filtered = load_ptbxl_plus(plus, outlier_filter=True)
    assert 6 not in filtered.labels.index and len(filtered.labels) == 39
    assert filtered.outliers["qrs"]["removed"] == 1 and filtered.outliers["removed_rows"] == 1
    assert filtered.outliers["qrs"]["high"] < 900
    with pytest.raises(DatasetError, match="is not a PTB-XL\\+ folder"):
        load_ptbxl_plus(tmp_path)
