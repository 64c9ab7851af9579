import os
import signal
import time
from typing import ClassVar

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
    epochs = store.epochs(run_id)["epoch"].tolist()  # read once: the run is still adding epochs
    assert epochs == list(range(len(epochs)))
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


class _FakeProcess:
    """Stands in for the training process: records its environment; its pid is this (live) process."""

    started: ClassVar[list[dict]] = []

    def __init__(self, command, env=None, **kwargs):
        self.pid = os.getpid()
        _FakeProcess.started.append({"run": command[command.index("--run-id") + 1], "env": env})


def test_runs_get_a_gpu_each_and_wait_for_a_free_one(deepfake_spec, tmp_path, monkeypatch):
    monkeypatch.delenv("ECGLAB_MAX_RUNS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(worker, "gpu_count", lambda: 2)
    monkeypatch.setattr(worker.subprocess, "Popen", _FakeProcess)
    _FakeProcess.started = []
    store = RunStore(tmp_path)
    ids = [worker.launch(tiny_config(deepfake_spec, seed=s), runs_dir=tmp_path) for s in range(3)]
    assert [(p["run"], p["env"]["CUDA_VISIBLE_DEVICES"]) for p in _FakeProcess.started] == [
        (ids[0], "0"),
        (ids[1], "1"),
    ]
    third = store.get_run(ids[2])
    assert third["status"] == "queued" and third["message"] == worker.WAITING and third["pid"] is None
    assert worker.refresh_dead(tmp_path) == []  # both slots still busy: the third keeps waiting
    assert len(_FakeProcess.started) == 2
    store.update(ids[1], status="done")  # GPU 1 frees up
    worker.refresh_dead(tmp_path)
    assert (
        _FakeProcess.started[-1]["run"] == ids[2]
        and _FakeProcess.started[-1]["env"]["CUDA_VISIBLE_DEVICES"] == "1"
    )


def test_without_gpus_or_a_limit_every_run_starts_at_once(deepfake_spec, tmp_path, monkeypatch):
    monkeypatch.delenv("ECGLAB_MAX_RUNS", raising=False)
    monkeypatch.setattr(worker, "gpu_count", lambda: 0)
    monkeypatch.setattr(worker.subprocess, "Popen", _FakeProcess)
    _FakeProcess.started = []
    for s in range(3):
        worker.launch(tiny_config(deepfake_spec, seed=s), runs_dir=tmp_path)
    assert len(_FakeProcess.started) == 3
    assert all(
        "CUDA_VISIBLE_DEVICES" not in p["env"]
        or p["env"]["CUDA_VISIBLE_DEVICES"] == os.environ.get("CUDA_VISIBLE_DEVICES")
        for p in _FakeProcess.started
    )
