"""What an epoch leaves on disk so a run can continue: the checkpoint description, ``last`` with its
optimiser / schedule / scaler state, and reading them back."""

from __future__ import annotations

import math
import time
from pathlib import Path

from torch import nn

from ecgcore.train.batches import PreparedData
from ecgcore.train.checkpoint import (
    load_training_state,
    read_checkpoint,
    save_checkpoint,
    save_training_state,
)
from ecgcore.train.config import TrainConfig
from ecgcore.train.optim import BestTracker


def checkpoint_meta(config: TrainConfig, data: PreparedData, run_id: str, epoch: int, metrics: dict) -> dict:
    """The self-description written into every checkpoint (what the predictor needs to rebuild the inputs)."""
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


def save_last(
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


def restore(
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
