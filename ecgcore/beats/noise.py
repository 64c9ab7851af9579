"""Synthetic ambulatory noise for checking R-peak detection: baseline wander, muscle, electrode motion.

The MIT-BIH Noise Stress Test Database records real noise; it is not in the development folders and
nothing is downloaded at run time, so these are stand-ins built to the same description:

* ``bw`` baseline wander: a sum of sinusoids between 0.05 and 0.5 Hz (breathing, body movement);
* ``ma`` muscle artefact: Gaussian noise band-limited to 20 Hz - 0.45 fs, its amplitude modulated
  by a slow random envelope (bursts of muscle activity);
* ``em`` electrode motion: Gaussian noise band-limited to 1-15 Hz (the QRS band, which makes it the
  hardest), switched on in random bursts of 1-6 s that cover about half of the record, plus
  baseline steps.

Noise is scaled to a signal-to-noise ratio as the NSTDB defines it: signal power = (peak-to-peak QRS
amplitude)^2 / 8, noise power = mean square of the noise, per lead, SNR = 10 log10(S / N) dB.

The ``em`` baseline steps are a random walk, so their share of the noise grows with the length of the
signal: at the same SNR, about 3 % of the em power lies in the 5-20 Hz QRS band on a 15-minute record and
about 60 % on a 10 s strip (20 draws each; issue-18-detect10s note). An em SNR is therefore only
comparable between signals of the same length; state the length with every em figure.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

KINDS: tuple[str, ...] = ("bw", "ma", "em")


def _band_noise(rng: np.random.Generator, n: int, fs: float, low: float, high: float) -> np.ndarray:
    sos = butter(4, [low, min(high, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, rng.standard_normal(n))


def noise(kind: str, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS noise of ``kind`` (one of :data:`KINDS`)."""
    t = np.arange(n) / fs
    if kind == "bw":
        freqs = rng.uniform(0.05, 0.5, 6)
        out = sum(rng.uniform(0.3, 1) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)
    elif kind == "ma":
        envelope = 0.3 + np.abs(_band_noise(rng, n, fs, 0.02, 0.3))
        out = _band_noise(rng, n, fs, 20.0, fs) * envelope
    elif kind == "em":
        gate = np.zeros(n)
        pos = int(rng.uniform(0, 3) * fs)
        while pos < n:
            length = int(rng.uniform(1, 6) * fs)
            gate[pos : pos + length] = 1.0
            pos += length + int(rng.uniform(1, 6) * fs)
        gate = np.convolve(gate, np.hanning(int(0.2 * fs) + 1) / (0.1 * fs), mode="same")
        steps = np.cumsum(np.where(rng.random(n) < 0.1 / fs, rng.normal(0, 1.0, n), 0.0))
        out = _band_noise(rng, n, fs, 1.0, 15.0) * gate + 0.3 * (steps - steps.mean())
    else:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {KINDS}")
    out = np.asarray(out, dtype=np.float64)
    return out / max(float(np.sqrt(np.mean(out**2))), 1e-12)


def qrs_power(signal: np.ndarray, beats: np.ndarray, fs: float) -> np.ndarray:
    """Per-lead signal power as NSTDB defines it: (median peak-to-peak QRS amplitude)^2 / 8."""
    half = max(1, int(round(0.06 * fs)))
    beats = beats[(beats >= half) & (beats < signal.shape[-1] - half)]
    if beats.size == 0:
        raise ValueError("no beats to measure the QRS amplitude on")
    idx = beats[:, None] + np.arange(-half, half + 1)[None, :]
    windows = signal[:, idx]  # [leads, beats, w]
    p2p = np.median(windows.max(axis=-1) - windows.min(axis=-1), axis=-1)
    return p2p**2 / 8.0


def add_noise(
    signal: np.ndarray, fs: float, kind: str, snr_db: float, beats: np.ndarray, seed: int = 0
) -> np.ndarray:
    """``signal`` ``[leads, samples]`` plus independent noise of ``kind`` per lead at ``snr_db``.

    ``beats`` are the QRS positions the signal power is measured at (the reference annotations).
    """
    rng = np.random.default_rng(seed)
    power = qrs_power(signal, np.asarray(beats, dtype=np.int64), fs)
    out = np.array(signal, dtype=np.float64, copy=True)
    for lead in range(out.shape[0]):
        scale = np.sqrt(power[lead] / 10 ** (snr_db / 10))
        out[lead] += scale * noise(kind, out.shape[1], fs, rng)
    return out


def parse_noise(text: str) -> tuple[str, float]:
    """``"em:6"`` -> ``("em", 6.0)``: a noise kind and SNR in dB."""
    kind, _, snr = text.partition(":")
    if kind not in KINDS or not snr:
        raise ValueError(f"noise {text!r}: expected KIND:SNR_DB with KIND one of {', '.join(KINDS)}")
    try:
        return kind, float(snr)
    except ValueError:
        raise ValueError(f"noise {text!r}: the SNR {snr!r} is not a number") from None
