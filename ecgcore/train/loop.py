"""The fit loop: trains any model on any batch source, one process or many (DDP), and reports through a
:class:`~ecgcore.train.recorder.Recorder`.

Every epoch writes ``last.safetensors`` and the resumable state; an improvement of the monitored
validation metric writes ``best.safetensors`` from a true copy of the weights. Setup, one epoch, the
end of an epoch and the summary are separate steps over one :class:`FitState`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgcore.paths import atomic_write_json
from ecgcore.progress import ProgressFn, report
from ecgcore.train import distributed as ddp
from ecgcore.train.batches import BatchSource, PreparedData, epoch_batches
from ecgcore.train.checkpoint import jsonable, read_checkpoint, save_checkpoint
from ecgcore.train.config import TrainConfig
from ecgcore.train.device import precision_name, resolve_precision
from ecgcore.train.evaluate import epoch_metrics, evaluate_split, headline, save_predictions
from ecgcore.train.layout import channels_last, plain_layout, wants_channels_last
from ecgcore.train.optim import (
    BestTracker,
    build_optimizer,
    build_schedule,
    loss_function,
    monitor_of,
    step_schedule_per_batch,
    step_schedule_per_epoch,
    train_step,
)
from ecgcore.train.recorder import Cancelled, MemoryRecorder, Recorder
from ecgcore.train.resume import checkpoint_meta, restore, save_last
from ecgcore.train.state import FitState
from ecgcore.version import code_version

#: How often the training loss of the current step goes to a recorder that streams it (``step_loss``).
STEP_LOSS_EVERY_S = 1.0

#: Steps between the ranks' agreement on stopping (every step in a single process, where it is free).
STOP_CHECK_STEPS = 8


def fit(
    config: TrainConfig,
    data: PreparedData,
    model: nn.Module,
    run_dir: str | Path,
    *,
    device: torch.device,
    recorder: Recorder | None = None,
    strategy=None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    run_id: str | None = None,
    info: ddp.DistInfo | None = None,
    source=None,
    augment: Callable[[int, int], Any] | None = None,
) -> dict:
    """Train ``model`` on ``data`` (inputs of any shape, or a tuple of inputs) and return the run summary.

    ``source`` defaults to a :class:`BatchSource` over every row of ``data``; ``augment(epoch, rank)``
    returns a batch transform or ``None``. Raises :class:`~ecgcore.train.recorder.Cancelled` when the
    recorder asks to stop (on any rank); the caller records the outcome (see :func:`ecgcore.train.train`).
    """
    try:  # setup may convert the model's layout and then fail (a resume with nothing to resume, say)
        state = _setup(
            config,
            data,
            model,
            Path(run_dir),
            device,
            recorder,
            strategy,
            resume,
            progress,
            run_id,
            info or ddp.DistInfo(),
            source,
        )
        epoch = state.start_epoch - 1
        for epoch in range(state.start_epoch, config.epochs):
            train_loss = _run_epoch(state, epoch, augment(epoch, state.info.rank) if augment else None)
            if _end_epoch(state, epoch, train_loss):
                break
        return _summary(state, epoch)
    finally:
        plain_layout(model)  # the caller gets the model back in the layout it gave


def _setup(config, data, model, run_dir, device, recorder, strategy, resume, progress, run_id, info, source):
    """The model on its device (wrapped for DDP / compile), loss, optimiser, schedule, precision, resume."""
    model = model.to(device)
    amp_dtype, use_scaler = resolve_precision(device, config.amp)
    check_compile(config, device, amp_dtype)
    layout = "channels-last" if wants_channels_last(device, amp_dtype) and channels_last(model) else None
    batch = ddp.per_rank_batch(config.batch_size, info)
    monitor, mode = monitor_of(config)
    optimizer = build_optimizer(config, model, strategy)
    steps = len(epoch_batches(data.rows["train"], batch, config.seed, 0, info))
    if source is None:
        source = BatchSource(data.inputs, data.y, np.concatenate(list(data.rows.values())), device)
    state = FitState(
        config,
        data,
        model,
        _wrap(config, model, strategy, device, info),
        strategy,
        source,
        device,
        info,
        recorder or MemoryRecorder(),
        run_dir,
        run_id or run_dir.name,
        progress,
        loss_function(config),
        optimizer,
        build_schedule(config, optimizer, steps, mode),
        torch.amp.GradScaler(device.type) if use_scaler else None,
        amp_dtype,
        batch,
        steps,
        monitor,
        mode,
        BestTracker(mode),
        started=time.monotonic(),
    )
    if resume:
        state.start_epoch, state.since_best, state.best = restore(
            run_dir, model, optimizer, state.schedule, state.scaler, mode
        )
        if info.is_main:
            state.recorder.resumed(state.start_epoch)
    state.step = state.start_epoch * steps
    if info.is_main:
        state.recorder.started(
            state.device_label,
            state.total_steps,
            f"training ({', '.join(filter(None, (f'{source.mode} data', precision_name(amp_dtype), layout)))})",
        )
    state.timer = time.monotonic()
    return state


def check_compile(config: TrainConfig, device: torch.device, amp_dtype: torch.dtype | None) -> None:
    """Refuse ``compile`` with bf16 mixed precision on a CPU: inductor's backward of a max over time after a
    batch norm (inception1d's pooling) gives NaN gradients there from the first step (torch 2.13; an fp32
    compiled run trains). ``ValueError`` saying what to change, before any compile."""
    if config.compile and device.type == "cpu" and amp_dtype == torch.bfloat16:
        raise ValueError(
            f"compile with bf16 mixed precision on the CPU can give NaN gradients (seen from the first step "
            f"with inception1d, torch {torch.__version__}): train without --compile, or in fp32 (--no-amp)"
        )


def _wrap(
    config: TrainConfig, model: nn.Module, strategy, device: torch.device, info: ddp.DistInfo
) -> nn.Module:
    """The module that runs the forward pass: DDP across processes, then ``torch.compile`` if asked.

    Only gradual unfreezing changes the trainable set after wrapping, so only it needs every parameter
    registered (``find_unused_parameters``); a linear probe or discriminative rates wrap the model as
    the strategy left it at epoch 0.
    """
    net: nn.Module = model
    if info.enabled:
        unfreezes = getattr(strategy, "name", None) == "gradual_unfreeze"
        if unfreezes:
            model.requires_grad_(True)  # DDP must know every parameter; the strategy freezes again each epoch
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=unfreezes,
        )
    return torch.compile(net) if config.compile else net


def _check_stop(state: FitState, force: bool = False) -> None:
    """Raise :class:`Cancelled` on every rank once any rank's recorder asks to stop."""
    if not (force or not state.info.enabled or state.step % STOP_CHECK_STEPS == 0):
        return
    code = ddp.CANCEL if state.recorder.cancel_requested() else ddp.GO_ON
    if ddp.agree(code, state.info, state.device) != ddp.GO_ON:
        raise Cancelled()


