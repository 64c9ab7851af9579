"""Reading long WFDB (and EDF) records window by window, so that memory stays bounded.

WFDB records are read in part (``wfdb.rdrecord(sampfrom, sampto)``); wfdb reads EDF files only
whole, so an EDF record is bounded by its own size.

:func:`record_info` reads the header only; :func:`read_window` reads samples ``[start, stop)`` of
every channel in millivolts; :func:`windows` lays overlapping analysis windows over a record. A
24-hour, 2-lead, 250 Hz record is 43 million samples (350 MB as float64): analysis reads a few
minutes at a time instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb
from wfdb.io.convert.edf import read_edf

from ecgcore.io import SUFFIXES, ECGFormatError, RecordNotFoundError, check_upload_name

_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3, "": 1.0, "nu": 1.0}


@dataclass(frozen=True)
class RecordInfo:
    """What the header says: where the record is, its rate, length and channel names."""

    path: Path
    fs: float
    n_samples: int
    channels: tuple[str, ...]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.fs

    @property
    def name(self) -> str:
        return self.path.name


def _base(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() in (".hea", ".dat", ".atr", ".edf"):
        return path.with_suffix("") if path.suffix.lower() != ".edf" else path
    return path


def record_info(path: str | Path) -> RecordInfo:
    """The header of a WFDB record (path with or without ``.hea``) or an EDF file.

    Raises :class:`~ecgcore.io.RecordNotFoundError` when there is no such record and
    :class:`~ecgcore.io.ECGFormatError` for a header without signals or length.
    """
    base = _base(path)
    is_edf = base.suffix.lower() == ".edf"
    if not (base.is_file() if is_edf else base.with_suffix(".hea").is_file()):
        raise RecordNotFoundError(f"{path}: no WFDB header (.hea) or EDF file there")
    try:
        if is_edf:
            hdr = read_edf(str(base), header_only=True)
            fs, n_sig, sig_len, names = hdr["fs"], hdr["n_sig"], hdr["sig_len"], hdr["sig_name"]
        else:
            hdr = wfdb.rdheader(str(base))
            fs, n_sig, sig_len, names = hdr.fs, hdr.n_sig, hdr.sig_len, hdr.sig_name
    except Exception as exc:  # wfdb raises many types for malformed headers
        raise ECGFormatError(f"{path}: unreadable header ({type(exc).__name__}: {exc})") from exc
    if not n_sig or not sig_len:
        raise ECGFormatError(f"{path}: the header describes no signals or gives no length")
    return RecordInfo(base, float(fs), int(sig_len), tuple(names))


def read_window(info: RecordInfo, start: int, stop: int) -> np.ndarray:
    """Samples ``[start, stop)`` of every channel, ``[channels, samples]`` float64 in mV."""
    start, stop = max(0, int(start)), min(info.n_samples, int(stop))
    if stop <= start:
        return np.zeros((len(info.channels), 0))
    try:
        if info.path.suffix.lower() == ".edf":
            rec = read_edf(str(info.path))  # wfdb reads EDF only whole: not bounded in memory
            signal, units = rec.p_signal[start:stop].T, rec.units
        else:
            rec = wfdb.rdrecord(str(info.path), sampfrom=start, sampto=stop, physical=True)
            signal, units = rec.p_signal.T, rec.units
    except Exception as exc:
        raise ECGFormatError(f"{info.path}: could not read samples {start}-{stop} ({exc})") from exc
    scale = np.array([_TO_MV.get((u or "").strip().lower(), 1.0) for u in units or [""] * signal.shape[0]])
    signal = np.nan_to_num(signal * scale[:, None])
    return signal.astype(np.float64, copy=False)


def windows(n_samples: int, size: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """Analysis windows over ``n_samples``: ``(read_start, read_stop, keep_start, keep_stop)``.

    Consecutive windows overlap by ``2 * overlap`` samples; the results of a window are kept only in
    ``[keep_start, keep_stop)``, and the kept parts tile the record exactly once, so a beat near a
    window edge is found in the window where it lies in the middle.
    """
    if size <= 0:
        raise ValueError("window size must be positive")
    start = 0
    while start < n_samples:
        stop = min(n_samples, start + size)
        yield max(0, start - overlap), min(n_samples, stop + overlap), start, stop
        start = stop


def records_in(folder: str | Path) -> list[Path]:
    """The WFDB records (paths without extension) and EDF files of ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordNotFoundError(f"{folder}: no such folder")
    return sorted([p.with_suffix("") for p in folder.glob("*.hea")] + list(folder.glob("*.edf")))


def save_upload(files: list[tuple[str, bytes]], folder: str | Path) -> Path:
    """Write uploaded ``(name, bytes)`` files into ``folder`` (each atomically) and return the record in
    them: the ``.hea`` (whose signal files must be among them) or the ``.edf``.

    Raises :class:`~ecgcore.io.ECGFormatError` when the files hold no header or EDF file, or the header
    names a signal file that was not uploaded.
    """
    from ecgcore.paths import atomic_write_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [check_upload_name(name, (*SUFFIXES, ".edf")) for name, _ in files]  # no "..", NUL, "/" ...
    for name, data in zip(names, (d for _, d in files)):
        atomic_write_bytes(folder / name, data)
    headers = [n for n in names if n.lower().endswith((".hea", ".edf"))]
    if not headers:
        raise ECGFormatError(
            f"{', '.join(names)}: no WFDB header (.hea) or EDF file among the uploaded files"
        )
    path = folder / headers[0]
    info = record_info(path)
    if path.suffix.lower() == ".hea":
        wanted = set(wfdb.rdheader(str(info.path)).file_name)
        missing = sorted(wanted - set(names))
        if missing:
            raise ECGFormatError(
                f"{headers[0]}: its signal file {', '.join(missing)} was not uploaded with it"
            )
    return info.path
