"""R peaks of a long record, found window by window (:func:`ecgcore.measure.rpeaks.detect_qrs`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ecgcore.beats.longrecord import Window, analysis_windows
from ecgcore.io import RecordInfo
from ecgcore.measure.rpeaks import detect_qrs
from ecgcore.progress import ProgressFn, report

#: Length of an analysis window (s) and the margin read on either side of it (s): beats are kept
#: only from the window's own part, so each one is found where it has context on both sides.
WINDOW_S = 300.0
MARGIN_S = 10.0


@contextmanager
def stage(clock: dict[str, float] | None, name: str) -> Iterator[None]:
    """Add the CPU seconds this thread spends in the block to ``clock[name]`` (nothing without a clock).

    Thread CPU time, not wall time: stages that overlap in two threads stay apart, and a shared machine's
    waiting is not counted."""
    if clock is None:
        yield
        return
    started = time.thread_time()
    try:
        yield
    finally:
        clock[name] = clock.get(name, 0.0) + time.thread_time() - started


def timed_windows(
    info: RecordInfo, window_s: float, margin_s: float, clock: dict[str, float] | None = None
) -> Iterator[Window]:
    """:func:`~ecgcore.beats.longrecord.analysis_windows`, the time spent reading added to ``clock["read"]``."""
    windows = analysis_windows(info, window_s, margin_s)
    while True:
        with stage(clock, "read"):
            w = next(windows, None)
        if w is None:
            return
        yield w


def detect_record(
    info: RecordInfo,
    window_s: float = WINDOW_S,
    margin_s: float = MARGIN_S,
    progress: ProgressFn | None = None,
    clock: dict[str, float] | None = None,
) -> np.ndarray:
    """Sample indices of every QRS complex of the record, reading ``window_s`` seconds at a time.

    With ``clock``, the CPU seconds spent reading and detecting are added to its ``read`` and ``detect``."""
    found = []
    for w in timed_windows(info, window_s, margin_s, clock):
        with stage(clock, "detect"):
            peaks = detect_qrs(w.signal, info.fs) + w.start
        found.append(peaks[(peaks >= w.keep_start) & (peaks < w.keep_stop)])
        report(progress, w.keep_stop, info.n_samples, "R peaks")
    beats = np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    # A beat on a window boundary can be found on both sides a few samples apart: keep the first.
    refractory = int(0.2 * info.fs)
    if beats.size > 1:
        beats = beats[np.concatenate([[True], np.diff(beats) >= refractory])]
    return beats.astype(np.int64)
