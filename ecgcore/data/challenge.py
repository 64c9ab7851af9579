"""The PhysioNet/CinC Challenge 2020/2021 layout: ``.hea`` + ``.mat`` records with SNOMED CT labels.

Every database the Challenge distributed is recognised by its record-name prefix (the 2021 training
set; the 2020 set used the same names):

========  ==================  ===========================  =========  ===============
prefix    key                 database                     rate (Hz)  length
========  ==================  ===========================  =========  ===============
A         CPSC                CPSC 2018                    500        6-60 s
Q         CPSC_Extra          CPSC 2018, unused part       500        6-60 s
I         StPetersburg        St Petersburg INCART         257        30 min
S         PTB                 PTB Diagnostic               1000       ~2 min (varies)
HR        PTB_XL              PTB-XL                       500        10 s
E         Georgia             Georgia 12-lead (G12EC)      500        10 s (a few 5 s)
JS        Chapman_Shaoxing    Chapman University/Shaoxing  500        10 s
JS        Ningbo              Ningbo First Hospital        500        10 s
========  ==================  ===========================  =========  ===============

Chapman-Shaoxing and Ningbo share the prefix ``JS`` in 2021. Assumption (stated in every summary):
a folder name on the record's path decides when it says ``ningbo`` or ``chapman``/``shaoxing`` (the
2021 download's ``training/ningbo``, ``training/chapman_shaoxing``, the 2020 ``WFDB_Ningbo``,
``WFDB_ChapmanShaoxing``); otherwise ``JS00001``-``JS10646`` are Chapman-Shaoxing and higher numbers
Ningbo (the 2021 numbering: Ningbo continues after Chapman-Shaoxing's 10,646 ids; 45,551 - 10,646 =
34,905 Ningbo recordings). The sample's ``JS20000``-``JS20009`` are Ningbo by this rule, as its README says.

Labels: the header's ``# Dx`` SNOMED codes, with ``# Age`` and ``# Sex``; the index has one 0/1 column
per class of the chosen label set (``labels=``, default ``scored``; see :mod:`ecgcore.data.labels`)
and :attr:`ChallengeDataset.classes` names them.

Training shape (:data:`SHAPE_POLICY`): records are resampled to the run's rate by the cache; a record
of up to ``long_s`` seconds (default 60) gives one ``seconds``-long example (default 10): its first
``seconds`` s, zero-padded at the end when it is shorter; a longer record (INCART's 30 min, most of PTB)
is cut into non-overlapping ``seconds``-long windows that inherit the record's labels and patient, so
the windows of one record never straddle a split. The summary counts what each rule did.

Patients: Challenge headers carry no patient id, so splits are record-level (each record its own
patient, fold hashed from its name), except for PTB-XL records when the user gives PTB-XL's own
``ptbxl_database.csv`` (option ``ptbxl=DIR``): ``HR06000`` is PTB-XL ``ecg_id`` 6000, and it takes that
record's patient and ``strat_fold``, so PTB-XL's patient-level split carries over.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcore.data.base import DatasetError, ECGDataset, hash_fold, require_dir, split_of, warn_missing
from ecgcore.data.labels import LabelError, challenge_map, class_counts, label_set, parse_dx, rare_classes
from ecgcore.data.sources import format_spec, register_source
from ecgcore.io import Record
from ecgcore.vocab import LEADS_12, TARGET_KEYS, canonical_lead


@dataclass(frozen=True)
class ChallengeDatabase:
    """One database of the Challenge: its record prefix, key (the label maps' column), name, usual rate."""

    prefix: str
    key: str
    name: str
    fs: float
    length: str


DATABASES: tuple[ChallengeDatabase, ...] = (
    ChallengeDatabase("A", "CPSC", "CPSC 2018", 500, "6-60 s"),
    ChallengeDatabase("Q", "CPSC_Extra", "CPSC 2018 (extra)", 500, "6-60 s"),
    ChallengeDatabase("I", "StPetersburg", "St Petersburg INCART", 257, "30 min"),
    ChallengeDatabase("S", "PTB", "PTB Diagnostic", 1000, "~2 min"),
    ChallengeDatabase("HR", "PTB_XL", "PTB-XL", 500, "10 s"),
    ChallengeDatabase("E", "Georgia", "Georgia 12-lead (G12EC)", 500, "10 s"),
    ChallengeDatabase("JS", "Chapman_Shaoxing", "Chapman-Shaoxing", 500, "10 s"),
    ChallengeDatabase("JS", "Ningbo", "Ningbo", 500, "10 s"),
)
DATABASE_BY_KEY: dict[str, ChallengeDatabase] = {d.key: d for d in DATABASES}
#: The last Chapman-Shaoxing record number (``JS10646``); higher ``JS`` numbers are Ningbo.
LAST_CHAPMAN_SHAOXING = 10646
_NAME = re.compile(r"^(HR|JS|A|Q|I|S|E)(\d+)$")
_SEX = {"male": "Male", "m": "Male", "female": "Female", "f": "Female"}
SHAPE_POLICY = (
    "resample to the run's rate (polyphase, in the cache); records up to long_s s: the first `seconds` s, "
    "zero-padded at the end if shorter; longer records: non-overlapping `seconds`-s windows with the "
    "record's labels and patient"
)
PATIENT_POLICY = (
    "record-level: Challenge headers carry no patient id (each record is its own patient, fold hashed "
    "from its name); PTB-XL records (HR*) take their PTB-XL patient and strat_fold when ptbxl=DIR is given"
)
JS_ASSUMPTION = (
    "JS records: a folder named ningbo / chapman / shaoxing decides; otherwise JS00001-JS10646 are "
    "Chapman-Shaoxing and higher numbers Ningbo (the 2021 numbering)"
)


class LeakageError(DatasetError):
    """The same PTB-XL record sits on both sides of a train / evaluation boundary across two datasets."""


def database_of(name: str, folders: tuple[str, ...] = ()) -> ChallengeDatabase | None:
    """The database a record name belongs to (``None`` for a name no Challenge database uses)."""
    match = _NAME.match(name)
    if not match:
        return None
    prefix, number = match.groups()
    if prefix != "JS":
        return next(d for d in DATABASES if d.prefix == prefix)
    hint = " ".join(folders).lower()
    if "ningbo" in hint:
        return DATABASE_BY_KEY["Ningbo"]
    if "chapman" in hint or "shaoxing" in hint:
        return DATABASE_BY_KEY["Chapman_Shaoxing"]
    return DATABASE_BY_KEY["Chapman_Shaoxing" if int(number) <= LAST_CHAPMAN_SHAOXING else "Ningbo"]


@dataclass
class HeaderInfo:
    """What the index needs from one Challenge header (read as text: fast for tens of thousands)."""

    fs: float
    n_samples: int
    leads: tuple[str, ...]
    files: tuple[str, ...]
    age: float
    sex: str
    dx: tuple[str, ...]


def read_header(path: Path) -> HeaderInfo:
    """Parse a Challenge ``.hea``: the record line, the signal lines and the ``#`` comments."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        fields = lines[0].split()
        n_sig = int(fields[1])
        fs = float(fields[2].split("/")[0])
        n_samples = int(fields[3]) if len(fields) > 3 else 0
        signal_lines = [ln.split() for ln in lines[1 : 1 + n_sig]]
        leads = tuple(canonical_lead(s[-1]) for s in signal_lines)
        files = tuple(dict.fromkeys(s[0] for s in signal_lines))
    except (IndexError, ValueError) as exc:
        raise DatasetError(f"{path}: not a Challenge header ({exc})") from exc
    comments = {}
    for line in lines:
        if line.startswith("#") and ":" in line:
            key, _, value = line.lstrip("#").partition(":")
            comments[key.strip().lower()] = value.strip()
    try:
        age = float(comments.get("age", "nan"))
    except ValueError:
        age = math.nan
    sex = _SEX.get(comments.get("sex", "").strip().lower(), "Unknown")
    try:
        dx = parse_dx(comments.get("dx", ""), path)
    except LabelError as exc:
        raise DatasetError(str(exc)) from exc
    return HeaderInfo(fs, n_samples, leads, files, age, sex, dx)


@register_source("challenge", db=str, labels=str, seconds=float, long_s=float, ptbxl=Path)
class ChallengeDataset(ECGDataset):
    """A folder (searched recursively) of PhysioNet/CinC Challenge 2020/2021 records.

    Parameters (also spec options: ``challenge:DIR;db=Georgia;labels=study18``)
    ----------
    db
        Keep only these databases: comma list of keys (``Georgia``, ``PTB_XL`` ...) or prefixes (``E``).
    labels
        The label set of the target columns (``scored``, ``study18`` or a comma list).
    seconds, long_s
        The training shape (see the module docstring).
    ptbxl
        PTB-XL's folder or its ``ptbxl_database.csv``: HR records take their PTB-XL patient and fold.
    """

    signal_suffixes = (".hea", ".mat")

    def __init__(
        self,
        root: str | Path,
        db: str | None = None,
        labels: str = "scored",
        seconds: float | str = 10.0,
        long_s: float | str = 60.0,
        ptbxl: str | Path | None = None,
    ):
        root = require_dir("Challenge", root)
        self.options = {"db": db, "labels": labels, "seconds": seconds, "long_s": long_s, "ptbxl": ptbxl}
        self.seconds, self.long_s = float(seconds), float(long_s)
        if self.seconds <= 0 or self.long_s < self.seconds:
            raise DatasetError(f"challenge {root}: need 0 < seconds <= long_s (got {seconds}, {long_s})")
        try:
            self.label_set = label_set(labels)
        except LabelError as exc:
            raise DatasetError(f"challenge {root}: {exc}") from exc
        self.classes: tuple[str, ...] = self.label_set.classes
        wanted = _wanted_databases(db, root)
        headers = sorted(root.rglob("*.hea"))
        records, missing, foreign = [], [], []
        for header in headers:
            name = header.stem
            folders = header.relative_to(root).parent.parts
            database = database_of(name, folders)
            if database is None:
                foreign.append(name)
                continue
            if wanted and database.key not in wanted:
                continue
            info = read_header(header)
            if not info.files or not all((header.parent / f).is_file() for f in info.files):
                missing.append(name)
                continue
            records.append((name, header.relative_to(root).with_suffix("").as_posix(), database, info))
        warn_missing("Challenge", root, missing, len(records) + len(missing))
        if not records:
            raise DatasetError(
                f"{root} holds no Challenge records{' of ' + ','.join(sorted(wanted)) if wanted else ''} "
                f"(expected .hea + .mat files named A*, Q*, I*, S*, HR*, E*, JS*; found {len(headers)} headers)"
            )
        self.foreign = foreign
        self.ptbxl_table = _ptbxl_table(ptbxl) if ptbxl else None
        index = self._index(records)
        fs = Counter(index["record_fs"]).most_common(1)[0][0]
        present = set(",".join(index["record_leads"]).split(","))
        super().__init__(root, fs, tuple(lead for lead in LEADS_12 if lead in present), index, missing)

    @property
    def spec(self) -> str:
        return format_spec(self.kind, self.root, **self.options)

    def _index(self, records: list) -> pd.DataFrame:
        patients = self.ptbxl_table
        rows = []
        for name, path, database, info in records:
            duration = info.n_samples / info.fs
            ecg_id = int(_NAME.match(name).group(2)) if database.key == "PTB_XL" else None
            patient, fold = name, hash_fold(name)
            if ecg_id is not None and patients is not None and ecg_id in patients.index:
                patient, fold = (
                    f"ptbxl-{patients.loc[ecg_id, 'patient_id']}",
                    int(patients.loc[ecg_id, "fold"]),
                )
            base = {
                "patient_id": patient,
                "fold": fold,
                "database": database.key,
                "prefix": database.prefix,
                "record_fs": info.fs,
                "n_samples": info.n_samples,
                "duration_s": duration,
                "record_leads": ",".join(info.leads),
                "age": info.age,
                "sex": info.sex,
                "dx": ",".join(info.dx),
                "ecg_id": ecg_id,
                "path": path,
                "record": name,
            }
            for start, stop, n_windows in self._windows(info):
                rid = name if n_windows == 1 else f"{name}#w{start // max(stop - start, 1):04d}"
                rows.append({**base, "record_id": rid, "start": start, "stop": stop, "n_windows": n_windows})
        index = pd.DataFrame(rows)
        index["split"] = split_of(index["fold"])
        for key in TARGET_KEYS:
            index[key] = np.nan
        y = self.label_set.from_snomed(index["dx"].str.split(","))
        for j, cls in enumerate(self.classes):
            index[cls] = y[:, j].astype(int)
        return index

    def _windows(self, info: HeaderInfo) -> list[tuple[int, int, int]]:
        """(start, stop, n_windows) in native samples: one crop / pad, or the windows of a long record."""
        length = int(round(self.seconds * info.fs))
        if info.n_samples / info.fs <= self.long_s:
            return [(0, length, 1)]
        n = info.n_samples // length
        return [(k * length, (k + 1) * length, n) for k in range(n)]

    def table_files(self) -> list[Path]:
        return [self.ptbxl_table.attrs["source"]] if self.ptbxl_table is not None else []

    def read(self, record_id: str) -> Record:
        """The record's training example at its native rate: its crop, zero-padded window, or long-record window.

        ``metadata`` adds the decoded diagnoses (``diagnoses``), age, sex, database and ``padded_s``.
        """
        record = super().read(record_id)
        row = self.row(record_id)
        start, stop = int(row["start"]), int(row["stop"])
        signal = record.signal[:, start:stop]
        padded = stop - start - signal.shape[1]
        if padded > 0:
            signal = np.pad(signal, ((0, 0), (0, padded)))
        codes = [c for c in str(row["dx"]).split(",") if c]
        metadata = {
            **record.metadata,
            "diagnoses": challenge_map().decode(codes),
            "database": row["database"],
            "age": None if pd.isna(row["age"]) else float(row["age"]),
            "sex": row["sex"],
            "padded_s": padded / record.fs,
            "window_s": (start / record.fs, stop / record.fs),
        }
        return replace(record, signal=signal, metadata=metadata)

    def read_full(self, record_id: str) -> Record:
        """The whole record as stored (no crop, pad or window), e.g. for browsing."""
        return super().read(record_id)

    def describe(self) -> dict[str, Any]:
        """Records, databases by prefix, rates, lengths, the shape policy's effect, labels and unmapped codes."""
        out = super().describe()
        idx = self.index
        per_record = idx.drop_duplicates("record")
        snomed = challenge_map()
        by_class, unmapped = snomed.count(per_record["dx"].str.split(","))
        by_class.pop("", None)
        unmapped.pop("", None)
        durations = per_record["duration_s"]
        long = per_record["duration_s"] > self.long_s
        out.update(
            {
                "records": int(len(per_record)),
                "examples": int(len(idx)),
                "patients": int(idx["patient_id"].nunique()),
                "databases": {
                    key: {
                        "prefix": DATABASE_BY_KEY[key].prefix,
                        "name": DATABASE_BY_KEY[key].name,
                        "records": int(n),
                    }
                    for key, n in per_record["database"].value_counts().sort_index().items()
                },
                "sampling_rates_hz": {
                    f"{k:g}": int(v) for k, v in per_record["record_fs"].value_counts().sort_index().items()
                },
                "lengths_s": {
                    "min": round(float(durations.min()), 3),
                    "median": round(float(durations.median()), 3),
                    "max": round(float(durations.max()), 3),
                    "counts": {
                        f"{k:g}": int(v) for k, v in durations.round(3).value_counts().sort_index().items()
                    },
                },
                "shape_policy": {
                    "rule": SHAPE_POLICY,
                    "seconds": self.seconds,
                    "long_s": self.long_s,
                    "cropped": int(((durations > self.seconds) & ~long).sum()),
                    "padded": int((durations < self.seconds).sum()),
                    "exact": int((durations == self.seconds).sum()),
                    "windowed_records": int(long.sum()),
                    "windows": int(idx.loc[idx["n_windows"] > 1].shape[0]),
                    "resampled_at_500_hz": int((per_record["record_fs"] != 500).sum()),
                },
                "patient_policy": PATIENT_POLICY,
                "ptbxl_patients_matched": int(idx["patient_id"].str.startswith("ptbxl-").sum()),
                "js_assumption": JS_ASSUMPTION,
                "age": _age_summary(per_record["age"]),
                "sex": {k: int(v) for k, v in per_record["sex"].value_counts().sort_index().items()},
                "label_counts": by_class,
                "unmapped_codes": unmapped,
                "label_set": self.label_set.name,
                "label_set_counts": class_counts(
                    idx[list(self.classes)].to_numpy(), idx["split"].to_numpy(), self.classes
                ),
                "not_challenge_names": self.foreign[:5] + (["..."] if len(self.foreign) > 5 else []),
            }
        )
        out["rare_classes"] = rare_classes(out["label_set_counts"])
        return out


def _age_summary(age: pd.Series) -> dict[str, Any]:
    known = age.dropna()
    if known.empty:
        return {"known": 0}
    return {
        "known": len(known),
        "mean": round(float(known.mean()), 1),
        "sd": round(float(known.std()), 1) if len(known) > 1 else None,
        "min": float(known.min()),
        "max": float(known.max()),
    }


def _wanted_databases(db: str | None, root: Path) -> set[str]:
    if not db:
        return set()
    wanted = set()
    for item in str(db).split(","):
        item = item.strip()
        matches = [d.key for d in DATABASES if item.lower() in (d.key.lower(), d.prefix.lower())]
        if not matches:
            choices = ", ".join(f"{d.key} ({d.prefix})" for d in DATABASES)
            raise DatasetError(f"challenge {root}: unknown database {item!r}; expected one of {choices}")
        wanted.update(matches)
    return wanted


def _ptbxl_table(path: str | Path) -> pd.DataFrame:
    """``ecg_id`` -> PTB-XL ``patient_id`` and ``strat_fold`` (``fold``) from PTB-XL's database csv."""
    path = Path(path).expanduser()
    csv = path / "ptbxl_database.csv" if path.is_dir() else path
    if not csv.is_file():
        raise DatasetError(f"{csv}: not found (ptbxl= needs PTB-XL's folder or its ptbxl_database.csv)")
    table = pd.read_csv(csv, usecols=lambda c: c in {"ecg_id", "patient_id", "strat_fold"})
    if not {"ecg_id", "patient_id", "strat_fold"} <= set(table.columns):
        raise DatasetError(f"{csv}: needs the columns ecg_id, patient_id and strat_fold")
    table = table.dropna()
    out = pd.DataFrame(
        {"patient_id": table["patient_id"].astype(int).astype(str), "fold": table["strat_fold"].astype(int)}
    )
    out.index = table["ecg_id"].astype(int)
    out.attrs["source"] = csv
    return out


def ptbxl_records(index: pd.DataFrame) -> set[int]:
    """The PTB-XL ``ecg_id``s among an index's rows (PTB-XL's own index, or Challenge HR records)."""
    if "ecg_id" not in index.columns:
        return set()
    return {int(e) for e in index["ecg_id"].dropna()}


def check_no_shared_records(trained_on: pd.DataFrame, evaluated_on: pd.DataFrame, what: str = "") -> None:
    """Raise :class:`LeakageError` if a PTB-XL record a model trains on is also one it is evaluated on.

    ``trained_on`` / ``evaluated_on``: index rows (PTB-XL's, or a Challenge folder's whose HR records are
    PTB-XL records redistributed). A user who brings PTB-XL and the Challenge data must not pretrain on
    what they test on.
    """
    shared = sorted(ptbxl_records(trained_on) & ptbxl_records(evaluated_on))
    if shared:
        examples = ", ".join(f"ecg_id {e} (HR{e:05d})" for e in shared[:5]) + (
            ", ..." if len(shared) > 5 else ""
        )
        raise LeakageError(
            f"{what + ': ' if what else ''}{len(shared)} PTB-XL records are both trained on and evaluated on "
            f"({examples}); leave PTB-XL's records out of the Challenge data (db=Georgia, or without PTB_XL)"
        )


def record_identity(kind: str, record_id: str) -> tuple[str, str]:
    """``(kind, id)`` under which records are compared across datasets: the Challenge's ``HR*`` records
    (and their windows) are PTB-XL's, so they compare as ``("ptbxl", ecg_id)``."""
    if kind == "challenge":
        match = _NAME.match(str(record_id).split("#")[0])
        if match and match.group(1) == "HR":
            return "ptbxl", str(int(match.group(2)))
    return kind, str(record_id)
