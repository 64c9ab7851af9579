"""The machine's practical peak: FLOP/s of a large matrix product, the rate every bound is taken at."""

from __future__ import annotations

import time

import torch

from ecgcore.bench.common import (
    sync,
)


def matmul_flops(n: int, device: torch.device, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of an ``n x n`` matrix product in ``dtype`` (best of ``repeats``): the machine's practical peak."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):  # best of: on a shared machine the least-disturbed repeat
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best
