"""PTB-XL as laid out by the PhysioNet download: labels, folds and the signals of one resolution.

Superclass labels follow the PTB-XL benchmark (Strodthoff et al. 2021, helme/ecg_ptbxl_benchmarking,
``compute_label_aggregations``): every SCP code of a record that ``scp_statements.csv`` marks
``diagnostic == 1`` contributes its ``diagnostic_class``, whatever its likelihood value (so
``{'NORM': 15.0}`` counts as NORM, and ``{'NORM': 100, 'IRBBB': 100}`` is NORM and CD). Records
with exactly one superclass form the single-label subset (``superclass`` column).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from ecgcore.data.base import DatasetError, ECGDataset, require_dir, split_of, warn_missing
from ecgcore.data.labels import LabelError, label_set
from ecgcore.data.ptbxl_plus import PlusLabels, load_ptbxl_plus
from ecgcore.data.sources import register_source
from ecgcore.paths import BUNDLED_PTBXL
from ecgcore.vocab import LEADS_12, SUPERCLASSES, TARGET_KEYS

DATABASE = "ptbxl_database.csv"
STATEMENTS = "scp_statements.csv"
_REQUIRED = ("ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
#: sampling rate -> the database column naming that resolution's files
FILENAME_COLUMN = {100.0: "filename_lr", 500.0: "filename_hr"}
#: database columns carried into the index as they are
_KEEP = ("age", "sex", "height", "weight", "device", "recording_date", "scp_codes", "report")


def resolve_root(root: str | Path) -> Path:
    """``"bundled"`` -> the bundled sample; anything else -> the path."""
    return BUNDLED_PTBXL if str(root) == "bundled" else Path(root).expanduser()


def superclass_map(statements: pd.DataFrame) -> dict[str, str]:
    """SCP code -> diagnostic superclass, for the statements marked ``diagnostic == 1``."""
    diagnostic = statements[statements["diagnostic"] == 1]
    return {
        str(code): str(cls) for code, cls in diagnostic["diagnostic_class"].items() if cls in SUPERCLASSES
    }


def aggregate_superclasses(codes: dict[str, float], mapping: dict[str, str]) -> set[str]:
    """The superclasses of one record's ``scp_codes`` (likelihoods are not thresholded)."""
    return {mapping[code] for code in codes if code in mapping}


