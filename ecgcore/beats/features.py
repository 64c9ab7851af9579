"""What the beat models and the clustering see of each beat.

* **Model windows**: two leads (a single-lead record's lead twice; leads after the second are not
  used), band-passed 0.5-45 Hz, resampled to :data:`MODEL_FS` and cut ``half`` samples either side of
  the beat (150 for the classifier), scaled per lead by the
  median QRS peak-to-peak amplitude of the surrounding chunk (so a ventricular beat stays bigger
  than its neighbours).
* **Dominant template** (layout ``leads2+rr2+template2``): per analysis window (the same
  :data:`ecgcore.beats.detect.WINDOW_S` windows at training and at analysis time), the median of the
  model windows of the half of the window's beats most like their plain median (:func:`dominant_template`),
  so the model sees the beat beside this patient's own usual beat at this time, on the same scale.
* **RR context**: the RR interval before and after each beat over the local median RR (the median of
  the :data:`RR_CONTEXT` intervals around it), which tells a premature beat from a normal one.
  Models get it as two constant extra channels (ratio - 1), so any 1-D model takes it unchanged;
  ``rr4`` layouts add the RR before and the local median RR over the record's median RR (:func:`rr_record`).
* **Morphology vectors** for clustering: both leads from -250 to +400 ms at 50 Hz (33 points each).
* **QRS width** (ms), an estimate for the morphological cross-check (:func:`qrs_width_ms`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d
from scipy.signal import resample_poly

from ecgcore.measure import rpeaks

#: Rate (Hz) of every model window (MIT-BIH's rate, at which the study's 150 samples are 417 ms).
MODEL_FS = 360.0
#: Half-window of the N/S/V/F/Q classifier (samples at MODEL_FS; the study's beat-vs-artefact model used 50).
CLASSIFIER_HALF = 150
#: Number of RR intervals whose median is the local RR.
RR_CONTEXT = 17
#: Morphology vector: lead span (s) around the beat and its rate (Hz).
MORPH_SPAN_S: tuple[float, float] = (-0.25, 0.40)
MORPH_FS = 50.0
#: QRS width estimate: search span either side of the beat (s) and the fraction of peak slope energy.
QRS_SEARCH_S = 0.12
QRS_LEVEL = 0.2
#: Leads the models take.
MODEL_LEADS = 2
#: Context (s) read on either side of an analysis window's kept part; training sets cut their windows
#: and templates on the same analysis windows as the long-record analysis.
CONTEXT_S = 3.0
#: Input layouts of the beat models (the checkpoint's ``beats.inputs``) and their channel counts:
#: ``leads2+rr2`` = the two lead windows and the two RR ratios; ``leads2+rr2+template2`` adds the
#: window's dominant template of each lead (:func:`dominant_template`); ``leads2+rr4+template2`` also
#: has the record-relative RR ratios (:func:`rr_record`) after the local ones; ``leads2+rr4+diff2`` has,
#: instead of the templates, each lead's beat minus its template (how the beat departs from the usual one).
LAYOUTS = {"leads2+rr2": 4, "leads2+rr2+template2": 6, "leads2+rr4+template2": 8, "leads2+rr4+diff2": 8}
#: The first layout (the beat-vs-artefact model's, and the default of a beat set).
INPUTS = "leads2+rr2"
#: The layout with the dominant-template channels.
TEMPLATE_INPUTS = "leads2+rr2+template2"


def lead_pair(signal: np.ndarray) -> np.ndarray:
    """The first two leads of ``[leads, samples]`` (one lead twice for a single-lead record)."""
    signal = np.atleast_2d(signal)
    return signal[[0, 0]] if signal.shape[0] == 1 else signal[:MODEL_LEADS]


def local_median(values: np.ndarray) -> np.ndarray:
    """The running median of ``values`` (RR intervals, or their changes) over :data:`RR_CONTEXT` of them
    (fewer when there are fewer), edges repeated: the local RR the RR features are taken against."""
    return median_filter(values, size=min(RR_CONTEXT, values.size), mode="nearest")


def rr_context(samples: np.ndarray, fs: float) -> np.ndarray:
    """``[n, 2]``: RR before and after each beat over the local median RR (1.0 where undefined)."""
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.size
    if n < 2:
        return np.ones((n, 2))
    rr = np.diff(samples) / fs
    local = local_median(rr)
    before = np.concatenate([[np.nan], rr / local])
    after = np.concatenate([rr / local, [np.nan]])
    return np.nan_to_num(np.stack([before, after], axis=1), nan=1.0)


def rr_record(samples: np.ndarray) -> np.ndarray:
    """``[n, 2]``: the RR before each beat and the local median RR (as in :func:`rr_context`), both over
    the whole record's median RR (1.0 where undefined): prematurity and rate against this patient's
    usual rate, which a run of premature beats does not hide as it hides them from the local median."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size < 2:
        return np.ones((samples.size, 2))
    rr = np.diff(samples)
    usual = max(float(np.median(rr)), 1e-9)
    local = local_median(rr)
    before = np.concatenate([[np.nan], rr / usual])
    rate = np.concatenate([[local[0]], local]) / usual
    return np.nan_to_num(np.stack([before, rate], axis=1), nan=1.0)


