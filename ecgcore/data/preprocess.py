"""How a record becomes model input: one :class:`Preprocessing` and the function that applies it.

The cache (:mod:`ecgcore.data.cache`) applies :func:`preprocess_record` to every record once; a
prediction on a new record applies the same function, so both see the same input.

Preprocessing, in order: lead selection (III, aVR, aVL, aVF derived from I and II when missing),
polyphase resampling to ``fs``, zero-phase Butterworth band-pass 0.5-40 Hz (order 2 each way
through :func:`scipy.signal.sosfiltfilt`; 0.5 Hz removes baseline wander, 40 Hz mains and muscle
noise; the upper edge is lowered to 0.45 ``fs`` at low rates), the first ``duration`` seconds,
then normalisation: ``zscore`` (per record and lead), ``minmax`` (per record and lead to [0, 1],
as the published 1D-CNN did), ``train_standardize`` (per lead, mean and SD of the training split
only, stored in ``stats``) or ``none`` (millivolts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.signal import butter, sosfiltfilt

from ecgcore.io import ECGFormatError, Record
from ecgcore.vocab import LEADS_8, parse_leads

NORMALIZATIONS: tuple[str, ...] = ("zscore", "minmax", "train_standardize", "none")
BANDPASS_HZ: tuple[float, float] = (0.5, 40.0)
_EPS = 1e-6


@dataclass(frozen=True)
class Preprocessing:
    """How records become model input; part of every cache key and every trained model's metadata."""

    leads: tuple[str, ...] = LEADS_8
    fs: float = 500.0
    duration: float = 10.0
    bandpass: bool = True
    normalize: str = "zscore"

    def __post_init__(self) -> None:
        object.__setattr__(self, "leads", parse_leads(self.leads))
        object.__setattr__(self, "fs", float(self.fs))
        object.__setattr__(self, "duration", float(self.duration))
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalisation {self.normalize!r}; expected one of {', '.join(NORMALIZATIONS)}"
            )
        if self.fs <= 0 or self.duration <= 0 or not self.leads:
            raise ValueError(f"bad preprocessing: fs={self.fs}, duration={self.duration}, leads={self.leads}")

    @property
    def n_samples(self) -> int:
        return int(round(self.fs * self.duration))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["leads"] = list(self.leads)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(
            **{k: (tuple(v) if k == "leads" else v) for k, v in d.items() if k in cls.__dataclass_fields__}
        )


@lru_cache(maxsize=16)
def _bandpass_sos(fs: float) -> np.ndarray:
    high = min(BANDPASS_HZ[1], 0.45 * fs)
    return butter(2, [BANDPASS_HZ[0], high], btype="bandpass", fs=fs, output="sos")


def shape_record(record: Record, prep: Preprocessing) -> np.ndarray:
    """Leads, rate, band-pass and length of :func:`preprocess_record`, before normalisation."""
    if record.duration + 1e-9 < prep.duration:
        raise ECGFormatError(
            f"{record.path or record.record_id}: record is {record.duration:.2f} s long, "
            f"shorter than the {prep.duration:g} s the preprocessing needs"
        )
    rec = record.select(prep.leads).resample(prep.fs)
    x = rec.signal.astype(np.float64)
    if prep.bandpass:
        x = sosfiltfilt(_bandpass_sos(prep.fs), x, axis=1)
    return np.ascontiguousarray(x[:, : prep.n_samples], dtype=np.float32)


def normalize(x: np.ndarray, prep: Preprocessing, stats: dict | None = None) -> np.ndarray:
    """Normalise ``[..., L, S]`` as ``prep.normalize`` says (``stats`` for ``train_standardize``)."""
    if prep.normalize == "none":
        return x.astype(np.float32)
    if prep.normalize == "zscore":
        return ((x - x.mean(axis=-1, keepdims=True)) / (x.std(axis=-1, keepdims=True) + _EPS)).astype(
            np.float32
        )
    if prep.normalize == "minmax":
        low, high = x.min(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)
        return ((x - low) / (high - low + _EPS)).astype(np.float32)
    if not stats or "mean" not in stats or "std" not in stats:
        raise ValueError(
            "train_standardize needs the per-lead mean and std fitted on the training split (stats)"
        )
    mean = np.asarray(stats["mean"], dtype=np.float32)[:, None]
    std = np.asarray(stats["std"], dtype=np.float32)[:, None]
    return ((x - mean) / (std + _EPS)).astype(np.float32)


def preprocess_record(record: Record, prep: Preprocessing, stats: dict | None = None) -> np.ndarray:
    """The exact transformation the cache applies: float32 ``[len(prep.leads), prep.n_samples]``.

    Used to build the cache and to predict on a new record, so both see the same input.
    """
    return normalize(shape_record(record, prep), prep, stats)
