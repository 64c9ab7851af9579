"""What a run trains on: the rows and labels of a config (:func:`prepare_data`) and the batches of them.

Inputs come from the representation registry (:mod:`ecgcore.data.inputs`): an array ``[N, ...]`` of any
shape, or a tuple of such arrays for models with several inputs. When the rows a run uses fit in GPU
memory they are copied there once and every batch is an index operation on the device; otherwise batches
are gathered from RAM or the memory-mapped cache (pinned for CUDA) one step ahead, in a background thread.
uint8 arrays (images) stay uint8 until batched, then become float / 255.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ecgcore.data.labels import class_counts, rare_classes
from ecgcore.progress import ProgressFn
from ecgcore.train import distributed as ddp
from ecgcore.train.config import TrainConfig
from ecgcore.train.device import available_ram, free_device_memory
from ecgcore.vocab import SUPERCLASSES

#: Share of free GPU memory the rows may take to be kept on the device.
DEVICE_DATA_SHARE = 0.4
#: Share of available RAM the rows may take to be read into memory (else they stay memory-mapped).
HOST_DATA_SHARE = 0.5
SPLITS = ("train", "val", "test")
#: Rows copied to the device per chunk (no full host copy of a large cache).
_CHUNK = 1024

Inputs = np.ndarray | tuple[np.ndarray, ...]
Batch = tuple[torch.Tensor | tuple[torch.Tensor, ...], torch.Tensor]


@dataclass
class PreparedData:
    """The rows, labels and statistics a run trains on.

    Attributes
    ----------
    inputs
        Row-aligned model inputs: ``[N, ...]`` (the cache's memmap for signals) or a tuple of such arrays.
    rows
        ``{"train", "val", "test"}`` -> row numbers into ``inputs`` after every filter.
    y
        Training targets per row: standardised values ``[N, T]`` (regression), class index ``[N]``
        (single-label, -1 where unusable) or 0/1 ``[N, C]`` (multi-label).
    y_eval
        Truth in original units for the metrics (regression) or the same as ``y``.
    names
        Target keys or class names, one per output.
    """

    inputs: Inputs
    rows: dict[str, np.ndarray]
    y: np.ndarray
    y_eval: np.ndarray
    names: tuple[str, ...]
    record_ids: np.ndarray
    target_mean: np.ndarray | None
    target_sd: np.ndarray | None
    dropped: dict[str, Any]
    prep: Any
    stats: dict
    kind: str
    spec: str
    fingerprint: str = ""
    info: dict = field(default_factory=dict)
    patient_ids: np.ndarray | None = None  #: per row, "" where the source does not know the patient
    source_fs: float | None = None  #: the source records' own sampling rate (before resampling)

    @property
    def signals(self) -> Inputs:
        """The inputs (the name from when they were always signals)."""
        return self.inputs


def prepare_data(config: TrainConfig, progress: ProgressFn | None = None) -> PreparedData:
    """Open the source, build / load the cache and the inputs, and select the rows and labels of ``config``.

    Raises
    ------
    ValueError
        If the source lacks what the task needs, or a split ends up empty after the filters.
    """
    from ecgcore.data import in_half, load_cached, open_source
    from ecgcore.data.inputs import build_inputs

    if not config.data:
        raise ValueError("TrainConfig.data is empty; give a source such as deepfake:DIR or ptbxl:DIR")
    dataset = open_source(config.data)
    cached = load_cached(dataset, config.preprocessing(), progress=progress)
    inputs = build_inputs(config.representation, dataset, config.preprocessing(), progress)
    index = cached.index.reset_index(drop=True)
    keep = in_half(index, config.subset, seed=config.split_seed)
    dropped: dict[str, Any] = {"other_half": int((~keep).sum())} if config.subset else {}
    names, raw, usable = _labels(config, index, tuple(getattr(dataset, "classes", SUPERCLASSES)))
    reason = "missing_target" if config.task == "regression" else "no_usable_label"
    dropped[reason] = {s: int(((index["split"] == s).to_numpy() & keep & ~usable).sum()) for s in SPLITS}
    rows = _select_rows(config, index["split"].to_numpy(), keep & usable, dropped)
    target_mean = target_sd = None
    y = y_eval = raw
    if config.task == "regression":
        target_mean = raw[rows["train"]].mean(axis=0)
        target_sd = raw[rows["train"]].std(axis=0)
        target_sd[target_sd == 0] = 1.0
        y = ((np.nan_to_num(raw) - target_mean) / target_sd).astype(np.float32)
    info: dict[str, Any] = {}
    if config.task == "classification" and config.label_mode == "multi":
        split_of_row = np.full(len(index), "", dtype=object)
        for name, r in rows.items():
            split_of_row[r] = name
        info["class_counts"] = class_counts(raw, split_of_row, names)
        info["rare_classes"] = rare_classes(info["class_counts"])  # kept and reported, never dropped
    return PreparedData(
        inputs=inputs,
        rows=rows,
        y=y,
        y_eval=y_eval,
        names=names,
        record_ids=index["record_id"].astype(str).to_numpy(),
        target_mean=target_mean,
        target_sd=target_sd,
        dropped=dropped,
        prep=cached.prep,
        stats=dict(cached.stats or {}),
        kind=dataset.kind,
        spec=config.data,
        fingerprint=str(cached.meta.get("fingerprint", "")),
        patient_ids=index["patient_id"].fillna("").astype(str).to_numpy() if "patient_id" in index else None,
        source_fs=float(dataset.fs) if getattr(dataset, "fs", None) else None,
        info=info,
    )


def _labels(
    config: TrainConfig, index, classes: tuple[str, ...] = SUPERCLASSES
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``(output names, raw labels per row, usable rows)`` for the config's task and label mode.

    ``classes``: the source's class columns when it names a label set (``challenge:...``,
    ``ptbxl:...;labels=study18``, ``chapman:...``). Multi-label: every record counts (one with none of
    the classes is a negative example for all of them). Single-label (mutually exclusive classes such as
    Chapman's rhythms): the records with exactly one class.
    """
    if config.task == "regression":
        names = tuple(config.targets)
        missing = [k for k in names if k not in index.columns]
        if missing:
            raise ValueError(f"{config.data}: the index has no {missing} columns for regression")
        raw = index[list(names)].to_numpy(dtype=np.float64)
        return names, raw, np.isfinite(raw).all(axis=1)
    if classes != SUPERCLASSES:
        missing = [c for c in classes if c not in index.columns]
        if missing:
            raise ValueError(f"{config.data}: the index lacks the class columns {missing}")
        onehot = index[list(classes)].to_numpy(dtype=np.float32)
        if config.label_mode == "single":
            single = onehot.sum(axis=1) == 1
            return classes, np.where(single, onehot.argmax(axis=1), -1).astype(np.int64), single
        return classes, onehot, np.ones(len(index), dtype=bool)
    missing = [c for c in (*SUPERCLASSES, "superclass") if c not in index.columns]
    if missing:
        raise ValueError(f"{config.data}: classification needs superclass labels; the index lacks {missing}")
    if config.label_mode == "single":
        label = index["superclass"].astype(str)
        raw = np.array([SUPERCLASSES.index(s) if s in SUPERCLASSES else -1 for s in label], dtype=np.int64)
        return SUPERCLASSES, raw, raw >= 0
    raw = index[list(SUPERCLASSES)].to_numpy(dtype=np.float32)
    return SUPERCLASSES, raw, raw.sum(axis=1) > 0


def _select_rows(config: TrainConfig, split: np.ndarray, keep: np.ndarray, dropped: dict) -> dict:
    """Rows per split after the seeded record cap and training fraction (counted in ``dropped``)."""
    rng = np.random.default_rng(config.split_seed)
    if config.max_records is not None and keep.sum() > config.max_records:
        chosen = rng.choice(np.flatnonzero(keep), size=config.max_records, replace=False)
        dropped["over_max_records"] = int(keep.sum() - config.max_records)
        keep = np.isin(np.arange(len(split)), chosen)
    rows = {s: np.flatnonzero(keep & (split == s)) for s in SPLITS}
    if config.train_fraction < 1.0:
        n_keep = max(2, round(len(rows["train"]) * config.train_fraction))
        dropped["train_fraction"] = int(len(rows["train"]) - n_keep)
        rows["train"] = np.sort(
            rng.choice(rows["train"], size=min(n_keep, len(rows["train"])), replace=False)
        )
    for name, r in rows.items():
        if len(r) == 0 or (name == "train" and len(r) < 2):
            raise ValueError(
                f"{config.data}: the {name} split has {len(r)} usable records after filtering "
                f"({dropped}); use more records or fewer filters"
            )
    return rows


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (images) -> float / 255; anything else -> float32."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class BatchSource:
    """Batches ``(inputs, targets)`` on the training device, from device memory, RAM or the memmap.

    Parameters
    ----------
    inputs
        ``[N, ...]`` array (memmap) or a tuple of them; batches then carry a tuple of tensors.
    y
        Per-row targets (see :class:`PreparedData`).
    rows
        The row numbers that will ever be asked for (only those are moved).
    device
        Training device.
    """

    def __init__(self, inputs: Inputs, y: np.ndarray, rows: np.ndarray, device: torch.device):
        self.device = device
        self.multi = isinstance(inputs, tuple)
        self._arrays = list(inputs) if self.multi else [inputs]
        self.rows = np.unique(rows)
        self.position = np.full(len(self._arrays[0]), -1, dtype=np.int64)
        self.position[self.rows] = np.arange(len(self.rows))
        self.y = torch.as_tensor(np.ascontiguousarray(y[self.rows])).to(device)
        nbytes = sum(len(self.rows) * int(np.prod(a.shape[1:])) * _stored_itemsize(a) for a in self._arrays)
        self.x: list[torch.Tensor] | None = None
        if device.type == "cuda" and nbytes < DEVICE_DATA_SHARE * free_device_memory(device):
            self.mode = "device"
            self.x = [self._to_device(a) for a in self._arrays]
        elif nbytes < HOST_DATA_SHARE * available_ram():
            self.mode = "host"
            self.x = [
                torch.from_numpy(np.ascontiguousarray(a[self.rows], dtype=_stored(a))) for a in self._arrays
            ]
        else:
            self.mode = "memmap"
        self.pin = device.type == "cuda"

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        out = torch.empty((len(self.rows), *array.shape[1:]), dtype=_torch_dtype(array), device=self.device)
        for start in range(0, len(self.rows), _CHUNK):
            chunk = np.asarray(array[self.rows[start : start + _CHUNK]], dtype=_stored(array))
            out[start : start + len(chunk)] = torch.from_numpy(chunk).to(self.device)
        return out

    def _gather(self, rows: np.ndarray) -> list[torch.Tensor]:
        """Input rows on the host in the stored dtype (not used in device mode), gathered straight into
        pinned memory for CUDA: one copy per batch, not a gather and then a second copy to pin it."""
        parts = []
        if self.mode == "host":
            pos = torch.from_numpy(self.position[rows])
            for x in self.x:
                out = _host_buffer((len(rows), *x.shape[1:]), x.dtype, self.pin)
                parts.append(torch.index_select(x, 0, pos, out=out))
            return parts
        order = np.argsort(rows)  # sequential reads from the memmap, written back in batch order
        for a in self._arrays:
            out = _host_buffer((len(rows), *a.shape[1:]), _torch_dtype(a), self.pin)
            out.numpy()[order] = a[rows[order]]
            parts.append(out)
        return parts

    def _finish(self, parts: list[torch.Tensor], pos: torch.Tensor) -> Batch:
        xs = tuple(_as_float(p.to(self.device, non_blocking=True)) for p in parts)
        return (xs if self.multi else xs[0]), self.y[pos]

    def _device_positions(self, batches: list[np.ndarray]) -> list[torch.Tensor]:
        """Every batch's positions, moved to the device in one copy (not one pageable copy per step)."""
        if not batches:
            return []
        flat = torch.from_numpy(self.position[np.concatenate(batches)]).to(self.device)
        return list(torch.split(flat, [len(b) for b in batches]))

    def batch(self, rows: np.ndarray) -> Batch:
        """One batch on the device."""
        return next(self.iterate([rows]))

    def iterate(self, batches: list[np.ndarray]) -> Iterator[Batch]:
        """Yield the batches in order; host gathers run one batch ahead in a background thread."""
        positions = self._device_positions(batches)
        if self.mode == "device":
            for pos in positions:
                yield self._finish([x[pos] for x in self.x], pos)
            return
        if self.mode == "host" and self.device.type == "cpu":
            for rows, pos in zip(batches, positions):
                yield self._finish(self._gather(rows), pos)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._gather, batches[0]) if batches else None
            for i, pos in enumerate(positions):
                parts = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(self._gather, batches[i + 1])
                yield self._finish(parts, pos)


