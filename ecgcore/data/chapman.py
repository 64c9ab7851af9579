"""Chapman-Shaoxing (Zheng et al. 2020), figshare layout, with the study's 4 rhythm classes.

Layout (the figshare release, ``chapman:DIR``)::

    DIR/Diagnostics.xlsx   (or Diagnostics.csv) one row per record: FileName, Rhythm, Beat, PatientAge,
                           Gender, VentricularRate, AtrialRate, QRSDuration, QTInterval, ...
    DIR/ECGData/<FileName>.csv            12 columns I, II, III, aVR, aVL, aVF, V1-V6, 5000 rows
                                          (10 s at 500 Hz) in microvolts, with or without a header row
    DIR/ECGDataDenoised/<FileName>.csv    the authors' denoised copies (option ``denoised=1``)

Rhythm classes (Zheng et al. 2020, as the vision study grouped them): SB; AFIB = AFIB + AF;
GSVT = SVT + AT + SAAWR + ST + AVNRT + AVRT; SR = SR + SI (sinus irregularity, also written SA).
Each record is one patient (10,646 patients, 10,646 records), so the hash of the record's name is a
patient-level fold: folds 1-8 train, 9 validation, 10 test. The index has one 0/1 column per class and
``dataset.classes``; ``rhythm`` keeps the original code.

The PhysioNet/CinC Challenge 2021 copy of the same database (WFDB + SNOMED codes, records ``JS00001`` ...
``JS10646``) is ``chapman_challenge:DIR``: the Challenge reader (:class:`ecgcore.data.challenge.ChallengeDataset`,
``db=Chapman_Shaoxing``) with the same 4 classes, mapped from the Challenge abbreviations of the record's codes
(:data:`CHALLENGE_GROUPS`: AF and AFL -> AFIB; SVT, ATach, SAAWR, STach, AVNRT, AVRT -> GSVT; SB; NSR and SA ->
SR). A record whose codes fall in none or in several of the groups has no class (single-label training skips it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecgcore.data.base import DatasetError, ECGDataset, hash_fold, require_dir, split_of, warn_missing
from ecgcore.data.challenge import ChallengeDataset
from ecgcore.data.labels import challenge_map
from ecgcore.data.sources import register_source
from ecgcore.io import ECGFormatError, Record
from ecgcore.vocab import LEADS_12, canonical_lead

#: The study's classes, in the order of every label vector.
RHYTHM_CLASSES: tuple[str, ...] = ("AFIB", "GSVT", "SB", "SR")
#: Rhythm code of Diagnostics -> class.
RHYTHM_GROUPS: dict[str, str] = {
    "SB": "SB",
    "AFIB": "AFIB",
    "AF": "AFIB",
    "SVT": "GSVT",
    "AT": "GSVT",
    "SAAWR": "GSVT",
    "ST": "GSVT",
    "AVNRT": "GSVT",
    "AVRT": "GSVT",
    "SR": "SR",
    "SI": "SR",
    "SA": "SR",
}
#: Challenge abbreviation (ecgcore.data.labels.challenge_map) -> class, for the Challenge copy.
CHALLENGE_GROUPS: dict[str, str] = {
    "SB": "SB",
    "AF": "AFIB",
    "AFL": "AFIB",
    "SVT": "GSVT",
    "ATach": "GSVT",
    "SAAWR": "GSVT",
    "STach": "GSVT",
    "AVNRT": "GSVT",
    "AVRT": "GSVT",
    "NSR": "SR",
    "SA": "SR",
}
FS = 500.0
DIAGNOSTICS = ("Diagnostics.xlsx", "Diagnostics.csv")


def read_diagnostics(root: Path) -> pd.DataFrame:
    """The diagnostics table of a figshare Chapman folder (xlsx or csv)."""
    for name in DIAGNOSTICS:
        path = root / name
        if path.is_file():
            try:
                table = pd.read_excel(path) if path.suffix == ".xlsx" else pd.read_csv(path)
            except ImportError as err:  # openpyxl missing
                raise DatasetError(
                    f"{path}: reading .xlsx needs openpyxl ({err}); or save it as Diagnostics.csv"
                ) from None
            except Exception as err:
                raise DatasetError(f"{path}: not a readable table ({type(err).__name__}: {err})") from None
            missing = [c for c in ("FileName", "Rhythm") if c not in table.columns]
            if missing:
                raise DatasetError(
                    f"{path}: no column {', '.join(missing)} (columns: {', '.join(map(str, table.columns))})"
                )
            return table
    raise DatasetError(
        f"{root}: no Diagnostics.xlsx or Diagnostics.csv (the figshare Chapman-Shaoxing layout)"
    )


@register_source("chapman", denoised=bool)
class Chapman(ECGDataset):
    """The figshare Chapman-Shaoxing release (see the module docstring)."""

    signal_suffixes = (".csv",)
    classes: tuple[str, ...] = RHYTHM_CLASSES

    def __init__(self, root: str | Path, denoised: bool = False):
        root = require_dir("Chapman-Shaoxing", root)
        table = read_diagnostics(root)
        folder = "ECGDataDenoised" if denoised else "ECGData"
        if not (root / folder).is_dir():
            raise DatasetError(f"{root}: no {folder} folder beside the diagnostics table")
        names = table["FileName"].astype(str).str.strip().str.removesuffix(".csv")
        rhythm = table["Rhythm"].astype(str).str.strip().str.upper()
        unknown = sorted(set(rhythm) - set(RHYTHM_GROUPS))
        if unknown:
            raise DatasetError(
                f"{root}: unknown Rhythm codes {', '.join(unknown)}; expected {', '.join(RHYTHM_GROUPS)}"
            )
        present = np.array([(root / folder / f"{n}.csv").is_file() for n in names])
        warn_missing("Chapman-Shaoxing", root, list(names[~present]), len(names), "CSV file")
        if not present.any():
            raise DatasetError(f"{root}: none of the {len(names)} records has its CSV in {folder}/")
        group = rhythm.map(RHYTHM_GROUPS)
        index = pd.DataFrame(
            {
                "record_id": names,
                "patient_id": names,
                "fold": [hash_fold(n) for n in names],
                "hr": pd.to_numeric(table.get("VentricularRate"), errors="coerce"),
                "pr": np.nan,
                "qrs": pd.to_numeric(table.get("QRSDuration"), errors="coerce"),
                "qt": pd.to_numeric(table.get("QTInterval"), errors="coerce"),
                "path": [f"{folder}/{n}" for n in names],
                "rhythm": rhythm,
                "rhythm_class": group,
                "age": pd.to_numeric(table.get("PatientAge"), errors="coerce"),
                "sex": table.get("Gender", pd.Series("Unknown", index=table.index)).astype(str),
            }
        )[present].reset_index(drop=True)
        index["split"] = split_of(index["fold"])
        for c in RHYTHM_CLASSES:
            index[c] = (index["rhythm_class"] == c).astype(np.float32)
        self._table = next(root / n for n in DIAGNOSTICS if (root / n).is_file())
        super().__init__(root, FS, LEADS_12, index, list(names[~present]))

    def table_files(self) -> list[Path]:
        return [self._table]

    def read(self, record_id: str) -> Record:
        """One record in millivolts (the CSV holds microvolts)."""
        row = self.row(record_id)
        path = self.root / f"{row['path']}.csv"
        try:
            frame = pd.read_csv(path, header=None)
        except Exception as err:
            raise ECGFormatError(f"{path}: not a readable CSV ({type(err).__name__}: {err})") from None
        first = frame.iloc[0].astype(str).tolist()
        if not _numeric(first):
            leads = tuple(canonical_lead(x) for x in first)
            frame = frame.iloc[1:]
        else:
            leads = LEADS_12
        if frame.shape[1] != len(leads) or sorted(leads) != sorted(LEADS_12) or len(frame) < 2:
            raise ECGFormatError(f"{path}: {frame.shape[1]} columns x {len(frame)} rows, expected 12 leads")
        values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(np.float32).T / 1000.0
        if not np.isfinite(values).all():
            raise ECGFormatError(f"{path}: non-numeric or missing samples")
        record = Record(values, FS, leads, str(record_id), path)
        record.metadata["index"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        return record


def _numeric(cells: list[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


@register_source("chapman_challenge", seconds=float)
class ChapmanChallenge(ChallengeDataset):
    """Chapman-Shaoxing in the Challenge layout, with the 4 rhythm classes (see the module docstring)."""

    def __init__(self, root: str | Path, seconds: float = 10.0):
        super().__init__(root, db="Chapman_Shaoxing", labels="scored", seconds=seconds)
        self.options = {"seconds": seconds}
        abbreviation = {code: d.abbreviation for code, d in challenge_map().diagnoses.items()}
        groups = [
            {
                CHALLENGE_GROUPS[a]
                for a in (abbreviation.get(c) for c in str(dx).split(","))
                if a in CHALLENGE_GROUPS
            }
            for dx in self.index["dx"]
        ]
        self.index["rhythm_class"] = [next(iter(g)) if len(g) == 1 else "" for g in groups]
        for c in RHYTHM_CLASSES:
            self.index[c] = (self.index["rhythm_class"] == c).astype(np.float32)
        self.classes = RHYTHM_CLASSES
