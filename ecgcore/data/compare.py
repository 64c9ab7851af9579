"""Side-by-side profiles of datasets: labels over one label set, sampling rates, lengths, age and sex.

:func:`profile` reduces any opened source to the numbers a comparison needs, so two databases with
different label vocabularies (PTB-XL's SCP statements, the Challenge's SNOMED codes) are counted over
the same classes: Challenge records through their ``# Dx`` codes, PTB-XL records through the reviewed
crosswalk. A class a source cannot express (no crosswalk row for PTB-XL; no labels at all in a DeepFake
or plain WFDB folder) is ``None``, not zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ecgcore.data.base import ECGDataset
from ecgcore.data.labels import label_set

#: Lengths of sources whose index does not carry them: every record of these kinds is this long (s).
NOMINAL_SECONDS: dict[str, float] = {"ptbxl": 10.0, "deepfake": 10.0}
_SEX_WORDS = {0: "male", 1: "female", "male": "male", "female": "female", "m": "male", "f": "female"}


@dataclass
class DatasetProfile:
    """One source reduced to what a comparison shows (counts per record, not per window)."""

    name: str
    records: int
    label_set: str
    label_counts: dict[str, int | None]
    rates: dict[float, int]
    durations_s: np.ndarray
    durations_nominal: bool
    ages: np.ndarray
    sex: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able summary (for downloads and tests)."""
        durations = self.durations_s
        return {
            "name": self.name,
            "records": self.records,
            "label_set": self.label_set,
            "label_counts": self.label_counts,
            "rates_hz": {f"{k:g}": v for k, v in self.rates.items()},
            "length_s": {
                "median": float(np.median(durations)) if len(durations) else None,
                "min": float(durations.min()) if len(durations) else None,
                "max": float(durations.max()) if len(durations) else None,
                "nominal": self.durations_nominal,
            },
            "age": {
                "known": int(len(self.ages)),
                "median": float(np.median(self.ages)) if len(self.ages) else None,
            },
            "sex": self.sex,
        }


def profile(dataset: ECGDataset, labels: str = "study18", name: str | None = None) -> DatasetProfile:
    """The comparison profile of ``dataset`` over the label set ``labels`` (see the module docstring)."""
    index = dataset.index.drop_duplicates("record") if "record" in dataset.index else dataset.index
    chosen = label_set(labels)
    counts: dict[str, int | None] = dict.fromkeys(chosen.classes)
    if "dx" in index:
        y = chosen.from_snomed(index["dx"].astype(str).str.split(","))
        counts = {c: int(y[:, j].sum()) for j, c in enumerate(chosen.classes)}
    elif "scp_codes" in index:
        y = chosen.from_scp(index["scp_codes"], strict=False)
        counts = {
            c: None if np.isnan(y[:, j]).all() else int(y[:, j].sum()) for j, c in enumerate(chosen.classes)
        }
    if "record_fs" in index:
        rates = {float(k): int(v) for k, v in index["record_fs"].value_counts().sort_index().items()}
    else:
        rates = {float(dataset.fs): len(index)}
    nominal = False
    if "duration_s" in index:
        durations = index["duration_s"].to_numpy(float)
    elif {"n_samples", "record_fs"} <= set(index.columns):
        durations = (index["n_samples"] / index["record_fs"]).to_numpy(float)
    else:
        durations = np.full(len(index), NOMINAL_SECONDS.get(dataset.kind, np.nan))
        nominal = True
    ages = (
        pd.to_numeric(index["age"], errors="coerce").dropna().to_numpy(float)
        if "age" in index
        else np.array([])
    )
    sex: dict[str, int] = {}
    if "sex" in index:
        words = index["sex"].map(lambda v: _SEX_WORDS.get(v.lower() if isinstance(v, str) else v, "unknown"))
        sex = {k: int(v) for k, v in words.value_counts().sort_index().items()}
    return DatasetProfile(
        name or dataset.spec, len(index), chosen.name, counts, rates, durations, nominal, ages, sex
    )


def profiles_table(profiles: list[DatasetProfile]) -> pd.DataFrame:
    """Records per class (rows) and source (columns); ``None`` where a source cannot express the class."""
    classes = list(dict.fromkeys(c for p in profiles for c in p.label_counts))
    return pd.DataFrame({p.name: [p.label_counts.get(c) for c in classes] for p in profiles}, index=classes)


__all__ = ["NOMINAL_SECONDS", "DatasetProfile", "profile", "profiles_table"]