def _run_epoch(state: FitState, epoch: int, augment) -> float:
    """Train one epoch; returns the training loss averaged over batches and ranks."""
    config, model = state.config, state.model
    state.epoch_start = time.monotonic()
    torch.manual_seed(config.seed * 100_003 + epoch)  # dropout: reproducible per epoch, so resumable
    state.net.train()
    if state.strategy is not None:
        state.strategy.on_epoch_start(epoch, model)
    loss_sum = torch.zeros((), device=state.device)
    batches = epoch_batches(state.data.rows["train"], state.batch, config.seed, epoch, state.info)
    step_loss = getattr(state.recorder, "step_loss", None) if state.info.is_main else None
    last_loss_at = 0.0
    for x, y in state.source.iterate(batches):
        _check_stop(state)
        if augment is not None:
            x = augment(x)
        loss = train_step(
            state.net,
            model,
            x,
            y,
            state.loss_fn,
            state.optimizer,
            amp_dtype=state.amp_dtype,
            scaler=state.scaler,
            grad_clip=config.grad_clip,
        )
        loss_sum += loss
        step_schedule_per_batch(state.schedule)
        state.step += 1
        if step_loss is not None and time.monotonic() - last_loss_at >= STEP_LOSS_EVERY_S:
            last_loss_at = time.monotonic()  # .item() waits for the device: at most once a second
            step_loss(epoch, state.step, float(loss.item()))
        state.steps_timed += 1
        report(state.progress, state.step, state.total_steps, f"epoch {epoch + 1}/{config.epochs}")
        if state.info.is_main:
            state.recorder.progress(epoch, state.step, state.eta())
    _check_stop(state, force=True)
    return ddp.mean_across(float(loss_sum.item()) / max(len(batches), 1), state.info, state.device)


