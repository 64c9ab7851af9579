"""Per-beat PR, QRS and QT of a long record from its morphology clusters, and a per-minute QT/QTc trend.

:func:`delineate_record` reads the record window by window once more after clustering (the clusters
are known only once every beat is classified) and gives each window's beats to
:func:`ecgcore.measure.perbeat.delineate_beats` with their clusters as groups: each cluster's median
beat in that window is delineated and every beat takes its cluster's boundaries at its own aligned
position, so a ventricular beat gets its own QRS and T wave, not the dominant beat's. One window at a
time (its group medians follow heart-rate changes through the day), so memory holds one window of
signal plus four numbers per beat.

The trend (:func:`interval_trend`) is per minute over the minute's N beats (the dominant rhythm: an
ectopic beat's QT says nothing about repolarisation at the heart rate) that have a QT: the median QT,
the median RR before those beats, and QTc by Bazett (QT / RR^1/2) and Fridericia (QT / RR^1/3), RR in
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.detect import stage, timed_windows
from ecgcore.io import RecordInfo
from ecgcore.measure.perbeat import delineate_beats
from ecgcore.progress import ProgressFn, report

#: Context read on either side of a window's own beats (s): a beat's window (up to ~1.2 s) plus the
#: alignment shift and the band-pass filter's edge.
MARGIN_S = 3.0
#: Fewest N beats with a QT in a minute for that minute's trend value (else None).
MIN_TREND_BEATS = 5
#: The heart-rate corrections of the trend: name -> exponent of RR (s).
QTC_EXPONENTS = {"bazett": 1 / 2, "fridericia": 1 / 3}
#: How the trend is computed, for reports.
TREND_METHOD = (
    "per minute over the N beats with a QT: median QT; RR = median RR interval before those beats (s); "
    "QTc Bazett = QT / RR^(1/2), QTc Fridericia = QT / RR^(1/3)"
)


@dataclass
class BeatIntervals:
    """Wave boundaries of every beat (samples of the record, NaN where undefined) and the intervals they give."""

    fs: float
    p_on: np.ndarray
    qrs_on: np.ndarray
    qrs_off: np.ndarray
    t_off: np.ndarray

    def _ms(self, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        return ((stop - start) * 1000.0 / self.fs).astype(np.float32)

    @property
    def pr_ms(self) -> np.ndarray:
        """PR interval (P onset to QRS onset), ms."""
        return self._ms(self.p_on, self.qrs_on)

    @property
    def qrs_ms(self) -> np.ndarray:
        """QRS duration, ms."""
        return self._ms(self.qrs_on, self.qrs_off)

    @property
    def qt_ms(self) -> np.ndarray:
        """QT interval (QRS onset to T offset), ms."""
        return self._ms(self.qrs_on, self.t_off)

    def select(self, keep: np.ndarray) -> BeatIntervals:
        """The intervals of the beats ``keep`` (a mask or indices)."""
        return BeatIntervals(
            self.fs, self.p_on[keep], self.qrs_on[keep], self.qrs_off[keep], self.t_off[keep]
        )

    @classmethod
    def empty(cls, n: int, fs: float) -> BeatIntervals:
        """``n`` beats without boundaries (NaN)."""
        return cls(fs, *(np.full(n, np.nan) for _ in range(4)))


def delineate_record(
    info: RecordInfo,
    samples: np.ndarray,
    groups: np.ndarray,
    window_s: float,
    progress: ProgressFn | None = None,
    clock: dict[str, float] | None = None,
) -> BeatIntervals:
    """Boundaries of every beat (``samples``, sorted) of a long record, window by window, from the templates
    of its ``groups`` (a label per beat, e.g. the clusters; ``-1`` skips a beat) within each window.

    ``clock`` gains the CPU seconds of ``read`` and ``delineate``. A window with fewer than two beats
    leaves them undefined (the RR bounds the waves).
    """
    out = BeatIntervals.empty(samples.size, info.fs)
    for w in timed_windows(info, window_s, MARGIN_S, clock):
        lo, hi = np.searchsorted(samples, [w.keep_start, w.keep_stop])
        if hi - lo >= 2:
            with stage(clock, "delineate"):
                found = delineate_beats(w.signal, info.fs, samples[lo:hi] - w.start, groups[lo:hi])
                for name in ("p_on", "qrs_on", "qrs_off", "t_off"):
                    getattr(out, name)[lo:hi] = found.fiducials[name] + w.start
        report(progress, w.keep_stop, info.n_samples, "intervals")
    return out


@dataclass
class IntervalTrend:
    """Per-minute QT, RR and QTc (ms; None where the minute has fewer than :data:`MIN_TREND_BEATS` N beats
    with a QT), and how many beats each minute's value comes from."""

    qt_ms: list[float | None]
    rr_ms: list[float | None]
    qtc_ms: dict[str, list[float | None]]
    beats: list[int]
    method: str = TREND_METHOD

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "qt_ms": self.qt_ms,
            "rr_ms": self.rr_ms,
            **{f"qtc_{name}_ms": values for name, values in self.qtc_ms.items()},
            "beats": self.beats,
        }


def interval_trend(
    samples: np.ndarray, classes: np.ndarray, qt_ms: np.ndarray, fs: float, n_samples: int
) -> IntervalTrend:
    """The per-minute QT / QTc trend of a record (see the module docstring for the method)."""
    minutes = int(np.ceil(n_samples / (60 * fs)))
    rr = np.full(samples.size, np.nan)
    rr[1:] = np.diff(samples) / fs
    use = (classes == CLASS_INDEX["N"]) & np.isfinite(qt_ms) & np.isfinite(rr)
    which = samples // int(60 * fs)
    qt: list[float | None] = [None] * minutes
    rrs: list[float | None] = [None] * minutes
    qtc: dict[str, list[float | None]] = {name: [None] * minutes for name in QTC_EXPONENTS}
    counts = np.bincount(which[use], minlength=minutes)[:minutes]
    order = np.flatnonzero(use)
    bounds = np.searchsorted(which[order], np.arange(minutes + 1))
    for m in np.flatnonzero(counts >= MIN_TREND_BEATS):
        idx = order[bounds[m] : bounds[m + 1]]
        q, r = float(np.median(qt_ms[idx])), float(np.median(rr[idx]))
        qt[m], rrs[m] = round(q, 1), round(r * 1000.0, 1)
        for name, exponent in QTC_EXPONENTS.items():
            qtc[name][m] = round(q / r**exponent, 1)
    return IntervalTrend(qt, rrs, qtc, [int(c) for c in counts])
