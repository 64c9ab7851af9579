"""The cached tensor store: contents, reuse, rebuilds, atomicity, and the shared preprocessing."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ecgcore.data import Preprocessing, load_cached, open_source, preprocess_record
from ecgcore.data import cache as cache_module
from ecgcore.data.cache import CacheWarning, cache_key
from ecgcore.data.preprocess import shape_record
from ecgcore.io import ECGFormatError, Record
from ecgcore.vocab import LEADS_8
from tests.factories import make_deepfake_dir

pytestmark = pytest.mark.filterwarnings("ignore::ecgcore.data.base.MissingFilesWarning")


@pytest.fixture(scope="module")
def deepfake_root(tmp_path_factory):
    return make_deepfake_dir(tmp_path_factory.mktemp("deepfake"), 12, seed=2)


def test_build_matches_preprocess_record_and_reloads_as_memmap(deepfake_root, ecglab_home):
    ds = open_source(f"deepfake:{deepfake_root}")
    prep = Preprocessing(fs=250, normalize="zscore")
    cached = load_cached(ds, prep)
    assert isinstance(cached.signals, np.memmap) and cached.signals.shape == (12, 8, 2500)
    assert cached.path.parent == ecglab_home / "cache"
    for row in (0, 7):
        expected = preprocess_record(ds.read(cached.index["record_id"][row]), prep)
        np.testing.assert_array_equal(cached.signals[row], expected)
    np.testing.assert_allclose(cached.signals.mean(axis=-1), 0, atol=1e-4)
    np.testing.assert_allclose(cached.signals.std(axis=-1), 1, atol=1e-3)
    assert list(cached.index["record_id"]) == list(ds.index["record_id"])
    assert sorted(np.concatenate([cached.rows(s) for s in ("train", "val", "test")])) == list(range(12))
    built = json.loads((cached.path / "meta.json").read_text())["created"]
    start = time.perf_counter()
    again = load_cached(open_source(f"deepfake:{deepfake_root}"), prep)
    assert time.perf_counter() - start < 1.0  # mapped, not rebuilt
    assert again.meta["created"] == built and isinstance(again.signals, np.memmap)


def test_a_changed_parameter_or_source_rebuilds(tmp_path, ecglab_home):
    root = make_deepfake_dir(tmp_path / "df", 3, seed=5)
    ds = open_source(f"deepfake:{root}")
    first = load_cached(ds, Preprocessing(normalize="none"))
    other = load_cached(ds, Preprocessing(normalize="none", leads=("I", "aVF")))
    assert other.path != first.path and other.signals.shape == (3, 2, 5000)
    before = np.array(first.signals[1])
    data = np.loadtxt(root / "1.asc")
    np.savetxt(root / "1.asc", (data * 2).astype(int), fmt="%i")
    os.utime(root / "1.asc", ns=(time.time_ns(), time.time_ns() + 10**9))
    rebuilt = load_cached(open_source(f"deepfake:{root}"), Preprocessing(normalize="none"))
    assert rebuilt.path == first.path and rebuilt.meta["fingerprint"] != first.meta["fingerprint"]
    np.testing.assert_allclose(np.asarray(rebuilt.signals[1]), 2 * before, rtol=1e-3, atol=2e-3)
    assert len([p for p in (ecglab_home / "cache").iterdir()]) == 2  # the old build was replaced, not kept


def test_train_standardize_fits_on_the_training_split_only(tmp_path):
    root = make_deepfake_dir(tmp_path / "df", 12, seed=6)
    ds = open_source(f"deepfake:{root}")
    prep = Preprocessing(normalize="train_standardize", bandpass=False)
    cached = load_cached(ds, prep)
    train = cached.rows("train")
    assert 0 < len(train) < len(cached) and cached.stats["n_records"] == len(train)
    raw = np.stack([shape_record(ds.read(i), prep) for i in cached.index["record_id"]]).astype(np.float64)
    np.testing.assert_allclose(cached.stats["mean"], raw[train].mean(axis=(0, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(cached.stats["std"], raw[train].std(axis=(0, 2)), rtol=1e-4)
    assert not np.allclose(cached.stats["mean"], raw.mean(axis=(0, 2)), rtol=1e-3)  # val/test left out
    record = ds.read(cached.index["record_id"][3])
    np.testing.assert_allclose(cached.signals[3], preprocess_record(record, prep, cached.stats), atol=1e-5)
    with pytest.raises(ValueError, match="train_standardize needs"):
        preprocess_record(record, prep)


def test_a_failed_build_leaves_no_cache(deepfake_root, ecglab_home, monkeypatch):
    ds = open_source(f"deepfake:{deepfake_root}")
    calls = []

    def failing(record, prep):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("simulated crash")
        return shape_record(record, prep)

    monkeypatch.setattr(cache_module, "shape_record", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        load_cached(ds, Preprocessing())
    assert list((ecglab_home / "cache").iterdir()) == []


def test_a_killed_build_leaves_nothing_that_looks_complete(deepfake_root, ecglab_home):
    script = textwrap.dedent(f"""
        import os
        from ecgcore.data import Preprocessing, load_cached, open_source
        from ecgcore.data import cache
        cache._CHUNK = 2
        ds = open_source("deepfake:{deepfake_root}")
        load_cached(ds, Preprocessing(), progress=lambda done, total, msg: done >= 4 and os._exit(9))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), env={**os.environ}, timeout=120)
    assert result.returncode == 9
    cache_dir = ecglab_home / "cache"
    leftovers = list(cache_dir.iterdir())
    assert len(leftovers) == 1 and ".tmp-" in leftovers[0].name and not (leftovers[0] / "meta.json").exists()
    ds = open_source(f"deepfake:{deepfake_root}")
    cached = load_cached(ds, Preprocessing())
    assert cached.signals.shape[0] == 12 and [p.name for p in cache_dir.iterdir()] == [
        cache_key(ds, Preprocessing())
    ]


