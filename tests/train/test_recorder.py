"""The trainer with no run store: an in-memory recorder sees the whole run, and its cancel flag stops it."""

from __future__ import annotations

import pytest

from ecgcore.train.checkpoint import read_checkpoint
from ecgcore.train.device import cpu_has_bf16
from ecgcore.train.recorder import MemoryRecorder, Recorder
from ecgcore.train.trainer import train
from tests.train.helpers import tiny_config


def test_a_run_needs_no_store_only_a_recorder(deepfake_spec, tmp_path, ecglab_home):
    recorder = MemoryRecorder()
    assert isinstance(recorder, Recorder)
    summary = train(tiny_config(deepfake_spec, epochs=2), tmp_path / "run", recorder=recorder)
    assert summary["status"] == "done" and recorder.status == "done" and recorder.summary == summary
    assert [e["epoch"] for e in recorder.epochs] == [0, 1]
    assert recorder.epochs[-1]["val_loss"] == pytest.approx(
        read_checkpoint(tmp_path / "run" / "last")[1]["metrics"]["val_loss"]
    )
    assert [name for name, _ in recorder.events][:1] == ["started"]
    # the precision is told when training starts and kept with the summary: bf16 where the CPU has it natively
    assert summary["precision"] == ("bf16-mixed" if cpu_has_bf16() else "fp32")
    assert summary["precision"] in recorder.events[0][1]["message"]
    assert not (ecglab_home / "runs").exists() and not list(tmp_path.rglob("*.sqlite*"))


def test_the_recorders_cancel_flag_stops_the_run_and_keeps_the_last_checkpoint(deepfake_spec, tmp_path):
    config = tiny_config(deepfake_spec, epochs=4)
    probe = MemoryRecorder()
    train(config, tmp_path / "probe", recorder=probe)
    steps_per_epoch = probe.step // config.epochs
    recorder = MemoryRecorder(cancel_after_steps=steps_per_epoch + 1)  # one step into the second epoch
    summary = train(config, tmp_path / "run", recorder=recorder)
    assert summary["status"] == "cancelled" and recorder.status == "cancelled"
    assert [e["epoch"] for e in recorder.epochs] == [0]
    assert read_checkpoint(tmp_path / "run" / "last")[1]["epoch"] == 0
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_failure_is_told_to_the_recorder_before_it_is_raised(deepfake_spec, tmp_path):
    recorder = MemoryRecorder()
    with pytest.raises(ValueError, match="classification needs superclass labels"):
        train(tiny_config(deepfake_spec, task="classification"), tmp_path, recorder=recorder)
    assert recorder.status == "failed"
    assert recorder.error.startswith("ValueError: ") and "needs superclass labels" in recorder.error


def test_the_training_loss_is_streamed_per_step_and_averages_to_the_epochs_loss(
    deepfake_spec, tmp_path, monkeypatch
):
    import numpy as np

    from ecgcore.train import loop

    monkeypatch.setattr(loop, "STEP_LOSS_EVERY_S", 0.0)  # every step, not once a second
    recorder = MemoryRecorder()
    train(tiny_config(deepfake_spec, epochs=2), tmp_path / "run", recorder=recorder)
    streamed = [v for name, v in recorder.events if name == "step_loss"]
    assert [s["step"] for s in streamed] == list(range(1, recorder.step + 1))  # one per optimiser step
    for epoch in (0, 1):
        losses = [s["loss"] for s in streamed if s["epoch"] == epoch]
        assert np.mean(losses) == pytest.approx(recorder.epochs[epoch]["train_loss"], rel=1e-5)
