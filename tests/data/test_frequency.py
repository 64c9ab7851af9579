"""Fourier-part model inputs."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.data.frequency import fourier_inputs
from ecgcore.data.inputs import INPUTS


def test_fourier_parts_of_a_sine():
    fs, n = 100.0, 1000
    t = np.arange(n) / fs
    x = np.stack([np.sin(2 * np.pi * 5 * t), np.cos(2 * np.pi * 12 * t)])[None].astype(np.float32)
    mag, re, im = (fourier_inputs(x, part) for part in ("magnitude", "real", "imaginary"))
    assert mag.shape == (1, 2, n // 2 + 1) and mag.dtype == np.float32
    assert mag[0, 0].argmax() == 50 and mag[0, 1].argmax() == 120  # 5 Hz and 12 Hz at 0.1 Hz per bin
    np.testing.assert_allclose(mag**2, re**2 + im**2, rtol=1e-4, atol=1e-5)
    assert abs(im[0, 0, 50]) > 10 * abs(re[0, 0, 50]) and abs(re[0, 1, 120]) > 10 * abs(im[0, 1, 120])
    # orthonormal: energy kept (one-sided spectrum: the bins between DC and Nyquist count twice)
    energy = mag[0, 0, 0] ** 2 + 2 * (mag[0, 0, 1:-1] ** 2).sum() + mag[0, 0, -1] ** 2
    assert energy == pytest.approx((x[0, 0] ** 2).sum(), rel=1e-4)
    with pytest.raises(ValueError, match="unknown spectrum part 'phase'"):
        fourier_inputs(x, "phase")
    assert {"fft-magnitude", "fft-real", "fft-imaginary"} <= set(INPUTS)
