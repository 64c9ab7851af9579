"""The prediction guard: what a trained model cannot answer for, said in plain words.

Pure functions over a :class:`ecgcore.io.Record` and the run's checkpoint description (``meta``),
shared by ``python -m ecgcore predict``, the Record page and the PDF report so all three refuse and
flag with the same words.

Refused (a reason, no number):

* a flat or saturated lead set: every lead the model reads has a peak-to-peak below
  :data:`FLAT_MV`, or at least :data:`SATURATED_SHARE` of its samples pinned at its extreme value;
* no detectable QRS complex: the interval measurement finds fewer than 2 beats.

Flagged beside the number:

* a rhythm implausible for the header's sampling rate: measured HR, QRS and QT at that rate are
  compared with :data:`PLAUSIBLE`; when at least two lie outside, or one lies far outside
  (:data:`IMPOSSIBLE`), the flag says which common rate would make them plausible (intervals scale
  with ``true rate / header rate``);
* a prediction or a measured interval outside the range of the run's training labels
  (``meta["label_range"]``, written at save time): "outside what this model was trained on";
* a record prepared differently from the run's training records: limb leads derived from I and II,
  a record rate other than the training records' (``meta["source_fs"]``), only part of a longer
  record read, single leads flat or saturated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgcore.io import Record
from ecgcore.measure import Measurement, measure_record
from ecgcore.vocab import TARGETS_BY_KEY, canonical_lead

#: A lead whose peak-to-peak amplitude (mV) is below this carries no ECG.
FLAT_MV = 0.02
#: A lead with at least this share of its samples at its own maximum or minimum is clipped (saturated).
SATURATED_SHARE = 0.05
#: Plausible adult resting values at the header's rate: HR (bpm), QRS and QT (ms).
PLAUSIBLE: dict[str, tuple[float, float]] = {"hr": (40.0, 180.0), "qrs": (50.0, 160.0), "qt": (250.0, 600.0)}
#: Values no human ECG has: one of them alone flags the rate.
IMPOSSIBLE: dict[str, tuple[float, float]] = {"hr": (20.0, 300.0), "qrs": (30.0, 250.0), "qt": (150.0, 800.0)}
#: Sampling rates a wrong header may have stood for (besides half, double, a quarter, four times).
COMMON_RATES: tuple[float, ...] = (100.0, 125.0, 128.0, 200.0, 250.0, 257.0, 360.0, 400.0, 500.0, 1000.0)
#: Centre of the plausible values, to rank alternative rates.
TYPICAL: dict[str, float] = {"hr": 70.0, "qrs": 95.0, "qt": 400.0}
#: The words of an out-of-range flag.
OUTSIDE = "outside what this model was trained on"


@dataclass
class Verdict:
    """What the guard says about one record: a refusal (no number may be shown) or flags beside it."""

    refused: str | None = None
    flags: list[str] = field(default_factory=list)
    measurement: Measurement | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"refused": reason | None, "flags": [...]}``."""
        return {"refused": self.refused, "flags": list(self.flags)}

    def lines(self) -> list[str]:
        """Plain words for a page or a report: the refusal, or one line per flag."""
        if self.refused:
            return [f"No prediction: {self.refused}"]
        return [f"Check: {flag}" for flag in self.flags]


def _model_leads(record: Record, meta: Mapping[str, Any]) -> list[int]:
    """Rows of ``record`` holding the leads the model reads (all rows when it has none of them)."""
    wanted = {
        canonical_lead(lead) for lead in meta.get("preprocessing", {}).get("leads", meta.get("leads", []))
    }
    rows = [i for i, lead in enumerate(record.leads) if canonical_lead(lead) in wanted]
    return rows or list(range(len(record.leads)))


def lead_problems(record: Record, rows: list[int] | None = None) -> dict[str, str]:
    """``{lead: "flat" | "saturated"}`` for the leads (rows) that carry no usable ECG."""
    problems = {}
    for i in rows if rows is not None else range(len(record.leads)):
        x = np.asarray(record.signal[i], dtype=np.float64)
        finite = x[np.isfinite(x)]
        span = float(np.ptp(finite)) if finite.size else 0.0
        if span < FLAT_MV:
            problems[record.leads[i]] = "flat"
            continue
        tol = 1e-3 * span
        pinned = max(np.mean(finite >= finite.max() - tol), np.mean(finite <= finite.min() + tol))
        if pinned >= SATURATED_SHARE:
            problems[record.leads[i]] = "saturated"
    return problems


