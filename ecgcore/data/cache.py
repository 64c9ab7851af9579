"""One cached tensor store per dataset and preprocessing: a memory-mapped ``[N, leads, samples]`` array.

Training must never re-read thousands of small files per epoch. The first :func:`load_cached` of
a dataset with given :class:`Preprocessing` reads every record once (in parallel for large
datasets), applies :func:`ecgcore.data.preprocess.preprocess_record` and writes, under
``paths.cache_dir()``:

* ``signals.npy``  float32 ``[N, L, S]``, the final model input, opened later with ``mmap_mode="r"``;
* ``index.csv``    the dataset index rows, aligned with ``signals`` (for people and other tools);
* ``meta.json``    preprocessing, fitted statistics, the fingerprint, skipped records, build time.

The fingerprint hashes the parameters and the path, size and mtime of every source file
(signal files and label tables); a mismatch rebuilds. The manifest also holds a blake2b digest of
every 16 MiB block of ``signals.npy`` (``content``), checked when the cache is opened: in full
the first time and whenever the file's size, mtime, ctime or inode differ from the last check
(recorded in ``verified.json``), else by that stat alone; see :func:`verify_content`. A build writes into a temporary folder
and renames it into place only when complete, so a killed build leaves nothing that looks like
a cache (its temporary folder is removed by the next build).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcore import paths
from ecgcore.data.base import ECGDataset
from ecgcore.data.preprocess import Preprocessing, normalize, shape_record
from ecgcore.io import ECGFormatError
from ecgcore.processes import pid_alive
from ecgcore.progress import ProgressFn, report

CACHE_VERSION = 1
#: Bytes of ``signals.npy`` per content digest, and the digest used.
CONTENT_BLOCK = 16 * 2**20
CONTENT_HASH = "blake2b-128"
#: Datasets at least this large are built by worker processes (both cores).
PARALLEL_MIN_RECORDS = 400
_CHUNK = 64


class CacheWarning(UserWarning):
    """Records that could not be read into the cache (skipped and listed in meta.json)."""


@dataclass
class CachedDataset:
    """A dataset's preprocessed signals, memory-mapped, with the aligned index rows."""

    signals: np.ndarray
    index: pd.DataFrame
    prep: Preprocessing
    stats: dict = field(default_factory=dict)
    path: Path | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, split: str) -> np.ndarray:
        """Row numbers of ``"train"``, ``"val"`` or ``"test"``."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; expected train, val or test")
        return np.flatnonzero(self.index["split"].to_numpy() == split)


def cache_key(dataset: ECGDataset, prep: Preprocessing) -> str:
    """The cache folder's name: source kind, root, rate and preprocessing."""
    text = json.dumps(
        {
            "kind": dataset.kind,
            "root": str(dataset.root),
            "fs": dataset.fs,
            "prep": prep.to_dict(),
            "version": CACHE_VERSION,
        },
        sort_keys=True,
    )
    return f"{dataset.kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def fingerprint(dataset: ECGDataset, prep: Preprocessing) -> str:
    """Hash of the parameters, the records (ids, paths, splits) and every source file's path, size and mtime."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"prep": prep.to_dict(), "fs": dataset.fs, "version": CACHE_VERSION}, sort_keys=True
        ).encode()
    )
    idx = dataset.index[["record_id", "path", "split"]].astype(str)
    h.update(pd.util.hash_pandas_object(idx, index=False).to_numpy().tobytes())
    files = [str(f) for f in dataset.table_files()]
    for path in dataset.index["path"]:
        files.extend(dataset.signal_files(path))
    for f in files:
        try:
            st = os.stat(f)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def load_cached(
    dataset: ECGDataset, prep: Preprocessing, progress: ProgressFn | None = None, n_jobs: int | None = None
) -> CachedDataset:
    """The dataset's preprocessed signals: mapped from the cache, built first if absent or stale.

    Parameters
    ----------
    n_jobs
        Worker processes for a build (default: up to 2, and 1 below ``PARALLEL_MIN_RECORDS`` records).
    """
    final = paths.cache_dir() / cache_key(dataset, prep)
    fp = fingerprint(dataset, prep)
    cached = _open(final, dataset, fp)
    if cached is not None:
        return cached
    with _interruptible():  # SIGTERM / Ctrl-C stop the build at once
        _build(dataset, prep, final, fp, progress, n_jobs)
    cached = _open(final, dataset, fp)
    if cached is None:  # another process replaced it with a different build meanwhile
        raise RuntimeError(f"cache {final} was replaced while it was being built; try again")
    return cached


def _open(folder: Path, dataset: ECGDataset, fp: str) -> CachedDataset | None:
    """The cache in ``folder`` if it is complete, sound and its fingerprint matches, else None.

    A damaged cache (unreadable manifest, a signal file missing, truncated or of another shape than
    its manifest says) is reported with a :class:`CacheWarning` naming the folder, and ``None``
    makes the caller rebuild it.
    """
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        return _damaged(folder, f"its manifest meta.json is unreadable ({exc})")
    if not isinstance(meta, dict):
        return _damaged(folder, f"its manifest meta.json holds a {type(meta).__name__}, not a manifest")
    if meta.get("fingerprint") != fp or not meta.get("complete"):
        return None
    problem = _check_signals(folder / "signals.npy", meta) or verify_content(folder, meta)
    if problem is not None:
        return _damaged(folder, problem)
    signals = np.load(folder / "signals.npy", mmap_mode="r")
    by_id = pd.Series(np.arange(len(dataset.index)), index=dataset.index["record_id"].astype(str))
    try:
        index = dataset.index.iloc[by_id.loc[meta["record_ids"]].to_numpy()].reset_index(drop=True)
    except (KeyError, TypeError):  # the fingerprint covers the dataset's records: the manifest was changed
        return _damaged(folder, "its manifest meta.json lists records the dataset does not have")
    if signals.shape[0] != len(index):
        return _damaged(folder, f"signals.npy holds {signals.shape[0]} rows for {len(index)} records")
    return CachedDataset(
        signals=signals,
        index=index,
        prep=Preprocessing.from_dict(meta["prep"]),
        stats=meta.get("stats", {}),
        path=folder,
        meta=meta,
    )


def _check_signals(path: Path, meta: dict) -> str | None:
    """What is wrong with a cache's ``signals.npy`` against its manifest (header, shape, size), or None."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is None:
                return f"signals.npy is in .npy format {version}, which the cache never writes"
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
    except FileNotFoundError:
        return "signals.npy is missing"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"signals.npy has no readable array header ({exc})"
    if dtype != np.float32 or fortran or list(shape) != list(meta.get("shape", shape)):
        return f"signals.npy holds {dtype} {list(shape)}, its manifest says float32 {meta.get('shape')}"
    expected = offset + int(np.prod(shape)) * 4
    actual = path.stat().st_size
    if actual != expected:
        return f"signals.npy is {actual} bytes, {expected} expected for {list(shape)} float32 (truncated?)"
    return None