def rr_channels(layout: str) -> int:
    """How many RR channels input layout ``layout`` has (2 or 4)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown beat input layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    return 4 if "+rr4" in layout else 2


def layout_rr(layout: str, samples: np.ndarray, fs: float) -> np.ndarray:
    """The RR channels' values of layout ``layout`` for the beats at ``samples`` (all of a record's
    detections): :func:`rr_context`, then for ``rr4`` layouts :func:`rr_record`."""
    rr = rr_context(samples, fs)
    return np.concatenate([rr, rr_record(samples)], axis=1) if rr_channels(layout) == 4 else rr


def _gather(signal: np.ndarray, centres: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``signal[:, centres + offsets]`` with edge samples repeated: ``[n, leads, len(offsets)]``."""
    idx = np.clip(centres[:, None] + offsets[None, :], 0, signal.shape[-1] - 1)
    return np.transpose(signal[:, idx], (1, 0, 2))


def _resample(signal: np.ndarray, fs: float, target: float) -> np.ndarray:
    if abs(fs - target) < 1e-9:
        return signal
    ratio = Fraction(target / fs).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)


def qrs_amplitude(filtered: np.ndarray, samples: np.ndarray, fs: float) -> np.ndarray:
    """Per-lead median peak-to-peak amplitude within 60 ms of the beats (1.0 for a flat lead)."""
    if samples.size == 0:
        return np.ones(filtered.shape[0])
    half = max(1, int(round(0.06 * fs)))
    w = _gather(filtered, np.asarray(samples, dtype=np.int64), np.arange(-half, half + 1))
    amp = np.median(w.max(axis=-1) - w.min(axis=-1), axis=0)
    return np.where(amp > 1e-6, amp, 1.0)


def dominant_template(windows: np.ndarray) -> np.ndarray:
    """``[leads, L]``: the median of the half of ``windows`` (``[n, leads, L]``, one analysis window's
    beats) that correlate best with the plain median of all of them; zeros when there are none.

    The plain median is already the usual beat when ectopic beats are few; keeping the closer half
    first stops a large share of them (bigeminy, runs) from pulling the template towards their shape.
    """
    if len(windows) == 0:
        return np.zeros(windows.shape[1:], dtype=np.float32)
    w = windows.astype(np.float32).reshape(len(windows), -1)
    first = np.median(w, axis=0)
    centred = w - w.mean(axis=1, keepdims=True)
    ref = first - first.mean()
    corr = (centred @ ref) / np.maximum(np.linalg.norm(centred, axis=1) * np.linalg.norm(ref), 1e-12)
    closer = corr >= np.median(corr)
    return np.median(w[closer], axis=0).reshape(windows.shape[1:]).astype(np.float32)


