"""Read one ECG record from any supported file into one record type.

Supported sources
-----------------
* WFDB: ``.hea`` + ``.dat`` (any format wfdb reads), read with :func:`wfdb.rdrecord`.
* WFDB, PhysioNet/CinC Challenge form: ``.hea`` + ``.mat`` (a MATLAB file holding the digital
  samples as a ``val`` matrix ``[leads, samples]``; gains and baselines come from the header).
  Read with :func:`scipy.io.loadmat`, which handles MATLAB v4 and v5 files alike, always whole: a
  v5 file cannot be read in parts, so a ``.mat`` record of more than :data:`MAT_MAX_VALUES` samples
  (all channels) is refused with that reason; convert it to WFDB ``.dat`` to read it window by window.
* DeepFake ECG ``.asc``: 5000 rows x 8 whitespace-separated integer columns in microvolts,
  leads I, II, V1-V6, 500 Hz (the layout ``deepfakeecg.generate`` writes). Never more than 5001 rows
  are parsed, so a long file is refused without being read.
* CSV: one named column per lead (``I``, ``aVR``, ``V1`` ... in any usual spelling), values in
  millivolts; the caller gives the sampling rate. :func:`record_info`, :func:`iter_chunks`,
  :func:`read_window` and :func:`record_envelope` parse it :data:`CSV_CHUNK_ROWS` rows at a time, so
  a CSV of any length is read in bounded memory; :func:`read_record` reads it whole.
* EDF and EDF+ (continuous, ``EDF+C``): read with :mod:`pyedflib`, a sample range at a time, so a day-long
  Holter file is read in bounded memory. The ECG channels must share one rate; channels at other rates
  (accelerometer, respiration ...) and channels whose unit is not a voltage are skipped and named in
  ``metadata["skipped_channels"]``. Physical values are converted to millivolts from each channel's unit.

:func:`read_upload` (the pages that need a whole record) refuses an upload of more than ``max_bytes``.

Every problem with a file raises :class:`ECGFormatError` (a ``ValueError``) whose message starts
with the file and says what is wrong, so the command line and the pages can show it as it is.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import stat
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io
import wfdb
from scipy.signal import resample_poly
from wfdb.io._signal import BYTES_PER_SAMPLE, DAT_FMTS

from ecgcore.paths import atomic_write_bytes
from ecgcore.vocab import LEADS_8, LIMB_DERIVED, canonical_lead

#: The DeepFake ``.asc`` layout (fixed: the files carry no header).
ASC_LEADS: tuple[str, ...] = LEADS_8
ASC_FS: float = 500.0
ASC_SAMPLES: int = 5000
#: Suffixes :func:`read_record` recognises, and the ones tried when a path has none.
SUFFIXES: tuple[str, ...] = (".hea", ".dat", ".mat", ".asc", ".csv", ".edf")
_PROBE_ORDER: tuple[str, ...] = (".hea", ".edf", ".asc", ".csv")
#: Which channels a long-record reader keeps: ``"ecg"`` the standard ECG leads (renamed canonically),
#: ``"any"`` every signal channel under its own name (Holter channels such as ``ECG1``, ``CM5``, ``MLII``),
#: an uncalibrated one (ADC gain 0) read at WFDB's default gain of 200 and named in
#: ``metadata["uncalibrated"]``: for analyses that rescale each record themselves (beat analysis).
CHANNELS: tuple[str, ...] = ("ecg", "any")
#: Rows of a CSV parsed at a time by the windowed readers (about 10 MB of float64 at 12 leads).
CSV_CHUNK_ROWS = 100_000
#: Samples (all channels together) a Challenge ``.mat`` may hold: it is read whole (512 MB as float64).
MAT_MAX_VALUES = 64_000_000
#: What the pages that work on a whole record (prediction, saliency, images) read of an upload at most:
#: a 10-second 12-lead CSV is about 1 MB; a long record belongs in the windowed readers.
UPLOAD_WHOLE_MAX_BYTES = 64 * 2**20
#: Factor that converts a WFDB physical unit to millivolts.
_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


class ECGFormatError(ValueError):
    """A record that cannot be read as asked; the message names the file and the problem."""


class RecordNotFoundError(ECGFormatError, FileNotFoundError):
    """No record exists at the given path (under any supported extension)."""


def _error(path: Path | str | None, problem: str) -> ECGFormatError:
    return ECGFormatError(f"{path}: {problem}" if path is not None else problem)


@dataclass
class Record:
    """One ECG: float32 millivolts ``[leads, samples]`` with its rate, lead names and metadata."""

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    record_id: str
    path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, which the readers refuse by name
            self.signal = np.asarray(self.signal, dtype=np.float32)
        self.leads = tuple(self.leads)
        self.fs = float(self.fs)
        if self.signal.ndim != 2 or self.signal.shape[0] != len(self.leads):
            raise _error(
                self.path,
                f"signal of shape {self.signal.shape} does not match {len(self.leads)} leads {self.leads}",
            )

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.signal.shape[1] / self.fs

    def select(self, leads: Iterable[str], derive: bool = True) -> Record:
        """Return the given leads, in the given order.

        With ``derive`` (default), III, aVR, aVL and aVF that the record lacks are computed from
        I and II (Einthoven and Goldberger); their names are listed in ``metadata["derived"]``.

        Raises
        ------
        ECGFormatError
            If a lead is neither present nor derivable; the message names it and the leads present.
        """
        wanted = [canonical_lead(lead) for lead in leads]
        have = {name: i for i, name in enumerate(self.leads)}
        rows, derived = [], []
        for lead in wanted:
            if lead in have:
                rows.append(self.signal[have[lead]])
            elif derive and lead in LIMB_DERIVED and "I" in have and "II" in have:
                rows.append(_derive_limb(lead, self.signal[have["I"]], self.signal[have["II"]]))
                derived.append(lead)
            else:
                hint = (
                    " (III, aVR, aVL, aVF can be derived only when I and II are present)"
                    if lead in LIMB_DERIVED and derive
                    else ""
                )
                raise _error(
                    self.path or self.record_id,
                    f"missing lead {lead}; the record has {', '.join(self.leads)}{hint}",
                )
        metadata = dict(self.metadata)
        if derived:
            metadata["derived"] = sorted(set(metadata.get("derived", [])) | set(derived))
        return replace(
            self,
            signal=np.stack(rows) if rows else np.zeros((0, self.signal.shape[1]), np.float32),
            leads=tuple(wanted),
            metadata=metadata,
        )

    def resample(self, fs: float) -> Record:
        """Return the record at ``fs`` Hz, resampled with a polyphase filter (:func:`scipy.signal.resample_poly`)."""
        if float(fs) == self.fs:
            return self
        ratio = Fraction(float(fs)).limit_denominator(10_000) / Fraction(self.fs).limit_denominator(10_000)
        signal = resample_poly(self.signal, ratio.numerator, ratio.denominator, axis=1)
        return replace(self, signal=signal.astype(np.float32), fs=float(fs))


def _derive_limb(lead: str, lead_i: np.ndarray, lead_ii: np.ndarray) -> np.ndarray:
    """III, aVR, aVL or aVF from leads I and II."""
    formulas = {
        "III": lambda: lead_ii - lead_i,
        "aVR": lambda: -(lead_i + lead_ii) / 2,
        "aVL": lambda: lead_i - lead_ii / 2,
        "aVF": lambda: lead_ii - lead_i / 2,
    }
    return formulas[lead]().astype(np.float32)


def read_record(
    path: str | Path,
    *,
    fs: float | None = None,
    leads: Iterable[str] | None = None,
    target_fs: float | None = None,
    min_duration: float | None = None,
) -> Record:
    """Read a record from a WFDB, Challenge ``.mat``, DeepFake ``.asc`` or CSV file.

    Parameters
    ----------
    path
        The file, or the record's path without extension (``records500/06000/06000_hr``).
    fs
        Sampling rate in Hz; required for CSV, and checked against the file's own rate otherwise.
    leads
        Leads to return, in this order (missing limb leads are derived from I and II).
    target_fs
        Resample to this rate (polyphase).
    min_duration
        Refuse records shorter than this many seconds.

    Raises
    ------
    RecordNotFoundError
        No file at ``path`` under any supported extension.
    ECGFormatError
        Anything wrong with the file: unknown format, truncated or inconsistent data, non-finite
        samples, a missing lead, a record that is too short, an empty CSV.
    """
    source, kind = _resolve(Path(path))
    record = _READERS[kind](source, fs)
    if fs is not None and kind != "csv" and not math.isclose(float(fs), record.fs):
        raise _error(source, f"the file is sampled at {record.fs:g} Hz, not the {float(fs):g} Hz given")
    _check_finite(record)
    if min_duration is not None and record.duration + 1e-9 < min_duration:
        raise _error(
            source, f"record is {record.duration:.2f} s long, shorter than the {min_duration:g} s asked for"
        )
    if leads is not None:
        record = record.select(leads)
    if target_fs is not None:
        record = record.resample(target_fs)
    return record


def record_info(path: str | Path, *, fs: float | None = None, channels: str = "ecg") -> RecordInfo:
    """What a record holds (rate, length, ECG leads) without reading its signal (for WFDB: the header only).

    ``fs`` is required for CSV, as in :func:`read_record`; ``channels`` as in :data:`CHANNELS`. Raises
    the same errors.
    """
    source, kind = _resolve(Path(path))
    if kind == "wfdb":
        parsed = _wfdb_header(source, channels)
        if parsed.is_mat:
            _read_mat_samples(source, source.parent / parsed.files[0], parsed.hdr)  # checks it matches
        else:
            for name in parsed.files:
                _check_signal_file_size(source, source.parent / name, parsed.hdr)
        fmt = "wfdb-mat" if parsed.is_mat else "wfdb"
        return RecordInfo(
            source,
            source.name[: -len(".hea")],
            float(parsed.hdr.fs),
            int(parsed.hdr.sig_len),
            parsed.leads,
            fmt,
        )
    if kind == "edf":
        edf = _edf_header(source, channels)
        return RecordInfo(source, source.stem, edf.fs, edf.n_samples, edf.leads, edf.format)
    if kind == "csv":
        rows = _CsvRows(source, fs)
        return RecordInfo(source, source.stem, rows.fs, rows.count(), rows.layout.leads, "csv")
    record = _READERS[kind](source, fs)
    return RecordInfo(
        source, record.record_id, record.fs, record.signal.shape[1], record.leads, record.metadata["format"]
    )


@dataclass
class RecordChunk(Record):
    """A window of a longer record: ``start`` is its first sample in the whole record of ``total`` samples."""

    start: int = 0
    total: int = 0

    @property
    def start_s(self) -> float:
        """Where the window starts, in seconds from the record's start."""
        return self.start / self.fs


