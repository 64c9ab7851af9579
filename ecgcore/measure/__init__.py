"""Interval measurement: heart rate, PR, QRS, QT and QTc from any 8- or 12-lead record.

Public API: :func:`measure` (an array), :func:`measure_record` (an :class:`ecgcore.io.Record`),
:func:`measure_many` (many records on all cores) and :class:`Measurement`. Validation against
manual wave annotations lives in :mod:`ecgcore.measure.annotations`.
"""

import hashlib
from functools import lru_cache
from pathlib import Path

from ecgcore.measure.core import Measurement, measure, measure_many, measure_record

__all__ = ["Measurement", "measure", "measure_many", "measure_record", "measurement_version"]


@lru_cache(maxsize=1)
def measurement_version() -> str:
    """A short hash of this package's source: it changes whenever the measurement code does.

    Stored measurements (a generated DeepFake set's intervals) carry it, so stale ones are found and
    measured again instead of disagreeing with what the Explorer measures today.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
