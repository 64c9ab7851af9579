import os
import signal
import time

import pytest

from ecgcore.processes import pid_alive
from ecgcore.runs import worker
from ecgcore.runs.store import RunStore, wait_for
from tests.train.helpers import tiny_config


def _wait_epochs(store: RunStore, run_id: str, more_than: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        assert run["status"] in ("queued", "running"), (run["status"], run["error"], _log(store, run_id))
        n = len(store.epochs(run_id))
        if n > more_than:
            return n
        time.sleep(0.2)
    raise TimeoutError(_log(store, run_id))


def _log(store: RunStore, run_id: str) -> str:
    path = store.run_dir(run_id) / worker.LOG_NAME
    return path.read_text()[-2000:] if path.exists() else "(no log)"


def test_worker_runs_in_its_own_session_and_can_be_cancelled_killed_and_resumed(
    deepfake_spec, tmp_path, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = RunStore(tmp_path)
    run_id = worker.launch(tiny_config(deepfake_spec, epochs=500), runs_dir=tmp_path)
    n = _wait_epochs(store, run_id, 0)
    run = store.get_run(run_id)
    assert run["status"] == "running" and run["device"] == "cpu" and run["total_steps"] > 0
    assert (
        os.getsid(run["pid"]) == run["pid"] != os.getsid(0)
    )  # its own session: a closed page cannot take it down

    assert worker.cancel(run_id, runs_dir=tmp_path) == "cancelling"
    run = wait_for(store, run_id, ("cancelled",), timeout=60)
    assert (store.run_dir(run_id) / "last.safetensors").exists() and "cancelled" in run["message"]

    assert worker.resume(run_id, runs_dir=tmp_path) == run_id
    _wait_epochs(store, run_id, n)  # it continues from the checkpoint, adding epochs
    pid = store.get_run(run_id)["pid"]
    assert store.epochs(run_id)["epoch"].tolist() == list(range(len(store.epochs(run_id))))
    os.killpg(pid, signal.SIGKILL)  # as if the machine's OOM killer struck
    deadline = time.monotonic() + 30
    while worker.refresh_dead(runs_dir=tmp_path) != [run_id]:
        assert time.monotonic() < deadline, "the killed run was not detected"
        time.sleep(0.1)
    assert store.get_run(run_id)["status"] == "interrupted" and not pid_alive(pid)
    assert worker.refresh_dead(runs_dir=tmp_path) == []


def test_resume_refuses_an_active_run_or_one_without_a_checkpoint(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config("deepfake:nowhere"))
    store.update(run_id, status="running", pid=os.getpid())
    with pytest.raises(ValueError, match="cancel it before resuming"):
        worker.resume(run_id, runs_dir=tmp_path)
    store.update(run_id, status="failed")
    with pytest.raises(ValueError, match="no checkpoint"):
        worker.resume(run_id, runs_dir=tmp_path)
    assert worker.cancel(run_id, runs_dir=tmp_path) == "failed"  # nothing to cancel


def test_a_run_cancelled_while_it_starts_ends_cancelled(deepfake_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = RunStore(tmp_path)
    run_id = worker.launch(tiny_config(deepfake_spec), runs_dir=tmp_path)
    assert worker.cancel(run_id, runs_dir=tmp_path) == "cancelling"  # still importing torch, most likely
    deadline = time.monotonic() + 60
    while store.get_run(run_id)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, _log(store, run_id)
        worker.refresh_dead(runs_dir=tmp_path)
        time.sleep(0.1)
    assert store.get_run(run_id)["status"] == "cancelled", _log(store, run_id)
