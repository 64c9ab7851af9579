import pickle

import pytest
import torch

from ecgcore.models import create_model
from ecgcore.train.checkpoint import (
    load_checkpoint,
    load_training_state,
    read_checkpoint,
    save_checkpoint,
    save_training_state,
)
from ecgcore.train.optim import BestTracker


class Payload:
    """Any class: unpickling it would run code chosen by whoever wrote the file."""

    def __reduce__(self):
        return (print, ("pwned",))


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("cnn", 8, 3, widths=[8, 8], head_hidden=16)


def test_checkpoint_describes_itself_and_rebuilds_the_same_model(tmp_path):
    model = _model().eval()
    path = save_checkpoint(
        tmp_path / "best", model, {"task": "regression", "targets": ["hr", "pr", "qt"], "fs": 100.0}
    )
    assert path.suffix == ".safetensors" and (tmp_path / "best.json").exists()
    loaded, meta = load_checkpoint(tmp_path / "best")
    assert meta["model"]["name"] == "cnn" and meta["targets"] == ["hr", "pr", "qt"] and meta["format"]
    x = torch.randn(2, 8, 300)
    assert torch.equal(loaded(x), model(x))


def test_a_pickle_is_refused_as_weights_and_as_training_state(tmp_path, capsys):
    fake = tmp_path / "best.safetensors"
    fake.write_bytes(pickle.dumps({"weights": Payload()}))
    with pytest.raises(ValueError, match="not a safetensors checkpoint"):
        read_checkpoint(fake)
    state = tmp_path / "state.pt"
    torch.save({"optimizer": {}, "extra": Payload()}, state)
    with pytest.raises(ValueError, match="refused to load"):
        load_training_state(state)
    assert "pwned" not in capsys.readouterr().out
    save_training_state(state, {"epoch": 3, "rng": torch.get_rng_state(), "nested": {"lr": [1e-3, 2e-3]}})
    assert load_training_state(state)["nested"]["lr"] == [1e-3, 2e-3]


def test_best_tracker_keeps_a_copy_not_a_reference():
    """A published trainer kept ``model.state_dict()`` itself, so its 'best' was the last epoch."""
    model = _model()
    tracker = BestTracker("min")
    assert tracker.update(0.5, model, epoch=0)
    at_best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # what optimiser steps do: change the tensors in place
        for p in model.parameters():
            p.add_(1.0)
    assert not tracker.update(0.9, model, epoch=1)
    assert tracker.epoch == 0
    for name, value in tracker.state.items():
        assert torch.equal(value, at_best[name]), name
    first = "backbone.blocks.0.0.0.weight"
    assert not torch.equal(tracker.state[first], model.state_dict()[first])
