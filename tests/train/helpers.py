"""Shared pieces of the trainer and run-store tests: tiny configs on small synthetic folders.

The fixtures are imported by ``tests/train/conftest.py`` and ``tests/runs/conftest.py``.
"""

from __future__ import annotations

import pytest
import torch

from ecgcore.train.config import TrainConfig

#: A small CNN that trains in well under a second per epoch at 100 Hz on ~60 records.
TINY_MODEL = {"model": "cnn", "model_kwargs": {"widths": [16, 16, 32], "head_hidden": 32}}


def tiny_config(data: str, task: str = "regression", **overrides) -> TrainConfig:
    """A regression or classification config that trains fast on the factories' folders."""
    values = dict(task=task, data=data, fs=100.0, epochs=6, batch_size=16, lr=3e-3, **TINY_MODEL)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Train on one thread: the test machine's few cores are shared, and two spinning threads per
    process make tiny models several times slower there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def deepfake_spec(tmp_path_factory) -> str:
    """60 synthetic DeepFake-layout records with true intervals."""
    from tests.factories import make_deepfake_dir

    return f"deepfake:{make_deepfake_dir(tmp_path_factory.mktemp('deepfake'), 60, seed=1)}"


@pytest.fixture(scope="session")
def ptbxl_spec(tmp_path_factory) -> str:
    """80 synthetic PTB-XL-layout records whose superclasses shape the waveforms."""
    from tests.factories import make_ptbxl_dir

    return f"ptbxl:{make_ptbxl_dir(tmp_path_factory.mktemp('ptbxl'), 80, seed=2)}"
