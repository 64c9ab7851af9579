"""Representative beats and global wave boundaries across leads.

The method mirrors what the 12SL and MUSE programs describe: every lead's beats are aligned on the
QRS and reduced to a median beat (noise and ectopic beats drop out), each lead's median beat is
delineated, and the leads are combined into one set of *global* fiducials: the earliest onset and
the latest offset that at least ``k`` leads support (the ``k``-th earliest onset / ``k``-th latest
offset), so one noisy lead cannot move them.

Wave boundaries come from derivative-of-Gaussian (continuous wavelet) transforms at a scale suited
to each wave, with thresholds relative to the wave's own steepest slope, as in the wavelet
delineator of Martinez et al. (2004, IEEE TBME 51:570): a boundary is where the slope has fallen
below a fraction of the wave's maximal slope. The T wave's end, whose slow tail makes any slope
threshold drift late, is found by the trapezium-area method of Zhang et al. (2006). Everything is
expressed in milliseconds, so any sampling rate works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from ecgcore.measure.rpeaks import CLOSE_PAIR_S

#: Derivative-of-Gaussian scales (standard deviation, ms) for the QRS, T and P waves.
SIGMA_MS = {"qrs": 4.0, "t": 10.0, "p": 10.0}
#: Boundary thresholds: fraction of the wave's maximal slope below which the wave has ended.
#: Martinez et al. use 0.05 / 0.125 for the QRS on their wavelet scales; these values were tuned
#: on LUDB records 1-60 (a coarse grid, checked against the synthetic ECGs' known fiducials). The
#: QRS offset's 0.05 (from 0.04) followed QRS_LAST_SLOPE's move to 0.2; it lowered the SD of the
#: offset on both halves of LUDB dev and on their 2-lead 250 Hz versions. The P wave's onset takes
#: the same 0.3 as its offset (from 0.2), which lowered its SD on the same four sets.
XI = {"qrs_on": 0.02, "qrs_off": 0.05, "p_on": 0.3, "p_off": 0.3}
#: The T wave ends within this long after its steepest descent (ms): the trapezium method's
#: reference point (T waves descend to the baseline in 40-120 ms).
T_REACH_MS = 150.0
#: A lead's QRS starts before its first slope above QRS_FIRST_SLOPE of its steepest, and ends after
#: its last slope above QRS_LAST_SLOPE: a slow S-wave return (0.2-0.3 of the steepest slope, seen
#: in LUDB record 51 at 250 Hz) is still QRS, and its rounded trough is no offset.
QRS_FIRST_SLOPE, QRS_LAST_SLOPE = 0.3, 0.2
#: A QRS boundary needs the slope below its threshold for this long (ms): notches inside the QRS
#: (a q or s trough, where one lead's slope passes through zero) are not boundaries.
QUIET_MS = 8.0
#: A slope counts as activity only above this many standard errors of the median beat's slope.
NOISE_FACTOR = 3.0
#: Farthest a QRS boundary may lie from the lead's first / last steep slope (ms).
QRS_REACH_MS = 50.0
#: The same where fewer than the needed leads reach their baseline within QRS_REACH_MS: a wide
#: complex's slow limb (bundle branch block, the QT Database's sel36-sel42: 50-70 ms) is still QRS.
WIDE_QRS_REACH_MS = 100.0
#: A lead's QRS offset candidate still this fraction of the lead's largest QRS deflection away from the level
#: before the onset, and coming back (:data:`TURNING_RETURN`), is a wide wave's turning point (its slope passes
#: through zero there), not the QRS's end: the paced complexes of the QT Database's sel104, whose smeared
#: pacing spike is the steepest slope, ended at their S-wave trough, and their S wave was then taken for the
#: T wave.
TURNING_FRACTION = 0.5
#: ... comes back when, within WIDE_QRS_REACH_MS, its distance from that level falls below this fraction of
#: the candidate's. An ST plateau or the descent into a T wave does not, so its J point stays the QRS's end
#: (without this condition sele0111's depressed ST segment was passed: its QRS offset moved 20 ms late).
TURNING_RETURN = 0.5
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
#: Longest QTc (Bazett, s) reported; a T wave "ending" later is taken for a U or P wave or noise.
QTC_MAX = 0.6
#: A removed pacing spike leaves an edge (its after-potential) that the band-pass and the QRS wavelet
#: smear back in time: an edge's slope stays above the QRS-onset threshold (2 % of its peak) for 28 ms
#: before it at 250-1000 Hz. A QRS onset found this close before the stimulus's end is that
#: residue, not ventricular activity (LUDB's paced records 8, 34, 45: 14, 16, 24 ms early).
PACED_SMEAR_MS = 30.0


def ms(value: float, fs: float) -> int:
    """Milliseconds to a whole number of samples."""
    return int(round(value * fs / 1000.0))


def support_count(n_leads: int) -> int:
    """How many leads must support a global onset / offset: 1 with up to 7 leads, 2 with 8-12."""
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


def window_ms(rr: float, fs: float) -> tuple[int, int]:
    """Samples before and after the QRS fiducial in a beat's window: ``min(0.45 s, 0.6 RR)`` and
    ``min(0.8 s, max(0.45 s, RR))`` for a median RR interval of ``rr`` seconds."""
    return ms(1000 * min(0.45, 0.6 * rr), fs), ms(1000 * min(0.8, max(0.45, rr)), fs)


def align_peaks(x: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Re-align each beat on the median QRS of ``peaks`` (cross-correlation over all leads).

    Every peak must lie at least 60 + :data:`MAX_SHIFT_MS` ms inside ``x``; each moves by at most
    :data:`MAX_SHIFT_MS` to where its multi-lead QRS best matches the median of all of them.
    """
    core, shift = ms(60, fs), ms(MAX_SHIFT_MS, fs)
    seg = _cut(x, peaks, core + shift, core + shift)  # [L, B, 2(core+shift)]
    ref = np.median(seg[:, :, shift : shift + 2 * core], axis=1)  # [L, 2 core]
    lags = np.arange(-shift, shift + 1)
    windows = np.lib.stride_tricks.sliding_window_view(seg, 2 * core, axis=2)  # [L, B, n_lags, 2 core]
    centred = windows - windows.mean(axis=3, keepdims=True)
    score = np.einsum("lbkw,lw->bk", centred, ref - ref.mean(axis=1, keepdims=True))
    return peaks + lags[np.argmax(score, axis=1)]


