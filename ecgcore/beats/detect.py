"""R peaks of a long record, found window by window (:func:`ecgcore.measure.rpeaks.detect_qrs`)."""

from __future__ import annotations

import numpy as np

from ecgcore.beats.longrecord import RecordInfo, read_window, windows
from ecgcore.measure.rpeaks import detect_qrs
from ecgcore.progress import ProgressFn, report

#: Length of an analysis window (s) and the margin read on either side of it (s): beats are kept
#: only from the window's own part, so each one is found where it has context on both sides.
WINDOW_S = 300.0
MARGIN_S = 10.0


def detect_record(
    info: RecordInfo,
    window_s: float = WINDOW_S,
    margin_s: float = MARGIN_S,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Sample indices of every QRS complex of the record, reading ``window_s`` seconds at a time."""
    size, margin = int(window_s * info.fs), int(margin_s * info.fs)
    found = []
    for read_start, read_stop, keep_start, keep_stop in windows(info.n_samples, size, margin):
        peaks = detect_qrs(read_window(info, read_start, read_stop), info.fs) + read_start
        found.append(peaks[(peaks >= keep_start) & (peaks < keep_stop)])
        report(progress, keep_stop, info.n_samples, "R peaks")
    beats = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    # A beat on a window boundary can be found on both sides a few samples apart: keep the first.
    refractory = int(0.2 * info.fs)
    if beats.size > 1:
        beats = beats[np.concatenate([[True], np.diff(beats) >= refractory])]
    return beats.astype(np.int64)
