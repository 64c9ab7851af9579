"""Filtering and multi-lead R-peak (QRS) detection.

The detector follows the classic Pan-Tompkins idea (slope energy, moving integration, adaptive
threshold, search-back for missed beats) but combines all leads: every lead's derivative is
scaled by its own robust slope level, so a large lead does not drown the others and a reversed
lead (negative QRS) counts the same as a positive one. Zero-phase filtering keeps every peak
where it is in the record.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

#: Band of the signal used for delineation (Hz): removes baseline wander and high-frequency noise
#: while keeping the QRS onset/offset slopes (AHA: a zero-phase 0.5 Hz high-pass leaves the ST-T intact).
BAND_HZ: tuple[float, float] = (0.5, 45.0)
#: Refractory period between two beats (s): no two QRS complexes closer than this (HR <= 300 bpm).
REFRACTORY_S = 0.2
#: Moving-integration window of the slope envelope (s), about one QRS width.
INTEGRATION_S = 0.08
#: Detection threshold as a fraction of the typical QRS envelope height.
THRESHOLD = 0.3
#: Two detections closer than this (s) are one QRS and a T wave, P wave or pacing artefact unless
#: they are of similar size: the smaller one goes when it is below half the larger (Pan & Tompkins'
#: T-wave discrimination, 1985, applied both ways). Tachycardias keep all their beats, which are alike.
CLOSE_PAIR_S = 0.36
#: Narrowest slope activity of a QRS (ms): the width of the multi-lead slope energy around a
#: detection (its area over its peak). The 518 annotated QRS complexes of the 60 LUDB dev records
#: span 32.7 ms or more, a synthetic 40 ms QRS 24.5 ms; a baseline step or electrode pop is one
#: edge, which the band-pass spreads over 14-18 ms (LUDB record 15), and is not a beat.
MIN_SLOPE_WIDTH_MS = 20.0
#: A gap longer than this many median RR intervals is searched again with half the threshold.
SEARCHBACK_RR = 1.6
#: Pacemaker spike: a sample whose curvature (|second difference|), divided by the lead's 99th
#: percentile of curvature, has a median over leads above this. A spike lasts 0.5-2 ms, far
#: sharper than any QRS, so it stands out in every lead at once (non-paced LUDB records 1-30
#: stay below 3.6, the paced one reaches 10).
PACER_CURVATURE = 5.0
#: Samples replaced on each side of a pacemaker spike (ms): the spike and its ringing.
PACER_HALF_WIDTH_MS = 4.0


@lru_cache(maxsize=16)
def _band_sos(fs: float) -> np.ndarray:
    high = min(BAND_HZ[1], 0.45 * fs)
    return butter(2, [BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")


def remove_pacer_spikes(signal: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Replace pacemaker spikes by linear interpolation; returns the cleaned signal and the spikes.

    The spikes are returned as the last replaced sample of each one (the end of the stimulus and
    its ringing): the heart's response cannot begin before it.

    A spike is narrower than the band-pass can follow: filtered, it would smear into slopes that
    start the QRS early (ECG programs such as 12SL likewise detect pacemaker spikes before measuring).
    A sharp edge that does not return to its baseline is a step, not a spike, and is left alone.
    """
    signal = np.asarray(signal, dtype=np.float64)
    none = np.zeros(0, dtype=np.int64)
    if signal.shape[-1] < 3:
        return signal, none
    curv = np.abs(np.diff(signal, 2, axis=-1))
    level = np.percentile(curv, 99, axis=-1)
    live = level > 0
    if not live.any():
        return signal, none
    score = np.median(curv[live] / level[live, None], axis=0)
    hits = np.flatnonzero(score > PACER_CURVATURE) + 1
    if hits.size == 0:
        return signal, none
    half = max(1, int(round(PACER_HALF_WIDTH_MS * fs / 1000)))
    n = signal.shape[-1]
    mask = np.zeros(n, dtype=bool)
    for hit in hits:
        mask[max(0, hit - half) : hit + half + 1] = True
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    spikes = [
        (start, stop)
        for start, stop in zip(edges[::2], edges[1::2])
        if _returns_to_baseline(signal, start, stop)
    ]
    if not spikes:
        return signal, none
    mask[:] = False
    for start, stop in spikes:
        mask[start:stop] = True
    bad, good = np.flatnonzero(mask), np.flatnonzero(~mask)
    out = signal.copy()
    for lead in range(signal.shape[0]):
        out[lead, bad] = np.interp(bad, good, signal[lead, good])
    return out, np.array([stop - 1 for _, stop in spikes], dtype=np.int64)


