"""Integrated Gradients timing with the convergence check."""

from __future__ import annotations

import time

import torch

from ecgcore.bench.common import (
    bench_predictor,
    forward_flops,
)


def measure_ig(
    fs: float,
    peak: float,
    tolerance: float = 0.05,
    n_steps: int = 16,
    precisions: tuple[str, ...] = ("fp32", "auto"),
) -> list[dict]:
    """Integrated Gradients (one record, zeros baseline) with the convergence check, per precision.

    Bound: each step is a forward and a backward to the input (about 2 forward passes), plus the two
    forward passes of the completeness check, at the fp32 matmul rate ``peak``.
    """
    from ecgcore.explain.attributions import attribute

    predictor = bench_predictor(fs)
    x = torch.randn(1, 8, int(fs * 10))
    flops = forward_flops(fs)
    rows = []
    for precision in precisions:
        start = time.perf_counter()
        attr = attribute(
            predictor.model, x, 0, "ig", fs=fs, n_steps=n_steps, tolerance=tolerance, precision=precision
        )
        seconds = time.perf_counter() - start
        total_steps = sum(steps for _, steps, _ in attr.extra["ig_tried"])
        bound_s = (2 * total_steps + 2) * flops / peak
        rows.append(
            {
                "fs": fs,
                "asked": precision,
                "precision": attr.extra["ig_precision"],
                "steps": attr.extra["ig_steps"],
                "tried": attr.extra["ig_tried"],
                "gap": attr.extra["ig_gap"],
                "seconds": seconds,
                "bound_s": bound_s,
                "share": bound_s / seconds,
            }
        )
    return rows
