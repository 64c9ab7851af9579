"""The trainer: one function, :func:`train`, for CPU, CUDA and Apple MPS, one process or many (DDP).

Data come from the preprocessed cache (:func:`ecgcore.data.load_cached`). When the rows a run
uses fit in GPU memory they are copied there once and every batch is an index operation on the
device; otherwise batches are gathered from the memory-mapped cache into pinned memory one step
ahead, in a background thread. On the CPU, the rows are indexed in RAM (or straight from the
memmap when they do not fit): there is no per-sample ``Dataset`` and no ``DataLoader``.

Every epoch writes ``last.safetensors`` and the resumable state; an improvement of the monitored
validation metric writes ``best.safetensors`` from a true copy of the weights. Progress goes to the
run store (:class:`ecgcore.runs.store.RunStore`) so the dashboard can poll it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgcore.paths import atomic_write_json
from ecgcore.processes import process_start_time
from ecgcore.progress import ProgressFn, report
from ecgcore.runs.store import RunStore
from ecgcore.train import distributed as ddp
from ecgcore.train.checkpoint import (
    cpu_state_dict,
    jsonable,
    load_checkpoint,
    load_training_state,
    read_checkpoint,
    save_checkpoint,
    save_training_state,
)
from ecgcore.train.config import TrainConfig
from ecgcore.train.metrics import evaluate
from ecgcore.vocab import SUPERCLASSES

#: Seconds between progress rows written to the run store.
STORE_INTERVAL_S = 2.0
#: Share of free GPU memory the cached rows may take to be kept on the device.
DEVICE_DATA_SHARE = 0.4
#: Share of available RAM the rows may take to be read into memory (else they stay memory-mapped).
HOST_DATA_SHARE = 0.5


class Cancelled(Exception):
    """Raised inside the loop when the run received SIGTERM (``runs cancel``)."""


# --- device and precision ----------------------------------------------------------------------
def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA, else Apple MPS, else CPU; any other value is used as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 / AMX); without it CPU autocast only slows down."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(
    device: torch.device, amp: bool, force: bool = False
) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype (``None`` = fp32) and whether a gradient scaler is needed.

    CUDA: bf16 where supported, else fp16 with a scaler. MPS: fp16 with a scaler. CPU: bf16 when the
    CPU has native bf16 (or ``force``, used by the benchmark to measure it anyway), else fp32.
    """
    if not amp:
        return None, False
    if device.type == "cuda":
        return (torch.bfloat16, False) if torch.cuda.is_bf16_supported() else (torch.float16, True)
    if device.type == "mps":
        return torch.float16, True
    return (torch.bfloat16, False) if force or cpu_has_bf16() else (None, False)


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16-mixed", torch.float16: "fp16-mixed"}[dtype]


# --- data --------------------------------------------------------------------------------------
@dataclass
class PreparedData:
    """The rows, labels and statistics a run trains on.

    Attributes
    ----------
    signals
        ``[N, leads, samples]`` model inputs (the cache's memmap).
    rows
        ``{"train", "val", "test"}`` -> row numbers into ``signals`` after every filter.
    y
        Training targets per row: standardised values ``[N, T]`` (regression), class index ``[N]``
        (single-label, -1 where unusable) or 0/1 ``[N, C]`` (multi-label).
    y_eval
        Truth in original units for the metrics (regression) or the same as ``y``.
    names
        Target keys or class names, one per output.
    """

    signals: np.ndarray
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


