"""How the training loop reports: the :class:`Recorder` protocol, and :class:`MemoryRecorder`, which keeps
everything in memory so a run needs no store (``ecgcore.runs.recorder.StoreRecorder`` writes SQLite).

A recorder may also stream the training loss: the loop calls its ``step_loss(epoch, step, loss)`` (the
current batch's loss, at most once a second) when it has one; it is optional, not part of the protocol,
so recorders without it keep working. Only rank 0 of a multi-process run reports; every rank asks :meth:`Recorder.cancel_requested`, and the
loop agrees on the answer across ranks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


class Cancelled(Exception):
    """Raised inside the loop when the recorder says a cancel was requested."""


@runtime_checkable
class Recorder(Protocol):
    """What the loop tells the outside world about a run, and the one thing it asks (cancel?)."""

    def started(self, device: str, total_steps: int, message: str) -> None:
        """Training begins (after data, model and optimiser are set up)."""

    def resumed(self, start_epoch: int) -> None:
        """The run continues at ``start_epoch``; epochs from there on will be reported again."""

    def progress(self, epoch: int, step: int, eta_s: float) -> None:
        """A step finished (called every step; throttle in the recorder if writes are costly)."""

    def epoch_end(
        self,
        epoch: int,
        step: int,
        *,
        train_loss: float,
        val_loss: float,
        lr: float,
        time_s: float,
        metrics: dict,
    ) -> None:
        """One epoch's validation metrics."""

    def checkpoint_written(self, epoch: int, step: int, eta_s: float, last: Path, best: Path | None) -> None:
        """``last`` (and ``best``, if any yet) were written for ``epoch``."""

    def finished(self, summary: dict) -> None:
        """The run completed; ``summary`` is what :func:`ecgcore.train.train` returns."""

    def failed(self, error: str) -> None:
        """The run raised ``error`` (``"Type: message"``)."""

    def cancelled(self, message: str) -> None:
        """The run stopped on a cancel request; its last checkpoint is kept."""

    def cancel_requested(self) -> bool:
        """Whether the run should stop after the current step."""


class MemoryRecorder:
    """A :class:`Recorder` that keeps every report in lists; :meth:`cancel` requests a stop."""

    def __init__(self, cancel_after_steps: int | None = None) -> None:
        self.events: list[tuple[str, dict]] = []
        self.epochs: list[dict] = []
        self.status = "created"
        self.summary: dict | None = None
        self.error: str | None = None
        self._cancel = False
        self._cancel_after = cancel_after_steps
        self.step = 0

    def _log(self, name: str, **values) -> None:
        self.events.append((name, values))

    def started(self, device: str, total_steps: int, message: str) -> None:
        self.status = "running"
        self._log("started", device=device, total_steps=total_steps, message=message)

    def resumed(self, start_epoch: int) -> None:
        self.epochs = [e for e in self.epochs if e["epoch"] < start_epoch]
        self._log("resumed", start_epoch=start_epoch)

    def progress(self, epoch: int, step: int, eta_s: float) -> None:
        self.step = step

    def step_loss(self, epoch: int, step: int, loss: float) -> None:
        self._log("step_loss", epoch=epoch, step=step, loss=loss)

    def epoch_end(self, epoch: int, step: int, **values) -> None:
        self.epochs.append({"epoch": epoch, "step": step, **values})

    def checkpoint_written(self, epoch: int, step: int, eta_s: float, last: Path, best: Path | None) -> None:
        self._log("checkpoint", epoch=epoch, last=last, best=best)

    def finished(self, summary: dict) -> None:
        self.status, self.summary = "done", summary

    def failed(self, error: str) -> None:
        self.status, self.error = "failed", error

    def cancelled(self, message: str) -> None:
        self.status = "cancelled"
        self._log("cancelled", message=message)

    def cancel(self) -> None:
        """Ask the run to stop after its current step."""
        self._cancel = True

    def cancel_requested(self) -> bool:
        return self._cancel or (self._cancel_after is not None and self.step >= self._cancel_after)
