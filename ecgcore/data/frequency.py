"""Frequency-domain model inputs: the Fourier transform's magnitude, real or imaginary part per lead.

The transfer study's fifth experiment feeds a 1D network the one-sided discrete Fourier transform of
each (preprocessed, normalised) lead instead of its samples: ``[N, leads, samples]`` becomes
``[N, leads, samples // 2 + 1]`` (bins 0 .. fs/2). The transform is orthonormal (``norm="ortho"``),
so a z-scored lead gives bins of order one and no further scaling is needed. Registered as the model inputs
(``TrainConfig.representation``) ``fft-magnitude``, ``fft-real`` and ``fft-imaginary``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ecgcore.data.inputs import register_input
from ecgcore.progress import ProgressFn, report

if TYPE_CHECKING:
    from ecgcore.data import ECGDataset, Preprocessing

#: The parts of the spectrum an input can be, and the representation names they register as.
FOURIER_PARTS: tuple[str, ...] = ("magnitude", "real", "imaginary")
REPRESENTATIONS: dict[str, str] = {f"fft-{part}": part for part in FOURIER_PARTS}
_CHUNK = 256


def fourier_inputs(signals: np.ndarray, part: str, progress: ProgressFn | None = None) -> np.ndarray:
    """``[N, L, S]`` signals -> ``[N, L, S // 2 + 1]`` float32 ``part`` of their spectrum (chunked: memmaps)."""
    if part not in FOURIER_PARTS:
        raise ValueError(f"unknown spectrum part {part!r}; expected one of {', '.join(FOURIER_PARTS)}")
    n, leads, samples = signals.shape
    out = np.empty((n, leads, samples // 2 + 1), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        spectrum = np.fft.rfft(np.asarray(signals[start : start + _CHUNK], dtype=np.float64), norm="ortho")
        if part == "magnitude":
            values = np.abs(spectrum)
        elif part == "real":
            values = spectrum.real
        else:
            values = spectrum.imag
        out[start : start + _CHUNK] = values
        report(progress, min(start + _CHUNK, n), n, f"Fourier {part}")
    return out


def _register(name: str, part: str) -> None:
    @register_input(name)
    def build(dataset: ECGDataset, prep: Preprocessing, progress: ProgressFn | None = None) -> np.ndarray:
        """The cached signals' Fourier ``part`` (computed on each run's preparation, not cached on disk)."""
        from ecgcore.data.cache import load_cached

        return fourier_inputs(load_cached(dataset, prep, progress=progress).signals, part, progress)


for _name, _part in REPRESENTATIONS.items():
    _register(_name, _part)