def prepare_data(config: TrainConfig, progress: ProgressFn | None = None) -> PreparedData:
    """Open the source, build / load the cache and select the rows and labels of ``config``.

    Raises
    ------
    ValueError
        If the source lacks what the task needs, or a split ends up empty after the filters.
    """
    from ecgcore.data import in_half, load_cached, open_source

    if not config.data:
        raise ValueError("TrainConfig.data is empty; give a source such as deepfake:DIR or ptbxl:DIR")
    dataset = open_source(config.data)
    cached = load_cached(dataset, config.preprocessing(), progress=progress)
    index = cached.index.reset_index(drop=True)
    keep = in_half(index, config.subset, seed=config.split_seed)
    dropped: dict[str, Any] = {}
    if config.subset:
        dropped["other_half"] = int((~keep).sum())

    target_mean = target_sd = None
    if config.task == "regression":
        names = tuple(config.targets)
        missing_cols = [k for k in names if k not in index.columns]
        if missing_cols:
            raise ValueError(f"{config.data}: the index has no {missing_cols} columns for regression")
        raw = index[list(names)].to_numpy(dtype=np.float64)
        usable = np.isfinite(raw).all(axis=1)
    else:
        names = SUPERCLASSES
        missing_cols = [c for c in (*SUPERCLASSES, "superclass") if c not in index.columns]
        if missing_cols:
            raise ValueError(
                f"{config.data}: classification needs superclass labels; the index lacks {missing_cols}"
            )
        if config.label_mode == "single":
            label = index["superclass"].astype(str)
            raw = np.array(
                [SUPERCLASSES.index(s) if s in SUPERCLASSES else -1 for s in label], dtype=np.int64
            )
            usable = raw >= 0
        else:
            raw = index[list(SUPERCLASSES)].to_numpy(dtype=np.float32)
            usable = raw.sum(axis=1) > 0
    reason = "missing_target" if config.task == "regression" else "no_usable_label"
    dropped[reason] = {
        s: int(((index["split"] == s).to_numpy() & keep & ~usable).sum()) for s in ("train", "val", "test")
    }
    keep &= usable

    rng = np.random.default_rng(config.split_seed)
    if config.max_records is not None and keep.sum() > config.max_records:
        chosen = rng.choice(np.flatnonzero(keep), size=config.max_records, replace=False)
        dropped["over_max_records"] = int(keep.sum() - config.max_records)
        keep = np.isin(np.arange(len(index)), chosen)
    split = index["split"].to_numpy()
    rows = {s: np.flatnonzero(keep & (split == s)) for s in ("train", "val", "test")}
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

    if config.task == "regression":
        target_mean = raw[rows["train"]].mean(axis=0)
        target_sd = raw[rows["train"]].std(axis=0)
        target_sd[target_sd == 0] = 1.0
        y = ((np.nan_to_num(raw) - target_mean) / target_sd).astype(np.float32)
        y_eval = raw
    else:
        y = raw
        y_eval = raw
    return PreparedData(
        signals=cached.signals,
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
    )


def _available_ram() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


class BatchSource:
    """Batches ``(x, y)`` on the training device, from device memory, RAM or the memmap.

    Parameters
    ----------
    signals
        ``[N, L, S]`` array (memmap).
    y
        Per-row targets (see :class:`PreparedData`).
    rows
        The row numbers that will ever be asked for (only those are moved).
    device
        Training device.
    """

    def __init__(self, signals: np.ndarray, y: np.ndarray, rows: np.ndarray, device: torch.device):
        self.device = device
        self.rows = np.unique(rows)
        self.position = np.full(len(signals), -1, dtype=np.int64)
        self.position[self.rows] = np.arange(len(self.rows))
        nbytes = len(self.rows) * int(np.prod(signals.shape[1:])) * 4
        self.y = torch.as_tensor(np.ascontiguousarray(y[self.rows])).to(device)
        self._memmap = signals
        self.x: torch.Tensor | None = None
        if device.type == "cuda" and nbytes < DEVICE_DATA_SHARE * torch.cuda.mem_get_info(device)[0]:
            self.mode = "device"
            self.x = torch.empty((len(self.rows), *signals.shape[1:]), dtype=torch.float32, device=device)
            for start in range(0, len(self.rows), 1024):  # chunks: no full host copy of a large cache
                chunk = np.asarray(signals[self.rows[start : start + 1024]], dtype=np.float32)
                self.x[start : start + len(chunk)] = torch.from_numpy(chunk).to(device)
        elif nbytes < HOST_DATA_SHARE * _available_ram():
            self.mode = "host"
            self.x = torch.from_numpy(np.ascontiguousarray(signals[self.rows], dtype=np.float32))
        else:
            self.mode = "memmap"
        self.pin = device.type == "cuda"

    def _gather(self, rows: np.ndarray) -> torch.Tensor:
        """Input rows on the host (pinned for CUDA) or, in device mode, on the device."""
        pos = self.position[rows]
        if self.mode == "device":
            return self.x[torch.as_tensor(pos, device=self.device)]
        if self.mode == "host":
            x = self.x[torch.from_numpy(pos)]
        else:
            order = np.argsort(rows)  # sequential reads from the memmap, then back to batch order
            block = np.asarray(self._memmap[rows[order]], dtype=np.float32)
            x = torch.from_numpy(block[np.argsort(order)])
        return x.pin_memory() if self.pin else x

    def labels(self, rows: np.ndarray) -> torch.Tensor:
        """The targets of ``rows`` on the device."""
        return self.y[torch.as_tensor(self.position[rows], device=self.device)]

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch on the device."""
        return self._gather(rows).to(self.device, non_blocking=True), self.labels(rows)

    def iterate(self, batches: list[np.ndarray]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches in order; host gathers run one batch ahead in a background thread."""
        if self.mode == "device" or (self.mode == "host" and self.device.type == "cpu"):
            for rows in batches:
                yield self.batch(rows)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._gather, batches[0]) if batches else None
            for i, rows in enumerate(batches):
                x = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(self._gather, batches[i + 1])
                yield x.to(self.device, non_blocking=True), self.labels(rows)


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