def rate_check(measurement: Measurement, header_fs: float) -> str | None:
    """A flag when HR, QRS and QT measured at ``header_fs`` are implausible, naming a rate that fits."""
    values = {k: getattr(measurement, k) for k in PLAUSIBLE}
    values = {k: v for k, v in values.items() if v is not None and np.isfinite(v)}
    if not values:
        return None

    def outside(vals: dict[str, float]) -> tuple[int, int]:
        off = sum(not PLAUSIBLE[k][0] <= v <= PLAUSIBLE[k][1] for k, v in vals.items())
        far = sum(not IMPOSSIBLE[k][0] <= v <= IMPOSSIBLE[k][1] for k, v in vals.items())
        return off, far

    def at(rate: float) -> dict[str, float]:
        ratio = rate / header_fs  # durations in samples are fixed: ms scale with 1/rate, bpm with rate
        return {k: v * ratio if k == "hr" else v / ratio for k, v in values.items()}

    off, far = outside(values)
    if off < 2 and far == 0:
        return None
    shown = ", ".join(f"{k.upper()} {v:.0f} {TARGETS_BY_KEY[k].unit}" for k, v in values.items())
    candidates = {header_fs * f for f in (0.25, 0.5, 2.0, 4.0)} | set(COMMON_RATES)
    fits = [
        (sum(np.log(v / TYPICAL[k]) ** 2 for k, v in at(rate).items()), rate)
        for rate in sorted(candidates - {header_fs})
        if outside(at(rate)) == (0, 0)
    ]
    text = f"the measured rhythm ({shown}) is implausible at the header's sampling rate of {header_fs:g} Hz"
    if not fits:
        return text
    rate = min(fits)[1]
    fitted = ", ".join(f"{k.upper()} {v:.0f} {TARGETS_BY_KEY[k].unit}" for k, v in at(rate).items())
    return f"{text}; at {rate:g} Hz it would be plausible ({fitted}): check the header's rate"


def range_flags(values: Mapping[str, float | None], meta: Mapping[str, Any], what: str) -> list[str]:
    """Flags for ``values`` (``{target: value}``, original units) outside the run's training label range."""
    ranges = meta.get("label_range") or {}
    flags = []
    for key, value in values.items():
        if key not in ranges or value is None or not np.isfinite(value):
            continue
        low, high = ranges[key]
        if not low <= value <= high:
            unit = TARGETS_BY_KEY[key].unit if key in TARGETS_BY_KEY else ""
            flags.append(
                f"{what} {key.upper()} {value:.0f} {unit} is {OUTSIDE} "
                f"(training {key.upper()} {low:.0f}-{high:.0f} {unit})"
            )
    return flags


def preparation_flags(record: Record, meta: Mapping[str, Any]) -> list[str]:
    """How this record is prepared differently from the run's training records."""
    prep = meta.get("preprocessing", {})
    flags = []
    leads = [canonical_lead(lead) for lead in prep.get("leads", [])]
    have = {canonical_lead(lead) for lead in record.leads}
    derived = [lead for lead in leads if lead not in have]
    if derived:
        flags.append(
            f"lead(s) {', '.join(derived)} are not in the record: derived from I and II (if present) "
            "where the training records had them recorded"
        )
    source_fs = meta.get("source_fs")
    if source_fs and abs(record.fs - float(source_fs)) > 1e-6:
        flags.append(
            f"the record is sampled at {record.fs:g} Hz, the run's training records at {float(source_fs):g} Hz"
        )
    duration = prep.get("duration")
    if duration and record.duration > duration + 1e-9:
        flags.append(
            f"only the first {duration:g} s of the {record.duration:.1f} s record are read by the model"
        )
    return flags


def check_record(record: Record, meta: Mapping[str, Any]) -> Verdict:
    """Refusal or flags for ``record`` before predicting with the run described by ``meta``."""
    rows = _model_leads(record, meta)
    problems = lead_problems(record, rows)
    if len(problems) == len(rows):
        kinds = sorted(set(problems.values()))
        return Verdict(
            refused=f"every lead the model reads is {' or '.join(kinds)} ({', '.join(problems)}): "
            "there is no ECG to read"
        )
    try:
        measurement = measure_record(record)
    except ValueError as exc:
        return Verdict(refused=f"the record cannot be measured: {exc}")
    if measurement.n_beats < 2:
        reason = measurement.missing.get("hr", "fewer than 2 QRS complexes detected")
        return Verdict(refused=f"no detectable QRS complex ({reason})", measurement=measurement)
    flags = [f"lead {lead} is {kind}" for lead, kind in problems.items()]
    rate = rate_check(measurement, record.fs)
    if rate:
        flags.append(rate)
    measured = {k: getattr(measurement, k, None) for k in (meta.get("label_range") or {})}
    flags += range_flags(measured, meta, "measured")
    flags += preparation_flags(record, meta)
    return Verdict(flags=flags, measurement=measurement)


def check_prediction(prediction: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    """Flags for predicted intervals outside the run's training label range."""
    return range_flags(prediction.get("intervals") or {}, meta, "predicted")
