"""Long records for beat analysis, read through :mod:`ecgcore.io` a window at a time (bounded memory).

Beat analysis keeps every channel of a record under its own name (``channels="any"``: Holter channels are
called ``ECG1``, ``CM5``, ``MLII`` ..., and an uncalibrated channel is fine, since every chunk is rescaled
by its own QRS amplitude). :func:`analysis_windows` lays overlapping windows over a record for detection
and classification: each window is read with a margin on either side and its results are kept only in
its own part, so a beat near a window edge is found where it has context on both sides. A 24-hour, 2-lead,
250 Hz record is 43 million samples; analysis holds a few minutes of them at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcore import io
from ecgcore.io import ECGFormatError, RecordInfo, RecordNotFoundError, check_upload_name
from ecgcore.paths import PROJECT_DIR

#: The channels beat analysis reads (see :data:`ecgcore.io.CHANNELS`).
CHANNELS = "any"
#: A real 15-minute, 2-lead record shipped with the project (QT Database sel853, with its beat labels;
#: attribution and licence in assets/README.md), so the Holter page can be tried without a folder.
EXAMPLE_RECORD = PROJECT_DIR / "assets" / "holter-example" / "sel853"


def open_record(path: str | Path) -> RecordInfo:
    """The header of a WFDB record (path with or without ``.hea``) or an EDF/EDF+ file: rate, length, every
    channel's name (EDF: the voltage channels at the ECG rate; others are skipped, see :mod:`ecgcore.io`)."""
    return io.record_info(path, channels=CHANNELS)


@dataclass(frozen=True)
class Window:
    """Samples ``[start, start + n)`` of every channel (``signal``, ``[channels, n]`` mV) whose results are
    kept in ``[keep_start, keep_stop)`` (indices into the whole record)."""

    signal: np.ndarray
    start: int
    keep_start: int
    keep_stop: int


def analysis_windows(info: RecordInfo, window_s: float, margin_s: float) -> Iterator[Window]:
    """Windows of ``window_s`` (:func:`ecgcore.io.iter_chunks`), each read with ``margin_s`` either side;
    their kept parts ``[k * window, (k + 1) * window)`` tile the record exactly once."""
    size, margin = round(window_s * info.fs), round(margin_s * info.fs)
    if size <= 0:
        raise ValueError("window size must be positive")
    # the first window has no margin before it; the others start a margin before their kept part
    first = io.iter_chunks(info.path, (size + margin) / info.fs, channels=CHANNELS)
    rest = (
        io.iter_chunks(
            info.path,
            (size + 2 * margin) / info.fs,
            2 * margin / info.fs,
            channels=CHANNELS,
            start_s=(size - margin) / info.fs,
        )
        if info.n_samples > size + margin  # else the first window, margin included, reaches the end
        else iter(())
    )
    for chunk in itertools.chain(itertools.islice(first, 1), rest):
        stop = chunk.start + chunk.signal.shape[1]
        keep_start = 0 if chunk.start == 0 else chunk.start + margin
        yield Window(
            chunk.signal, chunk.start, keep_start, chunk.total if stop >= chunk.total else keep_start + size
        )


def read_span(info: RecordInfo, start: int, stop: int) -> np.ndarray:
    """Samples ``[start, stop)`` of every channel, ``[channels, samples]`` mV (a strip of a long record)."""
    start, stop = max(0, int(start)), min(info.n_samples, int(stop))
    if stop <= start:
        return np.zeros((len(info.leads), 0), dtype=np.float32)
    chunk = next(
        io.iter_chunks(info.path, (stop - start) / info.fs, channels=CHANNELS, start_s=start / info.fs)
    )
    return chunk.signal[:, : stop - start]


def records_in(folder: str | Path) -> list[Path]:
    """The records of ``folder``, sorted by name: WFDB records (paths without extension) and EDF files
    (their ``.edf`` path; one without extension would be the WFDB record of the same name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordNotFoundError(f"{folder}: no such folder")
    wfdb_records = [p.with_suffix("") for p in folder.glob("*.hea")]
    edf = [p for p in folder.iterdir() if p.suffix.lower() == ".edf" and p.is_file()]
    return sorted(wfdb_records + edf, key=lambda p: (p.name, p.suffix))


def save_upload(files: list[tuple[str, bytes]], folder: str | Path) -> Path:
    """Write uploaded ``(name, bytes)`` files into ``folder`` (each atomically) and return the record in
    them: a WFDB record (its path without ``.hea``; the header's signal files must be among them), else
    an EDF file (its path).

    Raises :class:`~ecgcore.io.ECGFormatError` when the files hold no header or EDF, or the record is not
    one :mod:`ecgcore.io` reads (a signal file the header names was not uploaded, ...).
    """
    from ecgcore.paths import atomic_write_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [check_upload_name(name) for name, _ in files]  # no "..", NUL, "/" ...
    for name, data in zip(names, (d for _, d in files)):
        atomic_write_bytes(folder / name, data)
    headers = [n for n in names if n.lower().endswith(".hea")]
    if headers:
        header = folder / headers[0]
        open_record(header)  # names a signal file the header wants that was not uploaded
        return header.with_suffix("")
    edf = [n for n in names if n.lower().endswith(".edf")]
    if not edf:
        raise ECGFormatError(
            f"{', '.join(names)}: no WFDB header (.hea) or EDF file among the uploaded files"
        )
    open_record(folder / edf[0])
    return folder / edf[0]