# --- model, loss, optimiser --------------------------------------------------------------------
def build_model(config: TrainConfig, n_leads: int, n_outputs: int, store: RunStore):
    """``(model, strategy)``: a fresh model, or the transfer module's pre-trained one and its strategy."""
    if config.transfer:
        from ecgcore.train.transfer import prepare

        return prepare(config, n_leads, n_outputs, store)
    from ecgcore.models import create_model

    return create_model(config.model, n_leads, n_outputs, **config.model_kwargs), None


def loss_function(config: TrainConfig) -> nn.Module:
    if config.task == "regression":
        return nn.L1Loss() if config.loss == "l1" else nn.MSELoss()
    return nn.CrossEntropyLoss() if config.label_mode == "single" else nn.BCEWithLogitsLoss()


#: SGD's momentum: the usual 0.9.
SGD_MOMENTUM = 0.9


def build_optimizer(config: TrainConfig, model: nn.Module, strategy) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD with momentum over the strategy's parameter groups (all parameters without one)."""
    groups = (
        strategy.param_groups(model, config.lr)
        if strategy is not None
        else [{"params": list(model.parameters())}]
    )
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=SGD_MOMENTUM, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay)


def build_schedule(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int, monitor_mode: str
):
    """The learning-rate schedule (``None`` for a constant rate)."""
    if config.schedule == "onecycle":
        max_lr = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=config.epochs * steps_per_epoch
        )
    if config.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=monitor_mode, factor=0.5, patience=2
        )
    return None


def monitor_of(config: TrainConfig) -> tuple[str, str]:
    """``(metric name, "min" | "max")`` for early stopping and the best checkpoint."""
    name = {"auto": "val_loss", "mae": "mae_over_sd"}.get(config.monitor, config.monitor)
    return name, ("max" if name == "auc" else "min")


