"""Any folder of WFDB records (searched recursively); no labels."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecgcore.data.base import (
    DatasetError,
    ECGDataset,
    MissingFilesWarning,
    hash_fold,
    require_dir,
    split_of,
    warn_missing,
)
from ecgcore.data.sources import register_source
from ecgcore.vocab import LEADS_12, TARGET_KEYS, canonical_lead


@register_source("wfdb")
class WFDBDir(ECGDataset):
    """Every single-segment WFDB record under ``root``.

    ``record_id`` is the record's path relative to ``root`` without extension; each record is its
    own patient and its fold is a hash of its id. ``fs`` is the most common rate; the index has
    each record's own ``record_fs``, ``n_samples`` and ``record_leads``. Headers that cannot be
    parsed, and records whose signal file is absent, are counted in ``missing`` with a warning.
    """

    def __init__(self, root: str | Path):
        root = require_dir("WFDB", root)
        headers = sorted(root.rglob("*.hea"))
        if not headers:
            raise DatasetError(f"{root} holds no WFDB records (no .hea files found under it)")
        rows, missing, unreadable = [], [], []
        for header in headers:
            record_id = header.relative_to(root).with_suffix("").as_posix()
            try:
                hdr = wfdb.rdheader(str(header.with_suffix("")))
                files = set(hdr.file_name or [])
                leads = [canonical_lead(n) for n in hdr.sig_name if _is_lead(n)]
            except Exception as exc:  # a multi-segment or malformed header: skip it, say so
                unreadable.append(f"{record_id} ({type(exc).__name__})")
                continue
            if not files or not leads or not all((header.parent / f).is_file() for f in files):
                missing.append(record_id)
                continue
            rows.append(
                {
                    "record_id": record_id,
                    "patient_id": record_id,
                    "fold": hash_fold(record_id),
                    "record_fs": float(hdr.fs),
                    "n_samples": int(hdr.sig_len or 0),
                    "record_leads": ",".join(leads),
                    "path": record_id,
                }
            )
        warn_missing("WFDB", root, missing, len(headers))
        if unreadable:
            warnings.warn(
                f"WFDB {root}: {len(unreadable)} headers could not be read and are skipped "
                f"(e.g. {', '.join(unreadable[:5])})",
                MissingFilesWarning,
                stacklevel=2,
            )
        if not rows:
            raise DatasetError(f"{root}: none of the {len(headers)} WFDB headers has a readable ECG record")
        index = pd.DataFrame(rows)
        index["split"] = split_of(index["fold"])
        for key in TARGET_KEYS:
            index[key] = np.nan
        fs = Counter(index["record_fs"]).most_common(1)[0][0]
        present = set(",".join(index["record_leads"]).split(","))
        leads = tuple(lead for lead in LEADS_12 if lead in present)
        super().__init__(root, fs, leads, index, missing + unreadable)

    def describe(self) -> dict:
        out = super().describe()
        out["fs_counts"] = {f"{k:g}": int(v) for k, v in self.index["record_fs"].value_counts().items()}
        return out


def _is_lead(name: str) -> bool:
    try:
        canonical_lead(name)
        return True
    except ValueError:
        return False
