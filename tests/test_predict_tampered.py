"""A tampered checkpoint description is refused naming the checkpoint and the field, never a traceback."""

from __future__ import annotations

import json

import pytest

from ecgcore.cli import main
from ecgcore.models import create_model
from ecgcore.predict import load_predictor
from ecgcore.train.checkpoint import CheckpointError, save_checkpoint

PREP = {"leads": ["I", "II"], "fs": 100.0, "duration": 2.0, "bandpass": True, "normalize": "zscore"}


def _run_dir(tmp_path, kind: str, **changes) -> object:
    """A run directory with a tiny model's best checkpoint, its description changed by ``changes``."""
    n_outputs = 2 if kind == "regression" else 3
    model = create_model("cnn", 2, n_outputs, widths=[4])
    meta = {"task": kind, "preprocessing": dict(PREP), "stats": {}, "label_mode": "single"}
    if kind == "regression":
        meta.update(targets=["hr", "qrs"], target_mean=[70.0, 90.0], target_sd=[10.0, 10.0])
    else:
        meta.update(classes=["NORM", "MI", "STTC"])
    meta["model"] = dict(model.config)
    for key, value in changes.items():
        target, _, sub = key.partition("__")
        if sub:
            meta[target] = {**meta[target], sub: value}
        elif value is None:
            meta.pop(target)
        else:
            meta[target] = value
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir / "best", model.state_dict(), meta)
    return run_dir


def test_an_untampered_checkpoint_loads(tmp_path):
    assert load_predictor(_run_dir(tmp_path, "regression")).prep.fs == 100.0
    assert load_predictor(_run_dir(tmp_path, "classification")).meta["classes"] == ["NORM", "MI", "STTC"]


TAMPERED = [
    ("regression", {"model__name": "nonet"}, "field 'model': unknown model 'nonet'"),
    ("regression", {"model__extra": 3}, "field 'model': model 'cnn' does not take these arguments"),
    ("regression", {"preprocessing": None}, "field 'preprocessing' is missing"),
    (
        "regression",
        {"preprocessing__fs": "abc"},
        "field 'preprocessing.fs' is 'abc'; expected a positive number",
    ),
    ("regression", {"preprocessing__leads": ["I", "XYZ"]}, "field 'preprocessing.leads' holds 'XYZ'"),
    (
        "regression",
        {"preprocessing__leads": []},
        "field 'preprocessing.leads' is []; expected a non-empty list",
    ),
    ("regression", {"targets": ["hr", "zz"]}, "field 'targets' is ['hr', 'zz']"),
    (
        "classification",
        {"classes": None},
        "field 'classes' is None: a classification run must name its classes",
    ),
    ("classification", {"task": "poetry"}, "field 'task' is 'poetry'"),
]


@pytest.mark.parametrize("task,changes,message", TAMPERED, ids=[m.split(":")[0] for _, _, m in TAMPERED])
def test_a_tampered_description_names_the_checkpoint_and_the_field(tmp_path, capsys, task, changes, message):
    run_dir = _run_dir(tmp_path, task, **changes)
    with pytest.raises(CheckpointError) as caught:
        load_predictor(run_dir)
    assert str(run_dir / "best.safetensors") in str(caught.value) and message in str(caught.value)
    record = tmp_path / "r.csv"
    record.write_text("I,II\n" + "\n".join("0.1,0.2" for _ in range(300)))
    code = main(["predict", "--run", str(run_dir), "--fs", "100", str(record)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert json.loads((run_dir / "best.json").read_text())  # the description copy is left as it was