def build_template(x: np.ndarray, peaks: np.ndarray, fs: float, rr: float) -> Template:
    """Align the beats on the QRS by template matching and take their median per lead.

    ``rr`` is the median RR interval (s); the window reaches ``min(0.45 s, 0.6 RR)`` before and
    ``min(0.8 s, max(0.45 s, RR))`` after the QRS fiducial.
    """
    n = x.shape[1]
    pre, post = window_ms(rr, fs)
    shift = ms(MAX_SHIFT_MS, fs)
    inside = (peaks - pre - shift >= 0) & (peaks + post + shift <= n)
    peaks = peaks.copy()
    if not np.any(inside):
        empty = np.zeros((x.shape[0], 0, pre + post))
        return Template(np.full((x.shape[0], pre + post), np.nan), empty, pre, inside, peaks, np.zeros(0))
    core = ms(60, fs)
    peaks[inside] = align_peaks(x, peaks[inside], fs)
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
        # A detection unlike the QRS that a typical QRS follows within CLOSE_PAIR_S is no beat: the
        # ventricles would still be refractory after a real (ectopic) QRS. It is a P wave, an atrial
        # pacing stimulus or an artefact (LUDB record 45); it goes, and the beats are aligned again.
        typical = np.zeros(peaks.size, dtype=bool)
        typical[np.flatnonzero(inside)[good]] = True
        unlike = inside & ~typical
        artefact = unlike[:-1] & typical[1:] & (np.diff(peaks) < ms(1000 * CLOSE_PAIR_S, fs))
        if artefact.any():
            return build_template(x, np.delete(peaks, np.flatnonzero(artefact)), fs, rr)
        beats = beats[:, good]
        median = np.median(beats, axis=1)
        used = np.flatnonzero(inside)
        inside = np.zeros_like(inside)
        inside[used[good]] = True
    return Template(median, beats, pre, inside, peaks, corr)


def _quiet_before(active: np.ndarray, start: int, run: int) -> int | None:
    """First active index after the last run of ``run`` inactive samples before ``start`` (the wave's onset)."""
    quiet = ~active[:start]
    if quiet.size < run:
        return None
    full = np.flatnonzero(np.convolve(quiet, np.ones(run, dtype=int), "valid") == run)
    return int(full[-1] + run) if full.size else None


def _quiet_after(active: np.ndarray, start: int, run: int) -> int | None:
    """First index after ``start`` that begins a run of ``run`` inactive samples."""
    quiet = ~active[start + 1 :]
    if quiet.size < run:
        return None
    full = np.flatnonzero(np.convolve(quiet, np.ones(run, dtype=int), "valid") == run)
    return int(start + 1 + full[0]) if full.size else None


