"""Is a process still alive? Used to tell a dead run or an abandoned cache build from a live one."""

from __future__ import annotations

import os
from pathlib import Path


def process_start_time(pid: int) -> str | None:
    """The start time of a process (Linux ``/proc``), to tell a live run from a reused pid; ``None`` elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int | None, start: str | None = None) -> bool:
    """Whether the process ``pid`` (started at ``start``, if known) still runs (zombies count as dead)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal test is all we have
    fields_after = stat.rsplit(")", 1)[1].split()
    if fields_after[0] == "Z":
        return False
    return start is None or fields_after[19] == start
