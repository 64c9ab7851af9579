"""Runs in their own processes, so they outlive the page (or terminal) that started them.

:func:`launch` records a ``queued`` run and starts ``python -m ecgcore train --config-json ...
--run-id ID`` in a new process session (its own process group, detached from the caller's
terminal and signals), with stdout and stderr going to ``run_dir/train.log``. The trainer marks the
run ``running`` with its pid, and ``done`` / ``failed`` / ``cancelled`` at the end. :func:`cancel`
sends SIGTERM (the trainer stops after the current step and keeps its last checkpoint);
:func:`refresh_dead` marks runs whose process vanished as ``interrupted``; :func:`resume` continues
one from its last checkpoint.

On a machine with GPUs each run is given one (``CUDA_VISIBLE_DEVICES``, the GPU with the fewest active runs,
recorded in ``run_dir/device.json``), and at most :func:`max_concurrent_runs` run at once (one per GPU, or
``$ECGLAB_MAX_RUNS``): a run launched beyond that stays ``queued`` ("waiting for a free slot") and
:func:`start_waiting` (called by :func:`refresh_dead`) starts it when a slot frees. Without GPUs and without
``$ECGLAB_MAX_RUNS`` every run starts at once, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ecgcore.paths import PROJECT_DIR, atomic_write_json
from ecgcore.processes import pid_alive, process_start_time
from ecgcore.runs.store import ACTIVE, RunStore, check_resumable
from ecgcore.train.config import TrainConfig
from ecgcore.train.validate import validate

LOG_NAME = "train.log"
CANCELLING = "cancel requested"
WAITING = "waiting for a free slot"
DEVICE_FILE = "device.json"


def gpu_count() -> int:
    """CUDA devices visible to this process (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def max_concurrent_runs() -> int | None:
    """How many runs may train at once: ``$ECGLAB_MAX_RUNS``, else one per GPU, else no limit (``None``)."""
    limit = os.environ.get("ECGLAB_MAX_RUNS")
    if limit:
        return max(1, int(limit))
    return gpu_count() or None


def _gpu_of(store: RunStore, run_id: str) -> int | None:
    try:
        return json.loads((store.run_dir(run_id) / DEVICE_FILE).read_text())["gpu"]
    except (OSError, ValueError, KeyError):
        return None


def _started(store: RunStore) -> list[dict]:
    """Active runs that hold a slot (running, or queued with a process starting)."""
    return [r for r in store.active_runs() if r["status"] == "running" or r["pid"] is not None]


def _pick_gpu(store: RunStore) -> int | None:
    """The GPU with the fewest active runs (lowest index on ties), or ``None`` without GPUs."""
    n = gpu_count()
    if not n:
        return None
    load = Counter(_gpu_of(store, r["id"]) for r in _started(store))
    return min(range(n), key=lambda g: (load[g], g))


def _start(store: RunStore, run_id: str, resume: bool) -> None:
    """Start the training process for ``run_id`` (config from ``run_dir/config.json``) and record its pid;
    leave it queued (:data:`WAITING`) when :func:`max_concurrent_runs` are already running."""
    run_dir = store.run_dir(run_id)
    limit = max_concurrent_runs()
    if limit is not None and len([r for r in _started(store) if r["id"] != run_id]) >= limit:
        store.update(run_id, status="queued", message=WAITING, error=None, pid=None, pid_start=None)
        atomic_write_json(run_dir / DEVICE_FILE, {"gpu": None, "resume": resume})
        return
    gpu = _pick_gpu(store)
    atomic_write_json(run_dir / DEVICE_FILE, {"gpu": gpu, "resume": resume})
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    command = [
        sys.executable,
        "-m",
        "ecgcore",
        "train",
        "--config-json",
        str(run_dir / "config.json"),
        "--run-id",
        run_id,
        "--runs-dir",
        str(store.root),
    ]
    if resume:
        command.append("--resume")
    store.update(run_id, status="queued", message="starting", error=None, pid=None, pid_start=None)
    try:
        with open(run_dir / LOG_NAME, "ab") as log:
            proc = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
    except OSError as exc:
        store.update(
            run_id, status="failed", error=f"could not start the training process: {exc}", message="failed"
        )
        raise
    store.update(run_id, pid=proc.pid, pid_start=process_start_time(proc.pid))


def launch(config: TrainConfig, runs_dir: Path | str | None = None) -> str:
    """Record a new run and start training it in a detached process; returns the run id.

    The config is validated first (:func:`ecgcore.train.validate.validate`): a setting that cannot
    train raises ``ConfigError`` and no run is created.
    """
    validate(config)
    store = RunStore(runs_dir)
    run_id = store.create_run(config)
    atomic_write_json(store.run_dir(run_id) / "config.json", config.to_dict())
    _start(store, run_id, resume=False)
    return run_id


def cancel(run_id: str, runs_dir: Path | str | None = None) -> str:
    """Stop a queued or running run (SIGTERM to its process group); returns the resulting status.

    The trainer finishes the current step, keeps the last epoch's checkpoint and marks the run
    ``cancelled``; a run whose process is already gone is marked ``cancelled`` here.
    """
    store = RunStore(runs_dir)
    run = store.get_run(run_id)
    if run["status"] not in ACTIVE:
        return run["status"]
    if pid_alive(run["pid"], run["pid_start"]):
        store.update(
            run_id, message=CANCELLING
        )  # if it dies before handling the signal, refresh_dead knows why
        if os.getsid(run["pid"]) == run["pid"]:  # a worker: its own session, so signal its whole group
            os.killpg(run["pid"], signal.SIGTERM)
        else:  # started from a terminal (python -m ecgcore train): that process only
            os.kill(run["pid"], signal.SIGTERM)
        _reap(run["pid"])
        return "cancelling"
    store.update(run_id, status="cancelled", message="cancelled before its process ran")
    return "cancelled"


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def refresh_dead(runs_dir: Path | str | None = None) -> list[str]:
    """Mark queued / running runs whose process is gone as ``interrupted``; returns their ids."""
    store = RunStore(runs_dir)
    dead = []
    for run in store.active_runs():
        if run["pid"] is None and run["status"] == "queued":
            continue  # being launched: its pid is recorded right after the process starts
        if run["pid"]:
            _reap(run["pid"])
        if not pid_alive(run["pid"], run["pid_start"]):
            if store.get_run(run["id"])["message"] == CANCELLING:
                store.update(run["id"], status="cancelled", message="cancelled before training started")
            else:
                store.update(
                    run["id"],
                    status="interrupted",
                    message="the training process ended without finishing; resume continues from the last epoch",
                )
            dead.append(run["id"])
    start_waiting(runs_dir)
    return dead


def start_waiting(runs_dir: Path | str | None = None) -> list[str]:
    """Start queued runs that wait for a slot (oldest first) while slots are free; returns their ids."""
    store = RunStore(runs_dir)
    started = []
    for run in sorted(store.active_runs(), key=lambda r: r["id"]):
        if run["status"] != "queued" or run["pid"] is not None:
            continue
        if store.get_run(run["id"])["message"] != WAITING:
            continue
        limit = max_concurrent_runs()
        if limit is not None and len(_started(store)) >= limit:
            break
        resume = bool(json.loads((store.run_dir(run["id"]) / DEVICE_FILE).read_text()).get("resume"))
        _start(store, run["id"], resume=resume)
        started.append(run["id"])
    return started


def resume(run_id: str, runs_dir: Path | str | None = None) -> str:
    """Continue an interrupted, cancelled or failed run from its last checkpoint, in a new process.

    Raises
    ------
    ValueError
        If the run is done or still active, or never finished an epoch (nothing to resume from);
        the run is left as it was.
    """
    store = RunStore(runs_dir)
    refresh_dead(runs_dir)
    run = check_resumable(store, run_id)
    run_dir = store.run_dir(run_id)
    if not (run_dir / "config.json").exists():
        atomic_write_json(run_dir / "config.json", run["config"])
    _start(store, run_id, resume=True)
    return run_id
