"""Staged Optuna studies: stages run, prune, resume from storage, and share trials between processes."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from ecgcore.tune import load_space, load_studies, run_study
from ecgcore.tune.spaces import Space, apply
from ecgcore.tune.study import default_storage, stage_grid

SPACE = {
    "name": "t",
    "base": {"data": "deepfake:/nowhere", "model": "cnn", "epochs": 3},
    "pruner": {"name": "threshold", "upper": 0.5},
    "stages": [
        {
            "name": "head",
            "sampler": "grid",
            "fixed": {"model_kwargs.frozen": "backbone"},
            "params": {"lr": [0.001, 0.01], "batch_size": [8, 16]},
        },
        {"name": "full", "sampler": "tpe", "params": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}},
        {"name": "refine", "sampler": "around", "factors": [0.5, 1.0, 2.0], "params": {"lr": None}},
    ],
}


class FakeRecorder:
    def __init__(self) -> None:
        self.status = "running"

    def epoch_end(self, epoch, step, **values) -> None:
        pass

    def cancelled(self, message: str) -> None:
        self.status = message

    def cancel_requested(self) -> bool:
        return False


def fake_train(calls: list):
    """val_loss = |log10(lr) + 2| + 0.1 / (epoch + 1): best at lr 0.01; above 0.5 (pruned) far from it."""

    def train(config, runs_dir=None, run_id=None, wrap_recorder=None):
        inner = FakeRecorder()
        rec = wrap_recorder(inner)
        calls.append(
            {
                "lr": config.lr,
                "frozen": config.model_kwargs.get("frozen"),
                "run_id": run_id,
                "transfer": config.transfer,
            }
        )
        for epoch in range(config.epochs):
            loss = abs(math.log10(config.lr) + 2) + 0.1 / (epoch + 1)
            rec.epoch_end(epoch, epoch, train_loss=loss, val_loss=loss, lr=config.lr, time_s=0.0, metrics={})
            if rec.cancel_requested():
                rec.cancelled("cancelled")
                calls[-1]["status"] = inner.status
                return {"status": "cancelled"}
        return {"status": "done"}

    return train


def test_stages_run_prune_and_carry_the_best_forward(tmp_path):
    calls: list = []
    result = run_study("s1", Space.from_dict(SPACE), 4, runs_dir=tmp_path, train=fake_train(calls))
    assert result["head"]["trials"] == 4 and result["head"]["best_params"]["lr"] == 0.01
    # the head stage trained with the backbone frozen; later stages do not
    assert {c["frozen"] for c in calls[:4]} == {"backbone"} and calls[5]["frozen"] is None
    # refine: lr 0.005, 0.01, 0.02 around the best of "full" (or head); its best is within the grid
    grid = stage_grid(Space.from_dict(SPACE).stages[2], {"lr": result["full"]["best_params"]["lr"]})
    assert len(grid["lr"]) == 3 and result["refine"]["trials"] == 3
    # lr 0.001 -> loss 1.0 > 0.5 at the first epoch: pruned, its run cancelled with a message saying so
    pruned = [c for c in calls if "status" in c]
    assert pruned and all(c["status"].startswith("pruned by Optuna study s1.") for c in pruned)
    assert result["head"]["pruned"] == 2  # lr 0.001 with both batch sizes
    # every trial created its run with trial.json
    run_dirs = [p for p in tmp_path.iterdir() if (p / "trial.json").exists()]
    assert len(run_dirs) == len(calls)
    assert json.loads((run_dirs[0] / "trial.json").read_text())["study"] == "s1"


def test_later_stages_start_from_the_weights_of_the_head_stages_best_run(tmp_path):
    warm = {
        **SPACE,
        "stages": [SPACE["stages"][0], *({**st, "warm_start": "head"} for st in SPACE["stages"][1:])],
    }
    calls: list = []
    result = run_study("w1", Space.from_dict(warm), 3, runs_dir=tmp_path, train=fake_train(calls))
    head_best = result["head"]["best_run"]
    head_runs = [c["run_id"] for c in calls[:4]]
    assert head_best in head_runs and all(c["transfer"] is None for c in calls[:4])
    later = calls[4:]
    assert len(later) == 3 + 3
    for call in later:  # every trial of full and refine continues from the head's best run, all layers
        transfer = call["transfer"]
        assert transfer.sources == (head_best,) and transfer.approach == "continue"
        assert transfer.strategy == "discriminative" and transfer.lr_factor == 1.0
        assert call["frozen"] is None
        trial = json.loads((tmp_path / call["run_id"] / "trial.json").read_text())
        assert trial["warm_start"] == head_best
    # without warm_start (the space above), a later stage starts from a fresh model
    cold: list = []
    run_study("w2", Space.from_dict(SPACE), 3, runs_dir=tmp_path, train=fake_train(cold))
    assert all(c["transfer"] is None for c in cold)
    with pytest.raises(ValueError, match=r"stage 'full' warm-starts from 'refine', which is not an earlier"):
        Space.from_dict(
            {**SPACE, "stages": [SPACE["stages"][0], {**SPACE["stages"][1], "warm_start": "refine"}]}
        )


def test_rerun_resumes_from_storage_without_new_trials(tmp_path):
    calls: list = []
    run_study("s2", Space.from_dict(SPACE), 3, runs_dir=tmp_path, train=fake_train(calls))
    first = len(calls)
    again: list = []
    run_study("s2", Space.from_dict(SPACE), 3, runs_dir=tmp_path, train=fake_train(again))
    assert first == 4 + 3 + 3 and again == []
    more: list = []
    run_study("s2", Space.from_dict(SPACE), 5, runs_dir=tmp_path, train=fake_train(more))
    assert len(more) == 2  # two more TPE trials; the grids were complete (refine's best may move: same grid)
    stages = {s.study_name: s for s in load_studies("s2", runs_dir=tmp_path)}
    assert sorted(stages) == ["s2.full", "s2.head", "s2.refine"]
    assert len(stages["s2.full"].trials) == 5
    assert default_storage(tmp_path).endswith("studies.db")


def test_spaces_presets_and_bad_spaces(tmp_path):
    assert [s.name for s in load_space("vision").stages] == ["head", "full", "refine"]
    assert [s.warm_start for s in load_space("vision").stages] == [None, "head", "head"]
    assert load_space("vision").direction == "maximize" and load_space("quick").direction == "minimize"
    assert apply({"lr": 1, "model_kwargs": {"a": 1}}, {"model_kwargs.b": 2, "lr": 3}) == {
        "lr": 3,
        "model_kwargs": {"a": 1, "b": 2},
    }
    bad = {**SPACE, "stages": [{"name": "x", "sampler": "random", "params": {"lr": [1]}}]}
    with pytest.raises(ValueError, match="sampler must be one of"):
        Space.from_dict(bad)
    with pytest.raises(ValueError, match="needs an earlier stage"):
        Space.from_dict({**SPACE, "stages": SPACE["stages"][2:]})
    with pytest.raises(FileNotFoundError, match="not a preset"):
        load_space(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        load_space(tmp_path / "bad.json")


def test_a_second_worker_on_the_same_storage_shares_the_trials(tmp_path):
    storage = default_storage(tmp_path)
    space = Space.from_dict({**SPACE, "stages": SPACE["stages"][1:2]})
    a: list = []
    run_study("s3", space, 3, runs_dir=tmp_path, train=fake_train(a))
    # a second worker started with a larger target only adds the missing trials to the same study
    b: list = []
    run_study("s3", space, 5, storage=storage, runs_dir=tmp_path, train=fake_train(b))
    study = optuna.load_study(study_name="s3.full", storage=storage)
    assert len(a) == 3 and len(b) == 2 and len(study.trials) == 5
    assert {t.user_attrs["run_id"] for t in study.trials} == {c["run_id"] for c in a + b}


_WORKER = """
import sys, time
from tests.tune.test_study import SPACE, fake_train
from ecgcore.tune import run_study
from ecgcore.tune.spaces import Space
import tests.tune.test_study as t

