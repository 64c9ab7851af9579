"""Image representations through the common trainer: cached inputs, training, prediction on a new record."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ecgcore.data import Preprocessing, load_cached, open_source
from ecgcore.data.image_inputs import IMAGE_SPECS, image_array, record_inputs
from ecgcore.data.inputs import build_inputs
from ecgcore.data.representations import render_chart
from ecgcore.predict import load_predictor
from ecgcore.train.config import TrainConfig
from ecgcore.train.recorder import MemoryRecorder
from ecgcore.train.trainer import train

PREP = Preprocessing(fs=100.0, duration=10.0)


def test_image_cache_is_built_once_aligned_and_drawn_from_millivolts(deepfake_spec):
    ds = open_source(deepfake_spec)
    charts = build_inputs("chart", ds, PREP)
    assert charts.dtype == np.uint8 and charts.shape == (len(ds), 1, 224, 224)
    assert isinstance(charts, np.memmap)
    rows = load_cached(ds, PREP).index
    mv = load_cached(ds, Preprocessing(fs=100.0, duration=10.0, normalize="none")).signals
    k = 7
    np.testing.assert_array_equal(charts[k, 0], render_chart(mv[k], 100.0, PREP.leads, "3x4+II").image)
    record = ds.read(rows["record_id"][k])
    np.testing.assert_array_equal(record_inputs("chart", record, PREP), charts[k])
    built = os.stat(charts.filename).st_mtime_ns
    again = build_inputs("chart", ds, PREP)
    assert (
        again.filename == charts.filename and os.stat(again.filename).st_mtime_ns == built
    )  # mapped, not redrawn
    signal, gaf = build_inputs("signal+gaf", ds, PREP)
    assert signal.shape[:2] == (len(ds), 8) and gaf.shape == (len(ds), 3, 64, 64)
    with pytest.raises(ValueError, match="unknown input representation"):
        record_inputs("xyz", record, PREP)
    assert image_array(IMAGE_SPECS["gaf"], ds, PREP).filename == gaf.filename


@pytest.mark.parametrize(
    "representation,model,kwargs",
    [
        ("gaf", "alexnet2d", {"base": 4, "dense": [16, 8]}),
        (
            "signal+chart",
            "fusion",
            {
                "branches": [
                    {"model": "cnn", "widths": [8, 8]},
                    {"model": "cnn2d", "channels": 1, "widths": [8, 8]},
                ]
            },
        ),
    ],
)
def test_image_and_fusion_runs_train_and_predict(deepfake_spec, tmp_path, representation, model, kwargs):
    config = TrainConfig(
        data=deepfake_spec,
        representation=representation,
        model=model,
        model_kwargs=kwargs,
        targets=("qrs",),
        fs=100.0,
        epochs=1,
        batch_size=16,
        amp=False,
        device="cpu",
        schedule="none",
    )
    recorder = MemoryRecorder()
    summary = train(config, tmp_path / "run", recorder=recorder)
    assert recorder.status == "done" and len(recorder.epochs) == 1
    assert np.isfinite(summary["metrics"]["test"]["mae_over_sd"])
    predictor = load_predictor(tmp_path / "run")
    assert predictor.representation == representation
    ds = open_source(deepfake_spec)
    record = ds.read(ds.index["record_id"][0])
    x = predictor.prepare(record)
    images = x[1] if isinstance(x, tuple) else x
    assert images.dtype == torch.float32 and float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    result = predictor.predict(record)
    assert np.isfinite(result["intervals"]["qrs"])
    many = predictor.predict_many([record, ds.read(ds.index["record_id"][1])], batch_size=2)
    assert many[0]["intervals"]["qrs"] == pytest.approx(result["intervals"]["qrs"], rel=1e-4)


def test_images_drawn_by_two_workers_equal_the_single_process_ones(deepfake_spec, tmp_path, monkeypatch):
    ds = open_source(deepfake_spec)
    one = np.array(image_array(IMAGE_SPECS["mtf"], ds, PREP, n_jobs=1))
    monkeypatch.setenv("ECGLAB_HOME", str(tmp_path / "other"))
    two = image_array(IMAGE_SPECS["mtf"], ds, PREP, n_jobs=2)
    assert str(tmp_path / "other") in str(two.filename)  # a fresh cache, drawn by the workers
    np.testing.assert_array_equal(one, two)
