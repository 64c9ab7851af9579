"""Write WFDB records and annotation files for the measurement tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb


def write_record(directory: Path, record: str, signal: np.ndarray, fs: float, names: list[str]) -> None:
    """``signal`` ``[leads, n]`` in mV as ``directory/record.hea/.dat`` (format 16), channels named ``names``."""
    wfdb.wrsamp(
        record,
        fs=fs,
        units=["mV"] * len(names),
        sig_name=list(names),
        p_signal=np.asarray(signal).T.astype(np.float64),
        fmt=["16"] * len(names),
        write_dir=str(directory),
    )


def write_annotation(
    directory: Path, record: str, extension: str, samples: np.ndarray, symbols: list[str]
) -> None:
    """wfdb.wrann, for extensions with digits (``q1c``, ``v1``) too: wrann accepts only letters, so
    the file is written under a letters-only extension and renamed (the content is the same)."""
    wfdb.wrann(record, "tmpx", np.asarray(samples, dtype=np.int64), symbols, write_dir=str(directory))
    (directory / f"{record}.tmpx").rename(directory / f"{record}.{extension}")
