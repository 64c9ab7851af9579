"""One small progress interface for every long job.

A long job (building a cache, generating data, measuring a folder, training) takes an optional
``progress`` callable and calls it as ``progress(done, total, message)``. The command line passes
:func:`cli_progress` (a progress bar on stderr); the pages pass a function that updates
``st.progress``; tests pass a list's ``append`` or nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

ProgressFn = Callable[[int, int, str], None]


def report(progress: ProgressFn | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if one was given."""
    if progress is not None:
        progress(done, total, message)


def cli_progress(label: str = "", stream=None, min_interval: float = 0.2) -> ProgressFn:
    """A text progress bar with rate and ETA on ``stream`` (default: ``sys.stderr`` at call time),
    redrawn at most every ``min_interval`` seconds."""
    start = time.monotonic()
    last = [0.0]

    def draw(done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done < total and now - last[0] < min_interval:
            return
        last[0] = now
        elapsed = now - start
        frac = done / total if total else 1.0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        bar = "#" * int(30 * frac)
        out = stream or sys.stderr
        out.write(f"\r{label} [{bar:<30}] {done}/{total} {elapsed:6.1f}s eta {eta:6.1f}s {message[:40]:<40}")
        if done >= total:
            out.write("\n")
        out.flush()

    return draw
