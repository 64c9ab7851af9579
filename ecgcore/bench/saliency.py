"""Integrated Gradients timing: the reference (captum on the plain fp32 model, one step per pass, fixed
steps) beside the default execution (folded model, all steps in one batch, convergence check)."""

from __future__ import annotations

import time

import torch

from ecgcore.bench.common import bench_predictor, forward_flops


def ig_bound_s(steps: int, fs: float, peak: float) -> float:
    """Seconds IG's FLOPs need at ``peak`` FLOP/s: a forward and a backward to the input per step (about
    2 forward passes; no weight gradients) plus the completeness check's two forward passes."""
    return (2 * steps + 2) * forward_flops(fs) / peak


def measure_ig(
    fs: float,
    peak: float,
    tolerance: float = 0.05,
    n_steps: int = 16,
    precisions: tuple[str, ...] = ("fp32", "auto"),
    reference: bool = True,
) -> list[dict]:
    """Integrated Gradients (one record, zeros baseline) with the convergence check, per precision.

    With ``reference`` a last row times IG as it ran before issue 20 (``asked="reference"``): captum's
    ``IntegratedGradients`` on the unfolded fp32 model, one interpolation step per pass
    (``internal_batch_size=1``), as many steps as the last precision's map took, no convergence check.
    Shares are the bound (:func:`ig_bound_s` of the steps run) at the fp32 matmul rate ``peak`` over the
    measured time.
    """
    from captum.attr import IntegratedGradients

    from ecgcore.explain.attributions import attribute

    predictor = bench_predictor(fs)
    x = torch.randn(1, 8, int(fs * 10))
    rows = []
    for precision in precisions:
        start = time.perf_counter()
        attr = attribute(
            predictor.model, x, 0, "ig", fs=fs, n_steps=n_steps, tolerance=tolerance, precision=precision
        )
        seconds = time.perf_counter() - start
        total_steps = sum(steps for _, steps, _ in attr.extra["ig_tried"])
        bound_s = ig_bound_s(total_steps, fs, peak)
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
    if reference and rows:  # as many steps as the default needed, one per pass, plain fp32 model
        n_steps = rows[-1]["steps"]
        model = predictor.model.eval()
        start = time.perf_counter()
        _, delta = IntegratedGradients(model).attribute(
            x, baselines=torch.zeros_like(x), target=0, n_steps=n_steps, internal_batch_size=1,
            return_convergence_delta=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        with torch.no_grad():
            difference = float(model(x)[0, 0] - model(torch.zeros_like(x))[0, 0])
        gap = abs(float(delta.sum())) / max(abs(difference), 1e-12)
        bound_s = ig_bound_s(n_steps, fs, peak)
        rows.append(
            {
                "fs": fs,
                "asked": "reference",
                "precision": "fp32",
                "steps": n_steps,
                "tried": [("fp32", n_steps, gap)],
                "gap": gap,
                "seconds": seconds,
                "bound_s": bound_s,
                "share": bound_s / seconds,
            }
        )
    return rows
