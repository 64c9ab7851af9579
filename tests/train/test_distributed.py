import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ecgcore.paths import PROJECT_DIR
from ecgcore.runs import run_training
from ecgcore.train.checkpoint import read_checkpoint
from ecgcore.train.distributed import DistInfo, shard
from tests.train.helpers import tiny_config

#: No batch norm and no dropout, so two processes with half batches each must compute what one does.
_NO_BN_MODEL = dict(
    model="vit",
    model_kwargs={
        "n_samples": 1000,
        "patch_size": 50,
        "dim": 32,
        "depth": 1,
        "n_heads": 2,
        "mlp_dim": 32,
        "dropout": 0.0,
        "head_hidden": None,
        "head_dropout": [0.0, 0.0],
    },
)


def test_shards_cover_every_row_once_per_step():
    rows = np.arange(10)
    parts = [shard(rows, DistInfo(rank, 2)) for rank in range(2)]
    assert sorted(np.concatenate(parts)) == list(range(10))
    assert len(shard(np.arange(7), DistInfo(0, 2))) == len(shard(np.arange(7), DistInfo(1, 2))) == 4


def test_two_gloo_processes_match_one(deepfake_spec, tmp_path):
    """fp32 and SGD: an update proportional to the gradient keeps the two runs as close as their
    rounding, and would show a wrongly scaled (summed, not averaged) gradient. Adam's first steps are
    sign-like, so rounding noise on a near-zero gradient became whole steps of size lr; bf16, which
    the trainer picks on CPUs with native bf16, rounds batches of 16 and 8 differently."""
    config = tiny_config(deepfake_spec, epochs=1, optimizer="sgd", amp=False, **_NO_BN_MODEL)
    single = run_training(config, runs_dir=tmp_path / "single")  # also builds the cache both ranks then map
    if single["n"]["train"] % 2:
        pytest.fail("the comparison needs an even number of training records (no padded rows)")
    (tmp_path / "config.json").write_text(json.dumps({**config.to_dict(), "device": "cpu"}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "ecgcore",
            "train",
            "--config-json",
            str(tmp_path / "config.json"),
            "--runs-dir",
            str(tmp_path / "ddp"),
            "--quiet",
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ddp = json.loads(out.stdout[out.stdout.index("{") :])
    assert ddp["world_size"] == 2 and ddp["device"] == "cpu x2"
    assert ddp["metrics"]["test"]["mae"] == pytest.approx(single["metrics"]["test"]["mae"], rel=1e-4)
    a, _ = read_checkpoint(tmp_path / "single" / single["id"] / "last.safetensors")
    b, _ = read_checkpoint(tmp_path / "ddp" / ddp["id"] / "last.safetensors")
    for name in a:
        np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
