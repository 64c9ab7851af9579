"""Leakage between transfer runs: no record, and no patient, used to pretrain a source model may be anywhere
in the target data.

Compared from ``records.json``-shaped mappings ``{"data": spec, "kind": ..., "train": [ids], "val": [...],
"test": [...], "patients": {split: [patient ids]}, "signal_fingerprints": {split: [digests]}}``:

* record ids within a data kind (a PTB-XL ``ecg_id`` and a DeepFake ``patid`` never clash);
* patient ids within a data kind, where both sides know them (patient 1000's record 1 pretraining and
  record 2 in the target's test split is leakage: the same heart, often the same findings);
* signal fingerprints across kinds (a record reached through ``wfdb:`` on one side and ``ptbxl:`` on the
  other has two ids but one waveform): a digest of the preprocessed input, which transfer requires to be
  prepared identically on both sides.

The Challenge's ``HR*`` records are PTB-XL records and compare as their ``ecg_id``
(:func:`ecgcore.data.challenge.record_identity`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np

from ecgcore.data.challenge import record_identity
from ecgcore.train.config import TrainConfig

SPLITS = ("train", "val", "test")


class LeakageError(ValueError):
    """A record used to pretrain a source model is also in the target data."""


def _keyed(records: Mapping) -> dict[str, set[tuple[str, str]]]:
    """``{split: {(kind, record_id)}}`` of a ``records.json``-shaped mapping."""
    kind = records.get("kind")
    if not kind:
        raise ValueError(
            f"records of {records.get('data', '?')!r} name no data kind; cannot compare record ids"
        )
    return {s: {record_identity(kind, str(r)) for r in records.get(s, [])} for s in SPLITS}


#: Decimals the preprocessed signal is rounded to before hashing (float noise of resampling stays below).
FINGERPRINT_DECIMALS = 2


def signal_fingerprints(signals: np.ndarray, rows: np.ndarray) -> list[str]:
    """A 16-hex digest of each row's preprocessed signal ``[leads, samples]``, rounded to
    :data:`FINGERPRINT_DECIMALS` (the same waveform reached through two source kinds gets the same digest)."""
    out = []
    for row in np.asarray(rows):
        x = np.round(np.asarray(signals[int(row)], dtype=np.float32), FINGERPRINT_DECIMALS) + 0.0  # no -0.0
        out.append(hashlib.sha256(x.astype(np.float32).tobytes()).hexdigest()[:16])
    return out


def _side(records: Mapping, key: str, kind: str | None) -> dict[str, set[tuple[str, str]]]:
    """``{split: {(kind or "", value)}}`` of a per-split list under ``records[key]`` (empty values left out)."""
    per_split = records.get(key) or {}
    return {s: {(kind or "", str(v)) for v in per_split.get(s, []) if str(v)} for s in SPLITS}


def _overlaps(source: Mapping, target: Mapping) -> list[tuple[str, str, str, list[str]]]:
    """``(what, source split, target split, shared values)`` for records, patients and fingerprints."""
    kind = source.get("kind")
    same_kind = kind == target.get("kind")
    pairs = [("record", _keyed(source), _keyed(target))]
    if same_kind:
        pairs.append(("patient", _side(source, "patients", kind), _side(target, "patients", kind)))
    pairs.append(
        ("waveform", _side(source, "signal_fingerprints", None), _side(target, "signal_fingerprints", None))
    )
    found = []
    for what, s_side, t_side in pairs:
        for s_split, s_vals in s_side.items():
            for t_split, t_vals in t_side.items():
                shared = sorted(v for _, v in s_vals & t_vals)
                if shared:
                    found.append((what, s_split, t_split, shared))
    return found


def assert_no_leakage(
    source_records: Mapping | Iterable[Mapping], target_records: Mapping, *, same_split_ok: bool = False
) -> None:
    """Raise :class:`LeakageError` if any record of the sources is anywhere in the target data.

    ``same_split_ok``: a source record may sit in the target's split of the same name (a run continued
    on the same data and splits, transfer approach ``continue``), never in another one.

    Parameters
    ----------
    source_records
        One or several ``records.json`` mappings of the source runs:
        ``{"data": spec, "kind": ..., "train": [ids], "val": [...], "test": [...]}`` (a ``"run_id"`` key,
        when present, is named in the error).
    target_records
        The same shape for the target data (every record the target run may use, in its splits).

    Raises
    ------
    LeakageError
        Naming the overlapping record ids, the source run and split they were used in, and the target
        split they appear in.
    """
    sources = [source_records] if isinstance(source_records, Mapping) else list(source_records)
    _keyed(target_records)  # the target must name its kind
    problems = []
    for source in sources:
        for what, s_split, t_split, overlap in _overlaps(source, target_records):
            if same_split_ok and s_split == t_split:
                continue
            shown = ", ".join(repr(r) for r in overlap[:10]) + (", ..." if len(overlap) > 10 else "")
            label = {"record": "record(s)", "patient": "patient(s)", "waveform": "identical waveform(s)"}[
                what
            ]
            problems.append(
                f"{len(overlap)} {source['kind']} {label} of source run "
                f"{source.get('run_id', source.get('data', '?'))} ({s_split} split) are in the "
                f"target {t_split} split of {target_records.get('data', '?')}: {shown}"
            )
    if problems:
        lead = (
            "records of the source run sit in another split of the target data"
            if same_split_ok
            else "pretraining records appear in the target data"
        )
        raise LeakageError(
            f"{lead} (their labels or waveforms would leak into the evaluation): " + "; ".join(problems)
        )


def target_records(config: TrainConfig) -> dict:
    """Every record the target run may use: the source's index after the PTB-XL half selection, by split.

    This is a superset of the records the trainer keeps (it may drop unlabelled rows or subsample), which
    makes the leakage check conservative.
    """
    from ecgcore.data import in_half, open_source

    dataset = open_source(config.data)
    index = dataset.index[in_half(dataset.index, config.subset, seed=config.split_seed)]
    split = index["split"].to_numpy()
    ids = index["record_id"].astype(str).to_numpy()
    patients = index["patient_id"].fillna("").astype(str).to_numpy()
    out = {
        "data": config.data,
        "kind": dataset.kind,
        **{s: ids[split == s].tolist() for s in SPLITS},
        "patients": {s: patients[split == s].tolist() for s in SPLITS},
    }
    if config.representation == "signal":
        from ecgcore.data import load_cached

        cached = load_cached(dataset, config.preprocessing())
        row_of = {r: i for i, r in enumerate(cached.index["record_id"].astype(str))}
        out["signal_fingerprints"] = {
            s: signal_fingerprints(
                cached.signals, np.array([row_of[r] for r in ids[split == s] if r in row_of])
            )
            for s in SPLITS
        }
    return out
