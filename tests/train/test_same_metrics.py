"""Behaviour kept through the trainer's refactor (issue 13): a seeded tiny regression run and a seeded tiny
transfer run give the metrics recorded with the code before the split (fp32 on the CPU, one thread).

The expected numbers were measured once with the pre-refactor trainer (commit a04fcc7) on the
factories' folders; they are a regression guard, not a claim about accuracy.
"""

from __future__ import annotations

import pytest

from ecgcore.runs import run_training
from tests.train.helpers import tiny_config

TOL = 1e-6

REGRESSION = {
    "loss": {"train": 0.8660882711410522, "val": 0.7716143131256104, "test": 0.840312659740448},
    "mae": {"train": 22.711259918700307, "val": 18.49995590779703, "test": 23.92424817076326},
    "mae_per_target": {
        "train": {
            "hr": 16.01460863425075,
            "pr": 22.8192214685543,
            "qrs": 12.51238638635137,
            "qt": 39.49882318564482,
        },
        "val": {
            "hr": 14.809169481111509,
            "pr": 17.43534952558996,
            "qrs": 15.060919207473363,
            "qt": 26.694385417013294,
        },
        "test": {
            "hr": 13.503293392051736,
            "pr": 22.421673549330535,
            "qrs": 10.006992212250779,
            "qt": 49.76503352941999,
        },
    },
}
TRANSFER = {
    "loss": {"train": 1.603165626525879, "val": 1.603956937789917, "test": 1.6582396030426025},
    "auc": {"train": 0.6141463737208418, "val": 0.7291666666666667, "test": 0.55},
    "accuracy": {"train": 0.21052631578947367, "val": 0.2, "test": 0.0},
}


def test_seeded_regression_and_transfer_runs_keep_their_metrics(deepfake_spec, ptbxl_spec, tmp_path):
    regression = run_training(tiny_config(deepfake_spec, epochs=2, amp=False), runs_dir=tmp_path)
    assert regression["precision"] == "fp32"
    for split in ("train", "val", "test"):
        metrics = regression["metrics"][split]
        assert regression["loss"][split] == pytest.approx(REGRESSION["loss"][split], abs=TOL)
        assert metrics["mae"] == pytest.approx(REGRESSION["mae"][split], abs=TOL)
        per_target = {k: v["mae"] for k, v in metrics["per_target"].items()}
        assert per_target == pytest.approx(REGRESSION["mae_per_target"][split], abs=TOL)

    source = run_training(
        tiny_config(deepfake_spec, targets=("qrs",), epochs=1, amp=False), runs_dir=tmp_path
    )
    transfer = {"sources": [source["id"]], "approach": "qrs", "strategy": "gradual_unfreeze"}
    config = tiny_config(ptbxl_spec, task="classification", epochs=2, amp=False, transfer=transfer)
    target = run_training(config, runs_dir=tmp_path)
    for split in ("train", "val", "test"):
        assert target["loss"][split] == pytest.approx(TRANSFER["loss"][split], abs=TOL)
        assert target["metrics"][split]["auc"] == pytest.approx(TRANSFER["auc"][split], abs=TOL)
        assert target["metrics"][split]["accuracy"] == pytest.approx(TRANSFER["accuracy"][split], abs=TOL)
