"""Leakage between transfer runs: no record used to pretrain a source model may be anywhere in the target data.

Records are compared within a data kind (a PTB-XL ``ecg_id`` and a DeepFake ``patid`` never clash), except
that the PhysioNet/CinC Challenge's ``HR*`` records are PTB-XL records and compare as their ``ecg_id``
(:func:`ecgcore.data.challenge.record_identity`), from
``records.json``-shaped mappings: ``{"data": spec, "kind": ..., "train": [ids], "val": [...], "test": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def assert_no_leakage(source_records: Mapping | Iterable[Mapping], target_records: Mapping) -> None:
    """Raise :class:`LeakageError` if any record of the sources is anywhere in the target data.

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
    target = _keyed(target_records)
    problems = []
    for source in sources:
        for s_split, s_ids in _keyed(source).items():
            for t_split, t_ids in target.items():
                overlap = sorted(r for _, r in s_ids & t_ids)
                if overlap:
                    shown = ", ".join(repr(r) for r in overlap[:10]) + (", ..." if len(overlap) > 10 else "")
                    problems.append(
                        f"{len(overlap)} {source['kind']} record(s) of source run "
                        f"{source.get('run_id', source.get('data', '?'))} ({s_split} split) are in the "
                        f"target {t_split} split of {target_records.get('data', '?')}: {shown}"
                    )
    if problems:
        raise LeakageError(
            "pretraining records appear in the target data (their labels or waveforms would leak "
            "into the evaluation): " + "; ".join(problems)
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
    return {"data": config.data, "kind": dataset.kind, **{s: ids[split == s].tolist() for s in SPLITS}}