def _end_epoch(state: FitState, epoch: int, train_loss: float) -> bool:
    """Validate, step the schedule, keep the best weights, write checkpoints; returns whether to stop early."""
    config, model, run_dir = state.config, state.model, state.run_dir
    ddp.sync_buffers(model, state.info)
    val = evaluate_split(
        model,
        state.source,
        config,
        state.data,
        "val",
        state.batch,
        state.amp_dtype,
        state.loss_fn,
        state.info,
    )
    metrics = epoch_metrics(val, config)
    # rank 0 decides: every rank must step the schedule and stop early identically
    value = ddp.broadcast(val["loss"] if state.monitor == "val_loss" else metrics[state.monitor], state.info)
    step_schedule_per_epoch(state.schedule, value)
    improved = state.best.update(value, model, epoch)
    state.since_best = 0 if improved else state.since_best + 1
    if state.info.is_main:
        meta = checkpoint_meta(config, state.data, state.run_id, epoch, {"val_loss": val["loss"], **metrics})
        if improved:
            save_checkpoint(
                run_dir / "best", model, {**meta, "monitor": state.monitor, "monitor_value": value}
            )
        save_last(
            run_dir, model, meta, state.optimizer, state.schedule, state.scaler, state.best, state.since_best
        )
        state.recorder.epoch_end(
            epoch,
            state.step,
            train_loss=train_loss,
            val_loss=val["loss"],
            lr=state.optimizer.param_groups[-1]["lr"],
            time_s=time.monotonic() - state.epoch_start,
            metrics=metrics,
        )
        best = run_dir / "best.safetensors"
        state.recorder.checkpoint_written(
            epoch, state.step, state.eta(), run_dir / "last.safetensors", best if best.exists() else None
        )
    return config.patience is not None and state.since_best >= config.patience


def _summary(state: FitState, epoch: int) -> dict:
    """Evaluate the best weights on every split and write ``summary.json``; returns the summary."""
    config, model, data = state.config, state.model, state.data
    train_time = time.monotonic() - state.timer
    if state.best.state is None:  # resumed after the last epoch, or no finite metric: take the saved best
        state.best.state = read_checkpoint(state.run_dir / "best.safetensors")[0]
    model.load_state_dict(state.best.state)
    results = {
        s: evaluate_split(
            model, state.source, config, data, s, state.batch, state.amp_dtype, state.loss_fn, state.info
        )
        for s in ("train", "val", "test")
    }
    baseline = {s: r["baseline"] for s, r in results.items()}
    summary = {
        "id": state.run_id,
        "status": "done",
        "task": config.task,
        "model": config.model,
        "device": state.device_label,
        "precision": precision_name(state.amp_dtype),
        "data_mode": state.source.mode,
        "world_size": state.info.world_size,
        "epochs_run": epoch + 1,
        "best_epoch": state.best.epoch,
        "monitor": state.monitor,
        "best_value": state.best.value,
        "stopped_early": epoch + 1 < config.epochs,
        "n": {s: int(len(r)) for s, r in data.rows.items()},
        "dropped": data.dropped,
        "names": list(data.names),
        **data.info,
        "metrics": {s: r["model"] for s, r in results.items()},
        "loss": {s: r["loss"] for s, r in results.items()},
        "baseline": baseline,
        "params": int(sum(p.numel() for p in model.parameters())),
        "time_s": round(time.monotonic() - state.started, 3),
        "train_samples_per_s": round(state.steps_timed * config.batch_size / train_time, 2)
        if state.steps_timed
        else None,
    }
    summary["headline"] = headline(summary["metrics"], baseline, config)
    summary["code_version"] = code_version()
    summary = jsonable(summary)
    if state.info.is_main:
        save_predictions(state.run_dir, results, data, config)
        atomic_write_json(state.run_dir / "summary.json", summary)
        state.recorder.finished(summary)
    return summary