def content_digests(path: Path, block: int = CONTENT_BLOCK) -> list[str]:
    """blake2b (128-bit) of each ``block`` bytes of ``path``, read one block at a time."""
    digests = []
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digests.append(hashlib.blake2b(chunk, digest_size=16).hexdigest())
    return digests


def _file_state(path: Path) -> dict[str, int]:
    """What changes when a file's bytes are written: size, mtime, ctime (which no program can set back) and inode."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def _stamp(folder: Path, meta: dict) -> None:
    """Record that ``signals.npy``, as it is now, matched the manifest's digests (best effort: a read-only
    cache is simply checked in full on every open)."""
    with contextlib.suppress(OSError):
        paths.atomic_write_json(
            folder / "verified.json",
            {"file": _file_state(folder / "signals.npy"), "content": meta["content"]["blocks"]},
        )


def verify_content(folder: Path, meta: dict) -> str | None:
    """Check ``signals.npy`` against the manifest's block digests; what is wrong, or None.

    Reading a large cache in full on every open would cost a second per gigabyte, so the full check
    runs when the file's state (size, mtime, ctime, inode) differs from the one ``verified.json``
    recorded at the last full check, or at the build; otherwise opening costs a ``stat``. This finds
    every change made by writing to the file, copying or replacing it, even with its mtime set back
    (the ctime cannot be); it does not find bits flipped by failing hardware below the file system
    after the last full check (delete ``verified.json`` to force one). A cache built before digests
    were kept gets them now, from its bytes as they are (the size and shape checks passed).
    """
    content = meta.get("content")
    if not isinstance(content, dict) or content.get("hash") != CONTENT_HASH:
        meta["content"] = {
            "hash": CONTENT_HASH,
            "block_bytes": CONTENT_BLOCK,
            "blocks": content_digests(folder / "signals.npy"),
        }
        with contextlib.suppress(OSError):  # a read-only cache: digested again on the next open
            paths.atomic_write_json(folder / "meta.json", meta)
        _stamp(folder, meta)
        return None
    path = folder / "signals.npy"
    try:
        stamp = json.loads((folder / "verified.json").read_text())
        if stamp.get("file") == _file_state(path) and stamp.get("content") == content["blocks"]:
            return None
    except (OSError, ValueError, AttributeError):
        pass
    block = int(content["block_bytes"])
    actual = content_digests(path, block)
    for i, (want, got) in enumerate(zip(content["blocks"], actual)):
        if want != got:
            return (
                f"signals.npy bytes {i * block}-{min((i + 1) * block, path.stat().st_size) - 1} changed since "
                f"the build (block {i} does not match its {CONTENT_HASH} digest in meta.json)"
            )
    if len(actual) != len(content["blocks"]):
        return f"signals.npy has {len(actual)} blocks of {block} bytes, its manifest {len(content['blocks'])}"
    _stamp(folder, meta)
    return None


def _damaged(folder: Path, problem: str) -> None:
    warnings.warn(
        f"cache {folder} is damaged: {problem}; rebuilding it (or delete the folder to rebuild on the next run)",
        CacheWarning,
        stacklevel=4,
    )


def _remove_abandoned(final: Path) -> None:
    """Delete temporary (``.tmp-PID-*``) and set-aside (``.old-PID-*``) folders whose process is gone."""
    for leftover in final.parent.glob(f".{final.name}.*-*"):
        kind, _, rest = leftover.name[len(final.name) + 2 :].partition("-")
        if kind in ("tmp", "old") and rest.split("-")[0].isdigit() and not pid_alive(int(rest.split("-")[0])):
            shutil.rmtree(leftover, ignore_errors=True)


# --- building ------------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(dataset: ECGDataset, prep: Preprocessing, array_path: str) -> None:
    _WORKER.update(dataset=dataset, prep=prep, array=np.load(array_path, mmap_mode="r+"))


def _init_pool_worker(initializer: Callable[..., None], *args: Any) -> None:
    """A build worker dies at once on SIGTERM and leaves Ctrl-C to its parent, which stops the build;
    then ``initializer(*args)`` sets it up."""
    signal.signal(
        signal.SIGTERM, signal.SIG_DFL
    )  # a forked worker inherits the trainer's "set a flag" handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*args)


class BuildInterrupted(KeyboardInterrupt):
    """SIGTERM or Ctrl-C arrived during a cache build: the build stopped and left nothing behind."""


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`BuildInterrupted` while a build runs (main thread only).

    A handler installed before (the trainer's, which marks the run for cancelling) is still called
    first, so the run ends as cancelled, not failed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def stop(signum: int, frame) -> None:
        before = previous[signum]
        if callable(before) and before is not signal.default_int_handler:
            before(signum, frame)
        raise BuildInterrupted(f"cache build stopped by {signal.Signals(signum).name}")

    for sig in previous:
        signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _mp_context():
    """``fork`` from a single-threaded process (fast, and scripts need no ``__main__`` guard); ``spawn`` from a
    threaded one such as the Streamlit server, where forking could copy a lock held by another thread."""
    if threading.active_count() == 1 and "fork" in get_all_start_methods():
        return get_context("fork")
    return get_context("spawn")


def _fill(rows: range) -> list[tuple[int, str]]:
    """Read, shape (and, unless train_standardize, normalise) ``rows`` into the array; return failures."""
    dataset: ECGDataset = _WORKER["dataset"]
    prep: Preprocessing = _WORKER["prep"]
    array = _WORKER["array"]
    failures = []
    for row in rows:
        record_id = str(dataset.index["record_id"].iat[row])
        try:
            x = shape_record(dataset.read(record_id), prep)
            array[row] = x if prep.normalize == "train_standardize" else normalize(x, prep)
        except (ECGFormatError, ValueError) as exc:
            failures.append((row, str(exc)))
    array.flush()
    return failures


@contextlib.contextmanager
def build_folder(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final`` to build a cache in (abandoned ones are removed first); it is
    deleted on the way out unless the build moved it into place (:func:`_install`)."""
    _remove_abandoned(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fill_in_chunks(
    n: int,
    n_jobs: int | None,
    initializer: Callable[..., None],
    initargs: tuple,
    fill: Callable[[range], Any],
    cleanup: Callable[[], None],
    progress: ProgressFn | None,
    message: str,
) -> tuple[list, int]:
    """``fill(rows)`` over ``n`` rows in chunks of ``_CHUNK``: in worker processes (each set up by
    ``initializer(*initargs)``; default up to 2, and 1 below ``PARALLEL_MIN_RECORDS`` rows) or in this
    process (set up, then ``cleanup()``); returns the chunks' results in order and the number of workers."""
    chunks = [range(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]
    jobs = n_jobs if n_jobs is not None else (min(2, os.cpu_count() or 1) if n >= PARALLEL_MIN_RECORDS else 1)
    results: list = []
    done = 0
    report(progress, 0, n, message)
    if jobs > 1:  # Pool, not ProcessPoolExecutor: leaving the block early terminates the workers at once
        with _mp_context().Pool(jobs, _init_pool_worker, (initializer, *initargs)) as pool:
            for chunk, result in zip(chunks, pool.imap(fill, chunks)):
                results.append(result)
                done += len(chunk)
                report(progress, done, n, message)
        return results, jobs
    initializer(*initargs)
    try:
        for chunk in chunks:
            results.append(fill(chunk))
            done += len(chunk)
            report(progress, done, n, message)
    finally:
        cleanup()
    return results, jobs


def _build(
    dataset: ECGDataset,
    prep: Preprocessing,
    final: Path,
    fp: str,
    progress: ProgressFn | None,
    n_jobs: int | None,
) -> None:
    """Build into a temporary folder and install it; the folder is removed on any failure or interrupt."""
    with build_folder(final) as tmp:
        start = time.perf_counter()
        n = len(dataset.index)
        array_path = tmp / "signals.npy"
        array = np.lib.format.open_memmap(
            array_path, mode="w+", dtype=np.float32, shape=(n, len(prep.leads), prep.n_samples)
        )
        del array
        results, jobs = fill_in_chunks(
            n,
            n_jobs,
            _init_worker,
            (dataset, prep, str(array_path)),
            _fill,
            _WORKER.clear,
            progress,
            "building cache",
        )
        failures: list[tuple[int, str]] = [f for fails in results for f in fails]
        keep = np.setdiff1d(np.arange(n), [row for row, _ in failures])
        if not len(keep):
            raise ECGFormatError(
                f"{dataset.root}: none of the {n} records could be read; first error: {failures[0][1]}"
            )
        signals = np.load(array_path, mmap_mode="r+")
        if len(keep) < n:
            compact = np.lib.format.open_memmap(
                tmp / "compact.npy", mode="w+", dtype=np.float32, shape=(len(keep), *signals.shape[1:])
            )
            for i in range(0, len(keep), _CHUNK):
                compact[i : i + _CHUNK] = signals[keep[i : i + _CHUNK]]
            compact.flush()
            del signals, compact
            os.replace(tmp / "compact.npy", array_path)
            signals = np.load(array_path, mmap_mode="r+")
            warnings.warn(
                f"cache of {dataset.root}: {len(failures)} of {n} records could not be read and are left out "
                f"(e.g. {failures[0][1]})",
                CacheWarning,
                stacklevel=3,
            )
        index = dataset.index.iloc[keep].reset_index(drop=True)
        stats: dict[str, Any] = {}
        if prep.normalize == "train_standardize":
            stats = _fit_standardizer(signals, index, prep)
            for i in range(0, len(signals), _CHUNK):
                signals[i : i + _CHUNK] = normalize(np.asarray(signals[i : i + _CHUNK]), prep, stats)
        signals.flush()
        del signals
        index.to_csv(tmp / "index.csv", index=False)
        content = {"hash": CONTENT_HASH, "block_bytes": CONTENT_BLOCK, "blocks": content_digests(array_path)}
        meta = {
            "complete": True,
            "version": CACHE_VERSION,
            "fingerprint": fp,
            "prep": prep.to_dict(),
            "stats": stats,
            "source": {"kind": dataset.kind, "root": str(dataset.root), "fs": dataset.fs},
            "record_ids": index["record_id"].astype(str).tolist(),
            "skipped": [
                {"record_id": str(dataset.index["record_id"].iat[r]), "error": e} for r, e in failures
            ],
            "shape": [len(index), len(prep.leads), prep.n_samples],
            "content": content,
            "build_seconds": round(time.perf_counter() - start, 3),
            "workers": jobs,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _stamp(tmp, meta)  # the digests were just read from this very file
        paths.atomic_write_json(tmp / "meta.json", meta)  # written last: its presence marks a complete build
        _install(tmp, final)


def _fit_standardizer(signals: np.ndarray, index: pd.DataFrame, prep: Preprocessing) -> dict[str, Any]:
    """Per-lead mean and SD over the training split's rows only (never validation or test)."""
    train = np.flatnonzero(index["split"].to_numpy() == "train")
    if not len(train):
        raise ValueError("train_standardize needs training records (folds 1-8); this dataset has none")
    total = np.zeros(len(prep.leads))
    total_sq = np.zeros(len(prep.leads))
    for i in range(0, len(train), _CHUNK):
        x = np.asarray(signals[train[i : i + _CHUNK]], dtype=np.float64)
        total += x.sum(axis=(0, 2))
        total_sq += (x**2).sum(axis=(0, 2))
    count = len(train) * prep.n_samples
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return {"mean": mean.tolist(), "std": std.tolist(), "fit_on": "train", "n_records": int(len(train))}


def _install(tmp: Path, final: Path) -> None:
    """Move a finished build into place; a stale cache there is moved aside first and then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(final, old)
    with contextlib.suppress(OSError):  # another process installed its build between our renames: keep theirs
        os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