class BestTracker:
    """Keeps a true copy of the weights at the best value of a metric.

    The copy is taken with :func:`ecgcore.train.checkpoint.cpu_state_dict`, so later optimiser steps
    (which change the model's tensors in place) cannot change it.
    """

    def __init__(
        self,
        mode: str,
        value: float | None = None,
        epoch: int | None = None,
        state: dict[str, torch.Tensor] | None = None,
    ):
        self.mode, self.value, self.epoch, self.state = mode, value, epoch, state

    def improved(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.value is None:
            return True
        return value < self.value if self.mode == "min" else value > self.value

    def update(self, value: float, model: nn.Module, epoch: int) -> bool:
        """Copy the weights if ``value`` beats the best so far; returns whether it did."""
        if not self.improved(value):
            return False
        self.value, self.epoch, self.state = float(value), epoch, cpu_state_dict(model)
        return True


# --- evaluation --------------------------------------------------------------------------------
@torch.no_grad()
def predict_rows(
    model: nn.Module, source: BatchSource, rows: np.ndarray, batch_size: int, amp_dtype: torch.dtype | None
) -> torch.Tensor:
    """Raw model outputs for ``rows`` (eval mode), float32 on the CPU."""
    model.eval()
    outs = []
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    for x, _ in source.iterate(batches):
        with _autocast(source.device, amp_dtype):
            outs.append(model(x).float().cpu())
    return torch.cat(outs)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def outputs_to_predictions(out: torch.Tensor, config: TrainConfig, data: PreparedData) -> np.ndarray:
    """Model outputs -> original units (regression) or probabilities (classification)."""
    if config.task == "regression":
        return out.numpy() * data.target_sd + data.target_mean
    if config.label_mode == "single":
        return torch.softmax(out, dim=1).numpy()
    return torch.sigmoid(out).numpy()


def evaluate_split(
    model: nn.Module,
    source: BatchSource,
    config: TrainConfig,
    data: PreparedData,
    split: str,
    batch_size: int,
    amp_dtype: torch.dtype | None,
    loss_fn: nn.Module,
) -> dict:
    """Loss and metrics (with the trivial baseline) of ``model`` on one split."""
    rows = data.rows[split]
    out = predict_rows(model, source, rows, batch_size, amp_dtype)
    target = torch.as_tensor(data.y[rows])
    loss = float(loss_fn(out, target).item())
    pred = outputs_to_predictions(out, config, data)
    result = evaluate(
        config.task,
        data.y_eval[rows],
        pred,
        data.y_eval[data.rows["train"]],
        names=data.names,
        multi_label=config.label_mode == "multi" and config.task == "classification",
    )
    result["loss"] = loss
    return result


def epoch_metrics(result: dict, config: TrainConfig) -> dict:
    """The compact validation metrics stored per epoch."""
    model = result["model"]
    if config.task == "regression":
        out = {"mae_over_sd": model["mae_over_sd"]}
        out.update({f"mae_{k}": v["mae"] for k, v in model["per_target"].items()})
        return out
    return {"auc": model["auc"], "accuracy": model["accuracy"], "f1_macro": model["f1_macro"]}


def headline(summary_metrics: dict, baseline: dict, config: TrainConfig) -> dict:
    """A few numbers for run tables: test/val unitless MAE / training SD (regression; plus each target's
    test MAE in its unit) or macro AUC, next to the baseline's."""
    key = "mae_over_sd" if config.task == "regression" else "auc"
    out = {f"{split}_{key}": summary_metrics[split][key] for split in ("val", "test")} | {
        f"baseline_test_{key}": baseline["test"][key]
    }
    if config.task == "regression":
        out.update({f"test_mae_{k}": v["mae"] for k, v in summary_metrics["test"]["per_target"].items()})
    return out


def train_step(
    net: nn.Module,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
) -> torch.Tensor:
    """One optimisation step (autocast forward, fp32 loss, scaled backward, clipping); returns the detached loss.

    ``net`` is what runs the forward pass (the model, or its DDP / compiled wrapper); ``model`` owns
    the parameters that are clipped.
    """
    with _autocast(x.device, amp_dtype):
        out = net(x)
    loss = loss_fn(out.float(), y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.detach()


# --- the loop ----------------------------------------------------------------------------------
@contextmanager
def _sigterm_flag() -> Iterator[threading.Event]:
    """An event set by SIGTERM while the block runs (main thread only; elsewhere it never fires)."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


def _checkpoint_meta(config: TrainConfig, data: PreparedData, run_id: str, epoch: int, metrics: dict) -> dict:
    meta = {
        "run_id": run_id,
        "epoch": epoch,
        "task": config.task,
        "label_mode": config.label_mode,
        "leads": list(config.leads),
        "fs": config.fs,
        "preprocessing": data.prep.to_dict(),
        "stats": data.stats,
        "config": config.to_dict(),
        "metrics": metrics,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if config.task == "regression":
        meta.update(targets=list(data.names), target_mean=data.target_mean, target_sd=data.target_sd)
    else:
        meta["classes"] = list(data.names)
    return meta


def train(
    config: TrainConfig,
    *,
    runs_dir: Path | None = None,
    run_id: str | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> dict:
    """Train ``config`` and record it in the run store; returns the run summary.

    Parameters
    ----------
    config
        What to train.
    runs_dir
        Run store directory (default :func:`ecgcore.paths.runs_dir`).
    run_id
        Use this id (a run the worker created as ``queued``, or a new id); default: a new id.
    resume
        Continue ``run_id`` from its last checkpoint (optimiser, schedule and epoch included).
    progress
        ``progress(step, total_steps, message)`` callback.

    Returns
    -------
    dict
        ``id``, ``status`` (``done`` or ``cancelled``), ``metrics`` and ``baseline`` per split
        (``train``, ``val``, ``test``), ``headline``, counts, device, precision and timings.
    """
    device_hint = resolve_device(config.device)
    info = ddp.setup(device_hint.type)
    device = resolve_device(config.device, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    store = RunStore(runs_dir)
    with _sigterm_flag() as stop:  # installed before the run is marked running, so a cancel is never lost
        if info.is_main:
            if run_id is None or not _exists(store, run_id):
                if resume:
                    raise ValueError(f"cannot resume run {run_id!r}: it is not in {store.path}")
                run_id = store.create_run(config, run_id=run_id)
            store.update(
                run_id,
                status="running",
                pid=os.getpid(),
                pid_start=process_start_time(os.getpid()),
                error=None,
                message="loading data",
            )
        run_id = ddp.broadcast(run_id, info)
        return _run_recorded(config, store, run_id, resume, progress, device, info, stop)


def _run_recorded(
    config: TrainConfig,
    store: RunStore,
    run_id: str,
    resume: bool,
    progress: ProgressFn | None,
    device: torch.device,
    info: ddp.DistInfo,
    stop: threading.Event,
) -> dict:
    """:func:`_train`, with its outcome (done, cancelled, failed) written to the store."""
    run_dir = store.run_dir(run_id)
    try:
        if stop.is_set():
            raise Cancelled()
        summary = _train(config, store, run_id, run_dir, resume, progress, device, info, stop)
    except Cancelled:
        if info.is_main:
            store.update(run_id, status="cancelled", message="cancelled; the last epoch's checkpoint is kept")
        summary = {"id": run_id, "status": "cancelled"}
    except KeyboardInterrupt:
        if info.is_main:
            store.update(run_id, status="cancelled", message="interrupted by the user")
        raise
    except BaseException as exc:
        if info.is_main:
            store.update(run_id, status="failed", error=f"{type(exc).__name__}: {exc}", message="failed")
        raise
    finally:
        ddp.cleanup(info)
    return summary


def _exists(store: RunStore, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except KeyError:
        return False
    return True


def _train(
    config: TrainConfig,
    store: RunStore,
    run_id: str,
    run_dir: Path,
    resume: bool,
    progress: ProgressFn | None,
    device: torch.device,
    info: ddp.DistInfo,
    stop: threading.Event,
) -> dict:
    started = time.monotonic()
    if not info.is_main:
        ddp.barrier(info)  # rank 0 builds the cache first; the others then map it
    data = prepare_data(config, progress=progress if info.is_main else None)
    if info.is_main:
        ddp.barrier(info)
    if stop.is_set():
        raise Cancelled()
    if info.is_main:
        atomic_write_json(
            run_dir / "records.json",
            {
                "data": data.spec,
                "kind": data.kind,
                "dropped": data.dropped,
                "fingerprint": data.fingerprint,
                **{s: data.record_ids[r].tolist() for s, r in data.rows.items()},
            },
        )
    torch.manual_seed(config.seed)
    n_leads, n_outputs = len(config.leads), len(data.names)
    model, strategy = build_model(config, n_leads, n_outputs, store)
    model = model.to(device)
    amp_dtype, use_scaler = resolve_precision(device, config.amp)
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    batch = ddp.per_rank_batch(config.batch_size, info)
    steps_per_epoch = len(epoch_batches(data.rows["train"], batch, config.seed, 0, info))
    monitor, mode = monitor_of(config)
    loss_fn = loss_function(config)
    optimizer = build_optimizer(config, model, strategy)
    schedule = build_schedule(config, optimizer, steps_per_epoch, mode)
    source = BatchSource(data.signals, data.y, np.concatenate(list(data.rows.values())), device)
    net: nn.Module = model
    if info.enabled:
        if (
            strategy is not None
        ):  # DDP must know every parameter; the strategy freezes groups again each epoch
            model.requires_grad_(True)
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=strategy is not None,
        )
    if config.compile:
        net = torch.compile(net)

    best = BestTracker(mode)
    start_epoch, since_best = 0, 0
    if resume:
        start_epoch, since_best, best = _restore(run_dir, model, optimizer, schedule, scaler, mode)
        if info.is_main:
            store.truncate_epochs(run_id, start_epoch - 1)
    total_steps = config.epochs * steps_per_epoch
    device_label = f"{device.type}" + (f" x{info.world_size}" if info.enabled else "")
    if info.is_main:
        store.update(
            run_id, device=device_label, total_steps=total_steps, message=f"training ({source.mode} data)"
        )
    last_store = 0.0
    step = start_epoch * steps_per_epoch
    step_time_start, steps_timed = time.monotonic(), 0
    epoch = start_epoch - 1
    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.monotonic()
        torch.manual_seed(config.seed * 100_003 + epoch)  # dropout: reproducible per epoch, so resumable
        net.train()
        if strategy is not None:
            strategy.on_epoch_start(epoch, model)
        loss_sum = torch.zeros((), device=device)
        augment = _augmenter(config, epoch, info.rank)
        batches = epoch_batches(data.rows["train"], batch, config.seed, epoch, info)
        for x, y in source.iterate(batches):
            if stop.is_set():
                raise Cancelled()
            if augment is not None:
                x = augment(x)
            loss_sum += train_step(
                net,
                model,
                x,
                y,
                loss_fn,
                optimizer,
                amp_dtype=amp_dtype,
                scaler=scaler,
                grad_clip=config.grad_clip,
            )
            if isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR):
                schedule.step()
            step += 1
            steps_timed += 1
            now = time.monotonic()
            eta = (now - step_time_start) / steps_timed * (total_steps - step)
            report(progress, step, total_steps, f"epoch {epoch + 1}/{config.epochs}")
            if info.is_main and now - last_store > STORE_INTERVAL_S:
                last_store = now
                store.update(run_id, epoch=epoch, step=step, eta_s=eta)
        train_loss = ddp.mean_across(float(loss_sum.item()) / max(len(batches), 1), info, device)
        ddp.sync_buffers(model, info)
        val = evaluate_split(model, source, config, data, "val", batch, amp_dtype, loss_fn)
        metrics = epoch_metrics(val, config)
        # rank 0 decides: every rank must step the schedule and stop early identically
        value = ddp.broadcast(val["loss"] if monitor == "val_loss" else metrics[monitor], info)
        if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule.step(value)
        elif isinstance(schedule, torch.optim.lr_scheduler.ExponentialLR):
            schedule.step()
        improved = best.update(value, model, epoch)
        since_best = 0 if improved else since_best + 1
        if info.is_main:
            meta = _checkpoint_meta(config, data, run_id, epoch, {"val_loss": val["loss"], **metrics})
            if improved:
                save_checkpoint(run_dir / "best", model, {**meta, "monitor": monitor, "monitor_value": value})
            _save_last(run_dir, model, meta, optimizer, schedule, scaler, best, since_best)
            store.add_epoch(
                run_id,
                epoch,
                step,
                train_loss=train_loss,
                val_loss=val["loss"],
                lr=optimizer.param_groups[-1]["lr"],
                time_s=time.monotonic() - epoch_start,
                metrics=metrics,
            )
            best_file = run_dir / "best.safetensors"
            store.update(
                run_id,
                epoch=epoch,
                step=step,
                eta_s=(time.monotonic() - step_time_start) / max(steps_timed, 1) * (total_steps - step),
                last_checkpoint=str(run_dir / "last.safetensors"),
                best_checkpoint=str(best_file) if best_file.exists() else None,
            )
        if config.patience is not None and since_best >= config.patience:
            break
    train_time = time.monotonic() - step_time_start

    if best.state is None:  # resumed after the last epoch, or no finite metric: take the saved best
        best.state = read_checkpoint(run_dir / "best.safetensors")[0]
    model.load_state_dict(best.state)
    results = {
        s: evaluate_split(model, source, config, data, s, batch, amp_dtype, loss_fn)
        for s in ("train", "val", "test")
    }
    metrics = {s: {"model": r["model"], "loss": r["loss"]} for s, r in results.items()}
    baseline = {s: r["baseline"] for s, r in results.items()}
    summary = {
        "id": run_id,
        "status": "done",
        "task": config.task,
        "model": config.model,
        "device": device_label,
        "precision": precision_name(amp_dtype),
        "data_mode": source.mode,
        "world_size": info.world_size,
        "epochs_run": epoch + 1,
        "best_epoch": best.epoch,
        "monitor": monitor,
        "best_value": best.value,
        "stopped_early": epoch + 1 < config.epochs,
        "n": {s: int(len(r)) for s, r in data.rows.items()},
        "dropped": data.dropped,
        "names": list(data.names),
        "metrics": {s: m["model"] for s, m in metrics.items()},
        "loss": {s: m["loss"] for s, m in metrics.items()},
        "baseline": baseline,
        "params": int(sum(p.numel() for p in model.parameters())),
        "time_s": round(time.monotonic() - started, 3),
        "train_samples_per_s": round(steps_timed * config.batch_size / train_time, 2)
        if steps_timed
        else None,
    }
    summary["headline"] = headline(summary["metrics"], baseline, config)
    summary = jsonable(summary)
    if info.is_main:
        atomic_write_json(run_dir / "summary.json", summary)
        store.update(run_id, status="done", summary=summary, message="done", eta_s=0.0)
    return summary


def _augmenter(config: TrainConfig, epoch: int, rank: int):
    """The data layer's default augmentations, seeded by (seed, epoch, rank) so a resumed run repeats them; or ``None``."""
    if not config.augment:
        return None
    from ecgcore.data.transforms import Augment

    return Augment(seed=int(np.random.SeedSequence([config.seed, epoch, rank]).generate_state(1)[0]))


def _save_last(
    run_dir: Path,
    model: nn.Module,
    meta: dict,
    optimizer,
    schedule,
    scaler,
    best: BestTracker,
    since_best: int,
) -> None:
    """Write the resumable state, then ``last.safetensors`` naming it (so they always agree), then prune."""
    epoch = meta["epoch"]
    state_file = f"state-epoch{epoch:04d}.pt"
    save_training_state(
        run_dir / state_file,
        {
            "epoch": epoch,
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict() if schedule is not None else {},
            "scaler": scaler.state_dict() if scaler is not None else {},
            "best_value": best.value if best.value is not None else float("nan"),
            "best_epoch": -1 if best.epoch is None else best.epoch,
            "since_best": since_best,
        },
    )
    save_checkpoint(run_dir / "last", model, {**meta, "state_file": state_file})
    for old in run_dir.glob("state-epoch*.pt"):
        if old.name != state_file:
            old.unlink(missing_ok=True)


def _restore(
    run_dir: Path, model: nn.Module, optimizer, schedule, scaler, mode: str
) -> tuple[int, int, BestTracker]:
    """Load ``last`` weights and state; returns ``(next epoch, epochs since best, best tracker)``."""
    weights, meta = read_checkpoint(run_dir / "last.safetensors")
    state = load_training_state(run_dir / meta["state_file"])
    model.load_state_dict(weights)
    optimizer.load_state_dict(state["optimizer"])
    if schedule is not None and state["schedule"]:
        schedule.load_state_dict(state["schedule"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    best_value = state["best_value"]
    best = BestTracker(
        mode,
        None if math.isnan(best_value) else best_value,
        None if state["best_epoch"] < 0 else state["best_epoch"],
    )
    if best.epoch is not None:
        best.state = read_checkpoint(run_dir / "best.safetensors")[0]
    return meta["epoch"] + 1, state["since_best"], best


def predict_split(store: RunStore, run_id: str, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Truth and predictions of a finished run's best model on its ``val`` or ``test`` rows.

    Uses the trainer's own data preparation and prediction (same rows, preprocessing and label
    scaling as the metrics in the run summary), so plots of them show what the metrics measured.

    Raises
    ------
    ValueError
        If the rows rebuilt now differ from those the run recorded: the data changed since the run.
    """
    config = store.config(run_id)
    data = prepare_data(config)
    recorded = json.loads((store.run_dir(run_id) / "records.json").read_text())[split]
    rows = data.rows[split]
    if list(data.record_ids[rows]) != list(recorded):
        raise ValueError(
            f"run {run_id}: its {split} records differ from the data now in {config.data}; "
            "the data changed since the run"
        )
    model, _ = load_checkpoint(store.run_dir(run_id) / "best", device="cpu")
    source = BatchSource(data.signals, data.y, rows, next(model.parameters()).device)
    out = predict_rows(model, source, rows, config.batch_size, None)
    return data.y_eval[rows], outputs_to_predictions(out, config, data), list(data.names)
