"""Data-parallel training through PyTorch's own engine (DDP), started by ``torchrun``.

``torchrun --nproc_per_node=N -m ecgcore train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` joins the process group (NCCL on CUDA, gloo on
CPU). Every rank sees the same seeded permutation of the training rows and takes its own shard
(:func:`shard`, the ``DistributedSampler`` scheme), with ``batch_size / world_size`` rows per step,
so the global batch and the averaged gradient match a single-process run. Only rank 0 writes the
run store and the checkpoints.

Batch normalisation stays per process (each rank normalises its own half batch, the usual DDP
behaviour; ``SyncBatchNorm`` needs GPUs), so models with batch norm match a single-process run
closely but not exactly; before each evaluation rank 0's running statistics are copied to all ranks.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> DistInfo:
    """Join the process group described by the ``torchrun`` environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=world)
    return info


def cleanup(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def shard(indices: np.ndarray, info: DistInfo) -> np.ndarray:
    """This rank's share of ``indices`` (padded by wrapping around so all ranks get equal counts)."""
    if not info.enabled:
        return indices
    per_rank = -(-len(indices) // info.world_size)
    padded = np.resize(indices, per_rank * info.world_size)
    return padded[info.rank :: info.world_size]


def rank_rows(rows: np.ndarray, info: DistInfo) -> np.ndarray:
    """This rank's contiguous part of ``rows`` for evaluation (no padding: every row counted once);
    concatenating the parts in rank order gives ``rows`` back."""
    if not info.enabled:
        return rows
    bounds = np.linspace(0, len(rows), info.world_size + 1).astype(int)
    return rows[bounds[info.rank] : bounds[info.rank + 1]]


def gather_rows(local: np.ndarray, info: DistInfo) -> np.ndarray:
    """Every rank's ``local`` array (rows along axis 0) concatenated in rank order, on every rank."""
    if not info.enabled:
        return local
    parts: list[Any] = [None] * info.world_size
    dist.all_gather_object(parts, local)
    return np.concatenate([p for p in parts if len(p)] or [local])  # a rank with no rows adds nothing


#: Seconds the other ranks wait for rank 0 to build the data cache (``$ECGLAB_CACHE_TIMEOUT_S``, default 6 h).
CACHE_TIMEOUT_S = float(os.environ.get("ECGLAB_CACHE_TIMEOUT_S", 6 * 3600))
_barriers = itertools.count()


class BarrierTimeout(TimeoutError):
    """A rank waited longer than its timeout for the others at a barrier."""


def barrier(info: DistInfo, timeout_s: float | None = None, what: str = "the other ranks") -> None:
    """Wait for every rank (e.g. until rank 0 has built the data cache).

    With ``timeout_s`` the wait goes through the process group's key-value store instead of a collective:
    no NCCL operation is pending meanwhile (so NCCL's watchdog does not kill a long cache build), and a rank
    that waits longer than ``timeout_s`` raises :class:`BarrierTimeout` naming ``what`` it waited for.
    """
    if not info.enabled:
        return
    if timeout_s is None:
        dist.barrier()
        return
    store = dist.distributed_c10d._get_default_store()
    key = f"ecglab-barrier-{next(_barriers)}"
    arrived = store.add(key, 1)
    deadline = time.monotonic() + timeout_s
    while arrived < info.world_size:
        if time.monotonic() > deadline:
            raise BarrierTimeout(
                f"rank {info.rank} waited {timeout_s:g} s for {what} ({arrived} of {info.world_size} ranks "
                "arrived); set ECGLAB_CACHE_TIMEOUT_S for a longer wait, or build the cache first in one process"
            )
        time.sleep(min(0.5, max(timeout_s / 20, 0.01)))
        arrived = store.add(key, 0)


def broadcast(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (run ids, stop decisions)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank, so evaluations agree."""
    if info.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def mean_across(value: float, info: DistInfo, device: torch.device) -> float:
    """The mean of a per-rank scalar (e.g. the training loss) over all ranks."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def per_rank_batch(batch_size: int, info: DistInfo) -> int:
    """Rows per rank per step so that the global batch equals ``batch_size``."""
    if batch_size % info.world_size:
        raise ValueError(f"batch size {batch_size} is not divisible by the {info.world_size} processes")
    return batch_size // info.world_size


#: Codes ranks agree on every few steps; the highest wins (an error beats a cancel beats going on).
GO_ON, CANCEL, ERROR = 0, 1, 2


def agree(code: int, info: DistInfo, device: torch.device) -> int:
    """The highest of every rank's ``code`` (:data:`GO_ON`, :data:`CANCEL`, :data:`ERROR`), on every rank.

    A cancel seen by one rank (``runs cancel`` signals rank 0) or an error raised on one stops them all at
    the same step, instead of leaving the others blocked in the next collective.
    """
    if not info.enabled:
        return code
    t = torch.tensor([code], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())
