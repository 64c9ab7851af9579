"""Optimisation: the loss, the optimiser over (transfer) parameter groups, the schedule, one step, the best weights."""

from __future__ import annotations

import math

import torch
from torch import nn

from ecgcore.train.checkpoint import cpu_state_dict
from ecgcore.train.config import TrainConfig
from ecgcore.train.device import autocast

#: SGD's momentum: the usual 0.9.
SGD_MOMENTUM = 0.9


def loss_function(config: TrainConfig) -> nn.Module:
    """L1 / MSE for regression, cross-entropy (single label) or BCE with logits (multi-label)."""
    if config.task == "regression":
        return nn.L1Loss() if config.loss == "l1" else nn.MSELoss()
    return nn.CrossEntropyLoss() if config.label_mode == "single" else nn.BCEWithLogitsLoss()


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


def step_schedule_per_batch(schedule) -> None:
    """Advance a per-step schedule (one-cycle) after an optimiser step."""
    if isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR):
        schedule.step()


def step_schedule_per_epoch(schedule, value: float) -> None:
    """Advance a per-epoch schedule: plateau by the monitored ``value``, exponential by one."""
    if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
        schedule.step(value)
    elif isinstance(schedule, torch.optim.lr_scheduler.ExponentialLR):
        schedule.step()


def monitor_of(config: TrainConfig) -> tuple[str, str]:
    """``(metric name, "min" | "max")`` for early stopping and the best checkpoint."""
    name = "val_loss" if config.monitor == "auto" else config.monitor
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


def train_step(
    net: nn.Module,
    model: nn.Module,
    x: torch.Tensor | tuple[torch.Tensor, ...],
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
    the parameters that are clipped. ``x`` is one tensor or a tuple (passed as separate arguments).
    """
    with autocast(y.device, amp_dtype):
        out = net(*x) if isinstance(x, tuple) else net(x)
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
