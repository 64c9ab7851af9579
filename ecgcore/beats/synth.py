"""Synthetic ventricular beats for training: real V beats transplanted between training patients.

The development records hold few V beats, most of them in a few patients, so a model sees each V
morphology beside one patient's usual beat and rhythm only. :func:`with_synthetic_v` adds, for training,
V rows made from a donor V beat of one training patient placed in the window of an N beat of another:

* **waveform**: the donor's QRS-T core (:data:`CORE_MS` around its peak, cosine ramps of :data:`RAMP_MS`
  outside it) replaces the recipient's window there (:func:`splice_mask`); per lead it is scaled by the
  ratio of the recipient's to the donor's dominant-template peak-to-peak amplitude (clipped to
  :data:`SCALE_LIMITS`), so it keeps its size relative to its own patient's usual beat;
* **template**: the recipient's (the beat sits in the recipient's analysis window);
* **RR**: the donor's RR before and after over its local RR (as premature, with its pause, as it
  was), and the record-relative channels made consistent with them: RR before over the recipient's
  usual RR = the donor's ratio times the recipient's local rate, which is kept.

Only the records given (a split's training records) are donors or recipients, and a donor is never
spliced into its own patient, so no validation or test patient's beats enter the synthetic rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.dataset import BeatSet
from ecgcore.beats.features import MODEL_FS
from ecgcore.beats.splits import patient_of

#: The donor's part of a synthetic beat (ms around its peak): its QRS and T wave.
CORE_MS: tuple[float, float] = (-120.0, 380.0)
#: Cosine ramp (ms) on either side of the core, where the donor fades into the recipient.
RAMP_MS = 40.0
#: Limits of the per-lead amplitude scale (recipient template over donor template, peak to peak).
SCALE_LIMITS: tuple[float, float] = (0.25, 4.0)


def splice_mask(length: int, fs: float = MODEL_FS) -> np.ndarray:
    """``[length]`` weights of the donor in a window centred on the beat: 1 over :data:`CORE_MS`, 0
    beyond :data:`RAMP_MS` outside it, a half-cosine between."""
    t = (np.arange(length) - length // 2) * 1000.0 / fs
    lo, hi = CORE_MS
    outside = np.maximum(lo - t, t - hi).clip(0.0)
    return np.where(outside >= RAMP_MS, 0.0, 0.5 * (1 + np.cos(np.pi * outside / RAMP_MS))).astype(np.float32)


def draw_pairs(
    beats: BeatSet, records: Sequence[str], ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Donor rows (V beats) and recipient rows (N beats of another patient), both of ``records`` only:
    ``round(ratio * V beats)`` pairs, every donor used in turn (in a seeded order), each recipient
    drawn at random among the N beats of the other patients (donors with no other patient's N beats
    are dropped)."""
    rows = beats.rows_of(records)
    donors = rows[beats.labels[rows] == CLASS_INDEX["V"]]
    recipients = rows[beats.labels[rows] == CLASS_INDEX["N"]]
    n = int(round(ratio * donors.size))
    if n == 0 or recipients.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    patient = np.array([patient_of(name) for name in beats.records])[beats.record]
    donor = np.resize(rng.permutation(donors), n)
    recipient = np.full(n, -1, dtype=np.int64)
    for p in np.unique(patient[donor]):
        mine = np.flatnonzero(patient[donor] == p)
        others = recipients[patient[recipients] != p]
        if others.size:
            recipient[mine] = others[rng.integers(others.size, size=mine.size)]
    keep = recipient >= 0
    return donor[keep], recipient[keep]


def splice(beats: BeatSet, donors: np.ndarray, recipients: np.ndarray) -> BeatSet:
    """``beats`` with one V row per (donor, recipient) pair appended (see the module docstring); the
    rows belong to the recipient's record and sample. The set's record-relative RR is carried over."""
    if beats.templates is None:
        raise ValueError("synthetic V beats need a beat set with templates")
    rr_record = beats.rr_record
    template_d = beats.templates[donors].astype(np.float32)
    template_r = beats.templates[recipients].astype(np.float32)
    span = np.ptp(template_d, axis=2)
    scale = np.clip(np.ptp(template_r, axis=2) / np.where(span > 1e-6, span, np.inf), *SCALE_LIMITS)
    scale = np.where(span > 1e-6, scale, 1.0)[:, :, None]
    mask = splice_mask(beats.windows.shape[-1])
    windows = (
        beats.windows[recipients].astype(np.float32) * (1 - mask)
        + scale * beats.windows[donors].astype(np.float32) * mask
    )
    rr = beats.rr[donors].copy()
    rate = rr_record[recipients, 1]
    synth_record = np.stack([rr[:, 0] * rate, rate], axis=1).astype(np.float32)
    out = replace(
        beats,
        windows=np.concatenate([beats.windows, windows.astype(beats.windows.dtype)]),
        rr=np.concatenate([beats.rr, rr]),
        labels=np.concatenate([beats.labels, np.full(donors.size, CLASS_INDEX["V"], beats.labels.dtype)]),
        record=np.concatenate([beats.record, beats.record[recipients]]),
        samples=np.concatenate([beats.samples, beats.samples[recipients]]),
        templates=np.concatenate([beats.templates, beats.templates[recipients]]),
    )
    # The synthetic rows share their recipients' samples, so the per-record RR cannot be recomputed
    # from the samples: both parts are given.
    out.rr_record = np.concatenate([rr_record, synth_record])
    return out


def with_synthetic_v(beats: BeatSet, records: Sequence[str], ratio: float, seed: int) -> BeatSet:
    """``beats`` plus ``round(ratio * V beats of records)`` synthetic V rows made within ``records``
    (:func:`draw_pairs`, :func:`splice`); the original rows keep their indices."""
    donors, recipients = draw_pairs(beats, records, ratio, seed)
    return splice(beats, donors, recipients)
