"""Inputs that are not [leads, samples]: a tiny 2D model on uint8 images and a two-input model (signal +
image) train through the same loop, with checkpoints and resume, from a registered representation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecgcore.data import load_cached
from ecgcore.data.inputs import INPUTS, build_inputs, register_input
from ecgcore.train.batches import BatchSource, prepare_data
from ecgcore.train.checkpoint import read_checkpoint
from ecgcore.train.loop import fit
from ecgcore.train.recorder import Cancelled, MemoryRecorder
from tests.train.helpers import tiny_config


def _image(dataset, prep, progress=None) -> np.ndarray:
    """uint8 [N, 3, 16, 16]: the first 768 samples of leads 0-2, min-max scaled per record."""
    signals = np.asarray(load_cached(dataset, prep).signals)[:, :3, :256]
    lo, hi = signals.min(axis=(1, 2), keepdims=True), signals.max(axis=(1, 2), keepdims=True)
    scaled = (signals - lo) / np.maximum(hi - lo, 1e-6) * 255
    return scaled.reshape(len(signals), 3, 16, 16).round().astype(np.uint8)


@pytest.fixture(scope="module", autouse=True)
def representations():
    register_input("test-image")(_image)
    register_input("test-signal+image")(lambda d, p, progress=None: (INPUTS["signal"](d, p), _image(d, p)))
    yield
    for name in ("test-image", "test-signal+image"):
        INPUTS.pop(name)


class TinyImageNet(nn.Module):
    def __init__(self, n_outputs: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(8, n_outputs)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        assert image.dtype == torch.float32 and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        return self.head(self.body(image))


class SignalPlusImage(nn.Module):
    def __init__(self, n_leads: int, n_outputs: int):
        super().__init__()
        self.signal = nn.Sequential(
            nn.Conv1d(n_leads, 8, 7, padding=3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten()
        )
        self.image = TinyImageNet(8).body
        self.head = nn.Linear(16, n_outputs)

    def forward(self, signal: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.signal(signal), self.image(image)], dim=1))


def test_registry_names_the_known_representations_on_an_unknown_one(deepfake_spec):
    with pytest.raises(
        ValueError, match=r"unknown input representation 'no-such-input'; expected one of \[.*'signal'"
    ):
        build_inputs("no-such-input", None, None)


def test_uint8_and_tuple_inputs_are_batched_as_float_tuples():
    images = np.arange(4 * 3 * 2 * 2, dtype=np.uint8).reshape(4, 3, 2, 2)
    signals = np.ones((4, 2, 5), dtype=np.float32)
    source = BatchSource((signals, images), np.zeros(4, dtype=np.float32), np.arange(4), torch.device("cpu"))
    (sig, img), _ = source.batch(np.array([2, 0]))
    assert img.dtype == torch.float32 and torch.equal(img, torch.from_numpy(images[[2, 0]]).float() / 255)
    assert torch.equal(sig, torch.from_numpy(signals[[2, 0]]))


@pytest.mark.parametrize("representation", ["test-image", "test-signal+image"])
def test_other_inputs_train_checkpoint_and_resume_through_the_same_loop(
    deepfake_spec, tmp_path, representation
):
    config = tiny_config(deepfake_spec, epochs=3, representation=representation, amp=False)
    data = prepare_data(config)
    if representation == "test-image":
        assert data.inputs.dtype == np.uint8 and data.inputs.shape[1:] == (3, 16, 16)
    else:
        assert [a.shape[1:] for a in data.inputs] == [(8, 1000), (3, 16, 16)]

    def model():
        torch.manual_seed(0)
        n_out = len(data.names)
        return TinyImageNet(n_out) if representation == "test-image" else SignalPlusImage(8, n_out)

    cpu = torch.device("cpu")
    initial = model().state_dict()
    seen = MemoryRecorder()
    whole = fit(config, data, model(), tmp_path / "whole", device=cpu, recorder=seen)
    assert whole["status"] == "done" and whole["epochs_run"] == 3
    trained, meta = read_checkpoint(tmp_path / "whole" / "last")
    assert meta["epoch"] == 2 and all(not torch.equal(trained[k], initial[k]) for k in initial)

    stopped = MemoryRecorder(cancel_after_steps=2 * seen.step // config.epochs + 1)  # in epoch 3
    with pytest.raises(Cancelled):
        fit(config, data, model(), tmp_path / "cut", device=cpu, recorder=stopped)
    assert read_checkpoint(tmp_path / "cut" / "last")[1]["epoch"] == 1
    resumed = fit(config, data, model(), tmp_path / "cut", device=cpu, resume=True)
    assert resumed["metrics"] == whole["metrics"]