@dataclass(frozen=True)
class _Ranged:
    """A record opened for reading sample ranges: its rate, length and a reader of ``[start, stop)``."""

    fs: float
    total: int
    read: Any  # Callable[[int, int], Record]


@contextmanager
def _open_ranged(source: str | Path | Record, fs: float | None, channels: str = "ecg") -> Iterator[_Ranged]:
    """Open a record for range reads while the block runs: a WFDB ``.dat`` or an EDF is read only over each
    range asked for (an EDF through one reader, closed when the block ends or fails), a CSV
    :data:`CSV_CHUNK_ROWS` rows at a time (:class:`_CsvRows`); ``.mat`` and ``.asc`` (short, or refused when
    long) are read whole once and cut; a :class:`Record` is cut."""
    with ExitStack() as stack:
        yield _ranged(source, fs, channels, stack)


def _ranged(source: str | Path | Record, fs: float | None, channels: str, stack: ExitStack) -> _Ranged:
    """The :class:`_Ranged` of :func:`_open_ranged`; what must be closed is entered in ``stack``."""
    if isinstance(source, Record):
        whole = source
    else:
        path, kind = _resolve(Path(source))
        parsed = _wfdb_header(path, channels) if kind == "wfdb" else None
        if parsed is not None and not parsed.is_mat:
            for name in parsed.files:
                _check_signal_file_size(path, path.parent / name, parsed.hdr)

            return _Ranged(
                float(parsed.hdr.fs), int(parsed.hdr.sig_len), _finite_reads(partial(_wfdb_range, parsed))
            )
        if kind == "csv":
            rows = _CsvRows(path, fs)
            return _Ranged(rows.fs, rows.count(), _finite_reads(rows.read))
        if kind == "edf":
            edf = _edf_header(path, channels)
            reader = stack.enter_context(_edf_reader(path))
            return _Ranged(edf.fs, edf.n_samples, _finite_reads(partial(_edf_range, edf, reader=reader)))
        whole = _READERS[kind](path, fs)
        _check_finite(whole)
    return _Ranged(whole.fs, whole.signal.shape[1], lambda a, b: replace(whole, signal=whole.signal[:, a:b]))


def _finite_reads(read: Callable[[int, int], Record]) -> Callable[[int, int], Record]:
    """``read`` of sample ranges, each piece checked for non-finite samples."""

    def checked(start: int, stop: int) -> Record:
        piece = read(start, stop)
        _check_finite(piece)
        return piece

    return checked


def _chunk(piece: Record, start: int, total: int, leads: Iterable[str] | None) -> RecordChunk:
    if leads is not None:
        piece = piece.select(leads)
    return RecordChunk(
        piece.signal,
        piece.fs,
        piece.leads,
        piece.record_id,
        piece.path,
        piece.metadata,
        start=start,
        total=total,
    )


def _check_window(seconds: float, overlap_s: float = 0.0) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"window of {seconds!r} s: give a positive number of seconds")
    if not (math.isfinite(overlap_s) and 0 <= overlap_s < seconds):
        raise ValueError(f"overlap of {overlap_s!r} s: give 0 or more, less than the {seconds:g} s window")


def _windows(
    total: int, rate: float, seconds: float, overlap_s: float, first: int = 0
) -> Iterator[tuple[int, int]]:
    window = max(1, round(seconds * rate))
    step = max(1, window - round(overlap_s * rate))
    for start in range(first, total, step):
        stop = min(start + window, total)
        yield start, stop
        if stop >= total:
            return