def _returns_to_baseline(signal: np.ndarray, start: int, stop: int) -> bool:
    """Whether ``signal[:, start:stop]`` is a spike: it strays from the line joining its two sides
    by more than those sides differ (summed over leads). A baseline step (an electrode pop) is as
    sharp but stays at its new level; bridged by interpolation it would become a QRS-wide ramp."""
    n = signal.shape[-1]
    before, after = signal[:, max(0, start - 1)], signal[:, min(n - 1, stop)]
    line = before[:, None] + (after - before)[:, None] * np.linspace(0, 1, stop - start + 2)[None, 1:-1]
    return bool(np.abs(signal[:, start:stop] - line).max(axis=1).sum() > np.abs(after - before).sum())


def bandpass(signal: np.ndarray, fs: float) -> np.ndarray:
    """Zero-phase 0.5-45 Hz band-pass of ``[leads, samples]`` (float64)."""
    signal = np.asarray(signal, dtype=np.float64)
    padlen = min(signal.shape[-1] - 1, int(3 * fs))
    return sosfiltfilt(_band_sos(float(fs)), signal, axis=-1, padlen=padlen)


def slope_energy(filtered: np.ndarray) -> np.ndarray:
    """Multi-lead slope energy: RMS over leads of the robustly normalised derivatives.

    Each lead's derivative is divided by its 99th percentile of absolute slope (the QRS slope level,
    since QRS complexes fill about 10 % of a record), so every lead votes with equal weight whatever
    its amplitude or polarity; a flat lead contributes nothing.
    """
    d = np.diff(filtered, axis=-1, prepend=filtered[..., :1])
    scale = np.percentile(np.abs(d), 99, axis=-1, keepdims=True)
    peak = float(scale.max()) if scale.size else 0.0
    usable = scale > max(peak * 1e-3, 1e-12)
    d = np.where(usable, d / np.where(usable, scale, 1.0), 0.0)
    return np.sqrt(np.mean(d * d, axis=0))


def qrs_envelope(energy: np.ndarray, fs: float) -> np.ndarray:
    """Multi-lead QRS envelope: the :func:`slope_energy` integrated over about one QRS width."""
    width = max(1, int(round(INTEGRATION_S * fs)))
    return uniform_filter1d(energy, width, mode="nearest")


def slope_width_ms(energy: np.ndarray, points: np.ndarray, fs: float) -> np.ndarray:
    """Width (ms) of the slope energy around each point: its area over its peak within +-INTEGRATION_S."""
    half = max(1, int(round(INTEGRATION_S * fs)))
    padded = np.pad(energy, half)
    windows = padded[points[:, None] + np.arange(2 * half + 1)[None, :]]
    return windows.sum(axis=1) / np.maximum(windows.max(axis=1), 1e-12) * 1000.0 / fs


def _drop_small_neighbours(peaks: np.ndarray, heights: np.ndarray, close: int) -> np.ndarray:
    """Remove, smallest first, every peak closer than ``close`` samples to a neighbour twice its height."""
    peaks, heights = peaks.copy(), heights.copy()
    while peaks.size > 1:
        near = np.diff(peaks) < close
        smaller = np.where(heights[:-1] < heights[1:], np.arange(peaks.size - 1), np.arange(1, peaks.size))
        ratio = np.minimum(heights[:-1], heights[1:]) / np.maximum(heights[:-1], heights[1:])
        candidates = np.flatnonzero(near & (ratio < 0.5))
        if candidates.size == 0:
            break
        drop = smaller[candidates[np.argmin(heights[smaller[candidates]])]]
        peaks, heights = np.delete(peaks, drop), np.delete(heights, drop)
    return peaks


