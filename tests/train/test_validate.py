"""Settings are checked before a run exists: one line naming the setting, exit 2, no run left behind."""

from __future__ import annotations

import time

import pytest
import torch

from ecgcore.cli import main
from ecgcore.models import create_model
from ecgcore.runs import worker
from ecgcore.runs.store import RunStore
from ecgcore.train.config import TrainConfig
from ecgcore.train.validate import ConfigError, validate

BAD = [
    (["--fs", "0.001"], "--fs 0.001: expected a rate from 50 to 2000 Hz"),
    (["--fs", "nan"], "--fs nan: expected a rate"),
    (["--lr", "inf"], "--lr inf: expected a finite positive number"),
    (["--lr", "nan"], "--lr nan: expected a finite positive number"),
    (["--lr", "0"], "TrainConfig.lr=0.0; expected a positive number"),
    (["--lr", "-1e-3"], "TrainConfig.lr=-0.001; expected a positive number"),
    (["--lr", "-inf"], "TrainConfig.lr=-inf; expected a positive number"),
    (["--fs", "-250"], "TrainConfig.fs=-250.0; expected a positive number"),
    (["--leads", ""], "--leads '': give at least one lead"),
    (["--patience", "0"], "--patience 0: expected at least 1"),
    (["--patience", "-1"], "--patience -1: expected at least 1"),
    (["--weight-decay", "nan"], "--weight-decay nan"),
    (["--model-kwargs", '{"width": 3}'], "inception1d takes no argument 'width'; it takes depth, n_filters"),
    (["--model-kwargs", '{"depth": "3"}'], "inception1d's depth takes a whole number (default 6), got '3'"),
    (["--model-kwargs", '{"n_filters": 1000000}'], "parameters, about"),
    (
        ["--model-kwargs", '{"n_filters": -4}'],
        "n_filters takes a whole number, 0 or more (default 32), got -4",
    ),
    (
        ["--model-kwargs", '{"n_filters": 0}'],
        "--model inception1d with --model-kwargs {'n_filters': 0} cannot take",
    ),
    (
        ["--model", "vit", "--model-kwargs", '{"patch_size": 6000}'],
        "--model vit with --model-kwargs {'patch_size': 6000} cannot take 8 leads",
    ),
    (["--device", "tpu"], "--device 'tpu': expected auto, cpu, cuda"),
]


@pytest.mark.parametrize("options,message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_a_bad_setting_is_one_clear_line_and_leaves_no_run(tmp_path, capsys, options, message):
    started = time.monotonic()
    code = main(["train", "--data", "deepfake:/nowhere", "--runs-dir", str(tmp_path), "--quiet", *options])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert len(RunStore(tmp_path).list_runs()) == 0, "a refused setting leaves no failed run"
    assert time.monotonic() - started < 30


def test_model_kwargs_that_are_not_json_say_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", "deepfake:/x", "--runs-dir", str(tmp_path), "--model-kwargs", "not json"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "argument --model-kwargs: not JSON (Expecting value" in err
    assert "invalid loads value" not in err and "'not json'" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_what_to_use(tmp_path, capsys):
    assert main(["train", "--data", "deepfake:/x", "--runs-dir", str(tmp_path), "--device", "cuda"]) == 2
    assert "--device cuda: no CUDA device: use --device cpu or auto" in capsys.readouterr().err


def test_a_huge_model_is_refused_before_anything_is_allocated():
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"36,014,648,001,156 parameters.*more than the .* GiB"):
        validate(TrainConfig(data="x", model_kwargs={"n_filters": 1_000_000}))
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("model,kwargs", [("inception1d", {"depth": 3}), ("cnn", {"widths": [8, 16]})])
def test_the_estimate_counts_the_parameters_the_model_will_have(model, kwargs):
    config = TrainConfig(data="x", model=model, model_kwargs=kwargs, fs=100, batch_size=8)
    estimate = validate(config)
    built = create_model(model, len(config.leads), len(config.targets), **kwargs)
    assert estimate.params == sum(p.numel() for p in built.parameters())
    assert estimate.train_bytes > 16 * estimate.params  # weights, gradients, Adam moments and activations


def test_the_launcher_refuses_before_creating_a_run(tmp_path):
    with pytest.raises(ConfigError, match="--lr inf"):
        worker.launch(TrainConfig(data="deepfake:/x", lr=float("inf")), runs_dir=tmp_path)
    assert len(RunStore(tmp_path).list_runs()) == 0


def test_any_model_takes_frozen_layer_groups_and_an_unknown_group_is_named():
    """``frozen`` is create_model's argument for every model (a study's head-only stage passes it)."""
    config = TrainConfig(data="x", model="cnn", model_kwargs={"frozen": "backbone"}, fs=100, batch_size=8)
    assert validate(config, check_device=False).params > 0
    with pytest.raises(ConfigError, match=r"frozen: no layer group \['nope'\]; the model has \['block1'"):
        validate(
            TrainConfig(data="x", model="cnn", model_kwargs={"frozen": ["nope"]}, fs=100), check_device=False
        )