def iter_chunks(
    path: str | Path | Record,
    seconds: float,
    overlap_s: float = 0.0,
    *,
    fs: float | None = None,
    leads: Iterable[str] | None = None,
    channels: str = "ecg",
    start_s: float = 0.0,
) -> Iterator[RecordChunk]:
    """Consecutive windows of ``seconds`` (the last may be shorter), each ``seconds - overlap_s`` after the last.

    A WFDB ``.dat`` record is read window by window (``wfdb.rdrecord(sampfrom, sampto)``) and a CSV
    :data:`CSV_CHUNK_ROWS` rows at a time (one pass to count and check its rows, one to read), so memory
    stays that of one window whatever the record's length; ``.mat`` and ``.asc`` files (short, or
    refused when long) are read whole and cut; a :class:`Record` already in memory is cut. ``leads`` selects (and
    derives) leads as in :meth:`Record.select`; ``channels="any"`` keeps a WFDB record's every channel
    (:data:`CHANNELS`); the first window begins ``start_s`` seconds into the record (a strip of a long
    record: ``next(iter_chunks(p, 10, start_s=t))``).

    Raises
    ------
    ECGFormatError
        As :func:`read_record`; also for a non-positive window or an overlap not shorter than it.
    """
    _check_window(seconds, overlap_s)
    if not (math.isfinite(start_s) and start_s >= 0):
        raise ValueError(f"start of {start_s!r} s: give 0 or more seconds")
    with _open_ranged(path, fs, channels) as ranged:
        first = min(round(start_s * ranged.fs), max(ranged.total - 1, 0))
        yield from _ranged_chunks(ranged, seconds, overlap_s, first, leads)


def _ranged_chunks(
    ranged: _Ranged,
    seconds: float,
    overlap_s: float = 0.0,
    first: int = 0,
    leads: Iterable[str] | None = None,
) -> Iterator[RecordChunk]:
    """The windows of :func:`iter_chunks` of a record already opened (:func:`_open_ranged`)."""
    for start, stop in _windows(ranged.total, ranged.fs, seconds, overlap_s, first):
        yield _chunk(ranged.read(start, stop), start, ranged.total, leads)


def read_window(
    path: str | Path | Record, start_s: float, seconds: float, *, fs: float | None = None
) -> RecordChunk:
    """``seconds`` of a record (a file, or a :class:`Record` in memory) from ``start_s``, kept inside the
    record, as a :class:`RecordChunk`.

    Only that range of a WFDB ``.dat`` or EDF is read, so a window of a 24-hour record costs what the window
    does; a CSV is parsed once through in chunks, counting and checking its rows and keeping the window's
    (bounded memory, time growing with the file's length). Raises as :func:`read_record`, and
    ``ValueError`` for a non-finite start or a non-positive length.
    """
    if not (math.isfinite(start_s) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"window of {seconds!r} s from {start_s!r} s: give a finite start and a positive length"
        )
    if not isinstance(path, Record):
        source, kind = _resolve(Path(path))
        if kind == "csv":  # one pass, not one to count the rows and one to the window
            rows = _CsvRows(source, fs)
            piece, start, total = rows.window(
                max(0, round(start_s * rows.fs)), max(1, round(seconds * rows.fs))
            )
            _check_finite(piece)
            return _chunk(piece, start, total, None)
    with _open_ranged(path, fs) as ranged:
        length = min(ranged.total, max(1, round(seconds * ranged.fs)))
        start = min(max(0, round(start_s * ranged.fs)), ranged.total - length)
        return _chunk(ranged.read(start, start + length), start, ranged.total, None)


#: Points (bins) of a record's overview per lead, whatever its length.
OVERVIEW_BINS = 2000
#: Samples (all leads together) read per chunk while an overview is computed: about 8 MB as float32.
OVERVIEW_CHUNK_SAMPLES = 2_000_000


@dataclass(frozen=True)
class Envelope:
    """A record's overview: the lowest and highest sample of each lead in each of ``n_bins`` equal bins.

    Bin ``i`` holds samples ``[edges[i], edges[i + 1])``; ``low`` and ``high`` are ``[leads, bins]`` mV.
    Its size is fixed by the number of bins, not by the record's length.
    """

    fs: float
    total: int
    leads: tuple[str, ...]
    record_id: str
    edges: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def duration(self) -> float:
        """Length of the whole record in seconds."""
        return self.total / self.fs

    @property
    def starts_s(self) -> np.ndarray:
        """Where each bin starts, in seconds."""
        return self.edges[:-1] / self.fs


def bin_edges(total: int, n_bins: int = OVERVIEW_BINS) -> np.ndarray:
    """``min(n_bins, total) + 1`` sample indices cutting ``total`` samples into near-equal bins."""
    n = max(1, min(int(n_bins), int(total)))
    return (np.arange(n + 1, dtype=np.int64) * int(total)) // n


def envelope(chunks: Iterable[RecordChunk], n_bins: int = OVERVIEW_BINS) -> Envelope:
    """The :class:`Envelope` of a record given as consecutive chunks (:func:`iter_chunks`).

    Each chunk is folded into the bins it covers and dropped, so memory is one chunk plus the bins;
    the result is the same whatever the chunk size (a minimum of minima is the minimum).
    """
    edges = low = high = None
    first = None  # the record's description, not its first chunk's samples
    for chunk in chunks:
        if first is None:
            first = (chunk.fs, chunk.total, chunk.leads, chunk.record_id)
            edges = bin_edges(chunk.total, n_bins)
            low = np.full((len(chunk.leads), len(edges) - 1), np.inf, dtype=np.float32)
            high = np.full_like(low, -np.inf)
        stop = chunk.start + chunk.signal.shape[1]
        if stop <= chunk.start:
            continue
        b0 = int(np.searchsorted(edges, chunk.start, side="right")) - 1
        b1 = int(np.searchsorted(edges, stop, side="left"))
        cuts = np.clip(edges[b0:b1], chunk.start, stop) - chunk.start
        low[:, b0:b1] = np.minimum(low[:, b0:b1], np.minimum.reduceat(chunk.signal, cuts, axis=1))
        high[:, b0:b1] = np.maximum(high[:, b0:b1], np.maximum.reduceat(chunk.signal, cuts, axis=1))
        del chunk  # not kept while the next one is read
    if first is None:
        raise ValueError("no samples: an empty record has no overview")
    return Envelope(*first, edges, low, high)


def record_envelope(
    path: str | Path | Record, *, fs: float | None = None, n_bins: int = OVERVIEW_BINS
) -> Envelope:
    """The :class:`Envelope` of a record file (or a :class:`Record`), read in chunks of about
    :data:`OVERVIEW_CHUNK_SAMPLES` samples (all leads together)."""
    with _open_ranged(path, fs) as ranged:  # opened once: a CSV is counted once, not again by record_info
        n_leads = len(ranged.read(0, 1).leads)  # the first sample: a CSV's pass goes on from there
        seconds = max(1.0, OVERVIEW_CHUNK_SAMPLES / (ranged.fs * max(1, n_leads)))
        return envelope(_ranged_chunks(ranged, seconds), n_bins)


#: Longest file name (UTF-8 bytes) most file systems allow.
MAX_NAME_BYTES = 255