def detect_r_peaks(filtered: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the QRS complexes of a band-passed record ``[leads, samples]``.

    The returned point is the maximum of the multi-lead slope envelope (the QRS's centre of slope
    energy); :func:`ecgcore.measure.delineate.build_template` refines it by template matching.
    Returns an empty array for a flat record.
    """
    energy = slope_energy(filtered)
    env = qrs_envelope(energy, fs)
    if not np.any(env > 0):
        return np.zeros(0, dtype=np.int64)
    distance = max(1, int(round(REFRACTORY_S * fs)))
    cand, props = find_peaks(env, distance=distance, height=0.0)
    if cand.size == 0:
        return np.zeros(0, dtype=np.int64)
    heights = props["peak_heights"]
    # Typical QRS height: the 90th percentile of candidate peaks (QRS complexes are at least ~1/6 of
    # the candidates: between two beats there are at most a T wave, a P wave and a few noise bumps).
    reference = np.percentile(heights, 90)
    # A step or electrode pop is not a beat, however large: it has no QRS-wide slopes.
    heights = np.where(slope_width_ms(energy, cand, fs) >= MIN_SLOPE_WIDTH_MS, heights, 0.0)
    keep = heights >= THRESHOLD * reference
    peaks = _drop_small_neighbours(cand[keep], heights[keep], int(round(CLOSE_PAIR_S * fs)))
    floor = np.full(peaks.size, 0.5 * THRESHOLD * reference)
    return _search_back(peaks, cand, heights, floor, distance)


def _search_back(
    peaks: np.ndarray, cand: np.ndarray, heights: np.ndarray, floor: np.ndarray, distance: int
) -> np.ndarray:
    """Add, in every gap longer than SEARCHBACK_RR median RRs, the largest candidate at least
    ``distance`` from both ends whose height reaches ``floor`` (one value per gap, by its first peak)."""
    if peaks.size >= 3:
        median_rr = np.median(np.diff(peaks))
        extra = []
        for i, (a, b) in enumerate(zip(peaks[:-1], peaks[1:])):
            if b - a > SEARCHBACK_RR * median_rr:
                inside = (cand > a + distance) & (cand < b - distance) & (heights >= floor[i])
                if np.any(inside):
                    extra.append(cand[inside][np.argmax(heights[inside])])
        if extra:
            peaks = np.sort(np.concatenate([peaks, np.asarray(extra)]))
    return peaks.astype(np.int64)


#: Band of the robust detector (Hz): the QRS's own band (Pan & Tompkins used 5-15 Hz). Below it lie
#: baseline wander and electrode motion's slow swings, above it muscle noise.
QRS_BAND_HZ: tuple[float, float] = (5.0, 20.0)
#: Blocks (s) over which the robust detector estimates each lead's quality and its local QRS level.
BLOCK_S = 8.0
#: Threshold between the local noise level (0) and the local QRS level (1), as Pan & Tompkins' 0.25.
ROBUST_THRESHOLD = 0.3
#: First split of a block's candidate peaks into QRS and noise: this fraction of their 90th percentile.
FIRST_SPLIT = 0.3
#: A peak splitting one RR (its two intervals sum to under INSERTED_RR local RRs) and smaller than
#: INSERTED_HEIGHT of both neighbours is noise (see :func:`_drop_inserted`).
INSERTED_RR = 1.4
INSERTED_HEIGHT = 0.8


@lru_cache(maxsize=16)
def _qrs_sos(fs: float) -> np.ndarray:
    return butter(3, [QRS_BAND_HZ[0], min(QRS_BAND_HZ[1], 0.45 * fs)], btype="bandpass", fs=fs, output="sos")


def _block_level(values: np.ndarray, block: int, q: float) -> np.ndarray:
    """Percentile ``q`` of ``values`` ``[..., n]`` per block of ``block`` samples (the last block takes
    the remainder), linearly interpolated between block centres back to every sample."""
    n = values.shape[-1]
    n_blocks = max(1, n // block)
    body = values[..., : (n_blocks - 1) * block].reshape(*values.shape[:-1], n_blocks - 1, block)
    levels = np.concatenate(
        [
            np.percentile(body, q, axis=-1),
            np.percentile(values[..., (n_blocks - 1) * block :], q, axis=-1)[..., None],
        ],
        axis=-1,
    )
    if n_blocks == 1:
        return np.broadcast_to(levels, values.shape).copy()
    centres = np.append(np.arange(n_blocks - 1) * block + block / 2, ((n_blocks - 1) * block + n) / 2)
    x = np.arange(n)
    flat = levels.reshape(-1, n_blocks)
    return np.stack([np.interp(x, centres, row) for row in flat]).reshape(values.shape)


def robust_envelope(signal: np.ndarray, fs: float) -> np.ndarray:
    """QRS envelope of a raw ``[leads, samples]`` record for noisy ambulatory data.

    Each lead is band-passed to the QRS band, its squared slope integrated over a QRS width and
    divided by its local (per :data:`BLOCK_S` block) 99th percentile; leads are then averaged with
    weights that favour, block by block, the lead whose envelope is peaky (QRS complexes standing
    out of a low floor: high 99th over 50th percentile), so a lead drowned in noise hardly votes.
    """
    signal = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    padlen = min(signal.shape[-1] - 1, int(3 * fs))
    filtered = sosfiltfilt(_qrs_sos(float(fs)), signal, axis=-1, padlen=padlen)
    slope = np.diff(filtered, axis=-1, prepend=filtered[..., :1])
    width = max(1, int(round(INTEGRATION_S * fs)))
    env = uniform_filter1d(slope * slope, width, axis=-1, mode="nearest")
    block = max(1, int(BLOCK_S * fs))
    high = _block_level(env, block, 99)
    low = _block_level(env, block, 50)
    usable = high > max(float(high.max()) * 1e-6, 1e-20)
    norm = np.where(usable, env / np.where(usable, high, 1.0), 0.0)
    quality = np.where(usable, high / np.maximum(low, 1e-20 * np.maximum(high, 1e-20)), 0.0)
    weights = quality**2
    return (weights * norm).sum(axis=0) / np.maximum(weights.sum(axis=0), 1e-20)


def _drop_inserted(peaks: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Remove, smallest first, peaks that split one RR interval in two: their RR before and after sum
    to under INSERTED_RR of the local median RR while they are under INSERTED_HEIGHT of both
    neighbours. A noise spike between two beats looks like that; an ectopic beat is followed by a
    (compensatory) pause, so its two intervals add up to about two RRs, and it is seldom smaller."""
    peaks, heights = peaks.copy(), heights.copy()
    while peaks.size > 4:
        rr = np.diff(peaks).astype(np.float64)
        local = median_filter(rr, size=min(9, rr.size), mode="nearest")
        span = rr[:-1] + rr[1:]
        small = heights[1:-1] < INSERTED_HEIGHT * np.minimum(heights[:-2], heights[2:])
        bad = np.flatnonzero((span < INSERTED_RR * local[:-1]) & small) + 1
        if bad.size == 0:
            break
        drop = bad[np.argmin(heights[bad])]
        peaks, heights = np.delete(peaks, drop), np.delete(heights, drop)
    return peaks


#: A detection this close (s) to either end of the signal is kept only when its R extremum lies inside it.
EDGE_CHECK_S = 0.1
#: Half-width (s) of the search for a detection's R extremum (:func:`r_extremum`).
R_SEARCH_S = 0.06


def r_extremum(signal: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    """The sample of largest deviation from the local level within +-R_SEARCH_S of each peak, over the leads
    of the raw ``signal`` ``[leads, samples]``: the R (or QS) wave's tip, where WFDB beat labels and LUDB's QRS
    peaks sit. The local level is the window's median per lead; each lead is scaled by its 99th percentile of
    absolute deviation from its median, so every lead votes alike. Unfiltered on purpose: a band-pass would
    pin the signal's first and last samples to zero, hiding a peak that lies on them."""
    peaks = np.asarray(peaks, dtype=np.int64)
    signal = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    if peaks.size == 0:
        return peaks
    centred = signal - np.median(signal, axis=-1, keepdims=True)
    scale = np.percentile(np.abs(centred), 99, axis=-1, keepdims=True)
    half = max(1, int(round(R_SEARCH_S * fs)))
    idx = np.clip(peaks[:, None] + np.arange(-half, half + 1)[None, :], 0, signal.shape[-1] - 1)
    windows = signal[:, idx]  # [leads, peaks, w]
    deviation = (
        np.abs(windows - np.median(windows, axis=-1, keepdims=True))
        / np.where(scale > 0, scale, 1.0)[..., None]
    )
    return idx[np.arange(peaks.size), deviation.max(axis=0).argmax(axis=1)]


def _edge_peaks(env: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`scipy.signal.find_peaks` of ``env`` whose first and last samples may be peaks too (a beat
    cut by the end of the signal has its envelope maximum there)."""
    padded = np.concatenate([[-1.0], env, [-1.0]])
    cand, props = find_peaks(padded, distance=distance, height=0.0)
    return cand - 1, props["peak_heights"]


def detect_qrs(signal: np.ndarray, fs: float, positions: str = "envelope") -> np.ndarray:
    """Sample indices of QRS complexes in a raw ``[leads, samples]`` (or 1-D) record, noise-robust.

    For ambulatory (Holter) data, single-lead or several: :func:`robust_envelope`, then peaks above an
    adaptive threshold ``noise + ROBUST_THRESHOLD * (qrs - noise)`` where both levels are local (per
    :data:`BLOCK_S` block, the medians of the candidate peaks above and below FIRST_SPLIT of the
    block's 90th percentile), then
    the T-wave rule and the search-back of :func:`detect_r_peaks`. Pacemaker spikes are removed first.
    Each returned index is the peak of the envelope (the centre of the QRS's slope energy), or with
    ``positions="r"`` the R extremum (:func:`r_extremum`). A detection within EDGE_CHECK_S of either end is
    dropped when its R extremum is the signal's first or last sample (the beat's peak lies outside).
    """
    if positions not in ("envelope", "r"):
        raise ValueError(f"positions {positions!r}: expected 'envelope' or 'r'")
    signal = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    if signal.shape[-1] < int(fs):
        return np.zeros(0, dtype=np.int64)
    signal, _ = remove_pacer_spikes(signal, fs)
    env = robust_envelope(signal, fs)
    if not np.any(env > 0):
        return np.zeros(0, dtype=np.int64)
    distance = max(1, int(round(REFRACTORY_S * fs)))
    cand, heights = _edge_peaks(env, distance)
    if cand.size == 0:
        return np.zeros(0, dtype=np.int64)
    block = max(1, int(BLOCK_S * fs))
    qrs_level, noise_level = np.empty(cand.size), np.empty(cand.size)
    n_blocks = max(1, env.size // block)
    edges = np.linspace(0, env.size, n_blocks + 1).astype(int)
    centres, q_hi, q_lo = [], [], []
    interior = (cand > 0) & (cand < env.size - 1)  # the end candidates of _edge_peaks set no level
    for a, b in zip(edges[:-1], edges[1:]):
        inside = heights[(cand >= a) & (cand < b) & interior]
        if inside.size:
            # First split at a fraction of the block's large peaks, then take the median of each side
            # as the QRS and noise levels (Pan & Tompkins' SPKI and NPKI, estimated per block).
            beat = inside >= FIRST_SPLIT * np.percentile(inside, 90)
            centres.append((a + b) / 2)
            q_hi.append(np.median(inside[beat]))
            q_lo.append(np.median(inside[~beat]) if np.any(~beat) else 0.0)
    qrs_level = np.interp(cand, centres, q_hi)
    noise_level = np.minimum(np.interp(cand, centres, q_lo), qrs_level)
    threshold = noise_level + ROBUST_THRESHOLD * (qrs_level - noise_level)
    keep = heights >= threshold
    peaks = _drop_small_neighbours(cand[keep], heights[keep], int(round(CLOSE_PAIR_S * fs)))
    peaks = _drop_inserted(peaks, heights[np.searchsorted(cand, peaks)])
    peaks = _search_back(peaks, cand, heights, 0.5 * threshold[np.searchsorted(cand, peaks)], distance)
    n, edge = signal.shape[-1], int(round(EDGE_CHECK_S * fs))
    near = (peaks < edge) | (peaks >= n - edge)
    if positions == "r":
        peaks = r_extremum(signal, fs, peaks)
        r = peaks
    else:  # only the detections near an end need their R extremum
        r = np.full(peaks.size, 1, dtype=np.int64)
        r[near] = r_extremum(signal, fs, peaks[near])
    return peaks[~near | ((r > 0) & (r < n - 1))]
