"""Synthetic ECGs whose fiducial points are known by construction.

Each wave is a raised-cosine (Hann) lobe that is exactly zero outside its onset and offset, so
"P onset", "QRS offset" and "T offset" have one unambiguous true sample. Used to test interval
measurement and to make small datasets with real signal for training tests; never presented as
real data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecgcore.vocab import LEADS_12

# Per-lead wave amplitudes (mV) for I, II and the chest leads; III, aVR, aVL and aVF follow from
# I and II (Einthoven and Goldberger), so the 12 leads stay physically consistent.
#               P      Q      R      S      T
_AMPLITUDES = {
    "I": (0.10, -0.05, 0.80, -0.10, 0.25),
    "II": (0.15, -0.06, 1.20, -0.20, 0.30),
    "V1": (0.08, 0.00, 0.30, -1.00, -0.10),
    "V2": (0.10, 0.00, 0.60, -1.20, 0.50),
    "V3": (0.10, 0.00, 0.90, -0.80, 0.50),
    "V4": (0.10, -0.03, 1.30, -0.40, 0.45),
    "V5": (0.10, -0.05, 1.20, -0.20, 0.35),
    "V6": (0.10, -0.05, 0.90, -0.10, 0.25),
}


def _limb_leads(amp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    i, ii = amp["I"], amp["II"]
    return {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}


@dataclass
class SyntheticECG:
    """A synthetic record: signal in mV ``[leads, samples]`` and the true fiducials of every beat.

    ``fiducials`` maps ``p_on, p_off, qrs_on, r_peak, qrs_off, t_on, t_off`` to sample indices,
    one per complete beat.
    """

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    fiducials: dict[str, np.ndarray] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)


def _lobe(
    out: np.ndarray, start: float, stop: float, amplitude: np.ndarray, fs: float, rise: float = 0.5
) -> None:
    """Add an (optionally asymmetric) Hann lobe from ``start`` to ``stop`` seconds to every lead."""
    n = out.shape[1]
    t = np.arange(int(np.floor(start * fs)), int(np.ceil(stop * fs)) + 1)
    t = t[(t >= 0) & (t < n)]
    if t.size == 0:
        return
    s = t / fs
    peak = start + rise * (stop - start)
    phase = np.where(
        s <= peak,
        (s - start) / max(peak - start, 1e-9) * 0.5,
        0.5 + (s - peak) / max(stop - peak, 1e-9) * 0.5,
    )
    shape = np.where((s >= start) & (s <= stop), 0.5 - 0.5 * np.cos(2 * np.pi * np.clip(phase, 0, 1)), 0.0)
    out[:, t] += amplitude[:, None] * shape[None, :]


def synthetic_ecg(
    hr: float = 70.0,
    pr: float = 160.0,
    qrs: float = 90.0,
    qt: float = 400.0,
    *,
    fs: float = 500.0,
    duration: float = 10.0,
    leads: tuple[str, ...] | list[str] = LEADS_12,
    p_duration: float = 100.0,
    noise_mv: float = 0.0,
    wander_mv: float = 0.0,
    polarity: float = 1.0,
    rr_jitter: float = 0.0,
    amplitude_scale: float = 1.0,
    t_scale: float = 1.0,
    seed: int | None = 0,
) -> SyntheticECG:
    """Make a synthetic ECG with the given heart rate (bpm) and PR, QRS, QT (ms).

    Parameters
    ----------
    noise_mv, wander_mv
        Standard deviation of white noise and amplitude of a 0.3 Hz baseline wander, in mV.
    polarity
        Multiplies the whole signal (``-1`` flips every lead, as reversed electrodes would).
    rr_jitter
        Relative standard deviation of RR intervals (0 gives a perfectly regular rhythm).
    amplitude_scale, t_scale
        Scale every wave, or only the T waves (e.g. negative for inverted T waves).
    """
    if not pr > p_duration + 10:
        raise ValueError(f"PR ({pr} ms) must exceed the P duration ({p_duration} ms) by at least 10 ms")
    if not qt > qrs + 80:
        raise ValueError(f"QT ({qt} ms) must exceed QRS ({qrs} ms) by at least 80 ms")
    rng = np.random.default_rng(seed)
    n = int(round(duration * fs))
    base = {k: np.array(v, dtype=np.float64) for k, v in _AMPLITUDES.items()}
    base.update(_limb_leads(base))
    leads = tuple(leads)
    amp = np.stack([base[lead] for lead in leads]) * amplitude_scale  # [L, 5]
    amp[:, 4] *= t_scale
    out = np.zeros((len(leads), n))

    rr = 60.0 / hr
    pr_s, qrs_s, qt_s, p_s = pr / 1000, qrs / 1000, qt / 1000, p_duration / 1000
    t_duration = min(0.6 * (qt_s - qrs_s), qt_s - qrs_s - 0.04)
    keys = ("p_on", "p_off", "qrs_on", "r_peak", "qrs_off", "t_on", "t_off")
    fid: dict[str, list[int]] = {k: [] for k in keys}
    qrs_on = pr_s + 0.05 + rng.uniform(0, min(rr, 1.0) * 0.5)
    while qrs_on + qt_s + 0.02 < duration:
        p_on = qrs_on - pr_s
        _lobe(out, p_on, p_on + p_s, amp[:, 0], fs)
        q_end, r_end = qrs_on + 0.2 * qrs_s, qrs_on + 0.65 * qrs_s
        _lobe(out, qrs_on, q_end, amp[:, 1], fs)
        _lobe(out, q_end, r_end, amp[:, 2], fs)
        _lobe(out, r_end, qrs_on + qrs_s, amp[:, 3], fs)
        t_off = qrs_on + qt_s
        _lobe(out, t_off - t_duration, t_off, amp[:, 4], fs, rise=0.6)
        for key, sec in zip(
            keys, (p_on, p_on + p_s, qrs_on, (q_end + r_end) / 2, qrs_on + qrs_s, t_off - t_duration, t_off)
        ):
            fid[key].append(int(round(sec * fs)))
        qrs_on += rr * (1 + rr_jitter * rng.standard_normal())

    t = np.arange(n) / fs
    if wander_mv:
        out += wander_mv * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))[None, :]
    if noise_mv:
        out += rng.normal(0, noise_mv, out.shape)
    out *= polarity
    return SyntheticECG(
        signal=out.astype(np.float32),
        fs=float(fs),
        leads=leads,
        fiducials={k: np.asarray(v, dtype=np.int64) for k, v in fid.items()},
        intervals={"hr": float(hr), "pr": float(pr), "qrs": float(qrs), "qt": float(qt)},
    )
