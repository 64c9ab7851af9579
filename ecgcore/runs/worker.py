"""Runs in their own processes, so they outlive the page (or terminal) that started them.

:func:`launch` records a ``queued`` run and starts ``python -m ecgcore train --config-json ...
--run-id ID`` in a new process session (its own process group, detached from the caller's
terminal and signals), with stdout and stderr going to ``run_dir/train.log``. The trainer marks the
run ``running`` with its pid, and ``done`` / ``failed`` / ``cancelled`` at the end. :func:`cancel`
sends SIGTERM (the trainer stops after the current step and keeps its last checkpoint);
:func:`refresh_dead` marks runs whose process vanished as ``interrupted``; :func:`resume` continues
one from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from ecgcore.paths import PROJECT_DIR, atomic_write_json
from ecgcore.processes import pid_alive, process_start_time
from ecgcore.runs.store import ACTIVE, RunStore, check_resumable
from ecgcore.train.config import TrainConfig
from ecgcore.train.validate import validate

LOG_NAME = "train.log"
CANCELLING = "cancel requested"


def _start(store: RunStore, run_id: str, resume: bool) -> None:
    """Start the training process for ``run_id`` (config from ``run_dir/config.json``) and record its pid."""
    run_dir = store.run_dir(run_id)
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
    return dead


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
