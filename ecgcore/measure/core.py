"""Heart rate, PR, QRS, QT and QTc of one record, and of many records on all cores.

Pipeline: pacemaker spikes removed -> zero-phase band-pass -> multi-lead QRS detection -> beats
aligned by template matching -> median beat per lead -> global fiducials across leads -> intervals.
In a paced record the QRS onset is not placed before the pacing stimulus: a removed spike leaves an
after-potential that would otherwise start the QRS 10-20 ms early (seen in LUDB's paced records).
A value that cannot be measured is ``None`` with its reason in ``Measurement.missing``; nothing
is guessed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecgcore.measure import delineate as dl
from ecgcore.measure.perbeat import GROUP_QRS_MS, delineate_groups, group_by_morphology, prepare
from ecgcore.measure.rpeaks import detect_r_peaks
from ecgcore.progress import ProgressFn, report
from ecgcore.vocab import TARGET_KEYS

if TYPE_CHECKING:
    from ecgcore.io import Record

#: Fewer beats than this in the median beat: intervals are not measured.
MIN_BEATS = 3
#: RR coefficient of variation above which the rhythm is flagged irregular.
IRREGULAR_CV = 0.15
#: A pacing stimulus belongs to a beat when it ends this long (ms) or less before the beat's QRS
#: fiducial (a paced QRS is wide: its slope centre lies up to ~100 ms after the stimulus).
PACED_LEAD_MS = 150.0
#: Fiducial names on the representative beat and per beat.
FIDUCIALS = ("p_on", "p_off", "qrs_on", "r", "qrs_off", "t_off")
INTERVALS = (*TARGET_KEYS, "qtc_bazett", "qtc_fridericia")
#: measure_many runs serially below this many records (a process pool costs more than it saves).
POOL_MIN_RECORDS = 200


@dataclass
class Measurement:
    """Intervals of one record, where they were measured, and why any is missing.

    Attributes
    ----------
    hr, pr, qrs, qt, qtc_bazett, qtc_fridericia
        bpm and ms; None when not measurable (the reason is in ``missing``).
    n_beats
        Beats in the representative (median) beat.
    r_peaks
        R peak of every detected beat (samples of the record as given): the beat's template-aligned
        position plus the representative beat's largest spatial magnitude in the QRS.
    fiducials
        Global fiducials on the representative beat, in samples from its start.
    beat_fiducials
        The same fiducials for every detected beat, as samples of the record (float, NaN where
        missing or the beat was cut by the record's ends); a beat unlike the representative one
        takes its own morphology group's fiducials (see :func:`measure`).
    beat_groups
        Morphology group of every detected beat: 0 the representative beat's, 1, 2, ... other
        shapes, -1 not delineated.
    median_beat, median_fs
        The representative beat itself, ``[leads, samples]`` in mV (band-passed as delineated) at
        ``median_fs`` Hz (the record's rate, or :data:`ecgcore.measure.perbeat.MIN_FS` where it was upsampled); empty when
        too few beats were found.
    flags
        Quality flags: ``no_qrs``, ``too_few_beats``, ``irregular_rhythm``, ``ectopic_beats_excluded``,
        ``no_p_wave``, ``no_t_wave``, ``upsampled``, ``pacer_spikes_removed``.
    """

    hr: float | None = None
    pr: float | None = None
    qrs: float | None = None
    qt: float | None = None
    qtc_bazett: float | None = None
    qtc_fridericia: float | None = None
    missing: dict[str, str] = field(default_factory=dict)
    n_beats: int = 0
    r_peaks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fiducials: dict[str, int] = field(default_factory=dict)
    beat_fiducials: dict[str, np.ndarray] = field(default_factory=dict)
    beat_groups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    flags: list[str] = field(default_factory=list)
    fs: float = 0.0
    median_beat: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    median_fs: float = 0.0

    def representative_fiducials_s(self) -> dict[str, float]:
        """The representative beat's fiducials in seconds from its start (the time axis of ``median_beat``)."""
        return {k: v / self.fs for k, v in self.fiducials.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary (intervals rounded to 0.1, fiducials as lists with None for NaN; no median beat)."""
        out: dict[str, Any] = {
            k: (None if getattr(self, k) is None else round(float(getattr(self, k)), 1)) for k in INTERVALS
        }
        out.update(
            n_beats=int(self.n_beats),
            missing=dict(self.missing),
            flags=list(self.flags),
            fs=self.fs,
            r_peaks=[int(v) for v in self.r_peaks],
            fiducials={k: int(v) for k, v in self.fiducials.items()},
            beat_fiducials={
                k: [None if not np.isfinite(x) else int(x) for x in v] for k, v in self.beat_fiducials.items()
            },
            beat_groups=[int(v) for v in self.beat_groups],
        )
        return out


def _miss(m: Measurement, keys: Iterable[str], reason: str) -> None:
    for key in keys:
        if getattr(m, key) is None and key not in m.missing:
            m.missing[key] = reason


def measure(signal: np.ndarray, fs: float, leads: Sequence[str], per_group: bool = True) -> Measurement:
    """Measure HR, PR, QRS, QT and QTc of one record.

    The intervals are those of the representative (dominant) beat. Every beat's fiducials
    (``beat_fiducials``) come from its own morphology group's median beat with ``per_group`` (the
    default), so ectopic, paced and wide beats get their own QRS and T boundaries
    (:mod:`ecgcore.measure.perbeat`); without it only the dominant beats get fiducials.

    Parameters
    ----------
    signal
        ``[leads, samples]`` in millivolts, any sampling rate, any subset of the 12 leads.
    fs
        Sampling rate (Hz).
    leads
        Lead names, one per row of ``signal`` (used in messages only: any channel names work,
        e.g. the QT Database's ``MLII``).
    per_group
        Delineate the beats unlike the dominant one from their own groups' median beats.

    Raises
    ------
    ValueError
        If the shape does not match the leads, ``fs`` is not positive, the record is shorter than
        2 s or contains NaN / infinite samples.
    """
    signal = np.asarray(signal, dtype=np.float64)
    leads = [str(lead) for lead in leads]
    if signal.ndim != 2 or signal.shape[0] != len(leads) or len(leads) == 0:
        raise ValueError(
            f"signal of shape {signal.shape} does not match {len(leads)} lead(s) {leads}; expected [leads, samples]"
        )
    if not fs > 0:
        raise ValueError(f"sampling rate must be positive, got {fs}")
    if signal.shape[1] < 2 * fs:
        raise ValueError(f"record of {signal.shape[1] / fs:.2f} s is too short; need at least 2 s")
    bad = ~np.isfinite(signal).all(axis=1)
    if bad.any():
        raise ValueError(f"lead(s) {[leads[i] for i in np.flatnonzero(bad)]} contain NaN or infinite samples")
    m = Measurement(fs=float(fs))
    x, work_fs, scale, spikes, m.flags = prepare(signal, float(fs))
    peaks = detect_r_peaks(x, work_fs)
    if peaks.size < 2:
        m.flags.append("no_qrs")
        _miss(m, INTERVALS, "fewer than 2 QRS complexes detected (flat line or no ECG signal)")
        m.r_peaks = np.round(peaks * scale).astype(np.int64)
        return m
    tpl = dl.build_template(x, peaks, work_fs, float(np.median(np.diff(peaks))) / work_fs)
    m.r_peaks = np.round(tpl.peaks * scale).astype(np.int64)
    rr = np.diff(tpl.peaks) / work_fs
    mean_rr = float(rr.mean())
    m.hr = 60.0 / mean_rr
    if rr.size >= 2 and rr.std() / mean_rr > IRREGULAR_CV:
        m.flags.append("irregular_rhythm")
    m.n_beats = int(tpl.used.sum())
    if m.n_beats < tpl.correlation.size:
        m.flags.append("ectopic_beats_excluded")
    if m.n_beats < MIN_BEATS:
        m.flags.append("too_few_beats")
        _miss(m, INTERVALS, f"only {m.n_beats} complete beat(s) of the same shape; need {MIN_BEATS}")
        return m
    m.median_beat, m.median_fs = tpl.median, work_fs
    fid = _delineate(m, tpl, work_fs, mean_rr, paced_stimulus(spikes, tpl, work_fs))
    # R peak: the largest spatial magnitude (sum of squares over leads, from the isoelectric level) in the QRS.
    pre = tpl.pre
    if fid.get("qrs_on") is not None and fid.get("qrs_off") is not None:
        a, b = int(fid["qrs_on"]), int(fid["qrs_off"]) + 1
    else:
        a, b = pre - dl.ms(50, work_fs), pre + dl.ms(50, work_fs)
    level = dl.isoelectric(tpl.median, a, work_fs)
    r_shift = a + int(np.argmax(np.sum((tpl.median[:, a:b] - level) ** 2, axis=0))) - pre
    fid["r"] = float(pre + r_shift)
    m.r_peaks = np.round((tpl.peaks + r_shift) * scale).astype(np.int64)
    found = {k: v for k, v in fid.items() if v is not None}
    m.fiducials = {k: int(round(v * scale)) for k, v in found.items()}
    # Per beat: the representative beat's fiducials placed at each beat's template-aligned position.
    per_beat = np.where(tpl.used, tpl.peaks, np.nan).astype(np.float64)
    beat_fid = {
        k: per_beat + found[k] - pre if k in found else np.full(per_beat.shape, np.nan) for k in FIDUCIALS
    }
    m.beat_groups = np.where(tpl.used, 0, -1)
    if per_group:
        # Beats unlike the representative one (ectopic, paced, wide; a stricter test than the one that
        # kept them out of it): each from its own morphology group's median beat.
        core = dl.ms(GROUP_QRS_MS, work_fs)
        labels = group_by_morphology(x, tpl.peaks, work_fs, seed=tpl.median[:, pre - core : pre + core])
        typical = tpl.used & (labels == 0)
        others = delineate_groups(x, tpl.peaks, np.where(typical, -1, labels), work_fs, float(np.median(rr)))
        m.beat_groups = np.where(typical, 0, others.groups)
        for k, v in others.fiducials.items():
            beat_fid[k] = np.where(typical, beat_fid[k], v)
    m.beat_fiducials = {k: np.round(v * scale) for k, v in beat_fid.items()}
    return m


def paced_stimulus(spikes: np.ndarray, tpl: dl.Template, fs: float) -> int | None:
    """End of the ventricular pacing stimulus in the representative beat, if most of its beats are paced.

    A beat is paced when a removed spike ends at most :data:`PACED_LEAD_MS` before its QRS
    fiducial (the latest such spike: with atrial and ventricular pacing, the ventricular one).
    Returns the median position over the paced beats (samples in the representative beat), or
    None when fewer than half the beats in it are paced.
    """
    peaks = tpl.peaks[tpl.used]
    if spikes.size == 0 or peaks.size == 0:
        return None
    lead = peaks[:, None] - spikes[None, :]  # [beats, spikes], > 0: spike before
    inside = (lead > 0) & (lead <= dl.ms(PACED_LEAD_MS, fs))
    paced = inside.any(axis=1)
    if paced.sum() < 0.5 * peaks.size:
        return None
    latest = np.where(inside, lead, np.iinfo(np.int64).max).min(axis=1)[paced]
    return int(tpl.pre - np.median(latest))


def _delineate(
    m: Measurement, tpl: dl.Template, fs: float, mean_rr: float, stimulus: int | None = None
) -> dict[str, float | None]:
    """Global fiducials of the representative beat (samples in it); fills the intervals of ``m``."""
    fid, problems = dl.delineate_beat(tpl.median, tpl.beats, tpl.pre, fs, mean_rr, stimulus)
    if "qrs" in problems:
        _miss(m, ("pr", "qrs", "qt", "qtc_bazett", "qtc_fridericia"), problems["qrs"])
        return fid
    qrs_on, qrs_off = fid["qrs_on"], fid["qrs_off"]
    m.qrs = (qrs_off - qrs_on) * 1000 / fs
    if "t" in problems:
        m.flags.append("no_t_wave")
        _miss(m, ("qt", "qtc_bazett", "qtc_fridericia"), problems["t"])
    else:
        m.qt = (fid["t_off"] - qrs_on) * 1000 / fs
        m.qtc_bazett = m.qt / np.sqrt(mean_rr)
        m.qtc_fridericia = m.qt / np.cbrt(mean_rr)
    if "p" in problems:
        m.flags.append("no_p_wave")
        _miss(m, ("pr",), problems["p"])
    else:
        m.pr = (qrs_on - fid["p_on"]) * 1000 / fs
    return fid


def measure_record(record: Record, per_group: bool = True) -> Measurement:
    """Measure an :class:`ecgcore.io.Record` (``per_group``: see :func:`measure`)."""
    try:
        return measure(record.signal, record.fs, record.leads, per_group)
    except ValueError as exc:
        raise ValueError(f"{record.path or record.record_id}: {exc}") from exc


def _row(signal: np.ndarray, fs: float, leads: tuple[str, ...]) -> dict[str, Any]:
    """One table row; a record that cannot be measured at all keeps its row, with the reason in ``error``."""
    try:
        m = measure(signal, fs, leads)
    except ValueError as exc:
        m, error = Measurement(flags=["invalid_input"]), str(exc)
    else:
        error = ""
    row: dict[str, Any] = {k: (np.nan if getattr(m, k) is None else float(getattr(m, k))) for k in INTERVALS}
    row.update(n_beats=m.n_beats, flags=";".join(m.flags), error=error)
    return row


def _measure_chunk(args: tuple[list[np.ndarray], float, tuple[str, ...]]) -> list[dict[str, Any]]:
    signals, fs, leads = args
    return [_row(s, fs, leads) for s in signals]


def measure_many(
    signals: np.ndarray | Iterable[np.ndarray],
    fs: float,
    leads: Sequence[str],
    n_jobs: int = 2,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Measure many records of the same rate and leads, on ``n_jobs`` processes.

    Parameters
    ----------
    signals
        ``[N, leads, samples]`` array or an iterable of ``[leads, samples]`` arrays (mV).
    n_jobs
        Worker processes; below :data:`POOL_MIN_RECORDS` records the work runs in this process.

    Returns
    -------
    pandas.DataFrame
        One row per record, in order: hr, pr, qrs, qt, qtc_bazett, qtc_fridericia (NaN when not
        measurable), n_beats, flags (``;``-separated) and error (why a record could not be measured
        at all, e.g. NaN samples; empty otherwise), so one bad record does not stop a batch.
    """
    items = list(signals)
    total = len(items)
    leads = tuple(leads)
    chunk = 50
    chunks = [(items[i : i + chunk], float(fs), leads) for i in range(0, total, chunk)]
    rows: list[dict[str, Any]] = []
    done = 0
    n_jobs = max(1, min(int(n_jobs), os.cpu_count() or 1))
    if n_jobs == 1 or total < POOL_MIN_RECORDS:
        for part in chunks:
            rows.extend(_measure_chunk(part))
            done += len(part[0])
            report(progress, done, total, f"measured {done} records")
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for part, result in zip(chunks, pool.map(_measure_chunk, chunks)):
                rows.extend(result)
                done += len(part[0])
                report(progress, done, total, f"measured {done} records")
    return pd.DataFrame(rows, columns=[*INTERVALS, "n_beats", "flags", "error"])
