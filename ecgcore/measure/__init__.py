"""Interval measurement: heart rate, PR, QRS, QT and QTc from any 8- or 12-lead record.

Public API: :func:`measure` (an array), :func:`measure_record` (an :class:`ecgcore.io.Record`),
:func:`measure_many` (many records on all cores) and :class:`Measurement`. Validation against
manual wave annotations lives in :mod:`ecgcore.measure.annotations`.
"""

from ecgcore.measure.core import Measurement, measure, measure_many, measure_record

__all__ = ["Measurement", "measure", "measure_many", "measure_record"]