@register_source("ptbxl", fs=float, plus_dir=Path, plus_outliers=bool, labels=str)
class PTBXL(ECGDataset):
    """A PTB-XL folder (``ptbxl_database.csv``, ``scp_statements.csv``, ``records100/``, ``records500/``).

    Parameters
    ----------
    root
        The folder, or ``"bundled"`` for the 11-record sample shipped in ``assets/``.
    fs
        100 or 500 Hz; by default the resolution with more signal files present (500 on a tie).
        Rows whose file at that resolution is absent are counted in ``missing`` and skipped.
    plus_dir
        A PTB-XL+ folder: its 12SL intervals fill the ``hr, pr, qrs, qt`` columns (NaN otherwise).
    plus_outliers
        Apply the median +/- 3 SD filter to the PTB-XL+ labels (filtered records get NaN labels).
    labels
        A label set of :mod:`ecgcore.data.labels` (``study18``, or a comma list of crosswalked statements):
        one 0/1 column per class from the record's SCP statements, named by :attr:`classes`, which the
        trainer's multi-label classification then uses instead of the superclasses.
    """

    signal_suffixes = (".hea", ".dat")

    def __init__(
        self,
        root: str | Path,
        fs: float | str | None = None,
        plus_dir: str | Path | None = None,
        plus_outliers: bool | str = False,
        labels: str | None = None,
    ):
        root = require_dir("PTB-XL", resolve_root(root))
        self.labels = labels  # captured now: the PTB-XL+ code below reuses the name
        for name in (DATABASE, STATEMENTS):
            if not (root / name).is_file():
                raise DatasetError(f"{root} is not a PTB-XL folder: {name} not found")
        db = pd.read_csv(root / DATABASE)
        absent = [c for c in _REQUIRED if c not in db.columns]
        if absent:
            raise DatasetError(f"{root / DATABASE}: missing columns {', '.join(absent)}")
        statements = pd.read_csv(root / STATEMENTS, index_col=0)
        if not {"diagnostic", "diagnostic_class"} <= set(statements.columns):
            raise DatasetError(f"{root / STATEMENTS}: needs the columns diagnostic and diagnostic_class")

        present = {
            rate: db[col].map(lambda f: _has_signal(root, f)).to_numpy()
            for rate, col in FILENAME_COLUMN.items()
        }
        if fs is None:
            fs = 500.0 if present[500.0].sum() >= present[100.0].sum() else 100.0
        fs = float(fs)
        if fs not in FILENAME_COLUMN:
            raise DatasetError(f"PTB-XL has records at 100 or 500 Hz, not {fs:g}")
        available = present[fs]

        mapping = superclass_map(statements)
        codes = [_parse_codes(root, ecg_id, text) for ecg_id, text in zip(db["ecg_id"], db["scp_codes"])]
        classes = [aggregate_superclasses(c, mapping) for c in codes]
        index = pd.DataFrame(
            {
                "record_id": db["ecg_id"].astype(int).astype(str),
                "ecg_id": db["ecg_id"].astype(int),
                "patient_id": db["patient_id"].map(lambda p: str(int(p)) if pd.notna(p) else ""),
                "fold": db["strat_fold"].astype(int),
            }
        )
        bad_fold = ~index["fold"].between(1, 10)
        if bad_fold.any():
            raise DatasetError(
                f"{root / DATABASE}: strat_fold outside 1-10 for ecg_id {index['ecg_id'][bad_fold].tolist()[:5]}"
            )
        index["split"] = split_of(index["fold"])
        for key in TARGET_KEYS:
            index[key] = np.nan
        for cls in SUPERCLASSES:
            index[cls] = [int(cls in c) for c in classes]
        index["superclass"] = [next(iter(c)) if len(c) == 1 else "" for c in classes]
        index["n_superclasses"] = [len(c) for c in classes]
        index["path"] = db[FILENAME_COLUMN[fs]].astype(str)
        for col in _KEEP:
            if col in db.columns:
                index[col] = db[col]

        self.plus: PlusLabels | None = None
        if plus_dir:
            self.plus = load_ptbxl_plus(
                plus_dir, outlier_filter=str(plus_outliers).lower() in {"1", "true", "yes"}
            )
            labels = self.plus.labels.reindex(index["ecg_id"].to_numpy())
            for key in TARGET_KEYS:
                index[key] = labels[key].to_numpy()

        self.classes: tuple[str, ...] = SUPERCLASSES
        if self.labels:
            try:
                chosen = label_set(self.labels)
                y = chosen.from_scp(codes)
            except LabelError as exc:
                raise DatasetError(f"{root}: {exc}") from exc
            clash = sorted(set(chosen.classes) & set(index.columns))
            if clash:
                raise DatasetError(
                    f"{root}: label set {self.labels!r} has classes named like index columns {clash}"
                )
            for j, cls in enumerate(chosen.classes):
                index[cls] = y[:, j].astype(int)
            self.classes = chosen.classes

        missing = index.loc[~available, "record_id"].tolist()
        warn_missing("PTB-XL", root, [f"ecg_id {m} ({fs:g} Hz)" for m in missing], len(index))
        super().__init__(root, fs, LEADS_12, index[available], missing)

    def table_files(self) -> list[Path]:
        tables = [self.root / DATABASE, self.root / STATEMENTS]
        return tables + ([self.plus.source] if self.plus is not None else [])

    def describe(self) -> dict:
        out = super().describe()
        if self.plus is not None:
            out["ptbxl_plus"] = self.plus.report()
        return out


def _has_signal(root: Path, name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    base = root / name
    return base.with_name(base.name + ".hea").is_file() and base.with_name(base.name + ".dat").is_file()


def _parse_codes(root: Path, ecg_id: object, text: object) -> dict[str, float]:
    try:
        codes = ast.literal_eval(str(text))
    except (ValueError, SyntaxError) as exc:
        raise DatasetError(
            f"{root / DATABASE}: ecg_id {ecg_id}: scp_codes {text!r} is not a dict literal"
        ) from exc
    if not isinstance(codes, dict):
        raise DatasetError(f"{root / DATABASE}: ecg_id {ecg_id}: scp_codes {text!r} is not a dict")
    return codes
