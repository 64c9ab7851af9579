import json
import subprocess
import sys
import threading

import pytest

from ecgcore.runs.store import RunStore
from ecgcore.train.config import TrainConfig

#: A reader in another process: counts epochs of run "r" until it sees ``n``, never failing on a lock.
_READER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=30)
seen, deadline = [], time.monotonic() + 60
while time.monotonic() < deadline:
    n = con.execute("SELECT COUNT(*) FROM epochs WHERE run_id = 'r'").fetchone()[0]
    seen.append(n)
    if n >= int(sys.argv[2]):
        break
assert seen == sorted(seen), "epoch count went backwards"
print(len(set(seen)))
"""


def test_readers_see_a_consistent_store_while_a_run_writes(tmp_path):
    store = RunStore(tmp_path)
    store.create_run(TrainConfig(data="deepfake:x"), run_id="r")
    n = 150
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(store.path), str(n)], stdout=subprocess.PIPE, text=True
    )
    errors, counts = [], []

    def read_in_thread():
        try:
            other = RunStore(tmp_path)
            while len(counts) == 0 or counts[-1] < n:
                frame = other.epochs("r")
                run = other.get_run("r")
                assert len(frame) == 0 or frame["epoch"].tolist() == list(range(len(frame)))
                assert run["epoch"] is None or run["epoch"] >= len(frame) - 1
                counts.append(len(frame))
        except Exception as exc:  # reported below: a failure in the thread must fail the test
            errors.append(exc)

    thread = threading.Thread(target=read_in_thread)
    thread.start()
    for epoch in range(n):
        store.update("r", status="running", epoch=epoch, step=epoch * 10, total_steps=n * 10, eta_s=n - epoch)
        store.add_epoch(
            "r",
            epoch,
            epoch * 10,
            train_loss=1.0 / (epoch + 1),
            val_loss=0.5,
            lr=1e-3,
            time_s=0.01,
            metrics={"mae": 10.0 - epoch * 0.01},
        )
    thread.join(timeout=60)
    out, _ = reader.communicate(timeout=60)
    assert not errors, errors
    assert reader.returncode == 0 and int(out) > 1  # the other process saw the run grow, not just the end
    assert counts == sorted(counts) and counts[-1] == n
    assert store.epochs("r")["mae"].iloc[-1] == pytest.approx(10.0 - (n - 1) * 0.01)


def test_runs_list_show_and_find_done(tmp_path):
    store = RunStore(tmp_path)
    config = TrainConfig(data="deepfake:x", epochs=3)
    first = store.create_run(config)
    second = store.create_run(TrainConfig(data="deepfake:x", epochs=4))
    assert store.find_done(config) is None
    store.update(first, status="done", summary={"headline": {"test_mae": 12.5}})
    assert store.find_done(TrainConfig(data="deepfake:x", epochs=3, device="cpu")) == first
    runs = store.list_runs()
    assert set(runs["id"]) == {first, second} and runs.set_index("id").loc[first, "test_mae"] == 12.5
    run = store.get_run(first)
    assert run["config"]["epochs"] == 3 and store.config(first) == config and store.run_dir(first).is_dir()
    with pytest.raises(ValueError, match="status"):
        store.update(first, status="finished")
    with pytest.raises(ValueError, match="unknown run fields"):
        store.update(first, colour="red")
    with pytest.raises(KeyError, match="no run"):
        store.get_run("nope")


def _open_store_at_barrier(root: str, barrier) -> str:
    barrier.wait()
    try:
        RunStore(root)
    except Exception as exc:  # reported to the parent, which fails the test with it
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    """The ranks of a DDP run open the same new store together; switching it to WAL at the same moment
    made SQLite answer "database is locked" without waiting (seen in the 2-process DDP test)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        for i in range(15):
            barrier = manager.Barrier(4)
            errors = pool.starmap(_open_store_at_barrier, [(str(tmp_path / f"runs{i}"), barrier)] * 4)
            assert errors == [""] * 4, errors


def test_runs_can_be_named_tagged_and_annotated_and_an_old_store_gains_the_columns(tmp_path):
    import sqlite3

    from ecgcore.runs.store import LABELS_FILE

    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(old / "runs.sqlite") as con:  # a store from before labels: no name / tags / notes
        con.execute(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, task TEXT NOT NULL,"
            " model TEXT NOT NULL, data TEXT NOT NULL, config_key TEXT NOT NULL, config_json TEXT NOT NULL,"
            " status TEXT NOT NULL, device TEXT, pid INTEGER, pid_start TEXT, epoch INTEGER, step INTEGER,"
            " total_steps INTEGER, eta_s REAL, message TEXT, summary_json TEXT, best_checkpoint TEXT,"
            " last_checkpoint TEXT, error TEXT)"
        )
    store = RunStore(old)
    run_id = store.create_run(TrainConfig(data="deepfake:/nowhere", model="cnn"))
    store.label(run_id, name="baseline cnn", tags=["ablation", " 100 Hz", "ablation", ""])
    store.label(run_id, notes="lr too high?")  # other fields kept
    row = store.list_runs().set_index("id").loc[run_id]
    assert (row["name"], row["tags"], row["notes"]) == ("baseline cnn", "ablation,100 Hz", "lr too high?")
    saved = json.loads((store.run_dir(run_id) / LABELS_FILE).read_text())
    assert saved == {"name": "baseline cnn", "tags": "ablation,100 Hz", "notes": "lr too high?"}
    with pytest.raises(KeyError, match="no run 'nope'"):
        store.label("nope", name="x")


def test_streamed_step_losses_are_kept_in_step_order_and_a_resume_overwrites_them(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(TrainConfig(data="deepfake:/nowhere", model="cnn"))
    for step, loss in ((2, 0.9), (1, 1.0), (3, 0.8)):
        store.add_step_loss(run_id, 0, step, loss)
    store.add_step_loss(run_id, 0, 3, 0.7)  # the same step again after a resume
    assert store.steps(run_id).values.tolist() == [[1, 0, 1.0], [2, 0, 0.9], [3, 0, 0.7]]
    assert store.steps("other").empty