def _host_buffer(shape: tuple[int, ...], dtype: torch.dtype, pin: bool) -> torch.Tensor:
    """An uninitialised host tensor, page-locked when ``pin`` (fresh per batch: a non-blocking copy
    from it may still be in flight while the next batch is gathered)."""
    return torch.empty(shape, dtype=dtype, pin_memory=pin)


def _stored(array: np.ndarray) -> type:
    """The dtype rows are kept in: uint8 stays uint8 (4x smaller), everything else float32."""
    return np.uint8 if array.dtype == np.uint8 else np.float32


def _stored_itemsize(array: np.ndarray) -> int:
    return np.dtype(_stored(array)).itemsize


def _torch_dtype(array: np.ndarray) -> torch.dtype:
    return torch.uint8 if array.dtype == np.uint8 else torch.float32


def epoch_batches(
    train_rows: np.ndarray, batch_size: int, seed: int, epoch: int, info: ddp.DistInfo
) -> list[np.ndarray]:
    """This rank's batches for an epoch: a permutation seeded by ``(seed, epoch)``, sharded, chunked.

    A final chunk of one row is dropped (batch norm cannot train on it).
    """
    perm = np.random.default_rng([seed, epoch]).permutation(train_rows)
    mine = ddp.shard(perm, info)
    chunks = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    return chunks[:-1] if len(chunks) > 1 and len(chunks[-1]) < 2 else chunks
