"""Image representations and 2D-model training speed."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgcore.bench.common import (
    Runner,
    time_rounds,
)
from ecgcore.progress import ProgressFn, report


def bench_images(
    n_charts: int = 200,
    n_fields: int = 200,
    steps: int = 3,
    batch_size: int = 16,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    models: tuple[tuple[str, tuple[int, int, int]], ...] = (
        ("resnet18", (1, 224, 224)),
        ("alexnet2d", (3, 64, 64)),
    ),
) -> dict[str, Any]:
    """Speed of the image representations and of 2D-model training on this machine.

    * charts/s: :func:`~ecgcore.data.representations.render_chart` of a 10 s, 12-lead, 500 Hz synthetic
      ECG at 224 x 224 (layout ``3x4+II``), one chart at a time;
    * fields/s per kind: one lead's 64 x 64 field from 5000 samples (:func:`field_image` of leads I, II,
      V2 at once, divided by 3);
    * training samples/s of ``resnet18`` on 1 x 224 x 224 charts and ``alexnet2d`` on 3 x 64 x 64 fields,
      through the trainer's batch source (uint8 -> float / 255) and step, fp32, after one warm-up step.
    """
    from ecgcore.data.representations import FIELD_KINDS, field_image, render_chart
    from ecgcore.data.synthetic import synthetic_ecg
    from ecgcore.models import create_model
    from ecgcore.train.batches import BatchSource
    from ecgcore.train.device import resolve_device
    from ecgcore.train.optim import train_step
    from ecgcore.vocab import LEADS_12

    ecg = synthetic_ecg(noise_mv=0.02)
    signal = ecg.signal
    load_start = os.getloadavg()
    report(progress, 0, 3, "charts")
    start = time.perf_counter()
    for _ in range(n_charts):
        render_chart(signal, 500.0, LEADS_12, "3x4+II")
    charts_per_s = n_charts / (time.perf_counter() - start)
    report(progress, 1, 3, "fields")
    three = signal[[LEADS_12.index(x) for x in ("I", "II", "V2")]]
    fields = {}
    for kind in FIELD_KINDS:
        start = time.perf_counter()
        for _ in range(max(1, n_fields // 3)):
            field_image(three, kind, 64)
        fields[kind] = 3 * max(1, n_fields // 3) / (time.perf_counter() - start)
    report(progress, 2, 3, "2D training")
    dev = resolve_device(device)
    rng = np.random.default_rng(0)
    runners = []
    for model_name, shape in models:
        images = rng.integers(0, 256, (4 * batch_size, *shape), dtype=np.uint8)
        y = rng.standard_normal((len(images), 4)).astype(np.float32)
        rows = np.arange(len(images))
        source = BatchSource(images, y, rows, dev)
        torch.manual_seed(0)
        model = create_model(model_name, shape[0], 4).to(dev).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def fetch(source=source, rows=rows):
            return source.batch(rng.choice(rows, batch_size, replace=False))

        def step(batch, model=model, optimizer=optimizer):
            train_step(
                model, model, *batch, nn.L1Loss(), optimizer, amp_dtype=None, scaler=None, grad_clip=1.0
            )

        runners.append(
            Runner(fetch, step, {"model": model_name, "input": list(shape), "batch_size": batch_size})
        )
    training = time_rounds(runners, 1, steps, dev)
    report(progress, 3, 3, "done")
    return {
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "charts_per_s": charts_per_s,
        "chart_size": [224, 224],
        "fields_per_s": fields,
        "field_size": 64,
        "training": training,
    }


def format_images(result: dict) -> str:
    """:func:`bench_images` as plain text."""
    lines = [
        f"images on {result['device']}, {result['threads']} threads, load average "
        f"{result['loadavg_start'][0]:.1f} -> {result['loadavg_end'][0]:.1f}",
        f"charts 224x224 (3x4+II): {result['charts_per_s']:.0f}/s",
        "fields 64x64 per lead: " + ", ".join(f"{k} {v:.0f}/s" for k, v in result["fields_per_s"].items()),
    ]
    for r in result["training"]:
        lines.append(
            f"training {r['model']} on {'x'.join(map(str, r['input']))} b{r['batch_size']}: "
            f"{r['samples_per_s']:.1f} samples/s ({r['step_ms']:.0f} ms/step)"
        )
    return "\n".join(lines)
