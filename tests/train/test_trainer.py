import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ecgcore.data import Preprocessing, load_cached, open_source
from ecgcore.predict import load_predictor
from ecgcore.runs import run_training
from ecgcore.runs.store import RunStore
from ecgcore.train import batches as batch_module
from ecgcore.train.batches import BatchSource
from ecgcore.train.checkpoint import read_checkpoint
from ecgcore.train.device import precision_name, resolve_precision
from ecgcore.train.optim import build_schedule
from tests.train.helpers import tiny_config


def test_regression_beats_the_training_median_and_predicts_like_training(deepfake_spec, tmp_path):
    config = tiny_config(deepfake_spec, epochs=8)
    summary = run_training(config, runs_dir=tmp_path)
    assert summary["status"] == "done"
    assert summary["precision"] == precision_name(resolve_precision(torch.device("cpu"), config.amp)[0])
    for split in ("val", "test"):
        assert summary["metrics"][split]["mae_over_sd"] < summary["baseline"][split]["mae_over_sd"], split
    store = RunStore(tmp_path)
    run = store.get_run(summary["id"])
    assert (
        run["status"] == "done"
        and run["summary"]["headline"]["test_mae_over_sd"] == summary["metrics"]["test"]["mae_over_sd"]
    )
    assert list(store.epochs(summary["id"])["epoch"]) == list(range(8))

    records = json.loads((Path(run["run_dir"]) / "records.json").read_text())
    ids = {s: set(records[s]) for s in ("train", "val", "test")}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    assert sum(map(len, ids.values())) == 60 and records["kind"] == "deepfake"

    # the predictor sees exactly what training saw, and de-standardises to original units
    predictor = load_predictor(summary["id"], runs_dir=tmp_path)
    dataset = open_source(deepfake_spec)
    cached = load_cached(dataset, Preprocessing(fs=100.0))
    record_id = records["test"][0]
    row = int(np.flatnonzero(cached.index["record_id"].astype(str) == record_id)[0])
    record = dataset.read(record_id)
    assert torch.allclose(
        predictor.prepare(record)[0], torch.from_numpy(np.array(cached.signals[row])), atol=1e-5
    )
    result = predictor.predict(record)
    assert set(result["intervals"]) == {"hr", "pr", "qrs", "qt"} and result["units"]["hr"] == "bpm"
    assert 20 < result["intervals"]["hr"] < 200


def test_single_label_classification_beats_the_class_prior(ptbxl_spec, tmp_path):
    summary = run_training(tiny_config(ptbxl_spec, task="classification", epochs=8), runs_dir=tmp_path)
    for split in ("val", "test"):
        model, base = summary["metrics"][split], summary["baseline"][split]
        # 80 synthetic records leave a superclass without positives in a split: no macro AUC then
        # (the note says which), so compare the classes that have one
        defined = [c for c, v in model["auc_per_class"].items() if v is not None]
        assert (model["auc"] is None) == (len(defined) < model["n_classes"]), split
        assert model["auc"] is not None or "no positives" in model["auc_note"], split
        model_auc, base_auc = (np.mean([m["auc_per_class"][c] for c in defined]) for m in (model, base))
        assert model_auc > base_auc + 0.2, split
        assert model["accuracy"] > base["accuracy"], split
    assert summary["dropped"]["no_usable_label"]["train"] > 0  # the multi-label records are left out
    predictor = load_predictor(summary["id"], runs_dir=tmp_path)
    dataset = open_source(ptbxl_spec)
    result = predictor.predict(dataset.read(dataset.index["record_id"].iloc[0]))
    assert (
        sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        and len(result["predicted"]) == 1
    )


def test_multi_label_uses_every_labelled_record(ptbxl_spec, tmp_path):
    summary = run_training(
        tiny_config(ptbxl_spec, task="classification", label_mode="multi", epochs=1), runs_dir=tmp_path
    )
    assert sum(summary["n"].values()) == 80 and summary["dropped"]["no_usable_label"] == {
        "train": 0,
        "val": 0,
        "test": 0,
    }
    assert set(summary["metrics"]["test"]["per_class"]) == {"NORM", "MI", "STTC", "CD", "HYP"}