def slow(calls):
    inner = fake_train(calls)
    def train(config, **kw):
        time.sleep(0.4)
        return inner(config, **kw)
    return train

run_study("s4", Space.from_dict({**SPACE, "stages": SPACE["stages"][1:2]}), 6, storage=sys.argv[1],
          runs_dir=sys.argv[2], train=slow([]))
"""


def test_two_processes_share_one_sqlite_study(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    storage = default_storage(tmp_path)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-c", _WORKER, storage, str(tmp_path)]
    procs = [subprocess.Popen(cmd, env=env, cwd=root) for _ in range(2)]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    study = optuna.load_study(study_name="s4.full", storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 6 <= len(finished) <= 7  # each worker stops at the shared count (one may be in flight then)
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2


def test_tune_command_trains_real_runs_and_prunes_them_in_the_store(deepfake_spec, tmp_path, capsys):
    from ecgcore.cli import main
    from ecgcore.runs.store import RunStore

    space = {
        "name": "real",
        "base": {
            "targets": ["qrs"],
            "fs": 100.0,
            "epochs": 2,
            "batch_size": 16,
            "amp": False,
            "schedule": "none",
            "model_kwargs": {"widths": [8, 8]},
        },
        "pruner": {"name": "threshold", "upper": 0.0},  # any validation loss > 0: pruned after epoch 1
        "stages": [{"name": "full", "sampler": "grid", "params": {"lr": [0.001, 0.01]}}],
    }
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    runs = tmp_path / "runs"
    args = [
        "tune",
        "--study",
        "r",
        "--space",
        str(path),
        "--data",
        deepfake_spec,
        "--model",
        "cnn",
        "--device",
        "cpu",
        "--runs-dir",
        str(runs),
    ]
    with pytest.raises(RuntimeError, match="no trial completed"):
        main(args)
    listed = RunStore(runs).list_runs()
    assert len(listed) == 2 and set(listed["status"]) == {"cancelled"}
    messages = {RunStore(runs).get_run(r)["message"] for r in listed["id"]}
    assert all(m.startswith("pruned by Optuna study r.full") for m in messages)
    space["pruner"] = {"name": "none"}
    path.write_text(json.dumps(space))
    assert main([*args[:2], "r2", *args[3:]]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["full"]["trials"] == 2 and result["full"]["best_run"] in set(
        RunStore(runs).list_runs()["id"]
    )


def test_a_warm_started_stage_trains_real_runs_from_the_head_runs_weights(
    deepfake_spec, tmp_path, monkeypatch
):
    import torch

    from ecgcore.runs.store import RunStore
    from ecgcore.train.checkpoint import read_checkpoint

    monkeypatch.setenv("ECGLAB_HOME", str(tmp_path))
    space = {
        "name": "real-warm",
        "base": {
            "data": deepfake_spec,
            "model": "cnn",
            "targets": ["qrs"],
            "fs": 100.0,
            "epochs": 1,
            "batch_size": 16,
            "amp": False,
            "device": "cpu",
            "schedule": "none",
            "model_kwargs": {"widths": [8, 8]},
        },
        "pruner": {"name": "none"},
        "stages": [
            {
                "name": "head",
                "sampler": "grid",
                "fixed": {"model_kwargs.frozen": "backbone"},
                "params": {"lr": [0.01]},
            },
            {"name": "full", "sampler": "grid", "warm_start": "head", "params": {"lr": [0.001]}},
        ],
    }
    runs = tmp_path / "runs"
    result = run_study("rw", Space.from_dict(space), 1, runs_dir=runs)
    store = RunStore(runs)
    head, full = result["head"]["best_run"], result["full"]["best_run"]
    assert store.get_run(full)["status"] == "done"
    assert store.config(full).transfer.sources == (head,)
    head_weights = read_checkpoint(store.run_dir(head) / "best.safetensors")[0]
    full_weights = read_checkpoint(store.run_dir(full) / "last.safetensors")[0]
    backbone = [k for k in head_weights if k.startswith("backbone.") and k.endswith("weight")]
    # the head stage froze the backbone; the warm-started stage moved it from the head run's values
    assert backbone and all(not torch.equal(head_weights[k], full_weights[k]) for k in backbone)
    assert all(
        torch.allclose(head_weights[k], full_weights[k], atol=0.05) for k in backbone
    )  # one epoch at lr 1e-3 from there, not a fresh random init
