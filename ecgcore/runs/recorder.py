"""The run store as the trainer's :class:`~ecgcore.train.recorder.Recorder`, and SIGTERM as its cancel flag."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecgcore.runs.store import RunStore

#: Seconds between progress rows written to the run store.
STORE_INTERVAL_S = 2.0


class StoreRecorder:
    """Writes a run's progress, epochs, checkpoints and outcome to the SQLite :class:`RunStore`.

    ``stop`` is the cancel flag (set by SIGTERM, see :func:`sigterm_flag`); a failure is written by any
    rank (``is_main`` is only rank 0), so one rank's error reaches the store.
    """

    def __init__(self, store: RunStore, run_id: str, stop: threading.Event | None = None) -> None:
        self.store, self.run_id = store, run_id
        self.stop = stop or threading.Event()
        self._last_write = 0.0

    def started(self, device: str, total_steps: int, message: str) -> None:
        self.store.update(self.run_id, device=device, total_steps=total_steps, message=message)

    def resumed(self, start_epoch: int) -> None:
        self.store.truncate_epochs(self.run_id, start_epoch - 1)

    def progress(self, epoch: int, step: int, eta_s: float) -> None:
        now = time.monotonic()
        if now - self._last_write > STORE_INTERVAL_S:
            self._last_write = now
            self.store.update(self.run_id, epoch=epoch, step=step, eta_s=eta_s)

    def step_loss(self, epoch: int, step: int, loss: float) -> None:
        """The current batch's training loss (the loop calls this at most once a second)."""
        self.store.add_step_loss(self.run_id, epoch, step, loss)

    def epoch_end(self, epoch: int, step: int, **values) -> None:
        self.store.add_epoch(self.run_id, epoch, step, **values)

    def checkpoint_written(self, epoch: int, step: int, eta_s: float, last: Path, best: Path | None) -> None:
        self.store.update(
            self.run_id,
            epoch=epoch,
            step=step,
            eta_s=eta_s,
            last_checkpoint=str(last),
            best_checkpoint=str(best) if best is not None else None,
        )

    def finished(self, summary: dict) -> None:
        self.store.update(self.run_id, status="done", summary=summary, message="done", eta_s=0.0)

    def failed(self, error: str) -> None:
        self.store.update(self.run_id, status="failed", error=error, message="failed")

    def cancelled(self, message: str) -> None:
        self.store.update(self.run_id, status="cancelled", message=message)

    def cancel_requested(self) -> bool:
        return self.stop.is_set()


@contextmanager
def sigterm_flag() -> Iterator[threading.Event]:
    """An event set by SIGTERM while the block runs (main thread only; elsewhere it never fires)."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)
