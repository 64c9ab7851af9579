"""Cache build and one training epoch at growing record counts (linear growth reads as flat s/1k)."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ecgcore import paths as ecg_paths
from ecgcore.bench.common import (
    MODEL,
    bench_data,
)
from ecgcore.progress import ProgressFn, report


def bench_scaling(
    sizes: tuple[int, ...] = (500, 2000, 8000),
    fs: float = 100.0,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
) -> list[dict]:
    """Seconds to build the cache and to train one epoch (fp32 and the default precision) at each size.

    Every size gets its own generated DeepFake folder (generation is not timed) and a cold cache (the
    cache folder of that dataset and preprocessing is removed first).
    """
    import shutil

    from ecgcore.data import format_spec, open_source
    from ecgcore.data.cache import cache_key, load_cached
    from ecgcore.models import create_model
    from ecgcore.train.batches import BatchSource, prepare_data
    from ecgcore.train.config import TrainConfig
    from ecgcore.train.device import precision_name, resolve_precision
    from ecgcore.train.optim import train_step

    device = torch.device("cpu")
    rows = []
    for k, n in enumerate(sizes):
        report(progress, k, len(sizes), f"{n} records")
        data_dir = bench_data(n)
        config = TrainConfig(
            task="regression",
            data=format_spec("deepfake", data_dir),
            model=MODEL,
            fs=fs,
            batch_size=batch_size,
        )
        dataset = open_source(config.data)
        shutil.rmtree(ecg_paths.cache_dir() / cache_key(dataset, config.preprocessing()), ignore_errors=True)
        t0 = time.perf_counter()
        load_cached(dataset, config.preprocessing())
        cache_s = time.perf_counter() - t0
        data = prepare_data(config)
        train_rows = data.rows["train"]
        row = {"records": n, "train_rows": len(train_rows), "cache_s": cache_s, "fs": fs}
        for amp in (False, True):
            torch.manual_seed(0)
            model = create_model(MODEL, len(config.leads), len(data.names)).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
            amp_dtype, _ = resolve_precision(device, amp)
            source = BatchSource(data.inputs, data.y, train_rows, device)
            order = np.random.default_rng(0).permutation(train_rows)
            batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
            t0 = time.perf_counter()
            for x, y in source.iterate(batches):
                train_step(model, model, x, y, nn.L1Loss(), optimizer, amp_dtype=amp_dtype, grad_clip=None)
            row[f"epoch_s_{precision_name(amp_dtype)}"] = time.perf_counter() - t0
        rows.append(row)
    report(progress, len(sizes), len(sizes), "done")
    return rows


def format_scaling(rows: list[dict]) -> str:
    """The scaling table: seconds and seconds per 1,000 records (flat = linear growth)."""
    epochs = [k for k in rows[0] if k.startswith("epoch_s_")]
    head = f"{'records':>8}{'cache s':>10}{'s/1k':>7}" + "".join(
        f"{k[8:] + ' epoch s':>20}{'s/1k':>8}" for k in epochs
    )
    lines = [head]
    for r in rows:
        line = f"{r['records']:>8}{r['cache_s']:>10.1f}{1000 * r['cache_s'] / r['records']:>7.2f}"
        for k in epochs:
            line += f"{r[k]:>20.1f}{1000 * r[k] / r['records']:>8.1f}"
        lines.append(line)
    return "\n".join(lines)