def check_upload_name(name: str, suffixes: tuple[str, ...] = SUFFIXES) -> str:
    """An uploaded file's name, if it is a plain file name of a supported type; else ``ECGFormatError``.

    Refused: empty names, ``.`` and ``..``, names with a path separator or a NUL, names longer
    than a file name may be, and suffixes other than ``suffixes`` (the message says which).
    """
    shown = repr(name[:60] + ("..." if len(name) > 60 else ""))
    if not name or not name.strip():
        raise ECGFormatError("an uploaded file has an empty name")
    if "\0" in name or "/" in name or "\\" in name:
        raise ECGFormatError(f"upload {shown}: a file name may not hold '/', '\\' or NUL characters")
    if name.strip(".") == "":
        raise ECGFormatError(f"upload {shown}: not a file name")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ECGFormatError(
            f"upload {shown}: a name of {len(name)} characters is longer than a file name may be "
            f"({MAX_NAME_BYTES} bytes); rename the file"
        )
    suffix = Path(name).suffix.lower()
    if not suffix and name.startswith(".") and name.lower() in suffixes:
        raise ECGFormatError(
            f"upload {shown}: the name is only an extension; name the file, e.g. record{name}"
        )
    if suffix not in suffixes:
        raise ECGFormatError(
            f"upload {name}: unsupported type {suffix or '(no extension)'}; expected {', '.join(suffixes)}"
        )
    return name


def save_upload(files: Iterable[tuple[str, bytes]], folder: str | Path) -> Path:
    """Write uploaded ``(name, contents)`` files into ``folder`` (names checked, each written atomically)
    and return the record's main file: the ``.hea``, else the ``.edf``, the ``.asc``, the ``.csv``.

    Raises
    ------
    ECGFormatError
        A bad file name (:func:`check_upload_name`), or no record's main file among the files.
    """
    files = [(check_upload_name(name), data) for name, data in files]
    folder = Path(folder)
    main = _main_file(folder, [name for name, _ in files])
    for name, data in files:
        atomic_write_bytes(folder / name, data)
    return main


def _main_file(folder: Path, names: list[str]) -> Path:
    """The record's main file among uploaded ``names``: the ``.hea``, else the ``.edf``, the ``.asc``, the ``.csv``."""
    for suffix in (".hea", ".edf", ".asc", ".csv"):
        main = [name for name in names if Path(name).suffix.lower() == suffix]
        if main:
            return folder / main[0]
    raise ECGFormatError(
        f"{', '.join(names)}: no record among the uploaded files; "
        "expected a WFDB .hea (with its .dat or .mat), an EDF, a DeepFake .asc or a CSV"
    )


