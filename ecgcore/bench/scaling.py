"""Cache build and one training epoch at growing record counts (linear growth reads as flat s per 1k).

Generating a DeepFake ECG costs about 1.5 s of CPU, so 8,000 generated records would take hours. The
scaling inputs are therefore *derived* (:func:`scaling_data`): each record is one of a few generated
records, circularly shifted in time by its own offset and with its targets jittered, written as text in
the DeepFake layout in well under a millisecond each. Reading, caching and training cost the same
whatever the samples say, so the timings are those of as many distinct real-format records.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ecgcore import paths as ecg_paths
from ecgcore.bench import common
from ecgcore.progress import ProgressFn, report

#: Generated records the derived scaling folders are made from.
SCALING_BASE = 32


def scaling_data(n: int, base: Path | None = None) -> Path:
    """A DeepFake-layout folder of ``n`` distinct records derived from ``base`` (written once, reused).

    Record ``i`` is base record ``i % k`` (``k`` records in ``base``; default: :data:`SCALING_BASE`
    generated ones) rolled by ``i // k`` samples, so no two records are identical for ``n < 5000 k``;
    its interval targets get Gaussian jitter (SD 1 ms, seeded). ``generation.json`` says how it was made.
    """
    from ecgcore.data.deepfake import GROUND_TRUTH, find_ground_truth

    base = Path(base) if base is not None else common.bench_data(SCALING_BASE)
    out = ecg_paths.generated_dir() / f"bench-scaling-{n}-from-{base.name}"
    if (out / "generation.json").is_file():
        return out
    truth = pd.read_csv(find_ground_truth(base))
    truth = truth[[(base / f"{p}.asc").is_file() for p in truth["patid"]]].reset_index(drop=True)
    k = len(truth)
    if k == 0:
        raise FileNotFoundError(
            f"{base}: no DeepFake records (.asc named in the ground truth) to derive from"
        )
    lines = [(base / f"{p}.asc").read_text().splitlines() for p in truth["patid"]]
    if n > k * min(len(x) for x in lines):
        raise ValueError(f"{n} records cannot all differ when derived from {k} records by shifts")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        for i in range(n):
            rows, shift = lines[i % k], i // k
            (tmp / f"{i}.asc").write_text("\n".join(rows[shift:] + rows[:shift]) + "\n")
        table = truth.iloc[np.arange(n) % k].reset_index(drop=True)
        table["patid"] = np.arange(n)
        for key in ("avgrrinterval", "pr", "qrs", "qt"):
            table[key] = table[key] + rng.normal(0.0, 1.0, n)
        table.to_csv(tmp / GROUND_TRUTH, index=False)
        info = {
            "n": n,
            "derived_from": str(base),
            "how": "record i = base record i % k rolled by i // k samples; targets + N(0, 1 ms)",
            "seconds": round(time.perf_counter() - start, 2),
        }
        (tmp / "generation.json").write_text(json.dumps(info))
        shutil.rmtree(out, ignore_errors=True)  # a partial folder from an interrupted run
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def bench_scaling(
    sizes: tuple[int, ...] = (500, 2000, 8000),
    fs: float = 100.0,
    batch_size: int = 32,
    precisions: tuple[bool, ...] = (True,),
    progress: ProgressFn | None = None,
) -> list[dict]:
    """Seconds to build the cache and to train one epoch at each size, on :func:`scaling_data` folders.

    ``precisions`` lists the trainer's ``amp`` settings to time an epoch in (``True``: the default
    precision, bf16 where native; add ``False`` for fp32). Each size gets a cold cache (its cache folder is
    removed first); building the derived folder is timed separately (``derive_s``), not counted.
    A progress message after each size estimates the time left from the per-record cost so far.
    """
    from ecgcore.data import open_source
    from ecgcore.data.cache import cache_key, load_cached
    from ecgcore.models import create_model
    from ecgcore.train.batches import BatchSource, prepare_data
    from ecgcore.train.device import precision_name, resolve_precision
    from ecgcore.train.layout import channels_last, wants_channels_last
    from ecgcore.train.optim import train_step

    device = torch.device("cpu")
    rows: list[dict] = []
    spent, done = 0.0, 0
    for k, n in enumerate(sizes):
        left = f", about {spent / done * sum(sizes[k:]) / 60:.0f} min left" if done else ""
        report(progress, k, len(sizes), f"{n} records{left}")
        t0 = time.perf_counter()
        data_dir = scaling_data(n)
        derive_s = time.perf_counter() - t0
        config = common.bench_config(data_dir, fs, batch_size)
        dataset = open_source(config.data)
        shutil.rmtree(ecg_paths.cache_dir() / cache_key(dataset, config.preprocessing()), ignore_errors=True)
        t0 = time.perf_counter()
        load_cached(dataset, config.preprocessing())
        cache_s = time.perf_counter() - t0
        data = prepare_data(config)
        train_rows = data.rows["train"]
        row = {
            "records": n,
            "train_rows": len(train_rows),
            "derive_s": derive_s,
            "cache_s": cache_s,
            "fs": fs,
        }
        for amp in precisions:
            torch.manual_seed(0)
            model = create_model(common.MODEL, len(config.leads), len(data.names)).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
            amp_dtype, _ = resolve_precision(device, amp)
            if wants_channels_last(device, amp_dtype):  # the trainer's own layout choice
                channels_last(model)
            source = BatchSource(data.inputs, data.y, train_rows, device)
            order = np.random.default_rng(0).permutation(train_rows)
            batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
            t0 = time.perf_counter()
            for x, y in source.iterate(batches):
                train_step(model, model, x, y, nn.L1Loss(), optimizer, amp_dtype=amp_dtype, grad_clip=None)
            row[f"epoch_s_{precision_name(amp_dtype)}"] = time.perf_counter() - t0
        rows.append(row)
        spent += sum(v for key, v in row.items() if key == "cache_s" or key.startswith("epoch_s_"))
        done += n
    report(progress, len(sizes), len(sizes), "done")
    return rows


def format_scaling(rows: list[dict]) -> str:
    """The scaling table: seconds and seconds per 1,000 records (flat = linear growth), with how the
    inputs were made."""
    epochs = [k for k in rows[0] if k.startswith("epoch_s_")]
    head = f"{'records':>8}{'train':>7}{'cache s':>10}{'s/1k':>7}" + "".join(
        f"{k[8:] + ' epoch s':>20}{'s/1k train':>11}" for k in epochs
    )
    lines = [
        f"scaling at {rows[0]['fs']:g} Hz, cold cache per size; inputs derived from {SCALING_BASE} generated "
        "DeepFake records (each shifted in time, targets jittered: distinct records, same read/train cost)",
        head,
    ]
    for r in rows:
        line = f"{r['records']:>8}{r['train_rows']:>7}{r['cache_s']:>10.1f}{1000 * r['cache_s'] / r['records']:>7.2f}"
        for k in epochs:
            line += f"{r[k]:>20.1f}{1000 * r[k] / r['train_rows']:>11.1f}"
        lines.append(line)
    return "\n".join(lines)
