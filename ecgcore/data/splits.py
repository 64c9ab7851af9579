"""PTB-XL-A / PTB-XL-B: two patient-disjoint halves with balanced superclasses, for transfer experiments.

Patients are assigned greedily, split by split (strat_fold 1-8 / 9 / 10, so each half keeps the
official train/validation/test folds), in a seeded random order, rare-class patients first: each
patient goes to the half where the classes its records carry (and the record count) are,
relatively, less represented so far, both overall and within its split. All records of a patient go to
the same half.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgcore.data.base import split_of
from ecgcore.vocab import SUPERCLASSES


def ptbxl_halves(index: pd.DataFrame, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Record ids of the halves A and B of a PTB-XL index (deterministic for ``seed``).

    Parameters
    ----------
    index
        A dataset index with ``record_id``, ``patient_id``, ``fold`` and the superclass columns.

    Returns
    -------
    (ids_a, ids_b)
        Record ids (str) in index order; no patient appears in both.
    """
    classes = [c for c in SUPERCLASSES if c in index.columns]
    if not classes:
        raise ValueError(
            "ptbxl_halves needs the superclass columns (NORM, MI, STTC, CD, HYP) of a PTB-XL index"
        )
    rng = np.random.default_rng(seed)
    # one row per patient: its records' class counts and record count; its first fold
    per_patient = index.groupby("patient_id", sort=True).agg(
        fold=("fold", "first"), n=("record_id", "size"), **{c: (c, "sum") for c in classes}
    )
    weights = per_patient[classes].to_numpy(float)
    weights = np.column_stack([weights, per_patient["n"].to_numpy(float)])  # balance the sizes too
    # balance over the whole set and within each split (train / val / test), so both halves keep every split
    group = split_of(per_patient["fold"])
    total_all = np.maximum(weights.sum(axis=0), 1.0)
    load_all = np.zeros((2, weights.shape[1]))
    half_of: dict[str, int] = {}
    patients = per_patient.index.to_numpy()
    for split in ("train", "val", "test"):
        members = np.flatnonzero(group == split)
        members = members[rng.permutation(len(members))]
        total = np.maximum(weights[members].sum(axis=0), 1.0)
        load = np.zeros((2, weights.shape[1]))
        # rare-class patients first, so the greedy choice can still balance them
        rarity = (weights[members, :-1] / total_all[:-1]).max(axis=1)
        members = members[np.argsort(-rarity, kind="stable")]
        for m in members:
            present = weights[m] > 0
            cost = [
                ((load_all[h] + weights[m]) / total_all + (load[h] + weights[m]) / total)[present].sum()
                for h in (0, 1)
            ]
            h = int(rng.integers(2)) if np.isclose(cost[0], cost[1]) else int(np.argmin(cost))
            load[h] += weights[m]
            load_all[h] += weights[m]
            half_of[patients[m]] = h
    halves = index["patient_id"].map(half_of).to_numpy()
    ids = index["record_id"].astype(str).to_numpy()
    return ids[halves == 0], ids[halves == 1]


def in_half(index: pd.DataFrame, half: str | None, seed: int = 0) -> np.ndarray:
    """Boolean mask of the rows in PTB-XL half ``"A"`` or ``"B"`` (:func:`ptbxl_halves`); all rows for ``None``."""
    if not half:
        return np.ones(len(index), dtype=bool)
    if half not in ("A", "B"):
        raise ValueError(f"unknown PTB-XL half {half!r}; expected 'A' or 'B'")
    half_a, half_b = ptbxl_halves(index, seed=seed)
    return index["record_id"].isin(half_a if half == "A" else half_b).to_numpy(copy=True)
