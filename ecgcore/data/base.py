"""The dataset interface every source implements (specs and the registry: :mod:`ecgcore.data.sources`).

A dataset is a folder plus an index table with one row per record whose signal file exists,
in a fixed order. The index always has ``record_id, patient_id, fold, split, hr, pr, qrs, qt``
and ``path`` (the record's path relative to the root, without extension); classification
sources add the superclass columns. Signals are read on demand with :func:`ecgcore.io.read_record`;
training reads them through the cache (:mod:`ecgcore.data.cache`), never file by file.
"""

from __future__ import annotations

import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcore.io import Record, read_record
from ecgcore.vocab import SUPERCLASSES, TARGET_KEYS

#: Columns every dataset index has.
INDEX_COLUMNS: tuple[str, ...] = ("record_id", "patient_id", "fold", "split", *TARGET_KEYS, "path")
#: PTB-XL's recommended split: strat_fold 1-8 train, 9 validation, 10 test.
SPLIT_OF_FOLD: dict[int, str] = {**{f: "train" for f in range(1, 9)}, 9: "val", 10: "test"}


class DatasetError(ValueError):
    """A folder that is not the dataset it was opened as, or an inconsistent dataset table."""


class MissingFilesWarning(UserWarning):
    """Some rows of a dataset table have no signal file; they are counted and skipped."""


def hash_fold(record_id: str) -> int:
    """A deterministic fold 1..10 for sources without patient-aware folds (stable across runs and machines)."""
    return zlib.crc32(str(record_id).encode("utf-8")) % 10 + 1


def split_of(folds: pd.Series | np.ndarray) -> np.ndarray:
    """``"train"``, ``"val"`` or ``"test"`` for each fold number."""
    return np.array([SPLIT_OF_FOLD[int(f)] for f in folds], dtype=object)


def warn_missing(kind: str, root: Path, missing: list[str], total: int, what: str = "signal file") -> None:
    """Warn once that ``missing`` records (of ``total``) are skipped, naming a few."""
    if missing:
        examples = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        warnings.warn(
            f"{kind} {root}: {len(missing)} of {total} records have no {what} and are skipped "
            f"(e.g. {examples})",
            MissingFilesWarning,
            stacklevel=3,
        )


class ECGDataset:
    """A folder of records with an index table; subclasses build the index from their source's layout.

    Attributes
    ----------
    kind : str
        ``"ptbxl"``, ``"deepfake"`` or ``"wfdb"``.
    root : Path
    fs : float
        Native sampling rate the signals are read at (the most common one for a mixed folder).
    leads : tuple of str
        The leads the records carry.
    index : pandas.DataFrame
        One row per available record (see the module docstring for the columns).
    missing : list of str
        Record ids whose signal file is absent (skipped, not in ``index``).
    """

    kind: str = ""
    #: Suffixes that, appended to an index ``path``, name the record's files (a WFDB header and its data).
    signal_suffixes: tuple[str, ...] = (".hea", ".dat", ".mat")

    def __init__(
        self, root: Path, fs: float, leads: tuple[str, ...], index: pd.DataFrame, missing: list[str]
    ):
        self.root = Path(root)
        self.fs = float(fs)
        self.leads = tuple(leads)
        absent = [c for c in INDEX_COLUMNS if c not in index.columns]
        if absent:
            raise DatasetError(f"{self.kind} index lacks columns {absent}")
        self.index = index.reset_index(drop=True)
        self.missing = list(missing)
        self._position = {rid: i for i, rid in enumerate(self.index["record_id"].astype(str))}

    @property
    def spec(self) -> str:
        """The spec string :func:`ecgcore.data.open_source` reopens this dataset from (its folder)."""
        from ecgcore.data.sources import format_spec  # the registry module imports this one

        return format_spec(self.kind, self.root)

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, records={len(self)}, fs={self.fs:g})"

    def row(self, record_id: str) -> pd.Series:
        """The index row of ``record_id``."""
        position = self._position.get(str(record_id))
        if position is None:
            raise KeyError(f"{self.kind} {self.root}: no record {record_id!r}")
        return self.index.iloc[position]

    def record_path(self, record_id: str) -> Path:
        """The record's file path (without extension for WFDB records)."""
        return self.root / self.row(record_id)["path"]

    def table_files(self) -> list[Path]:
        """The label/metadata tables the index was built from (part of a cache's fingerprint)."""
        return []

    def signal_files(self, path: str) -> list[str]:
        """Where one record's files may be (``path`` as in the index, plus each of ``signal_suffixes``).

        Not all of them need exist; callers skip the absent ones. Plain strings: this runs for every
        record each time a cache is opened, where pathlib would dominate the time.
        """
        base = os.path.join(self.root, path)
        return [base + suffix for suffix in self.signal_suffixes]

    def read(self, record_id: str) -> Record:
        """Read one record at its native rate; its index row is added to ``metadata["index"]``."""
        row = self.row(record_id)
        record = read_record(self.root / row["path"])
        record.record_id = str(record_id)
        record.metadata["index"] = {k: _plain(v) for k, v in row.items()}
        return record

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: counts, rate, leads, folds and labels (what ``data summary`` prints)."""
        idx = self.index
        out: dict[str, Any] = {
            "source": self.kind,
            "root": str(self.root),
            "rows": len(idx) + len(self.missing),
            "records": len(idx),
            "missing_files": len(self.missing),
            "missing_examples": self.missing[:5],
            "fs": self.fs,
            "leads": list(self.leads),
            "patients": int(idx["patient_id"].nunique()),
            "folds": {int(k): int(v) for k, v in idx["fold"].value_counts().sort_index().items()},
            "splits": {s: int((idx["split"] == s).sum()) for s in ("train", "val", "test")},
        }
        if all(c in idx.columns for c in SUPERCLASSES):
            out["superclasses"] = {c: int(idx[c].sum()) for c in SUPERCLASSES}
            single = idx[idx["superclass"] != ""]
            out["single_label"] = len(single)
            out["single_label_by_class"] = {c: int((single["superclass"] == c).sum()) for c in SUPERCLASSES}
            out["no_superclass"] = int((idx[list(SUPERCLASSES)].sum(axis=1) == 0).sum())
        labelled = {k: idx[k].dropna() for k in TARGET_KEYS}
        if any(len(v) for v in labelled.values()):
            out["labels"] = {
                k: {"n": len(v), "mean": _round(v.mean()), "sd": _round(v.std())} for k, v in labelled.items()
            }
        return out


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 2)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python, NaN -> None (JSON-able metadata)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def require_dir(kind: str, root: str | Path) -> Path:
    """``root`` as a Path, or a clear error if it is not a directory."""
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DatasetError(f"{path} is not a directory (expected a {kind} folder)")
    return path