def test_same_seed_same_metrics_on_cpu(deepfake_spec, tmp_path):
    runs = [run_training(tiny_config(deepfake_spec, epochs=1, seed=s), runs_dir=tmp_path) for s in (0, 0, 1)]
    assert runs[0]["metrics"] == runs[1]["metrics"]
    assert runs[0]["metrics"] != runs[2]["metrics"]


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_result(deepfake_spec, tmp_path):
    config = tiny_config(deepfake_spec, epochs=3)  # one-cycle schedule: its state must survive too
    whole = run_training(config, runs_dir=tmp_path)

    def kill_in_third_epoch(step, total, message):
        if step > 2 * total // config.epochs:
            raise Killed()

    with pytest.raises(Killed):
        run_training(config, runs_dir=tmp_path, run_id="killed", progress=kill_in_third_epoch)
    store = RunStore(tmp_path)
    assert store.get_run("killed")["status"] == "failed"
    assert read_checkpoint(tmp_path / "killed" / "last.safetensors")[1]["epoch"] == 1
    resumed = run_training(config, runs_dir=tmp_path, run_id="killed", resume=True)
    assert resumed["metrics"] == whole["metrics"]
    assert list(store.epochs("killed")["epoch"]) == [0, 1, 2]
    a, _ = read_checkpoint(tmp_path / whole["id"] / "last.safetensors")
    b, _ = read_checkpoint(tmp_path / "killed" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_best_checkpoint_is_the_best_epoch_not_the_last(deepfake_spec, tmp_path):
    # a high constant rate makes validation loss jump; patience 1 stops right after a worse epoch
    config = tiny_config(deepfake_spec, epochs=15, lr=0.05, schedule="none", patience=1)
    summary = run_training(config, runs_dir=tmp_path)
    assert summary["stopped_early"]
    epochs = RunStore(tmp_path).epochs(summary["id"])
    best_epoch = int(epochs["epoch"][epochs["val_loss"].idxmin()])
    assert summary["best_epoch"] == best_epoch < int(epochs["epoch"].max())
    best, best_meta = read_checkpoint(tmp_path / summary["id"] / "best.safetensors")
    last, _ = read_checkpoint(tmp_path / summary["id"] / "last.safetensors")
    assert best_meta["epoch"] == best_epoch
    assert any(not torch.equal(best[k], last[k]) for k in best)
    # the final evaluation used the best weights: its validation loss is the best epoch's
    assert summary["loss"]["val"] == pytest.approx(epochs["val_loss"].min(), rel=1e-5)


def test_nan_targets_are_dropped_and_counted_and_records_can_be_capped(deepfake_spec, tmp_path):
    root = Path(deepfake_spec.split(":", 1)[1])
    copy = shutil.copytree(root, tmp_path / "deepfake")
    truth = copy / "deepfake_ground_truth.csv"
    table = pd.read_csv(truth)
    table.loc[[3, 17, 41], "qt"] = np.nan
    table.to_csv(truth, index=False)
    summary = run_training(tiny_config(f"deepfake:{copy}", epochs=1), runs_dir=tmp_path / "runs")
    assert sum(summary["dropped"]["missing_target"].values()) == 3 and sum(summary["n"].values()) == 57
    only_pr = run_training(
        tiny_config(f"deepfake:{copy}", epochs=1, targets="pr"), runs_dir=tmp_path / "runs"
    )
    assert sum(only_pr["n"].values()) == 60  # the NaN QT does not matter when QT is not a target
    capped = run_training(
        tiny_config(deepfake_spec, epochs=1, max_records=40, train_fraction=0.5), runs_dir=tmp_path / "runs"
    )
    assert summary["n"]["train"] > 2 * capped["n"]["train"] - 2 and sum(capped["n"].values()) < 40


@pytest.mark.parametrize(
    "schedule, optimizer, loss", [("exponential", "adam", "mse"), ("plateau", "adamw", "l1")]
)
def test_other_schedules_optimisers_and_losses(deepfake_spec, tmp_path, schedule, optimizer, loss):
    config = tiny_config(
        deepfake_spec,
        epochs=3,
        schedule=schedule,
        optimizer=optimizer,
        loss=loss,
        lr_gamma=0.5,
        targets="qrs",
    )
    summary = run_training(config, runs_dir=tmp_path)
    lrs = RunStore(tmp_path).epochs(summary["id"])["lr"].tolist()
    if schedule == "exponential":
        assert lrs == pytest.approx([config.lr * 0.5 ** (e + 1) for e in range(3)])
    else:
        assert all(lr <= config.lr for lr in lrs)
        plateau = build_schedule(
            config, torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr), 1, "min"
        )
        assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)
        for _ in range(4):  # no improvement for more than `patience` epochs halves the rate
            plateau.step(1.0)
        assert plateau.optimizer.param_groups[0]["lr"] == pytest.approx(config.lr * 0.5)
    assert summary["status"] == "done" and summary["names"] == ["qrs"]


def test_batches_from_the_memmap_equal_batches_from_memory(monkeypatch):
    signals = np.random.default_rng(0).normal(size=(30, 2, 50)).astype(np.float32)
    y = np.arange(30, dtype=np.float32)[:, None]
    rows = np.array([3, 7, 11, 12, 20, 29])
    in_ram = BatchSource(signals, y, rows, torch.device("cpu"))
    monkeypatch.setattr(batch_module, "HOST_DATA_SHARE", 0.0)
    mapped = BatchSource(signals, y, rows, torch.device("cpu"))
    assert (in_ram.mode, mapped.mode) == ("host", "memmap")
    batches = [np.array([29, 3, 12]), np.array([7, 20]), np.array([11])]
    for (xa, ya), (xb, yb), wanted in zip(in_ram.iterate(batches), mapped.iterate(batches), batches):
        assert torch.equal(xa, torch.from_numpy(signals[wanted])) and torch.equal(xa, xb)
        assert torch.equal(ya, yb) and ya[:, 0].tolist() == wanted.tolist()


@pytest.mark.parametrize("share", [None, 0.0])  # host mode, then memmap mode
def test_pinned_batches_are_gathered_straight_into_pinned_memory(monkeypatch, share):
    """For CUDA, a host batch is gathered into a page-locked buffer in one copy (no gather, then pin)."""
    signals = np.random.default_rng(0).normal(size=(30, 2, 50)).astype(np.float32)
    y = np.arange(30, dtype=np.float32)[:, None]
    rows = np.array([3, 7, 11, 12, 20, 29])
    if share is not None:
        monkeypatch.setattr(batch_module, "HOST_DATA_SHARE", share)
    source = BatchSource(signals, y, rows, torch.device("cpu"))
    source.pin = True  # as on CUDA (no CUDA here: pinned buffers are faked below)
    buffers = []

    def fake_pinned(shape, dtype, pin):
        buffers.append(torch.empty(shape, dtype=dtype))
        assert pin
        return buffers[-1]

    def second_copy(self, *args, **kwargs):
        raise AssertionError("the batch was copied again to pin it")

    monkeypatch.setattr(batch_module, "_host_buffer", fake_pinned)
    monkeypatch.setattr(torch.Tensor, "pin_memory", second_copy)
    wanted = np.array([29, 3, 12])
    (x,) = source._gather(wanted)
    assert x is buffers[-1] and torch.equal(x, torch.from_numpy(signals[wanted]))
