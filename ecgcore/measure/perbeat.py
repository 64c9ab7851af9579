"""Per-beat wave boundaries from one template per beat morphology.

One representative (median) beat describes the dominant beats only: a ventricular, paced or
otherwise wide beat has its own QRS and T wave, and the dominant beat's boundaries placed on it are
40-70 ms off (QT Database). Here the beats are grouped by the shape of their multi-lead QRS (or by
groups the caller passes, such as the beats package's clusters), each group's median beat is
delineated by the same delineator as the representative beat
(:func:`ecgcore.measure.delineate.delineate_beat`), and every beat takes its own group's
boundaries at its own aligned position. A group of one beat is its own template.

Layer: ``measure`` sits below ``beats``, so nothing here imports it; :func:`delineate_beats` takes
the groups as an argument instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import interp1d

from ecgcore.measure import delineate as dl
from ecgcore.measure.rpeaks import bandpass, remove_pacer_spikes

#: Records sampled below this rate are upsampled to it before delineation (4 ms resolution).
MIN_FS = 250.0
#: Spikes needed to flag a record as paced (a pacemaker fires beat after beat; a lone spike, e.g.
#: a recorder's start-up transient, is removed all the same but is no sign of pacing).
MIN_PACER_SPIKES = 2
#: Fiducials delineated per beat (samples of the record).
BEAT_FIDUCIALS = ("p_on", "p_off", "qrs_on", "qrs_off", "t_off")
#: A beat joins a group when its multi-lead QRS correlates this well with the group's median QRS.
#: Stricter than the representative beat's entry test (0.8), which lets ventricular beats of the
#: QT Database (sel873) through; chosen from 0.8 / 0.9 / 0.95 on the odd-numbered half of the
#: QT Database development records (0.9 and 0.95 gave the same SDs, 0.8 larger QRS and T offset SDs).
GROUP_CORRELATION = 0.9
#: ... and its residual from that median, relative to the median's size, is at most this: the
#: correlation ignores size, and a beat of the same shape but 1.5 times as large is another beat.
GROUP_RESIDUAL = 0.45
#: A group's reference QRS is the median of its first this many beats: more barely move it, and
#: recomputing it for every beat that joins would make grouping a long record quadratic.
GROUP_MEDIAN_BEATS = 64
#: Fewest beats in a group's median for its P wave to count: the P wave must stand out from the
#: beat-to-beat variation (:func:`~ecgcore.measure.delineate.delineate_p`), which one or two beats
#: cannot show, so a lone beat's "P wave" would be any bump before its QRS.
MIN_P_BEATS = 3
#: Half-width of the QRS window the grouping compares (ms), as the template's ectopic test does.
GROUP_QRS_MS = 60.0


@dataclass
class BeatDelineation:
    """Boundaries of every beat and the group templates they came from.

    Attributes
    ----------
    fiducials
        ``{fiducial: array}`` for ``p_on, p_off, qrs_on, qrs_off, t_off``: samples of the record as
        given (float; NaN where the group's template has no such wave or the beat was not delineated).
    groups
        Group label of every beat (``-1``: not delineated, e.g. cut by the record's ends).
    templates
        ``{label: {fiducial: ms from the beat's aligned QRS fiducial}}`` of each group's median beat.
    counts
        ``{label: beats in the group's median}``.
    """

    fiducials: dict[str, np.ndarray]
    groups: np.ndarray
    templates: dict[int, dict[str, float]]
    counts: dict[int, int]


def _similarity(seg: np.ndarray, ref: np.ndarray) -> float:
    """How far ``seg`` ``[leads, w + 2 shift]`` is from ``ref`` ``[leads, w]`` at their best-correlated lag.

    Returns the beat's residual from ``ref`` relative to ``ref``'s size (both centred per lead), or
    ``inf`` where the multi-lead correlation at that lag is below :data:`GROUP_CORRELATION`.
    """
    windows = np.lib.stride_tricks.sliding_window_view(seg, ref.shape[1], axis=1)  # [L, lags, w]
    windows = windows - windows.mean(axis=2, keepdims=True)
    r = ref - ref.mean(axis=1, keepdims=True)
    num = np.einsum("lkw,lw->k", windows, r)
    energy, own = np.einsum("lkw,lkw->k", windows, windows), float(np.sum(r * r)) + 1e-12
    corr = num / (np.sqrt(energy * own) + 1e-12)
    k = int(np.argmax(corr))
    if corr[k] < GROUP_CORRELATION:
        return np.inf
    return float(np.sqrt(max(energy[k] - 2 * num[k] + own, 0.0) / own))


def group_by_morphology(
    x: np.ndarray, peaks: np.ndarray, fs: float, seed: np.ndarray | None = None
) -> np.ndarray:
    """Group beats by the shape of their multi-lead QRS; returns a label per beat.

    Leader clustering in time order: a beat joins the group whose median QRS it is closest to (at
    the best-correlated lag within :data:`~ecgcore.measure.delineate.MAX_SHIFT_MS`) if the
    correlation reaches :data:`GROUP_CORRELATION` and the relative residual is at most
    :data:`GROUP_RESIDUAL`, and otherwise starts a group. A group's median is that of its first
    :data:`GROUP_MEDIAN_BEATS` beats. ``seed`` (``[leads, 2 x 60 ms]``
    around the QRS fiducial, e.g. the representative beat's QRS) is group 0's fixed reference.
    Beats too close to the record's ends for a QRS window get ``-1``.
    """
    core, shift = dl.ms(GROUP_QRS_MS, fs), dl.ms(dl.MAX_SHIFT_MS, fs)
    labels = np.full(peaks.size, -1, dtype=np.int64)
    inside = np.flatnonzero((peaks - core - shift >= 0) & (peaks + core + shift <= x.shape[1]))
    if inside.size == 0:
        return labels
    segs = np.moveaxis(x[:, peaks[inside, None] + np.arange(-core - shift, core + shift)[None, :]], 1, 0)
    members: list[list[int]] = [[]] if seed is not None else []
    refs: list[np.ndarray] = [seed] if seed is not None else []
    for j in range(inside.size):
        distance = [_similarity(segs[j], ref) for ref in refs]
        if distance and min(distance) <= GROUP_RESIDUAL:
            g = int(np.argmin(distance))
            members[g].append(j)
            if (g > 0 or seed is None) and len(members[g]) <= GROUP_MEDIAN_BEATS:
                refs[g] = np.median(segs[members[g], :, shift : shift + 2 * core], axis=0)
        else:
            members.append([j])
            refs.append(segs[j, :, shift : shift + 2 * core])
    for g, group in enumerate(members):
        labels[inside[group]] = g
    return labels


def delineate_groups(
    x: np.ndarray, peaks: np.ndarray, groups: np.ndarray, fs: float, rr: float
) -> BeatDelineation:
    """Boundaries of every beat of the band-passed ``x`` from its group's median beat (samples of ``x``).

    ``peaks`` QRS fiducials of the beats, ``groups`` a label per beat (``-1``: skip), ``rr`` the
    median RR interval (s) that sets the beat window and bounds the T and P searches. A group's
    beats are aligned on their own median QRS before their median is taken.
    """
    pre, post = dl.window_ms(rr, fs)
    margin = dl.ms(dl.MAX_SHIFT_MS, fs)
    fits = (peaks - pre - margin >= 0) & (peaks + post + margin <= x.shape[1])
    labels = np.where(fits, groups, -1)
    out = {f: np.full(peaks.size, np.nan) for f in BEAT_FIDUCIALS}
    templates: dict[int, dict[str, float]] = {}
    counts: dict[int, int] = {}
    for g in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == g)
        aligned = dl.align_peaks(x, peaks[idx], fs) if idx.size > 1 else peaks[idx]
        beats = x[:, aligned[:, None] + np.arange(-pre, post)[None, :]]
        fid, _ = dl.delineate_beat(np.median(beats, axis=1), beats, pre, fs, rr)
        templates[int(g)] = {k: (v - pre) * 1000 / fs for k, v in fid.items() if v is not None}
        counts[int(g)] = int(idx.size)
        for f in BEAT_FIDUCIALS:
            if fid.get(f) is not None and (idx.size >= MIN_P_BEATS or f not in ("p_on", "p_off")):
                out[f][idx] = aligned + fid[f] - pre
    return BeatDelineation(out, labels, templates, counts)


def delineate_beats(
    signal: np.ndarray, fs: float, peaks: np.ndarray, groups: np.ndarray | None = None
) -> BeatDelineation:
    """Wave boundaries of every beat of a record from per-group templates.

    Parameters
    ----------
    signal
        ``[leads, samples]`` in mV, any rate (upsampled to 250 Hz and band-passed as
        :func:`ecgcore.measure.measure` does).
    fs
        Sampling rate (Hz).
    peaks
        A QRS fiducial per beat (samples, e.g. R peaks from any detector).
    groups
        A group label per beat (e.g. morphology clusters; ``-1`` skips a beat); None groups the beats
        here by QRS shape (:func:`group_by_morphology`).

    Returns
    -------
    BeatDelineation
        Fiducials in samples of ``signal``.

    Raises
    ------
    ValueError
        If ``signal`` is not ``[leads, samples]`` of finite values, a peak lies outside it, ``groups``
        does not give one label per beat or fewer than two beats are given.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 2 or signal.shape[0] == 0:
        raise ValueError(f"signal of shape {signal.shape}; expected [leads, samples]")
    if not np.isfinite(signal).all():
        raise ValueError("signal contains NaN or infinite samples")
    peaks = np.asarray(peaks, dtype=np.int64).reshape(-1)
    if peaks.size and (peaks.min() < 0 or peaks.max() >= signal.shape[1]):
        raise ValueError(
            f"peaks must lie in the signal's {signal.shape[1]} samples; got {peaks.min()}-{peaks.max()}"
        )
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64).reshape(-1)
        if groups.shape != peaks.shape:
            raise ValueError(f"{groups.size} group labels for {peaks.size} beats; need one per beat")
    if peaks.size < 2:
        raise ValueError(f"{peaks.size} beat(s) given; need at least 2 (the RR interval bounds the waves)")
    x, work_fs, scale = prepare(signal, fs)[:3]
    work_peaks = np.round(np.sort(peaks) / scale).astype(np.int64)
    order = np.argsort(peaks, kind="stable")
    if groups is None:
        labels = group_by_morphology(x, work_peaks, work_fs)
    else:
        labels = groups[order]
    rr = float(np.median(np.diff(work_peaks))) / work_fs
    result = delineate_groups(x, work_peaks, labels, work_fs, rr)
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    return BeatDelineation(
        {f: v[back] * scale for f, v in result.fiducials.items()},
        result.groups[back],
        result.templates,
        result.counts,
    )


def prepare(signal: np.ndarray, fs: float) -> tuple[np.ndarray, float, float, np.ndarray, list[str]]:
    """Band-passed signal at the delineation rate: ``(x, work_fs, scale, pacer spikes, flags)``.

    At or above :data:`MIN_FS` pacemaker spikes are removed first; below it (where a 0.5-2 ms spike
    is already smeared by the recording's own filter) the record is upsampled to :data:`MIN_FS`
    (``scale`` = record samples per working sample) by linear interpolation: unlike a polyphase
    (sinc-like) filter it adds no ringing before and after the QRS, which the boundary thresholds
    would take for activity.
    """
    flags: list[str] = []
    spikes = np.zeros(0, dtype=np.int64)
    if fs >= MIN_FS:
        signal, spikes = remove_pacer_spikes(signal, fs)
        if spikes.size >= MIN_PACER_SPIKES:
            flags.append("pacer_spikes_removed")
        return bandpass(signal, fs), float(fs), 1.0, spikes, flags
    scale = fs / MIN_FS
    t_new = np.arange(int((signal.shape[1] - 1) / scale) + 1) * scale
    signal = interp1d(np.arange(signal.shape[1]), signal, axis=1, assume_sorted=True)(t_new)
    return bandpass(signal, MIN_FS), MIN_FS, scale, spikes, ["upsampled"]