def slope_noise(beats: np.ndarray, median: np.ndarray, sigma: float) -> np.ndarray:
    """Per-lead standard error of the median beat's slope (derivative of Gaussian, scale ``sigma`` samples).

    Estimated from the beat-to-beat residuals: the median over time of the RMS slope of (beat - median)
    across beats, divided by sqrt(n beats); the median keeps QRS jitter out of it.
    """
    n = beats.shape[1]
    resid = gaussian_filter1d(beats - median[:, None, :], sigma, axis=2, order=1)
    return np.sqrt(np.median(np.mean(resid**2, axis=1), axis=1) / max(n - 1, 1))


def _past_turning_points(
    lead: np.ndarray, active: np.ndarray, on: int, off: int, last: int, lo: int, hi: int, fs: float
) -> tuple[int | None, int]:
    """A lead's QRS offset moved past wave turning points: ``(offset or None, the last turning point or last)``.

    While the candidate ``off`` is still :data:`TURNING_FRACTION` of the lead's largest deflection in
    ``[lo, hi)`` away from the level just before ``on`` and the lead comes back to within half that
    deviation (:data:`TURNING_RETURN`) within :data:`WIDE_QRS_REACH_MS` (a wave's trough or peak, not an
    ST plateau or the descent into a T wave), the next quiet run after the activity that follows it is taken
    instead; the reach is then measured from that turning point. No activity after a turning point: None (the
    lead gives no offset).
    """
    level = isoelectric(lead[None, :], on, fs)[0, 0]
    deviation = np.abs(lead - level)
    biggest = deviation[lo:hi].max()
    run, back = max(1, ms(QUIET_MS, fs)), ms(WIDE_QRS_REACH_MS, fs)

    def turns(at: int) -> bool:  # far from the level, and comes back towards it soon after
        return deviation[at] >= TURNING_FRACTION * biggest and bool(
            np.any(deviation[at : at + back + 1] < TURNING_RETURN * deviation[at])
        )

    while off is not None and turns(off):
        rest = np.flatnonzero(active[off:])
        if rest.size == 0:
            return None, last
        last = off
        off = _quiet_after(active, off + int(rest[0]), run)
    return off, last


def delineate_qrs(
    median: np.ndarray, beats: np.ndarray, pre: int, fs: float
) -> tuple[float | None, float | None]:
    """Global QRS onset and offset (samples in the median beat; None where fewer than ``k`` leads gave one).

    In each lead the QRS starts (ends) where its slope rises above (falls below) a fraction of its
    steepest QRS slope, but never below :data:`NOISE_FACTOR` standard errors of the slope, so a
    noisy lead does not start its QRS early; an end found at a wide wave's turning point is passed
    (:func:`_past_turning_points`). The global boundary is the ``k``-th earliest onset
    (latest offset) over the *clean* leads, those whose threshold is set by their own QRS rather
    than by their noise: a noise-limited lead's boundary moves with its noise and with low-level
    fragmentation (12SL likewise weights leads by their signal quality). Only where fewer than
    ``k`` leads are clean do all leads vote.
    """
    k = support_count(median.shape[0])
    sigma = SIGMA_MS["qrs"] * fs / 1000
    w = np.abs(gaussian_filter1d(median, sigma, axis=1, order=1))
    noise = slope_noise(beats, median, sigma)
    core = ms(QRS_CORE_MS, fs)
    lo, hi = max(0, pre - core), min(median.shape[1], pre + core)
    peak = w[:, lo:hi].max(axis=1)
    run = max(1, ms(QUIET_MS, fs))
    found = []  # (onset, offset, onset clean, offset clean, farthest reach) per lead
    for lead in np.flatnonzero(peak >= QRS_LEAD_FRACTION * peak.max()) if peak.max() > 0 else []:
        floor = NOISE_FACTOR * noise[lead]
        first = lo + int(np.argmax(w[lead, lo:hi] >= QRS_FIRST_SLOPE * peak[lead]))
        last = hi - 1 - int(np.argmax(w[lead, lo:hi][::-1] >= QRS_LAST_SLOPE * peak[lead]))
        on = _quiet_before(w[lead] >= max(XI["qrs_on"] * peak[lead], floor), first, run)
        active_off = w[lead] >= max(XI["qrs_off"] * peak[lead], floor)
        off = _quiet_after(active_off, last, run)
        if on is not None and off is not None:
            off, last = _past_turning_points(median[lead], active_off, on, off, last, lo, hi, fs)
        if on is not None and off is not None:
            clean_on, clean_off = XI["qrs_on"] * peak[lead] >= floor, XI["qrs_off"] * peak[lead] >= floor
            found.append((on, off, clean_on, clean_off, max(first - on, off - last)))
    # A lead whose baseline is not reached close to its QRS (a fused P wave, noise) gives no boundary;
    # only where fewer than k leads reach it that close is the QRS taken for a wide one.
    for reach_ms in (QRS_REACH_MS, WIDE_QRS_REACH_MS):
        near = [f for f in found if f[4] <= ms(reach_ms, fs)]
        if len(near) >= k:
            break
    onsets = [f[0] for f in near if f[2]]
    offsets = [f[1] for f in near if f[3]]
    on_set = onsets if len(onsets) >= k else [f[0] for f in near]
    off_set = offsets if len(offsets) >= k else [f[1] for f in near]
    return kth(on_set, k, latest=False), kth(off_set, k, latest=True)