def chunk_features(
    signal: np.ndarray,
    fs: float,
    samples: np.ndarray,
    halves: tuple[int, ...] = (CLASSIFIER_HALF,),
    template_halves: tuple[int, ...] = (),
) -> dict[str, np.ndarray]:
    """Model windows (one ``[n, 2, 2*half]`` float32 array per half), morphology vectors and QRS widths
    of the beats at ``samples`` (indices into ``signal``, a chunk ``[leads, samples]`` in mV that
    extends at least a second beyond the beats on either side where the record allows); for each half in
    ``template_halves``, also ``template{half}`` ``[2, 2*half]``: the chunk's :func:`dominant_template`
    (only the halves whose model takes templates, as the medians cost time on a day-long record)."""
    samples = np.asarray(samples, dtype=np.int64)
    pair = lead_pair(signal)
    filtered = rpeaks.bandpass(pair, fs)
    scaled = filtered / qrs_amplitude(filtered, samples, fs)[:, None]
    out: dict[str, np.ndarray] = {}
    resampled = _resample(scaled, fs, MODEL_FS)
    centres = np.round(samples * MODEL_FS / fs).astype(np.int64)
    for half in halves:
        out[f"window{half}"] = _gather(resampled, centres, np.arange(-half, half)).astype(np.float32)
        if half in template_halves:
            out[f"template{half}"] = dominant_template(out[f"window{half}"])
    morph_offsets = np.round(np.arange(MORPH_SPAN_S[0], MORPH_SPAN_S[1] + 1e-9, 1 / MORPH_FS) * fs).astype(
        np.int64
    )
    out["morph"] = _gather(scaled, samples, morph_offsets).reshape(samples.size, -1).astype(np.float32)
    out["qrs_ms"] = qrs_width_ms(filtered, samples, fs)
    return out


def qrs_width_ms(filtered: np.ndarray, samples: np.ndarray, fs: float) -> np.ndarray:
    """QRS width estimate (ms) per beat: the span, within +-QRS_SEARCH_S of the beat, over which the
    leads' slope energy (smoothed over 10 ms) stays above QRS_LEVEL of its peak there."""
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    energy = uniform_filter1d(rpeaks.slope_energy(filtered), max(1, int(round(0.01 * fs))), mode="nearest")
    half = int(round(QRS_SEARCH_S * fs))
    w = _gather(energy[None, :], np.asarray(samples, dtype=np.int64), np.arange(-half, half + 1))[:, 0]
    above = w >= QRS_LEVEL * w.max(axis=1, keepdims=True)
    first = above.argmax(axis=1)
    last = w.shape[1] - 1 - above[:, ::-1].argmax(axis=1)
    return ((last - first) * 1000.0 / fs).astype(np.float32)


def model_input(
    windows: np.ndarray, rr: np.ndarray, templates: np.ndarray | None = None, difference: bool = False
) -> np.ndarray:
    """``[n, 4, L]`` float32 (layout ``leads2+rr2``): the two lead windows, then RR before and after
    (ratio - 1) as constant channels (``rr`` ``[n, k]``: k constant channels); with ``templates``
    (``[n, 2, L]``, each beat's dominant template) the templates come last (``leads2+rr2+template2``),
    or with ``difference`` each window minus its template (``leads2+rr4+diff2``)."""
    n, _, length = windows.shape
    windows = windows.astype(np.float32)
    rr = np.asarray(rr, dtype=np.float32)
    extra = np.broadcast_to((rr - 1.0)[:, :, None], (n, rr.shape[1], length))
    parts = [windows, extra]
    if templates is not None:
        templates = np.broadcast_to(templates, windows.shape).astype(np.float32)
        parts.append(windows - templates if difference else templates)
    return np.concatenate(parts, axis=1)


def uses_templates(layout: str) -> bool:
    """Whether input layout ``layout`` (a :data:`LAYOUTS` name) is built from the dominant templates
    (as template or as beat-minus-template channels)."""
    rr = rr_channels(layout)  # ValueError for an unknown layout
    return LAYOUTS[layout] - MODEL_LEADS - rr == MODEL_LEADS


def uses_difference(layout: str) -> bool:
    """Whether input layout ``layout`` has beat-minus-template channels instead of the templates."""
    return uses_templates(layout) and layout.endswith("+diff2")


def layout_input(layout: str, features: dict[str, np.ndarray], half: int, rr: np.ndarray) -> np.ndarray:
    """The model inputs of layout ``layout`` from :func:`chunk_features`'s output (with ``templates``
    when the layout needs them) and the beats' RR channels (:func:`layout_rr`)."""
    template = features[f"template{half}"] if uses_templates(layout) else None
    return model_input(features[f"window{half}"], rr, template, uses_difference(layout))
