"""Training a run in the store: :func:`run_training` (what the command line, the worker and the experiments
call), the transfer sources of a config resolved from run ids, and a finished run's predictions on a split."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ecgcore.processes import process_start_time
from ecgcore.progress import ProgressFn
from ecgcore.runs.recorder import StoreRecorder, sigterm_flag
from ecgcore.runs.store import RunStore, check_resumable
from ecgcore.train import distributed as ddp
from ecgcore.train.config import TrainConfig
from ecgcore.train.device import device_type
from ecgcore.train.recorder import Recorder


def run_training(
    config: TrainConfig,
    runs_dir: Path | str | None = None,
    run_id: str | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    wrap_recorder: Callable[[Recorder], Recorder] | None = None,
) -> dict:
    """Train ``config`` as a run of the store in ``runs_dir``; returns the run summary.

    Creates the run (or takes ``run_id``, e.g. one the worker queued), marks it running with this
    process's pid, and trains it with the store as recorder (wrapped by ``wrap_recorder`` when given: a
    hyperparameter study watches the epochs that way). SIGTERM (``runs cancel``) cancels; the
    handler is installed before the run is marked running, so a cancel is never lost. Every failure,
    a missing device included, is recorded (status ``failed``, the message in ``error``) and raised.

    Raises
    ------
    ValueError
        ``resume`` of a run that is not in the store, is done or has no checkpoint (the run is left
        as it was); a config that cannot train (:func:`ecgcore.train.validate.validate`), before any
        run is created.
    """
    from ecgcore.train.trainer import run_recorded, train
    from ecgcore.train.validate import validate

    store = RunStore(runs_dir)
    if not resume:
        try:
            validate(config)  # a setting that cannot train leaves no run behind
        except ValueError as exc:
            if run_id is not None and _exists(store, run_id):  # queued by the worker: say why it never ran
                store.update(run_id, status="failed", error=f"{type(exc).__name__}: {exc}", message="failed")
            raise
    info = ddp.setup(device_type(config.device))
    with sigterm_flag() as stop:
        if info.is_main:
            if run_id is None or not _exists(store, run_id):
                if resume:
                    raise ValueError(f"cannot resume run {run_id!r}: it is not in {store.path}")
                run_id = store.create_run(config, run_id=run_id)
            elif resume:
                check_resumable(store, run_id, starting=True)  # refused: the run stays as it was
            store.update(
                run_id,
                status="running",
                pid=os.getpid(),
                pid_start=process_start_time(os.getpid()),
                error=None,
                message="loading data",
            )
        run_id = ddp.broadcast(run_id, info)
        recorder = StoreRecorder(store, run_id, stop)
        if wrap_recorder is not None:  # e.g. a study's pruning watcher around the store
            recorder = wrap_recorder(recorder)

        def body() -> dict:
            sources = transfer_sources(config, store) if config.transfer else None
            return train(
                config,
                store.run_dir(run_id),
                recorder=recorder,
                resume=resume,
                progress=progress,
                transfer_sources=sources,
                run_id=run_id,
            )

        return run_recorded(recorder, info, run_id, body)


def _exists(store: RunStore, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except KeyError:
        return False
    return True


def transfer_sources(config: TrainConfig, store: RunStore) -> list:
    """The finished runs named in ``config.transfer.sources``, as transfer sources: regression runs, or
    for the ``pretrained`` approach a classification run, for ``continue`` a run of this run's task.

    Raises
    ------
    ValueError
        If a run is unknown, not finished, or of the other task.
    FileNotFoundError
        If its best checkpoint or ``records.json`` is missing.
    """
    if config.transfer is None:
        return []
    task = "regression" if config.transfer.approach in ("combined", "qrs") else config.task
    return [load_source(run_id, store, task) for run_id in config.transfer.sources]


def load_source(run_id: str, store: RunStore, task: str = "regression"):
    """One finished run's (of ``task``) best checkpoint and ``records.json`` (see :func:`transfer_sources`)."""
    from ecgcore.train.transfer import Source

    try:
        run = store.get_run(run_id)
    except KeyError:
        raise ValueError(f"transfer source {run_id!r} is not a run in {store.path}") from None
    if run["status"] != "done":
        raise ValueError(
            f"transfer source {run_id!r} has status {run['status']!r}; expected a finished ('done') run"
        )
    if run["task"] != task:
        raise ValueError(
            f"transfer source {run_id!r} is a {run['task']} run; this approach starts from {task} runs"
        )
    run_dir = Path(run["run_dir"])
    records_file = run_dir / "records.json"
    if not records_file.exists():
        raise FileNotFoundError(
            f"{records_file}: the source run's record list is missing, so leakage into the "
            "target data cannot be ruled out"
        )
    return Source.from_files(run_id, run_dir / "best.safetensors", json.loads(records_file.read_text()), task)


def predict_split(store: RunStore, run_id: str, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Truth and predictions of a finished run's best model on its ``val`` or ``test`` rows."""
    from ecgcore.train.evaluate import predict_split as predict_run_split

    return predict_run_split(store.config(run_id), store.run_dir(run_id), split)
