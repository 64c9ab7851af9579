"""The state one fit shares across its steps: what trains, on what, how, and where the run stands."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecgcore.progress import ProgressFn
from ecgcore.train import distributed as ddp
from ecgcore.train.batches import PreparedData
from ecgcore.train.config import TrainConfig
from ecgcore.train.optim import BestTracker
from ecgcore.train.recorder import Recorder


@dataclass
class FitState:
    """Everything the epochs share: what trains, on what, how, and where the run stands."""

    config: TrainConfig
    data: PreparedData
    model: nn.Module
    net: nn.Module
    strategy: Any
    source: Any
    device: torch.device
    info: ddp.DistInfo
    recorder: Recorder
    run_dir: Path
    run_id: str
    progress: ProgressFn | None
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any
    scaler: torch.amp.GradScaler | None
    amp_dtype: torch.dtype | None
    batch: int
    steps_per_epoch: int
    monitor: str
    mode: str
    best: BestTracker
    start_epoch: int = 0
    since_best: int = 0
    step: int = 0
    started: float = 0.0
    timer: float = 0.0
    epoch_start: float = 0.0
    steps_timed: int = 0

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    @property
    def device_label(self) -> str:
        return self.device.type + (f" x{self.info.world_size}" if self.info.enabled else "")

    def eta(self) -> float:
        return (time.monotonic() - self.timer) / max(self.steps_timed, 1) * (self.total_steps - self.step)
