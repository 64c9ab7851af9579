"""The run store (:class:`~ecgcore.runs.store.RunStore`, SQLite in WAL mode), training a run in it
(:func:`run_training`, with :class:`~ecgcore.runs.recorder.StoreRecorder` as the trainer's recorder) and
the worker processes that train runs outside the page or terminal that started them (:mod:`ecgcore.runs.worker`).

``run_training``, ``transfer_sources`` and ``predict_split`` are imported on first use (they import torch).
"""

from __future__ import annotations

_LAZY = {"run_training", "transfer_sources", "load_source", "predict_split"}


def __getattr__(name: str):
    if name in _LAZY:
        from ecgcore.runs import training

        return getattr(training, name)
    raise AttributeError(f"module 'ecgcore.runs' has no attribute {name!r}")


__all__ = sorted(_LAZY)
