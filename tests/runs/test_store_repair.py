"""A damaged run store (empty, truncated, garbage header or page) is rebuilt from the run directories."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from ecgcore.runs.store import STORE_NAME, RunStore, repair, take_repair_notice
from ecgcore.train.config import TrainConfig

N_RUNS, N_EPOCHS = 3, 12


def _finished_store(root) -> dict[str, list[float]]:
    """Runs that finished (with epochs and a summary) and one that was interrupted; returns val MAE per epoch."""
    store = RunStore(root)
    maes = {}
    for i in range(N_RUNS):
        run_id = store.create_run(TrainConfig(data=f"deepfake:/x{i}", epochs=N_EPOCHS), run_id=f"run{i}")
        maes[run_id] = [10.0 + i - e * 0.1 for e in range(N_EPOCHS)]
        for epoch, mae in enumerate(maes[run_id]):
            store.add_epoch(
                run_id,
                epoch,
                epoch * 5,
                train_loss=1.0,
                val_loss=0.5,
                lr=1e-3,
                time_s=0.1,
                metrics={"mae": mae, "note": "x" * 400},
            )
        store.update(
            run_id, status="done", summary={"status": "done", "headline": {"val_mae": maes[run_id][-1]}}
        )
    store.create_run(TrainConfig(data="deepfake:/y"), run_id="stopped")  # no summary: not finished
    store.update("stopped", status="interrupted", epoch=0)
    return maes


def _corrupt(path, how: str) -> None:
    data = path.read_bytes()
    assert len(data) > 8192, "the store should span several pages"
    if how == "empty":
        path.write_bytes(b"")
    elif how == "half":
        path.write_bytes(data[: len(data) // 2])
    elif how == "header":
        path.write_bytes(os.urandom(100) + data[100:])
    elif how == "page":  # a page in the middle of the file overwritten with garbage
        page = 4096
        middle = (len(data) // page // 2) * page
        path.write_bytes(data[:middle] + os.urandom(page) + data[middle + page :])


@pytest.mark.parametrize("how", ["empty", "half", "header", "page"])
def test_a_damaged_store_is_rebuilt_with_every_run_and_its_metrics(tmp_path, how):
    maes = _finished_store(tmp_path)
    _corrupt(tmp_path / STORE_NAME, how)

    store = RunStore(tmp_path)

    assert store.repaired is not None and store.repaired.moved_to.exists()
    runs = store.list_runs().set_index("id")
    assert set(runs.index) == {*maes, "stopped"}
    assert runs.loc["stopped", "status"] == "interrupted"
    for run_id, mae in maes.items():
        assert runs.loc[run_id, "status"] == "done"
        assert runs.loc[run_id, "val_mae"] == pytest.approx(mae[-1])
        assert store.epochs(run_id)["mae"].tolist() == pytest.approx(mae)
        assert store.config(run_id).data == f"deepfake:/x{run_id[-1]}"
    notice = take_repair_notice(tmp_path)
    assert "damaged" in notice and f"{len(maes) + 1} run(s) recovered" in notice
    assert take_repair_notice(tmp_path) is None, "the notice is given once"


def test_run_names_tags_and_notes_survive_a_rebuild(tmp_path):
    """Labels a user gave (kept in each run's ``labels.json``) come back with the rebuilt store."""
    _finished_store(tmp_path)
    RunStore(tmp_path).label("run1", name="baseline, lr 3e-3", tags=["paper", "seed 0"], notes="keep")
    _corrupt(tmp_path / STORE_NAME, "empty")

    store = RunStore(tmp_path)

    labelled, unlabelled = store.get_run("run1"), store.get_run("run0")
    assert (labelled["name"], labelled["tags"], labelled["notes"]) == (
        "baseline, lr 3e-3",
        "paper,seed 0",
        "keep",
    )
    assert unlabelled["name"] is None and unlabelled["tags"] is None, "an unlabelled run stays unlabelled"


def test_runs_list_says_once_on_stderr_that_the_store_was_rebuilt(tmp_path):
    maes = _finished_store(tmp_path)
    _corrupt(tmp_path / STORE_NAME, "header")
    command = [sys.executable, "-m", "ecgcore", "runs", "list", "--runs-dir", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr and "was damaged" in first.stderr
    assert all(run_id in first.stdout for run_id in maes)
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "damaged" not in second.stderr


def test_repair_adds_back_run_directories_that_an_empty_store_orphaned(tmp_path):
    maes = _finished_store(tmp_path)
    with sqlite3.connect(tmp_path / STORE_NAME) as con:  # what an older version left: a sound, empty store
        con.execute("DELETE FROM epochs")
        con.execute("DELETE FROM runs")
    con.close()

    report = repair(tmp_path)

    assert report.problem is None and sorted(report.recovered) == sorted([*maes, "stopped"])
    assert RunStore(tmp_path).epochs("run1")["mae"].tolist() == pytest.approx(maes["run1"])


def test_a_sound_store_is_not_touched(tmp_path):
    _finished_store(tmp_path)
    store = RunStore(tmp_path)
    assert store.repaired is None
    assert not list(tmp_path.glob(f"{STORE_NAME}.damaged-*"))


@pytest.mark.parametrize("status", ["done", "interrupted"])
def test_a_refused_resume_leaves_the_run_as_it_was(tmp_path, status, capsys):
    from ecgcore.cli import main

    store = RunStore(tmp_path)
    run_id = store.create_run(TrainConfig(data="deepfake:/nowhere"), run_id="r")
    store.update(
        run_id, status=status, message="as it was"
    )  # "done" finished; "interrupted" has no checkpoint

    assert main(["runs", "resume", run_id, "--wait", "--runs-dir", str(tmp_path)]) == 2
    why = {"done": "nothing to resume", "interrupted": "no checkpoint"}[status]
    assert why in capsys.readouterr().err
    run = store.get_run(run_id)
    assert (run["status"], run["message"], run["error"]) == (status, "as it was", None)
