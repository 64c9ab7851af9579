"""Training throughput: the trainer's own data path and step, and the plain reference loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecgcore.bench import common
from ecgcore.bench.common import (
    BenchSettings,
    Runner,
)
from ecgcore.vocab import TARGET_KEYS


def trainer_runner(
    data_dir: Path,
    fs: float,
    amp: bool,
    settings: BenchSettings,
    device: torch.device,
    *,
    batch_size: int | None = None,
    threads: int | None = None,
    fused: bool = False,
    compile_mode: str | None = None,
    layout: str = "auto",
) -> Runner:
    """The trainer's own data path and step for ``inception1d`` at ``fs``.

    Sweep options: ``batch_size`` (default ``settings.batch_size``), ``threads`` (torch CPU threads set
    before every step, so runners with different counts can be interleaved), ``fused`` (AdamW's fused
    kernel), ``compile_mode`` (the step's forward through ``torch.compile(mode=...)``) and ``layout``
    (``auto``: the trainer's choice, channels-last for CPU bf16 (:mod:`ecgcore.train.layout`); ``plain``).
    """
    from ecgcore.models import create_model
    from ecgcore.train.batches import BatchSource, prepare_data
    from ecgcore.train.device import precision_name, resolve_precision
    from ecgcore.train.layout import channels_last, wants_channels_last
    from ecgcore.train.optim import train_step

    batch_size = batch_size or settings.batch_size
    config = common.bench_config(data_dir, fs, batch_size, amp)
    data = prepare_data(config)
    rows = np.concatenate(list(data.rows.values()))
    torch.manual_seed(0)
    model = create_model(common.MODEL, len(config.leads), len(data.names)).to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused or None
    )
    amp_dtype, use_scaler = resolve_precision(device, amp, force=True)
    if layout not in ("auto", "plain"):
        raise ValueError(f"unknown layout {layout!r}; expected auto or plain")
    cl = layout == "auto" and wants_channels_last(device, amp_dtype) and channels_last(model)
    net = torch.compile(model, mode=compile_mode) if compile_mode else model
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    source = BatchSource(data.inputs, data.y, rows, device)
    rng = np.random.default_rng(0)
    loss_fn = nn.L1Loss()

    def fetch():
        if threads:
            torch.set_num_threads(threads)
        return source.batch(rng.choice(rows, batch_size, replace=len(rows) < batch_size))

    def step(batch):
        train_step(
            net,
            model,
            *batch,
            loss_fn,
            optimizer,
            amp_dtype=amp_dtype,
            scaler=scaler,
            grad_clip=config.grad_clip,
        )

    return Runner(
        fetch,
        step,
        dict(
            fs=fs,
            amp=amp,
            precision=precision_name(amp_dtype),
            batch_size=batch_size,
            data_mode=source.mode,
            threads=threads or torch.get_num_threads(),
            fused=fused,
            compile=compile_mode,
            layout="channels-last" if cl else "plain",
        ),
    )


class FileDataset(torch.utils.data.Dataset):
    """The reference input pipeline: every access reads and z-scores one ``.asc`` file (no cache)."""

    def __init__(self, files: list[Path], targets: np.ndarray):
        self.files, self.targets = files, targets.astype(np.float32)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.loadtxt(self.files[i], dtype=np.float32).T / 1000.0  # 5000 x 8 microvolts -> [8, 5000] mV
        x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)
        return torch.from_numpy(x), torch.from_numpy(self.targets[i])


def reference_runner(data_dir: Path, settings: BenchSettings, device: torch.device) -> Runner:
    """The plain loop: file-reading Dataset, DataLoader, fp32, 500 Hz."""
    from ecgcore.data import format_spec, open_source
    from ecgcore.models import create_model

    dataset = open_source(format_spec("deepfake", data_dir))
    index = dataset.index.dropna(subset=list(TARGET_KEYS))
    files = [dataset.root / p for p in index["path"]]
    targets = index[list(TARGET_KEYS)].to_numpy()
    targets = (targets - targets.mean(axis=0)) / targets.std(axis=0)
    loader = torch.utils.data.DataLoader(
        FileDataset(files, targets), batch_size=settings.reference_batch_size, shuffle=True, drop_last=True
    )
    torch.manual_seed(0)
    model = create_model(common.MODEL, 8, 4).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.L1Loss()
    batches = iter(())

    def fetch():
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        return x.to(device), y.to(device)

    def step(batch):
        x, y = batch
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return Runner(
        fetch,
        step,
        dict(
            fs=500.0, precision="fp32", batch_size=settings.reference_batch_size, data_mode="file per access"
        ),
    )
