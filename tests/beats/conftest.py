"""Synthetic long records on disk in WFDB form, for the beats tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from ecgcore.data.synthetic import synthetic_ecg


def write_record(folder: Path, name: str, signal: np.ndarray, fs: float, leads=("MLII", "V1")) -> Path:
    """Write ``signal`` ``[leads, samples]`` (mV) as a WFDB record; returns its path without extension."""
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * signal.shape[0],
        sig_name=list(leads[: signal.shape[0]]),
        p_signal=np.ascontiguousarray(signal.T, dtype=np.float64),
        fmt=["16"] * signal.shape[0],
        adc_gain=[1000.0] * signal.shape[0],
        baseline=[0] * signal.shape[0],
        write_dir=str(folder),
    )
    return folder / name


@pytest.fixture(scope="session")
def long_record(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """An 8-minute, 2-lead, 250 Hz synthetic record with RR jitter and its true R peaks."""
    ecg = synthetic_ecg(
        hr=72, fs=250, duration=480, leads=("II", "V1"), rr_jitter=0.05, noise_mv=0.02, seed=3
    )
    path = write_record(tmp_path_factory.mktemp("long"), "long", ecg.signal, ecg.fs)
    return path, ecg.fiducials["r_peak"]