def _first_below(values: np.ndarray, start: int, stop: int, limit: float, step: int) -> int | None:
    """First index from ``start`` towards ``stop`` (exclusive, direction ``step``) with ``values < limit``."""
    idx = np.arange(start, stop, step)
    hit = np.flatnonzero(values[idx] < limit) if idx.size else np.zeros(0, int)
    return int(idx[hit[0]]) if hit.size else None


def trapezium_end(wave: np.ndarray, steepest: int, reference: int) -> int:
    """End of a wave by the trapezium-area method of Zhang et al. (2006, IEEE TBME 53:2544).

    ``wave`` is signed so the wave is positive; ``steepest`` is its steepest point on the side of
    the end and ``reference`` a point beyond the end. The end is the point ``t`` between them that
    maximises the area of the trapezium ``(wave[steepest] - wave[t]) * (2 reference - t - steepest)``:
    the knee where the descent meets the baseline. Unlike a slope threshold it does not drift late
    on a slow tail, and unlike the tangent method it uses the shape of the whole descent.
    """
    t = np.arange(steepest, reference + 1)
    area = (wave[steepest] - wave[t]) * (2 * reference - t - steepest)
    return int(t[np.argmax(area)])


def delineate_t(median: np.ndarray, fs: float, start: int, stop: int, limit: int) -> float | None:
    """Global T offset in the median beat (baseline-corrected) searching T peaks in ``[start, stop)``.

    Each lead with a large enough T wave gives its end by :func:`trapezium_end` between the
    steepest descent after its T peak and :data:`T_REACH_MS` after that point; a lead whose T wave
    would end after ``limit`` (the latest physiological T end) gives no end.
    """
    k = support_count(median.shape[0])
    sigma = SIGMA_MS["t"] * fs / 1000
    smooth = gaussian_filter1d(median, sigma, axis=1)
    slope = gaussian_filter1d(median, sigma, axis=1, order=1)
    if stop - start < ms(60, fs):
        return None
    tp = start + np.argmax(np.abs(smooth[:, start:stop]), axis=1)
    amp = smooth[np.arange(median.shape[0]), tp]
    big = np.abs(amp) >= max(T_MIN_MV, WAVE_LEAD_FRACTION * np.abs(amp).max())
    ends = []
    reach = ms(T_REACH_MS, fs)
    n = median.shape[1]
    for lead in np.flatnonzero(big):
        if tp[lead] >= stop - 1:
            continue
        sign = np.sign(amp[lead])
        desc = -sign * slope[lead]
        hi = min(stop + reach, n, tp[lead] + reach)
        steepest = tp[lead] + int(np.argmax(desc[tp[lead] : hi]))
        if desc[steepest] <= 0:
            continue
        end = trapezium_end(sign * smooth[lead], steepest, min(n - 1, steepest + reach))
        if end <= limit:
            ends.append(end)
    return kth(ends, k, latest=True)


