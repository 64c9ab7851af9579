"""Where the shared development samples are: the Challenge's 30 records and PTB-XL's rows of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent.parent


def shared_dir(name: str) -> Path:
    """``$ECGLAB_SHARED/NAME``, ``<repo>/../shared/NAME``, ``<repo>/shared/NAME`` or ``/work/shared/NAME``;
    the test is skipped, saying so, when none exists (the samples are not part of the repository)."""
    candidates = [Path(os.environ["ECGLAB_SHARED"]) / name] if os.environ.get("ECGLAB_SHARED") else []
    candidates += [_REPO.parent / "shared" / name, _REPO / "shared" / name, Path("/work/shared") / name]
    for path in candidates:
        if path.is_dir():
            return path
    pytest.skip(f"development sample {name} not found (looked in {', '.join(map(str, candidates))})")
