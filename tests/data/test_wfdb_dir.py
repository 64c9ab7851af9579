"""Any folder of WFDB records, searched recursively."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.io

from ecgcore.data import DatasetError, open_source
from ecgcore.data.base import MissingFilesWarning
from ecgcore.data.wfdb_dir import WFDBDir
from ecgcore.io import read_record
from ecgcore.vocab import LEADS_12


def test_reads_the_real_sample_recursively(ptbxl_sample):
    ds = open_source(f"wfdb:{ptbxl_sample}")
    assert len(ds) == 11 and ds.fs == 500 and ds.leads == LEADS_12  # ten at 500 Hz, one at 100 Hz
    assert ds.describe()["fs_counts"] == {"500": 10, "100": 1}
    row = ds.row("records100/00000/00001_lr")
    assert row["record_fs"] == 100 and row["n_samples"] == 1000 and 1 <= row["fold"] <= 10
    assert np.isnan(row["hr"])
    np.testing.assert_array_equal(
        ds.read("records500/06000/06003_hr").signal,
        read_record(ptbxl_sample / "records500/06000/06003_hr").signal,
    )


def test_challenge_mat_and_missing_signal_files(tmp_path, ptbxl_sample):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    scipy.io.savemat(sub / "A1.mat", {"val": np.zeros((2, 1000), np.int16)}, format="4")
    (sub / "A1.hea").write_text(
        "A1 2 500 1000\nA1.mat 16+24 1000/mV 16 0 0 0 0 I\nA1.mat 16+24 1000/mV 16 0 0 0 0 V1\n"
    )
    shutil.copy(ptbxl_sample / "records500/06000/06000_hr.hea", tmp_path / "06000_hr.hea")  # no .dat
    with pytest.warns(MissingFilesWarning, match="1 of 2 records have no signal file .*06000_hr"):
        ds = WFDBDir(tmp_path)
    assert ds.index["record_id"].tolist() == ["a/b/A1"] and ds.leads == ("I", "V1")
    assert ds.read("a/b/A1").signal.shape == (2, 1000)


def test_not_a_wfdb_folder(tmp_path):
    (tmp_path / "x.csv").write_text("I\n1\n")
    with pytest.raises(DatasetError, match="holds no WFDB records"):
        open_source(f"wfdb:{tmp_path}")