def test_unreadable_records_are_left_out_with_a_warning(tmp_path):
    root = make_deepfake_dir(tmp_path / "df", 4, seed=7)
    (root / "2.asc").write_text("1 2 3 4 5 6 7 8\n")
    ds = open_source(f"deepfake:{root}")
    with pytest.warns(CacheWarning, match=r"1 of 4 records could not be read .*2\.asc: expected 5000 rows"):
        cached = load_cached(ds, Preprocessing())
    assert list(cached.index["record_id"]) == ["0", "1", "3"] and cached.signals.shape[0] == 3
    assert cached.meta["skipped"][0]["record_id"] == "2"
    np.testing.assert_array_equal(cached.signals[2], preprocess_record(ds.read("3"), Preprocessing()))


@pytest.mark.parametrize("start_method", ["fork", "spawn"])  # spawn is what a threaded process (the app) uses
def test_parallel_build_equals_serial(deepfake_root, monkeypatch, start_method):
    ds = open_source(f"deepfake:{deepfake_root}")
    monkeypatch.setattr(cache_module, "_CHUNK", 4)
    monkeypatch.setattr(cache_module, "_mp_context", lambda: multiprocessing.get_context(start_method))
    parallel = load_cached(ds, Preprocessing(fs=100), n_jobs=2)
    assert parallel.meta["workers"] == 2
    serial = np.stack([preprocess_record(ds.read(i), Preprocessing(fs=100)) for i in ds.index["record_id"]])
    np.testing.assert_array_equal(np.asarray(parallel.signals), serial)


def test_preprocess_record_on_a_real_record(ptbxl_sample):
    ds = open_source("ptbxl:bundled")
    record = ds.read("6001").select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    x = preprocess_record(record, Preprocessing(leads=("aVF", "V1"), fs=100, normalize="minmax"))
    assert (
        x.shape == (2, 1000)
        and x.dtype == np.float32
        and x.min() == 0
        and x.max() == pytest.approx(1, abs=1e-5)
    )
    # band-pass removes a 3 mV baseline offset and a 1 mV, 0.1 Hz wander
    flat = Record(
        np.full((8, 5000), 3.0, np.float32) + np.sin(np.linspace(0, 2 * np.pi * 0.1 * 10, 5000))[None],
        500,
        LEADS_8,
        "flat",
    )
    assert (
        np.abs(shape_record(flat, Preprocessing())).max() < 0.1
    )  # from 4 mV, only an edge transient is left
    with pytest.raises(ECGFormatError, match="record is 10.00 s long, shorter than the 12 s"):
        preprocess_record(record, Preprocessing(duration=12))


def test_preprocessing_round_trip_and_validation():
    prep = Preprocessing(leads=("avr", "V1"), fs=100, normalize="minmax", bandpass=False)
    assert prep.leads == ("aVR", "V1") and prep.n_samples == 1000
    assert Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict()))) == prep
    with pytest.raises(ValueError, match="unknown normalisation 'robust'"):
        Preprocessing(normalize="robust")