def delineate_p(
    median: np.ndarray, beats: np.ndarray, fs: float, start: int, stop: int
) -> tuple[float | None, float | None, str]:
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
    # One P wave for all leads: the highest interior peak of the multi-lead energy in the window;
    # each lead's P peak is its largest deflection within 40 ms of it.
    energy = np.sum(smooth[:, start:stop] ** 2, axis=0)
    peaks, _ = find_peaks(energy)
    if peaks.size == 0:
        return None, None, "no P wave found (no deflection between the previous T wave and the QRS)"
    joint = start + int(peaks[np.argmax(energy[peaks])])
    near = ms(40, fs)
    lo_p, hi_p = max(start, joint - near), min(stop, joint + near + 1)
    pp = lo_p + np.argmax(np.abs(smooth[:, lo_p:hi_p]), axis=1)
    amp = smooth[np.arange(median.shape[0]), pp]
    n_beats = beats.shape[1]
    resid = beats[:, :, start:stop] - median[:, None, start:stop]
    se = np.sqrt(np.mean(resid**2, axis=(1, 2)) / max(n_beats - 1, 1))
    ok = (
        (np.abs(amp) >= P_MIN_MV)
        & (np.abs(amp) >= WAVE_LEAD_FRACTION * np.abs(amp).max())
        & (np.abs(amp) >= P_MIN_SNR * se)
    )
    ok &= (pp > lo_p) & (pp < hi_p - 1)
    reach = ms(80, fs)
    onsets, offsets = [], []
    for lead in np.flatnonzero(ok):
        rise = np.sign(amp[lead]) * slope[lead]
        p = int(pp[lead])
        lo = max(0, p - reach)
        up = lo + int(np.argmax(rise[lo : p + 1]))
        down = p + int(np.argmax(-rise[p : min(p + reach, median.shape[1])]))
        if rise[up] <= 0 or -rise[down] <= 0:
            continue
        on = _first_below(rise, up, max(-1, up - reach), XI["p_on"] * rise[up], -1)
        off = _first_below(-rise, down, min(median.shape[1], down + reach), XI["p_off"] * -rise[down], 1)
        # A P wave lies inside its search window and ends before the QRS.
        if on is not None and off is not None and on >= start - reach // 2 and off <= stop + ms(20, fs):
            onsets.append(on)
            offsets.append(off)
    if len(onsets) < k:
        return (
            None,
            None,
            f"no P wave found in at least {k} lead(s) (e.g. atrial fibrillation, flutter or a noisy baseline)",
        )
    return kth(onsets, k, latest=False), kth(offsets, k, latest=True), ""


def isoelectric(median: np.ndarray, qrs_on: int, fs: float) -> np.ndarray:
    """Isoelectric level per lead ``[leads, 1]``: the mean of the PR segment just before the QRS onset."""
    a, b = max(0, qrs_on - ms(20, fs)), max(1, qrs_on - ms(4, fs))
    return median[:, a:b].mean(axis=1, keepdims=True)


def delineate_beat(
    median: np.ndarray,
    beats: np.ndarray,
    pre: int,
    fs: float,
    rr: float,
    stimulus: int | None = None,
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Global fiducials of one representative beat: ``({fiducial: samples in it or None}, {wave: why missing})``.

    ``median`` ``[leads, window]`` with its QRS fiducial at sample ``pre``, ``beats`` the beats it is
    the median of ``[leads, n, window]``, ``rr`` the RR interval (s) that bounds the T and P searches.
    ``stimulus``: end of the pacing spike that precedes the QRS (the ventricles respond after it, so
    a QRS onset found just before it is the spike's residue). The problems' keys are ``qrs`` (then
    nothing else was searched), ``t`` and ``p``.
    """
    qrs_on, qrs_off = delineate_qrs(median, beats, pre, fs)
    if qrs_on is not None and stimulus is not None and 0 < stimulus - qrs_on <= ms(PACED_SMEAR_MS, fs):
        qrs_on = float(stimulus)
    fid: dict[str, float | None] = {"qrs_on": qrs_on, "qrs_off": qrs_off}
    if qrs_on is None or qrs_off is None:
        return fid, {"qrs": "QRS boundaries not found in enough leads"}
    problems: dict[str, str] = {}
    level = isoelectric(median, int(qrs_on), fs)
    flat = median - level
    # T peaks are searched up to a generous Bazett-like bound (and before the next beat); the T
    # wave must end before a QTc (Bazett) of QTC_MAX and 60 ms before the next QRS.
    t_stop = pre + ms(1000 * min(0.7, 0.45 * np.sqrt(rr) + 0.1, rr - 0.1), fs)
    t_limit = int(qrs_on) + ms(1000 * min(QTC_MAX * np.sqrt(rr), rr - 0.06), fs)
    t_off = delineate_t(flat, fs, int(qrs_off) + ms(40, fs), min(t_stop, median.shape[1]), t_limit)
    fid["t_off"] = t_off
    if t_off is None:
        problems["t"] = "no T wave end found in enough leads"
    # The P wave is searched after the previous beat's T wave (which ends one RR earlier).
    p_start = max(0, int(qrs_on) - ms(1000 * min(0.3, 0.6 * rr), fs))
    if t_off is not None:
        p_start = max(p_start, int(t_off) - int(round(rr * fs)))
    p_on, p_off, reason = delineate_p(flat, beats - level[:, None, :], fs, p_start, int(qrs_on) - ms(20, fs))
    fid["p_on"], fid["p_off"] = p_on, p_off
    if p_on is None:
        problems["p"] = reason
    return fid, problems
