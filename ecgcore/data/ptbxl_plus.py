"""PTB-XL+ interval labels from the GE 12SL features (``features/12sl_features.csv``, keyed by ``ecg_id``).

HR = 60000 / ``RR_Mean_Global`` (bpm); PR = ``PR_Int_Global``; QRS = ``QRS_Dur_Global``;
QT = ``QT_Int_Global`` (ms). A published implementation swapped the PR and QT columns; the mapping
below is the single place they are named, and a test pins it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcore.data.base import DatasetError, require_dir
from ecgcore.vocab import TARGET_KEYS

FEATURES_FILE = Path("features") / "12sl_features.csv"
#: target -> 12SL column it is read from (HR is derived from the mean RR interval).
COLUMNS: dict[str, str] = {
    "hr": "RR_Mean_Global",
    "pr": "PR_Int_Global",
    "qrs": "QRS_Dur_Global",
    "qt": "QT_Int_Global",
}


@dataclass
class PlusLabels:
    """Interval labels per ``ecg_id`` and what was dropped on the way."""

    labels: pd.DataFrame  # index ecg_id (int), columns hr, pr, qrs, qt
    source: Path  # the 12sl_features.csv read
    rows: int  # rows in the file
    dropped_nan: int  # rows with a NaN (or zero RR) in a used column
    outliers: dict[str, Any] = field(default_factory=dict)  # target -> {"low", "high", "removed"}

    def report(self) -> dict[str, Any]:
        return {
            "file": str(self.source),
            "rows": self.rows,
            "dropped_nan": self.dropped_nan,
            "kept": len(self.labels),
            "outliers": self.outliers,
        }


def load_ptbxl_plus(plus_dir: str | Path, outlier_filter: bool = False, n_sd: float = 3.0) -> PlusLabels:
    """Read the interval labels of a PTB-XL+ folder.

    Parameters
    ----------
    plus_dir
        The PTB-XL+ folder (holding ``features/12sl_features.csv``) or the CSV itself.
    outlier_filter
        Drop rows outside median +/- ``n_sd`` standard deviations in any target, as the
        published experiments did; what was removed is reported per target.
    """
    path = Path(plus_dir)
    csv = path if path.suffix == ".csv" else require_dir("PTB-XL+", path) / FEATURES_FILE
    if not csv.is_file():
        raise DatasetError(f"{path} is not a PTB-XL+ folder: {FEATURES_FILE} not found")
    table = pd.read_csv(csv, usecols=lambda c: c in {"ecg_id", *COLUMNS.values()})
    absent = [c for c in ("ecg_id", *COLUMNS.values()) if c not in table.columns]
    if absent:
        raise DatasetError(f"{csv}: missing columns {', '.join(absent)}")
    rr = table[COLUMNS["hr"]].where(table[COLUMNS["hr"]] > 0)
    labels = pd.DataFrame(
        {
            "hr": 60_000.0 / rr,
            "pr": table[COLUMNS["pr"]],
            "qrs": table[COLUMNS["qrs"]],
            "qt": table[COLUMNS["qt"]],
        }
    ).astype(float)
    labels.index = table["ecg_id"].astype(int).to_numpy()
    labels.index.name = "ecg_id"
    complete = labels.notna().all(axis=1)
    result = PlusLabels(
        labels=labels[complete], source=csv, rows=len(labels), dropped_nan=int((~complete).sum())
    )
    if outlier_filter:
        result.labels, result.outliers = _filter_outliers(result.labels, n_sd)
    return result


def _filter_outliers(labels: pd.DataFrame, n_sd: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop rows outside median +/- n_sd SD of any target (bounds from the unfiltered values)."""
    keep = np.ones(len(labels), dtype=bool)
    report: dict[str, Any] = {}
    for key in TARGET_KEYS:
        values = labels[key].to_numpy()
        median, sd = float(np.median(values)), float(np.std(values))
        low, high = median - n_sd * sd, median + n_sd * sd
        outside = (values < low) | (values > high)
        report[key] = {"low": round(low, 2), "high": round(high, 2), "removed": int(outside.sum())}
        keep &= ~outside
    report["removed_rows"] = int((~keep).sum())
    return labels[keep], report
