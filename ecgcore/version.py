"""Which code made a result: the package version and a digest of the ``ecgcore`` source.

Runs store :func:`code_version` so that a reused result can be traced to the code that made it,
and reuse across code versions happens only when asked (the experiments' ``--reuse-any-version``).
The digest covers every ``.py`` file of the package (relative path and bytes), so any edit to the
science changes it, while data, runs and caches elsewhere do not.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

import ecgcore

PACKAGE_DIR = Path(ecgcore.__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 (first 12 hex digits) of every ``ecgcore/**/*.py`` file's relative path and bytes."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def package_version() -> str:
    """The installed ``ecglab`` distribution's version (the package's own ``__version__`` if not installed)."""
    try:
        return metadata.version("ecglab")
    except metadata.PackageNotFoundError:
        return ecgcore.__version__


def code_version() -> dict[str, str]:
    """``{"package": "0.2.0", "source": "<12 hex>", "label": "0.2.0+src.<12 hex>"}`` of the running code."""
    package, source = package_version(), source_digest()
    return {"package": package, "source": source, "label": f"{package}+src.{source}"}