def stage_upload(files: Iterable[tuple[str, bytes]], root: str | Path, keep: int = 4) -> Path:
    """Keep uploaded files on disk, so that a long record can be read window by window while it is viewed.

    The files go to ``root/<digest of names and contents>/`` (written once: a second call with the
    same files only marks the folder used); the ``keep`` most recently used folders stay, older ones
    are removed. Returns the record's main file, as :func:`save_upload` does.
    """
    files = [(check_upload_name(name), data) for name, data in files]
    digest = hashlib.blake2b(digest_size=12)
    for name, data in sorted(files):
        digest.update(name.encode("utf-8") + b"\0" + len(data).to_bytes(8, "little") + data)
    root = Path(root)
    folder = root / digest.hexdigest()
    done = folder / ".complete"
    if not done.is_file():
        save_upload(files, folder)
        atomic_write_bytes(done, b"")
    done.touch()
    staged = sorted(
        (p for p in root.iterdir() if (p / ".complete").is_file()),
        key=lambda p: (p / ".complete").stat().st_mtime,
        reverse=True,
    )
    for old in staged[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return _main_file(folder, [name for name, _ in files])


def read_upload(
    files: Iterable[tuple[str, bytes]], fs: float | None = None, max_bytes: int | None = None
) -> Record:
    """Read uploaded ``(name, contents)`` files as one record: the ``.hea`` (with its signal file), else
    the ``.edf``, the ``.asc``, the ``.csv`` (which needs ``fs``).

    The files are written to a private temporary folder that is removed afterwards; messages name
    the uploaded files only, never that folder. ``max_bytes``: refuse files larger than that together,
    before anything is parsed (a page that works on a whole record passes
    :data:`UPLOAD_WHOLE_MAX_BYTES`; a long record is read window by window, :func:`iter_chunks`).

    Raises
    ------
    ECGFormatError
        A bad file name (:func:`check_upload_name`), files that do not form one readable record, or
        more than ``max_bytes``.
    """
    files = list(files)
    size = sum(len(data) for _, data in files)
    if max_bytes is not None and size > max_bytes:
        raise ECGFormatError(
            f"{', '.join(name for name, _ in files)}: {size / 2**20:.3g} MB, more than the "
            f"{max_bytes / 2**20:.3g} MB read whole here (the record is used whole, e.g. for a 10 s "
            "prediction); cut out the part you need, or view a long record window by window in the ECG "
            "Explorer"
        )
    with tempfile.TemporaryDirectory(prefix="ecglab-upload-") as tmp:
        return read_saved_upload(save_upload(files, tmp), [name for name, _ in files], fs)


def read_saved_upload(main: Path, names: list[str], fs: float | None = None) -> Record:
    """The record of uploaded files ``names`` already written beside their main file ``main`` (by
    :func:`save_upload` or :func:`stage_upload`): its path and messages name the uploaded file only, never
    the folder it was put in. ``fs`` is used for a CSV only."""
    try:
        rec = read_record(main, fs=fs if main.suffix.lower() == ".csv" else None)
    except ECGFormatError as exc:
        raise ECGFormatError(hide_folder(str(exc), main.parent)) from None
    rec.path = Path(main.name)
    rec.metadata["uploaded"] = list(names)
    return rec


def hide_folder(message: str, folder: Path) -> str:
    """``message`` without ``folder`` (where an upload was put): it names the uploaded files only."""
    return message.replace(f"{folder}/", "").replace(str(folder), "")


def _resolve(path: Path) -> tuple[Path, str]:
    """The file to read (a header for WFDB) and its kind; never opens anything but a regular file."""
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix in (".dat", ".mat", ".hea"):
            header = path.with_suffix(".hea")
            if not header.is_file():
                raise _error(path, f"no WFDB header {header.name} next to the signal file")
            return header, "wfdb"
        if suffix in (".asc", ".csv", ".edf"):
            return path, suffix[1:]
        raise _error(
            path, f"unknown ECG format {suffix or '(no extension)'!r}; expected one of {', '.join(SUFFIXES)}"
        )
    for ext in _PROBE_ORDER:
        candidate = path.with_name(path.name + ext)
        if candidate.is_file():
            return _resolve(candidate)
    for candidate in (path, *(path.with_name(path.name + ext) for ext in _PROBE_ORDER)):
        _check_regular(candidate)  # a directory, FIFO or link loop by that name: say so
    raise RecordNotFoundError(f"{path}: no such record (tried the path itself and {', '.join(_PROBE_ORDER)})")


def _check_regular(path: Path) -> None:
    """Refuse a directory, a FIFO or device, or a symbolic link that loops or leads nowhere, by name."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise _error(path, "a symbolic link to a missing file, not a record") from None
        return
    except OSError as exc:  # ELOOP, a name too long ...
        raise _error(path, f"cannot be opened as a record ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise _error(path, "is a directory, not a record file (give the record's .hea, .asc or .csv)")
    if not stat.S_ISREG(mode):
        raise _error(path, "is not a regular file (a FIFO, socket or device), not a record")


def _canonical_channels(path: Path, names: list[str]) -> tuple[list[int], tuple[str, ...], list[str]]:
    """Indices and canonical names of the ECG leads among ``names``; other channels are dropped."""
    keep, leads, dropped = [], [], []
    for i, name in enumerate(names):
        try:
            leads.append(canonical_lead(name))
            keep.append(i)
        except ValueError:
            dropped.append(str(name))
    if not keep:
        raise _error(
            path, f"no standard ECG lead among the channels {', '.join(map(str, names)) or '(none)'}"
        )
    duplicates = [lead for lead, n in Counter(leads).items() if n > 1]
    if duplicates:
        raise _error(path, f"lead(s) {', '.join(duplicates)} appear more than once")
    return keep, tuple(leads), dropped


@dataclass(frozen=True)
class RecordInfo:
    """What a record holds, read from its header alone (no signal read): see :func:`record_info`."""

    path: Path
    record_id: str
    fs: float
    n_samples: int
    leads: tuple[str, ...]
    format: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.fs


@dataclass(frozen=True)
class _WfdbHeader:
    """A WFDB header, parsed by wfdb and checked here; the ECG channels to keep and their names."""

    path: Path
    hdr: wfdb.Record
    files: tuple[str, ...]
    keep: list[int]
    leads: tuple[str, ...]
    dropped: list[str]
    uncalibrated: tuple[str, ...] = ()

    @property
    def is_mat(self) -> bool:
        return all(name.lower().endswith(".mat") for name in self.files)


#: Record names wfdb's header parser accepts (others are read through an alias).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def _header_lines(header: Path) -> list[str]:
    """The header's lines without comments and blank lines."""
    try:
        text = header.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(header, f"not a WFDB header: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise _error(header, f"cannot read the header ({exc.strerror or exc})") from exc
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@contextmanager
def _wfdb_name(header: Path) -> Iterator[str]:
    """A record name wfdb can open for ``header``.

    wfdb's parser refuses record and file names with spaces, dots or non-Latin letters
    (``my record``, ``rec.v2``, ``ЭКГ-тест``), so such a record is read through an alias: a
    temporary folder holding the header with plain names and links to the signal files.
    """
    base = header.with_name(header.name[: -len(".hea")])
    stem = base.name
    if _SAFE_NAME.fullmatch(stem):
        yield str(base)
        return
    lines = header.read_text(encoding="utf-8").splitlines()
    named = re.compile(re.escape(stem) + r"(\.[^\s]*)?(?=\s|$)")
    with tempfile.TemporaryDirectory(prefix="ecglab-wfdb-") as tmp:
        record_line_done = False
        for i, line in enumerate(lines):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = named.match(line.lstrip())
            if not match:
                record_line_done = True
                continue
            indent = line[: len(line) - len(line.lstrip())]
            if not record_line_done:  # the record line: ``name[/segments] n_sig fs ...``
                lines[i] = indent + "record" + line.lstrip()[len(stem) :]
                record_line_done = True
                continue
            alias = "record" + (match.group(1) or "")
            target = base.parent / match.group(0)
            link = Path(tmp) / alias
            if not link.exists() and target.exists():
                link.symlink_to(target.resolve())
            lines[i] = indent + alias + line.lstrip()[len(match.group(0)) :]
        (Path(tmp) / "record.hea").write_text("\n".join(lines) + "\n", encoding="utf-8")
        yield str(Path(tmp) / "record")


def _check_header_text(header: Path, uncalibrated_ok: bool = False) -> tuple[str, ...]:
    """What wfdb lets through: a signal count that disagrees with the signal lines, a bad sampling rate.

    Returns the signals with an ADC gain of 0 (refused unless ``uncalibrated_ok``)."""
    lines = _header_lines(header)
    if not lines:
        raise _error(header, "empty WFDB header: no record line")
    line, stem = lines[0].strip(), header.name[: -len(".hea")]
    if line.startswith(stem) and line[len(stem) : len(stem) + 1] in ("", " ", "\t", "/"):
        rest = line[len(stem) :]  # the record's own name, which may hold spaces
    else:
        rest = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
    if rest.startswith("/"):
        return ()  # a multi-segment header: wfdb checks its segment lines
    fields = rest.split()
    if not fields:
        raise _error(header, f"the record line {line!r} gives no number of signals")
    n_sig = fields[0]
    if not n_sig.isdigit():
        raise _error(header, f"the number of signals {n_sig!r} on the record line is not a whole number")
    if len(fields) > 1:
        rate = fields[1].split("/")[0].split("(")[0]
        try:
            fs = float(rate)
        except ValueError:
            raise _error(header, f"the sampling rate {rate!r} on the record line is not a number") from None
        if not (math.isfinite(fs) and fs > 0):
            raise _error(header, f"the sampling rate {rate!r} on the record line is not a positive number")
    if int(n_sig) != len(lines) - 1:
        raise _error(
            header,
            f"the record line says {int(n_sig)} signal(s) but the header has {len(lines) - 1} signal line(s)",
        )
    zero = []
    for number, signal_line in enumerate(lines[1:], start=1):
        named = re.match(re.escape(stem) + r"\S*\s", signal_line.strip())
        fields = signal_line.strip()[named.end() :].split() if named else signal_line.split()[1:]
        gain = (
            re.match(r"[-+]?[\d.]*(e[-+]?\d+)?", fields[1], re.IGNORECASE).group(0) if len(fields) > 1 else ""
        )
        try:
            if gain and float(gain) == 0:  # WFDB reads 0 as "uncalibrated" and silently assumes 200
                zero.append(" ".join(fields[7:]) or f"on signal line {number}")
        except ValueError:
            continue
    if zero and not uncalibrated_ok:
        raise _error(
            header, f"an ADC gain of 0 for signal(s) {', '.join(zero)}: the samples cannot be scaled"
        )
    return tuple(zero)


def _wfdb_header(header: Path, channels: str = "ecg") -> _WfdbHeader:
    """Parse and check a WFDB header (via wfdb, plus the checks wfdb does not make); ``channels``: :data:`CHANNELS`."""
    if channels not in CHANNELS:
        raise ValueError(f"channels={channels!r}: expected one of {', '.join(CHANNELS)}")
    uncalibrated = _check_header_text(header, uncalibrated_ok=channels == "any")
    try:
        with _wfdb_name(header) as name:
            hdr = wfdb.rdheader(name)
    except ECGFormatError:
        raise
    except Exception as exc:  # wfdb raises many types for malformed headers
        raise _error(header, f"unreadable WFDB header: {exc}") from exc
    if not hdr.n_sig or not hdr.file_name:
        raise _error(header, "the header describes no signals")
    if not hdr.sig_len:
        raise _error(header, "the header gives no signal length (number of samples)")
    if not (hdr.fs and math.isfinite(hdr.fs) and hdr.fs > 0):
        raise _error(header, f"sampling rate {hdr.fs!r} is not a positive number")
    base = header.with_name(header.name[: -len(".hea")])
    stem = base.name
    files = tuple(dict.fromkeys(_real_file_name(name, stem) for name in hdr.file_name))
    if channels == "any":
        names = [str(n) if n else f"signal {i + 1}" for i, n in enumerate(hdr.sig_name or [None] * hdr.n_sig)]
        keep, leads, dropped = list(range(hdr.n_sig)), tuple(names), []
    else:
        keep, leads, dropped = _canonical_channels(header, list(hdr.sig_name))
    unknown = sorted({str(f) for f in hdr.fmt or []} - set(DAT_FMTS))
    if unknown:
        raise _error(
            header,
            f"signal format {', '.join(unknown)} is not a WFDB format (wfdb reads {', '.join(DAT_FMTS)})",
        )
    for unit in hdr.units or []:
        if (unit or "").strip().lower() not in _TO_MV:
            raise _error(header, f"unsupported signal unit {unit!r}; expected mV, uV or V")
    return _WfdbHeader(header, hdr, files, keep, leads, dropped, uncalibrated)


def _real_file_name(name: str, stem: str) -> str:
    """The signal file's own name (undoing :func:`_wfdb_name`'s alias)."""
    return (
        stem + name[len("record") :] if not _SAFE_NAME.fullmatch(stem) and name.startswith("record") else name
    )


def _read_wfdb(header: Path, fs: float | None) -> Record:
    parsed = _wfdb_header(header)
    return _wfdb_range(parsed, 0, parsed.hdr.sig_len)


def _wfdb_range(parsed: _WfdbHeader, sampfrom: int, sampto: int) -> Record:
    """Samples ``[sampfrom, sampto)`` of the ECG channels, in mV (a ``.dat`` is read only over that range)."""
    header, hdr = parsed.path, parsed.hdr
    base = header.with_name(header.name[: -len(".hea")])
    if parsed.is_mat:
        if len(parsed.files) != 1:
            raise _error(header, f"expected one .mat file, the header names {', '.join(parsed.files)}")
        digital = _read_mat_samples(header, base.parent / parsed.files[0], hdr)[:, sampfrom:sampto]
        gain = np.asarray(hdr.adc_gain, dtype=np.float64)
        baseline = np.asarray(hdr.baseline, dtype=np.float64)
        signal = ((digital - baseline[:, None]) / gain[:, None])[parsed.keep]
    else:
        for name in parsed.files:
            _check_signal_file_size(header, base.parent / name, hdr)
        try:
            with _wfdb_name(header) as name:
                rec = wfdb.rdrecord(
                    name, sampfrom=sampfrom, sampto=sampto, channels=parsed.keep, physical=True, return_res=32
                )
        except Exception as exc:
            raise _error(header, f"the signal file could not be read: {exc}") from exc
        signal = rec.p_signal.T
    units = hdr.units or ["mV"] * hdr.n_sig
    scale = np.asarray([_TO_MV[(units[i] or "").strip().lower()] for i in parsed.keep], dtype=np.float32)
    metadata = {
        "format": "wfdb-mat" if parsed.is_mat else "wfdb",
        "comments": list(hdr.comments or []),
        "units": "mV",
    }
    if parsed.dropped:
        metadata["dropped_channels"] = parsed.dropped
    if parsed.uncalibrated:
        metadata["uncalibrated"] = list(parsed.uncalibrated)
    if hdr.base_date or hdr.base_time:
        metadata["base_datetime"] = f"{hdr.base_date or ''} {hdr.base_time or ''}".strip()
    return Record(
        signal=signal * scale[:, None],
        fs=float(hdr.fs),
        leads=parsed.leads,
        record_id=base.name,
        path=header,
        metadata=metadata,
    )


def _check_signal_file_size(header: Path, signal_file: Path, hdr: wfdb.Record) -> None:
    """Compare a signal file's size with what the header promises: truncated, or a different length."""
    if not signal_file.is_file():
        _check_regular(signal_file)  # there, but a directory, FIFO or link loop: say so
        raise _error(header, f"the signal file {signal_file.name} named by the header is missing")
    stem = header.name[: -len(".hea")]
    channels = [i for i, file in enumerate(hdr.file_name) if _real_file_name(file, stem) == signal_file.name]
    fmt = hdr.fmt[channels[0]]
    per_sample = BYTES_PER_SAMPLE.get(str(fmt))
    if not per_sample:  # compressed (FLAC) formats: the size says nothing
        return
    offset = (hdr.byte_offset[channels[0]] if hdr.byte_offset else None) or 0
    frame = sum((hdr.samps_per_frame[i] if hdr.samps_per_frame else 1) for i in channels)
    expected = offset + math.ceil(hdr.sig_len * frame * per_sample)
    actual = signal_file.stat().st_size
    if actual < expected:
        raise _error(
            signal_file,
            f"truncated signal file: {actual} bytes, but the header's {hdr.sig_len} samples x "
            f"{len(channels)} channels in format {fmt} need {expected}",
        )
    if actual > expected + per_sample * frame:  # some writers pad the last frame
        held = (actual - offset) / (frame * per_sample)
        raise _error(
            signal_file,
            f"the header says {hdr.sig_len} samples per channel but the signal file holds {held:g}",
        )


def _read_mat_samples(header: Path, mat_file: Path, hdr: wfdb.Record) -> np.ndarray:
    """The digital ``val`` matrix ``[leads, samples]`` of a Challenge ``.mat`` file, checked against the header."""
    if not mat_file.is_file():
        raise _error(header, f"the signal file {mat_file.name} named by the header is missing")
    held = max(hdr.n_sig * hdr.sig_len, mat_file.stat().st_size // 2)  # int16: 2 bytes per sample at least
    if held > MAT_MAX_VALUES:
        raise _error(
            mat_file,
            f"about {held:,} samples (all channels), more than the {MAT_MAX_VALUES:,} a .mat record may hold: "
            "a MATLAB file cannot be read in parts, so it would be read whole; convert it to WFDB .dat "
            "(wfdb.wrsamp) to read it window by window",
        )
    try:
        contents = scipy.io.loadmat(str(mat_file))
    except Exception as exc:
        raise _error(mat_file, f"truncated or unreadable MATLAB file: {exc}") from exc
    if "val" not in contents:
        keys = [k for k in contents if not k.startswith("__")]
        raise _error(mat_file, f"no 'val' matrix (found {', '.join(keys) or 'nothing'})")
    val = np.asarray(contents["val"], dtype=np.float64)
    if val.ndim != 2 or val.shape[0] != hdr.n_sig:
        raise _error(mat_file, f"'val' has shape {val.shape}, the header describes {hdr.n_sig} signals")
    if val.shape[1] != hdr.sig_len:
        raise _error(
            mat_file,
            f"the header says {hdr.sig_len} samples per channel but the signal file holds {val.shape[1]}",
        )
    return val


def _read_asc(path: Path, fs: float | None) -> Record:
    try:  # pandas' C parser: about 3x faster than np.loadtxt; one row past the layout says "too long"
        data = pd.read_csv(path, sep=r"\s+", header=None, dtype=np.float64, nrows=ASC_SAMPLES + 1).to_numpy()
    except pd.errors.EmptyDataError as exc:
        raise _error(path, "empty .asc file") from exc
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _error(
            path, f"not a DeepFake .asc file: expected whitespace-separated integers ({exc})"
        ) from exc
    if data.shape[1] != len(ASC_LEADS):
        raise _error(
            path, f"expected {len(ASC_LEADS)} columns ({', '.join(ASC_LEADS)}), found {data.shape[1]}"
        )
    if data.shape[0] > ASC_SAMPLES:
        raise _error(
            path,
            f"expected {ASC_SAMPLES} rows (10 s at {ASC_FS:g} Hz), found more: not a DeepFake file "
            "(a long record in microvolt columns can be read as a CSV with named lead columns)",
        )
    if data.shape[0] != ASC_SAMPLES:
        raise _error(
            path,
            f"expected {ASC_SAMPLES} rows (10 s at {ASC_FS:g} Hz), found {data.shape[0]}: truncated or not a DeepFake file",
        )
    _check_float32(path, data / 1000.0, list(ASC_LEADS), "lead")
    return Record(
        signal=data.T / 1000.0,
        fs=ASC_FS,
        leads=ASC_LEADS,
        record_id=path.stem,
        path=path,
        metadata={"format": "deepfake-asc", "units": "mV (file in uV)"},
    )


@dataclass(frozen=True)
class _CsvLayout:
    """A CSV record's lead columns, from its header line: positions, names in the file, canonical leads."""

    keep: list[int]
    names: list[str]
    leads: tuple[str, ...]
    dropped: list[str]


def _csv_layout(path: Path) -> _CsvLayout:
    """Read the header line only: the lead columns, and which other columns are dropped."""
    try:
        header = pd.read_csv(path, nrows=0)
    except pd.errors.EmptyDataError as exc:
        raise _error(path, "empty CSV file") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _error(path, f"unreadable CSV ({exc})") from exc
    columns = [str(c) for c in header.columns]
    mangled = [c for c in columns if re.fullmatch(r"(.+)\.\d+", c)]
    twice = sorted({c.rsplit(".", 1)[0] for c in mangled} & set(columns))
    if twice:  # pandas renames a repeated column "II" to "II.1", which would then be dropped unsaid
        raise _error(path, f"column(s) {', '.join(twice)} appear more than once")
    keep, leads, dropped = _canonical_channels(path, columns)
    return _CsvLayout(keep, [columns[i] for i in keep], leads, dropped)


def _csv_frames(path: Path, layout: _CsvLayout, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """The lead columns of the data rows: one frame, or frames of ``chunk_rows`` rows."""
    try:
        if chunk_rows is None:
            yield pd.read_csv(path, usecols=layout.keep)
        else:
            yield from pd.read_csv(path, usecols=layout.keep, chunksize=chunk_rows)
    except pd.errors.EmptyDataError as exc:
        raise _error(path, "empty CSV file") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _error(path, f"unreadable CSV ({exc})") from exc


def _csv_values(path: Path, frame: pd.DataFrame, layout: _CsvLayout, first_row: int = 0) -> np.ndarray:
    """``[rows, leads]`` millivolts of ``frame`` (data rows ``first_row`` on), every cell a number in float32 range."""
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame.notna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise _error(
            path,
            f"non-numeric value {frame.iat[row, col]!r} in column {layout.names[col]}, "
            f"data row {first_row + row + 1}",
        )
    values = numeric.to_numpy(np.float64)
    _check_float32(path, values, layout.names, "column", first_row)
    return values


def _csv_record(path: Path, fs: float, layout: _CsvLayout, values: np.ndarray) -> Record:
    metadata: dict[str, Any] = {"format": "csv", "units": "mV"}
    if layout.dropped:
        metadata["dropped_columns"] = layout.dropped
    return Record(
        signal=values.T, fs=float(fs), leads=layout.leads, record_id=path.stem, path=path, metadata=metadata
    )


@dataclass(frozen=True)
class _EdfHeader:
    """An EDF file's header, checked: the channels kept (indices into pyedflib's signals), their names, rate
    and mV factor, and the channels skipped with why."""

    path: Path
    format: str
    fs: float
    n_samples: int
    keep: tuple[int, ...]
    leads: tuple[str, ...]
    scale: tuple[float, ...]
    skipped: tuple[str, ...]


#: Guards :data:`_EDF_OPEN` (pages run in threads).
_EDF_LOCK = threading.RLock()
#: The EDF files open in this process: resolved path -> [reader, users, the file's identity]. edflib
#: refuses to open a file twice in one process ("file has already been opened"), so every user of a file
#: shares one reader.
_EDF_OPEN: dict[str, list[Any]] = {}


def _file_identity(path: Path) -> tuple[int, ...]:
    """What changes when a file is replaced or rewritten: device, inode, size, modification time."""
    st = Path(path).stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@contextmanager
def _edf_reader(path: Path) -> Iterator[Any]:
    """An open :class:`pyedflib.EdfReader` (annotations not read: opening a day-long EDF+ stays cheap),
    shared with every other block that has the same file open in this process and closed when the last
    one ends (or fails). A file replaced on disk while a reader of it is open is refused (the open reader
    would give the old file's samples), until that reader closes."""
    import pyedflib

    key = str(Path(path).resolve())
    with _EDF_LOCK:
        entry = _EDF_OPEN.get(key)
        if entry is not None and entry[2] != _file_identity(path):
            raise _error(
                path, "the file changed on disk while a read of it is open; open it again after that"
            )
        if entry is None:
            identity = _file_identity(path)
            try:
                reader = pyedflib.EdfReader(str(path), annotations_mode=pyedflib.DO_NOT_READ_ANNOTATIONS)
            except OSError as exc:  # pyedflib names the problem after the file name
                problem = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(path)) else str(exc)
                raise _error(path, f"not a readable EDF file: {problem}") from None
            entry = _EDF_OPEN[key] = [reader, 0, identity]
        entry[1] += 1
    try:
        yield entry[0]
    finally:
        with _EDF_LOCK:
            entry[1] -= 1
            if entry[1] == 0:
                del _EDF_OPEN[key]
                entry[0].close()


def _edf_lead(label: str) -> str | None:
    """The standard lead an EDF label names (``II``, ``ECG II``, ``EKG V1``), or None."""
    for name in (label, re.sub(r"^(ecg|ekg)[\s_-]*", "", label.strip(), flags=re.IGNORECASE)):
        try:
            return canonical_lead(name)
        except ValueError:
            continue
    return None


def _edf_header(path: Path, channels: str = "ecg") -> _EdfHeader:
    """Open an EDF/EDF+ file's header and choose its ECG channels (``channels`` as in :data:`CHANNELS`).

    Kept: channels with a voltage unit (``"ecg"``: also a standard lead name) at the rate most of them
    share (the highest such rate on a tie); skipped and named: annotation-free other channels (units
    such as ``g``), voltage channels at another rate, and, with ``"ecg"``, non-standard names.
    """
    if channels not in CHANNELS:
        raise ValueError(f"channels={channels!r}: expected one of {', '.join(CHANNELS)}")
    with path.open("rb") as handle:
        reserved = handle.read(236)[192:236]
    if reserved[:5] in (b"EDF+D", b"BDF+D"):
        raise _error(
            path, "an EDF+D file (discontinuous recording) is not supported; give a continuous EDF/EDF+C"
        )
    with _edf_reader(path) as reader:
        n = reader.signals_in_file
        labels = [str(x).strip() for x in reader.getSignalLabels()]
        rates = [float(x) for x in reader.getSampleFrequencies()]
        lengths = [int(x) for x in reader.getNSamples()]
        units = [str(reader.getPhysicalDimension(i)).strip() for i in range(n)]
        fmt = "edf+" if reader.filetype == 1 else "edf"
    names = [label or f"signal {i + 1}" for i, label in enumerate(labels)]
    unit_keys = [unit.lower().replace("µ", "u").replace("μ", "u") for unit in units]
    skipped, candidates = [], []
    for i in range(n):
        if unit_keys[i] not in ("uv", "mv", "v"):
            skipped.append(f"{names[i]} (unit {units[i] or 'none'!r} is not a voltage)")
        elif channels == "ecg" and _edf_lead(labels[i]) is None:
            skipped.append(f"{names[i]} (not a standard ECG lead name)")
        elif not (math.isfinite(rates[i]) and rates[i] > 0):
            skipped.append(f"{names[i]} (sampling rate {rates[i]!r} is not a positive number)")
        else:
            candidates.append(i)
    if not candidates:
        raise _error(path, f"no ECG channel to read: {'; '.join(skipped) or 'the file holds no signals'}")
    by_rate = Counter(rates[i] for i in candidates)
    fs = max(by_rate, key=lambda r: (by_rate[r], r))
    keep = [i for i in candidates if rates[i] == fs]
    skipped += [
        f"{names[i]} ({rates[i]:g} Hz, not the ECG channels' {fs:g} Hz)" for i in candidates if rates[i] != fs
    ]
    leads = [_edf_lead(labels[i]) if channels == "ecg" else names[i] for i in keep]
    duplicates = [lead for lead, k in Counter(leads).items() if k > 1]
    if duplicates:
        raise _error(path, f"channel(s) {', '.join(map(str, duplicates))} appear more than once")
    n_samples = min(lengths[i] for i in keep)
    if n_samples <= 0:
        raise _error(path, "the file holds no samples")
    scale = tuple(_TO_MV[unit_keys[i]] for i in keep)
    return _EdfHeader(path, fmt, fs, n_samples, tuple(keep), tuple(map(str, leads)), scale, tuple(skipped))


def _edf_range(edf: _EdfHeader, start: int, stop: int, reader: Any = None) -> Record:
    """Samples ``[start, stop)`` of the kept channels, in mV (only that range of the file is read), through
    ``reader`` (an open :func:`_edf_reader` of the file; default: one opened for this range)."""
    if reader is None:
        with _edf_reader(edf.path) as reader:
            return _edf_range(edf, start, stop, reader)
    signal = np.empty((len(edf.keep), max(0, stop - start)), dtype=np.float32)
    for row, (channel, scale) in enumerate(zip(edf.keep, edf.scale)):
        values = reader.readSignal(channel, start, stop - start)  # seek and read: one call, under the GIL
        if values.size != signal.shape[1]:
            raise _error(edf.path, f"channel {edf.leads[row]} holds fewer samples than its header says")
        signal[row] = values * scale
    metadata: dict[str, Any] = {"format": edf.format, "units": "mV"}
    if edf.skipped:
        metadata["skipped_channels"] = list(edf.skipped)
    return Record(
        signal=signal, fs=edf.fs, leads=edf.leads, record_id=edf.path.stem, path=edf.path, metadata=metadata
    )


def _read_edf(path: Path, fs: float | None) -> Record:
    edf = _edf_header(path)
    return _edf_range(edf, 0, edf.n_samples)


def _read_csv(path: Path, fs: float | None) -> Record:
    if fs is None:
        raise _error(path, "a CSV file carries no sampling rate; give fs (Hz)")
    layout = _csv_layout(path)
    frame = next(_csv_frames(path, layout, None))
    if frame.empty:
        raise _error(path, "empty CSV: a header but no samples")
    return _csv_record(path, fs, layout, _csv_values(path, frame, layout))


class _CsvRows:
    """Data rows ``[start, stop)`` of a CSV record, parsed :data:`CSV_CHUNK_ROWS` at a time.

    A range that starts at or after the previous one continues the same pass through the file (the
    consecutive windows of :func:`iter_chunks` read it once); an earlier one starts a new pass. Memory
    holds one chunk and one range, whatever the file's length.
    """

    def __init__(self, path: Path, fs: float | None, chunk_rows: int | None = None) -> None:
        if fs is None:
            raise _error(path, "a CSV file carries no sampling rate; give fs (Hz)")
        self.path, self.fs = path, float(fs)
        self.layout = _csv_layout(path)
        self.chunk_rows = chunk_rows or CSV_CHUNK_ROWS
        self._pass: Iterator[np.ndarray] | None = None
        self._held = np.empty((0, len(self.layout.keep)))
        self._at = 0  # data row of self._held[0]

    def _chunks(self) -> Iterator[np.ndarray]:
        first = 0
        for frame in _csv_frames(self.path, self.layout, self.chunk_rows):
            yield _csv_values(self.path, frame, self.layout, first)
            first += len(frame)

    def count(self) -> int:
        """The number of data rows, every value checked (one pass)."""
        total = sum(len(values) for values in self._chunks())
        if total == 0:
            raise _error(self.path, "empty CSV: a header but no samples")
        return total

    def window(self, start: int, length: int) -> tuple[Record, int, int]:
        """``length`` rows from ``start``, moved back to end at the file's last row (all of them in a shorter
        file), in one pass that also counts and checks every row: ``(rows, their first row, rows in the file)``."""
        kept: list[np.ndarray] = []
        tail, total = self._held[:0], 0  # the last ``length`` rows so far, for a window past the end
        for values in self._chunks():
            lo, hi = max(start - total, 0), min(start + length - total, len(values))
            if hi > lo:
                kept.append(values[lo:hi])
            tail = np.concatenate([tail, values[-length:]])[-length:]
            total += len(values)
        if total == 0:
            raise _error(self.path, "empty CSV: a header but no samples")
        first = min(start, total - min(length, total))
        rows = np.concatenate(kept) if first == start else tail[-min(length, total) :]
        return _csv_record(self.path, self.fs, self.layout, rows), first, total

    def read(self, start: int, stop: int) -> Record:
        """Rows ``[start, stop)`` (fewer at the end of the file) as a record."""
        if self._pass is None or start < self._at:
            self._pass, self._held, self._at = self._chunks(), self._held[:0], 0
        drop = min(max(0, start - self._at), len(self._held))  # the last range's rows before this one
        self._held, self._at = self._held[drop:].copy(), self._at + drop  # a copy frees the last range
        parts, end = [self._held], self._at + len(self._held)
        while end < stop and (values := next(self._pass, None)) is not None:
            parts.append(values)
            end += len(values)
            while len(parts) > 1 and self._at + len(parts[0]) <= start:  # wholly before the range
                self._at += len(parts.pop(0))
        held = np.concatenate(parts) if len(parts) > 1 else parts[0]
        drop = min(max(0, start - self._at), len(held))
        self._held, self._at = held[drop:], self._at + drop
        return _csv_record(self.path, self.fs, self.layout, self._held[: stop - start])  # float32: a copy


#: The reader of each kind :func:`_resolve` returns.
_READERS = {"wfdb": _read_wfdb, "asc": _read_asc, "csv": _read_csv, "edf": _read_edf}


def _check_float32(path: Path, values: np.ndarray, names: list[str], what: str, first_row: int = 0) -> None:
    """Refuse a finite value too large for float32 (e.g. 1e308), naming where it is."""
    too_big = np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)
    if too_big.any():
        row, col = np.argwhere(too_big)[0]
        raise _error(
            path,
            f"value {values[row, col]:g} in {what} {names[col]}, data row {first_row + row + 1}, is beyond the "
            "float32 range (about 3.4e38); ECG values are millivolts",
        )


def _check_finite(record: Record) -> None:
    finite = np.isfinite(record.signal)
    if not finite.all():
        counts = (~finite).sum(axis=1)
        where = ", ".join(f"{lead} ({n})" for lead, n in zip(record.leads, counts) if n)
        raise _error(record.path, f"non-finite samples (NaN, inf or empty cells) in lead(s) {where}")
