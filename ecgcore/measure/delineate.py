"""Representative beats and global wave boundaries across leads.

The method mirrors what the 12SL and MUSE programs describe: every lead's beats are aligned on the
QRS and reduced to a median beat (noise and ectopic beats drop out), each lead's median beat is
delineated, and the leads are combined into one set of *global* fiducials: the earliest onset and
the latest offset that at least ``k`` leads support (the ``k``-th earliest onset / ``k``-th latest
offset), so one noisy lead cannot move them.

Wave boundaries come from derivative-of-Gaussian (continuous wavelet) transforms at a scale suited
to each wave, with thresholds relative to the wave's own steepest slope, as in the wavelet
delineator of Martinez et al. (2004, IEEE TBME 51:570): a boundary is where the slope has fallen
below a fraction of the wave's maximal slope. Everything is expressed in milliseconds, so any
sampling rate works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: Derivative-of-Gaussian scales (standard deviation, ms) for the QRS, T and P waves.
SIGMA_MS = {"qrs": 4.0, "t": 16.0, "p": 10.0}
#: Boundary thresholds: fraction of the wave's maximal slope below which the wave has ended.
XI = {"qrs_on": 0.05, "qrs_off": 0.1, "t_off": 0.25, "p_on": 0.3, "p_off": 0.3}
#: A QRS boundary needs the slope below its threshold for this long (ms): notches inside the QRS
#: (a q or s trough, where one lead's slope passes through zero) are not boundaries.
QUIET_MS = 8.0
#: Half-width of the window around the aligned QRS that holds the QRS's slopes (ms).
QRS_CORE_MS = 100.0
#: A lead takes part in QRS delineation when its maximal QRS slope is at least this fraction of
#: the largest lead's; much smaller QRS complexes are dominated by noise.
QRS_LEAD_FRACTION = 0.1
#: Smallest P and T amplitude (mV, from the isoelectric level) and fraction of the largest lead's.
P_MIN_MV, T_MIN_MV, WAVE_LEAD_FRACTION = 0.03, 0.05, 0.2
#: The median beat's P wave must stand this many standard errors above the beat-to-beat variation.
P_MIN_SNR = 3.0
#: Correlation with the median QRS below which a beat is treated as ectopic / artefact.
MIN_BEAT_CORRELATION = 0.8
#: Largest re-alignment of a beat onto the template (ms).
MAX_SHIFT_MS = 20.0


def ms(value: float, fs: float) -> int:
    """Milliseconds to a whole number of samples."""
    return int(round(value * fs / 1000.0))


def support_count(n_leads: int) -> int:
    """How many leads must support a global onset / offset: 2 of 8 or 12 leads, 1 of 1-3 leads."""
    return int(np.clip(round(n_leads / 5), 1, 3))


def kth(values: list[float], k: int, latest: bool) -> float | None:
    """The ``k``-th earliest (or latest) of ``values``; None when fewer than ``k`` leads gave one."""
    if len(values) < k:
        return None
    ordered = sorted(values, reverse=latest)
    return float(ordered[k - 1])


@dataclass
class Template:
    """Beats cut around the aligned QRS fiducial and their median, per lead.

    ``beats`` is ``[leads, n_used, window]``; sample ``pre`` of the window is the QRS fiducial;
    ``used`` marks which detected beats entered the median (not cut by the record's ends, not
    ectopic); ``peaks`` are the re-aligned QRS fiducials of every detected beat.
    """

    median: np.ndarray
    beats: np.ndarray
    pre: int
    used: np.ndarray
    peaks: np.ndarray
    correlation: np.ndarray


def _cut(x: np.ndarray, peaks: np.ndarray, pre: int, post: int) -> np.ndarray:
    idx = peaks[:, None] + np.arange(-pre, post)[None, :]
    return x[:, idx]


def build_template(x: np.ndarray, peaks: np.ndarray, fs: float, rr: float) -> Template:
    """Align the beats on the QRS by template matching and take their median per lead.

    ``rr`` is the median RR interval (s); the window reaches ``min(0.45 s, 0.6 RR)`` before and
    ``min(0.8 s, max(0.45 s, RR))`` after the QRS fiducial.
    """
    n = x.shape[1]
    pre = ms(1000 * min(0.45, 0.6 * rr), fs)
    post = ms(1000 * min(0.8, max(0.45, rr)), fs)
    shift = ms(MAX_SHIFT_MS, fs)
    inside = (peaks - pre - shift >= 0) & (peaks + post + shift <= n)
    peaks = peaks.copy()
    if not np.any(inside):
        empty = np.zeros((x.shape[0], 0, pre + post))
        return Template(np.full((x.shape[0], pre + post), np.nan), empty, pre, inside, peaks, np.zeros(0))
    core = ms(60, fs)
    # Re-align each beat on the first median's QRS (cross-correlation over all leads).
    seg = _cut(x, peaks[inside], core + shift, core + shift)             # [L, B, 2(core+shift)]
    ref = np.median(seg[:, :, shift:shift + 2 * core], axis=1)           # [L, 2 core]
    lags = np.arange(-shift, shift + 1)
    windows = np.lib.stride_tricks.sliding_window_view(seg, 2 * core, axis=2)  # [L, B, n_lags, 2 core]
    centred = windows - windows.mean(axis=3, keepdims=True)
    score = np.einsum("lbkw,lw->bk", centred, ref - ref.mean(axis=1, keepdims=True))
    peaks[inside] = peaks[inside] + lags[np.argmax(score, axis=1)]
    inside = (peaks - pre >= 0) & (peaks + post <= n)
    beats = _cut(x, peaks[inside], pre, post)
    median = np.median(beats, axis=1)
    # Ectopic / artefact beats: low correlation of the multi-lead QRS with the median's.
    q = slice(pre - core, pre + core)
    b = beats[:, :, q] - beats[:, :, q].mean(axis=2, keepdims=True)
    m = median[:, q] - median[:, q].mean(axis=1, keepdims=True)
    num = np.einsum("lbw,lw->b", b, m)
    den = np.sqrt(np.einsum("lbw,lbw->b", b, b) * np.sum(m * m)) + 1e-12
    corr = num / den
    good = corr >= MIN_BEAT_CORRELATION
    if good.sum() >= max(2, 0.5 * good.size) and not good.all():
        beats = beats[:, good]
        median = np.median(beats, axis=1)
        used = np.flatnonzero(inside)
        inside = np.zeros_like(inside)
        inside[used[good]] = True
    return Template(median, beats, pre, inside, peaks, corr)


def _quiet_before(active: np.ndarray, start: int, run: int) -> int | None:
    """Last index before ``start`` that ends a run of ``run`` inactive samples (searching backward)."""
    quiet = ~active[:start]
    if quiet.size < run:
        return None
    full = np.flatnonzero(np.convolve(quiet, np.ones(run, dtype=int), "valid") == run)
    return int(full[-1] + run - 1) if full.size else None


def _quiet_after(active: np.ndarray, start: int, run: int) -> int | None:
    """First index after ``start`` that begins a run of ``run`` inactive samples."""
    quiet = ~active[start + 1:]
    if quiet.size < run:
        return None
    full = np.flatnonzero(np.convolve(quiet, np.ones(run, dtype=int), "valid") == run)
    return int(start + 1 + full[0]) if full.size else None


def delineate_qrs(median: np.ndarray, pre: int, fs: float) -> tuple[float | None, float | None, list[int]]:
    """Global QRS onset and offset (samples in the median beat) and the leads that took part."""
    k = support_count(median.shape[0])
    w = np.abs(gaussian_filter1d(median, SIGMA_MS["qrs"] * fs / 1000, axis=1, order=1))
    core = ms(QRS_CORE_MS, fs)
    lo, hi = max(0, pre - core), min(median.shape[1], pre + core)
    peak = w[:, lo:hi].max(axis=1)
    run = max(1, ms(QUIET_MS, fs))
    onsets, offsets, leads = [], [], []
    for lead in np.flatnonzero(peak >= QRS_LEAD_FRACTION * peak.max()) if peak.max() > 0 else []:
        rel = w[lead] / peak[lead]
        significant = lo + np.flatnonzero(rel[lo:hi] >= 0.3)
        on = _quiet_before(rel >= XI["qrs_on"], int(significant[0]), run)
        off = _quiet_after(rel >= XI["qrs_off"], int(significant[-1]), run)
        if on is not None and off is not None:
            onsets.append(on)
            offsets.append(off)
            leads.append(int(lead))
    return kth(onsets, k, latest=False), kth(offsets, k, latest=True), leads


def _first_below(values: np.ndarray, start: int, stop: int, limit: float, step: int) -> int | None:
    """First index from ``start`` towards ``stop`` (exclusive, direction ``step``) with ``values < limit``."""
    idx = np.arange(start, stop, step)
    hit = np.flatnonzero(values[idx] < limit) if idx.size else np.zeros(0, int)
    return int(idx[hit[0]]) if hit.size else None


def delineate_t(median: np.ndarray, fs: float, start: int, stop: int) -> tuple[float | None, dict]:
    """Global T offset in the median beat (baseline-corrected) searching T peaks in ``[start, stop)``."""
    k = support_count(median.shape[0])
    sigma = SIGMA_MS["t"] * fs / 1000
    smooth = gaussian_filter1d(median, sigma, axis=1)
    slope = gaussian_filter1d(median, sigma, axis=1, order=1)
    if stop - start < ms(60, fs):
        return None, {"reason": "no room for a T wave before the next beat"}
    tp = start + np.argmax(np.abs(smooth[:, start:stop]), axis=1)
    amp = smooth[np.arange(median.shape[0]), tp]
    big = np.abs(amp) >= max(T_MIN_MV, WAVE_LEAD_FRACTION * np.abs(amp).max())
    ends = []
    reach = ms(150, fs)
    for lead in np.flatnonzero(big):
        if tp[lead] >= stop - 1:
            continue
        desc = -np.sign(amp[lead]) * slope[lead]
        hi = min(stop + reach, median.shape[1], tp[lead] + reach)
        steepest = tp[lead] + int(np.argmax(desc[tp[lead]:hi]))
        if desc[steepest] <= 0:
            continue
        end = _first_below(desc, steepest, median.shape[1], XI["t_off"] * desc[steepest], 1)
        if end is not None:
            ends.append(end)
    return kth(ends, k, latest=True), {"leads": len(ends)}


def delineate_p(median: np.ndarray, beats: np.ndarray, fs: float, start: int, stop: int) -> tuple[float | None, float | None, str]:
    """Global P onset and offset in the median beat (baseline-corrected), P peaks searched in ``[start, stop)``.

    A lead's P wave counts when its amplitude exceeds :data:`P_MIN_MV`, a fraction of the largest
    lead's, and :data:`P_MIN_SNR` standard errors of the beat-to-beat variation (a median of
    fibrillatory waves is small and inconsistent, so atrial fibrillation gives no P wave).
    """
    k = support_count(median.shape[0])
    if stop - start < ms(40, fs):
        return None, None, "no room for a P wave before the QRS"
    sigma = SIGMA_MS["p"] * fs / 1000
    smooth = gaussian_filter1d(median, sigma, axis=1)
    slope = gaussian_filter1d(median, sigma, axis=1, order=1)
    seg = smooth[:, start:stop]
    pp = start + np.argmax(np.abs(seg), axis=1)
    amp = smooth[np.arange(median.shape[0]), pp]
    n_beats = beats.shape[1]
    resid = beats[:, :, start:stop] - median[:, None, start:stop]
    se = np.sqrt(np.mean(resid**2, axis=(1, 2)) / max(n_beats - 1, 1))
    ok = (np.abs(amp) >= P_MIN_MV) & (np.abs(amp) >= WAVE_LEAD_FRACTION * np.abs(amp).max()) & (np.abs(amp) >= P_MIN_SNR * se)
    ok &= (pp > start) & (pp < stop - 1)
    reach = ms(80, fs)
    onsets, offsets = [], []
    for lead in np.flatnonzero(ok):
        rise = np.sign(amp[lead]) * slope[lead]
        p = int(pp[lead])
        lo = max(0, p - reach)
        up = lo + int(np.argmax(rise[lo:p + 1]))
        down = p + int(np.argmax(-rise[p:min(p + reach, median.shape[1])]))
        if rise[up] <= 0 or -rise[down] <= 0:
            continue
        on = _first_below(rise, up, -1, XI["p_on"] * rise[up], -1)
        off = _first_below(-rise, down, median.shape[1], XI["p_off"] * -rise[down], 1)
        if on is not None and off is not None:
            onsets.append(on)
            offsets.append(off)
    if len(onsets) < k:
        return None, None, f"no P wave found in at least {k} lead(s) (e.g. atrial fibrillation, flutter or a noisy baseline)"
    return kth(onsets, k, latest=False), kth(offsets, k, latest=True), ""
