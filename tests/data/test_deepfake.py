"""DeepFake ECG: the published layout, and generation with the deepfake-ecg generator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ecgcore.data import DatasetError, ensure_demo_set, generate_deepfake, open_source
from ecgcore.data.base import MissingFilesWarning
from ecgcore.data.deepfake import GROUND_TRUTH, DeepFake
from ecgcore.io import read_record
from ecgcore.measure import measure_many
from ecgcore.vocab import LEADS_8
from tests.factories import DEEPFAKE_CSV, make_deepfake_dir


@pytest.mark.parametrize("subdir", [None, "from_006_chck_2500_150k_filtered_all_normals_121977"])
def test_reads_the_published_layout(tmp_path, subdir):
    root = make_deepfake_dir(tmp_path / "df", 6, seed=1, asc_subdir=subdir)
    ds = open_source(f"deepfake:{root}")
    truth = pd.read_csv(root / DEEPFAKE_CSV)
    assert ds.fs == 500 and ds.leads == LEADS_8 and len(ds) == 6
    np.testing.assert_allclose(ds.index["hr"], 60000 / truth["avgrrinterval"])
    np.testing.assert_allclose(
        ds.index[["pr", "qrs", "qt"]].to_numpy(), truth[["pr", "qrs", "qt"]].to_numpy()
    )
    assert ds.index["fold"].between(1, 10).all() and (ds.index["patient_id"] == ds.index["record_id"]).all()
    record = ds.read("3")
    assert record.signal.shape == (8, 5000) and record.metadata["index"]["qt"] == truth.loc[3, "qt"]
    summary = ds.describe()
    assert summary["labels"]["qt"]["mean"] == pytest.approx(truth["qt"].mean(), abs=0.01)


def test_factory_labels_are_true_for_the_waveform(tmp_path):
    root = make_deepfake_dir(tmp_path / "df", 2, seed=4)
    truth = pd.read_csv(root / DEEPFAKE_CSV)
    # beat spacing of lead II (autocorrelation peak) agrees with avgrrinterval
    x = read_record(root / "0.asc").signal[1]
    x = x - x.mean()
    ac = np.correlate(x, x, "full")[len(x) - 1 :]
    lag = 150 + int(np.argmax(ac[150:1000]))
    assert lag * 2 == pytest.approx(truth.loc[0, "avgrrinterval"], rel=0.05)


def test_missing_asc_is_counted_and_skipped(tmp_path):
    root = make_deepfake_dir(tmp_path / "df", 4)
    (root / "2.asc").unlink()
    with pytest.warns(MissingFilesWarning, match=r"1 of 4 records have no signal file .* 2\.asc"):
        ds = DeepFake(root)
    assert ds.missing == ["2"] and "2" not in set(ds.index["record_id"])


def test_not_a_deepfake_folder(tmp_path, ptbxl_sample):
    with pytest.raises(DatasetError, match="is not a DeepFake ECG folder"):
        DeepFake(ptbxl_sample)
    (tmp_path / "x_ground_truth.csv").write_text("patid,pr\n0,150\n")
    with pytest.raises(DatasetError, match="missing columns avgrrinterval, qrs, qt"):
        DeepFake(tmp_path)


def test_generate_is_batched_seeded_and_in_the_published_layout(tmp_path):
    a = generate_deepfake(tmp_path / "a", 3, seed=11, batch_size=2)
    b = generate_deepfake(tmp_path / "b", 2, seed=11, batch_size=2)
    assert sorted(p.name for p in a.glob("*.asc")) == ["0.asc", "1.asc", "2.asc"]
    for name in ("0.asc", "1.asc"):
        assert (a / name).read_bytes() == (b / name).read_bytes()  # reproducible for a seed
    raw = np.loadtxt(a / "1.asc")
    assert raw.shape == (5000, 8) and np.array_equal(raw, np.round(raw)) and 100 < np.abs(raw).max() < 6000
    truth = pd.read_csv(a / GROUND_TRUTH)
    assert list(truth.columns[:5]) == ["patid", "avgrrinterval", "pr", "qrs", "qt"] and truth[
        "patid"
    ].tolist() == [0, 1, 2]
    info = json.loads((a / "generation.json").read_text())
    assert info["seed"] == 11 and info["n"] == 3
    # the intervals are ecgcore.measure's on the written (integer microvolt) signals, row by row
    assert info["intervals"] == "ecgcore.measure.measure_many"
    written = np.stack([read_record(a / f"{i}.asc").signal for i in range(3)])
    expected = measure_many(written, 500.0, LEADS_8, n_jobs=1)
    assert truth[["pr", "qrs", "qt"]].notna().all().all()
    np.testing.assert_allclose(truth[["pr", "qrs", "qt"]], expected[["pr", "qrs", "qt"]], atol=1e-6)
    np.testing.assert_allclose(truth["hr"], expected["hr"], atol=0.006)  # rounded to 2 decimals
    ds = open_source(f"deepfake:{a}")
    assert len(ds) == 3 and ds.read("2").signal.shape == (8, 5000)
    other = generate_deepfake(tmp_path / "c", 1, seed=12)
    assert (other / "0.asc").read_bytes() != (a / "0.asc").read_bytes()


def test_generate_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("data")
    with pytest.raises(ValueError, match="already exists and is not empty"):
        generate_deepfake(tmp_path, 1)
    assert (tmp_path / "keep.txt").read_text() == "data"


def test_demo_set_is_built_once(ecglab_home):
    first = ensure_demo_set(n=2)
    assert first.parent.parent == ecglab_home and len(list(first.glob("*.asc"))) == 2
    stamp = (first / "0.asc").stat().st_mtime_ns
    assert ensure_demo_set(n=2) == first and (first / "0.asc").stat().st_mtime_ns == stamp


def test_a_generated_sets_intervals_are_measured_again_when_the_measurement_changed(tmp_path):
    from ecgcore.data.deepfake import remeasure_if_stale
    from ecgcore.measure import measure_record, measurement_version

    root = make_deepfake_dir(tmp_path / "gen", 3, seed=5)
    info = {"n": 3, "intervals": "ecgcore.measure.measure_many", "measure_version": "older-code"}
    (root / "generation.json").write_text(json.dumps(info))
    before = pd.read_csv(root / GROUND_TRUTH)
    assert remeasure_if_stale(root)
    after = pd.read_csv(root / GROUND_TRUTH)
    today = measure_record(read_record(root / "1.asc"))
    assert after.loc[1, "qrs"] == pytest.approx(today.qrs, abs=0.01)  # what the Explorer measures today
    assert after.loc[1, "avgrrinterval"] == pytest.approx(60_000 / today.hr, rel=1e-3)
    assert not np.allclose(after["qrs"], before["qrs"])  # the synthetic truth was replaced
    assert json.loads((root / "generation.json").read_text())["measure_version"] == measurement_version()
    assert not remeasure_if_stale(root)  # current now: left alone
    (root / "generation.json").unlink()
    assert not remeasure_if_stale(root)  # not a generated set: never touched
