"""Scoring beats against WFDB beat annotations as ANSI/AAMI EC57 does: matching within 150 ms.

A detected beat matches a reference beat when they are at most :data:`TOLERANCE_S` apart; each
reference and each detection is matched at most once (closest pairs first). Over the annotated span
(first to last reference beat, widened by the tolerance), for detection itself (``beat``) and for
each EC57 class C:

* ``n_reference``: reference beats of class C;
* ``se`` (sensitivity): reference beats of class C matched by a detection labelled C, over n_reference;
* ``ppv`` (positive predictive value): detections labelled C matched to a reference of class C, over
  every detection labelled C in the span (an unmatched detection is a false positive of its class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb

from ecgcore.beats.aami import CLASSES, classes_of, is_beat
from ecgcore.io import ECGFormatError, RecordNotFoundError

#: Matching tolerance (s): ANSI/AAMI EC57's 150 ms.
TOLERANCE_S = 0.15


@dataclass(frozen=True)
class ReferenceBeats:
    """Reference beats of one record: sample indices and EC57 class indices (see aami.CLASSES)."""

    samples: np.ndarray
    classes: np.ndarray
    fs: float


def read_reference(record: str | Path, annotator: str = "atr") -> ReferenceBeats:
    """The beat annotations of ``record`` (path without extension) in file ``<record>.<annotator>``."""
    base = Path(record)
    if base.suffix.lower() in (".hea", ".dat", f".{annotator}"):
        base = base.with_suffix("")
    if not base.with_suffix(f".{annotator}").is_file():
        raise RecordNotFoundError(f"{base}: no annotation file {base.name}.{annotator}")
    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as exc:
        raise ECGFormatError(f"{base}.{annotator}: unreadable annotations ({exc})") from exc
    keep = np.array([is_beat(s) for s in ann.symbol], dtype=bool)
    symbols = [s for s, k in zip(ann.symbol, keep) if k]
    fs = float(ann.fs) if ann.fs else float(wfdb.rdheader(str(base)).fs)
    return ReferenceBeats(np.asarray(ann.sample)[keep].astype(np.int64), classes_of(symbols), fs)


def match_beats(reference: np.ndarray, detected: np.ndarray, tolerance: int) -> np.ndarray:
    """One-to-one matches ``[[ref_index, det_index], ...]`` within ``tolerance`` samples, closest first."""
    reference, detected = np.asarray(reference), np.asarray(detected)
    pairs = []
    if reference.size and detected.size:
        order = np.argsort(detected, kind="stable")
        sorted_det = detected[order]
        lo = np.searchsorted(sorted_det, reference - tolerance, side="left")
        hi = np.searchsorted(sorted_det, reference + tolerance, side="right")
        for i, (a, b) in enumerate(zip(lo, hi)):
            for k in range(a, b):
                pairs.append((abs(int(sorted_det[k]) - int(reference[i])), i, int(order[k])))
    pairs.sort()
    used_ref, used_det, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_ref and j not in used_det:
            used_ref.add(i)
            used_det.add(j)
            out.append((i, j))
    return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)


@dataclass
class Counts:
    """Per-class tallies from which Se and PPV follow; they add across records."""

    n_reference: dict[str, int] = field(default_factory=dict)
    true_ref: dict[str, int] = field(default_factory=dict)
    n_detected: dict[str, int] = field(default_factory=dict)
    true_det: dict[str, int] = field(default_factory=dict)

    def add(self, other: Counts) -> None:
        for name in ("n_reference", "true_ref", "n_detected", "true_det"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value

    def lines(self) -> list[dict]:
        """One dict per class (``beat`` first): class, n_reference, n_detected, se, ppv, f1."""
        out = []
        for key in ("beat", *CLASSES):
            n_ref, n_det = self.n_reference.get(key, 0), self.n_detected.get(key, 0)
            se = self.true_ref.get(key, 0) / n_ref if n_ref else None
            ppv = self.true_det.get(key, 0) / n_det if n_det else None
            f1 = 2 * se * ppv / (se + ppv) if se and ppv else (0.0 if se == 0 or ppv == 0 else None)
            out.append(
                {
                    "class": key,
                    "n_reference": n_ref,
                    "n_detected": n_det,
                    "se": _r(se),
                    "ppv": _r(ppv),
                    "f1": _r(f1),
                }
            )
        return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def score(reference: ReferenceBeats, samples: np.ndarray, classes: np.ndarray | None = None) -> Counts:
    """Counts of detections ``samples`` (with EC57 class indices ``classes``, optional) against ``reference``.

    Detections outside the annotated span are ignored. Without ``classes`` only ``beat`` is scored.
    """
    tol = int(round(TOLERANCE_S * reference.fs))
    samples = np.asarray(samples, dtype=np.int64)
    if reference.samples.size == 0:
        return Counts()
    first, last = reference.samples.min() - tol, reference.samples.max() + tol
    inside = (samples >= first) & (samples <= last)
    samples = samples[inside]
    pairs = match_beats(reference.samples, samples, tol)
    counts = Counts(
        n_reference={"beat": int(reference.samples.size)},
        true_ref={"beat": len(pairs)},
        n_detected={"beat": int(samples.size)},
        true_det={"beat": len(pairs)},
    )
    if classes is None:
        return counts
    classes = np.asarray(classes, dtype=np.int64)[inside]
    ref_cls = reference.classes[pairs[:, 0]] if len(pairs) else np.zeros(0, dtype=np.int64)
    det_cls = classes[pairs[:, 1]] if len(pairs) else np.zeros(0, dtype=np.int64)
    for c, name in enumerate(CLASSES):
        counts.n_reference[name] = int(np.sum(reference.classes == c))
        counts.n_detected[name] = int(np.sum(classes == c))
        hits = int(np.sum((ref_cls == c) & (det_cls == c)))
        counts.true_ref[name] = hits
        counts.true_det[name] = hits
    return counts


def bootstrap_by_record(
    per_record: list[Counts], n: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, dict[str, list[float | None]]]:
    """95 % intervals of pooled Se, PPV and F1 per class, resampling whole records with replacement
    (beats of one record are not independent): ``{class: {"se_ci": [lo, hi], "ppv_ci": ..., "f1_ci": ...}}``.
    A resample where a class has no reference (or no detection) beats leaves that figure out."""
    keys = ("beat", *CLASSES)
    fields = ("n_reference", "true_ref", "n_detected", "true_det")
    table = np.array([[[getattr(c, f).get(k, 0) for f in fields] for k in keys] for c in per_record], float)
    if table.size == 0:
        return {}
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_record), size=(n, len(per_record)))
    sums = table[picks].sum(axis=1)  # [n, classes, 4]
    with np.errstate(invalid="ignore", divide="ignore"):
        se = sums[..., 1] / sums[..., 0]
        ppv = sums[..., 3] / sums[..., 2]
        f1 = np.where(se + ppv > 0, 2 * se * ppv / (se + ppv), 0.0)
        f1[np.isnan(se) | np.isnan(ppv)] = np.nan
    tail = 100 * (1 - level) / 2
    out = {}
    for i, key in enumerate(keys):
        out[key] = {}
        for name, values in (("se_ci", se[:, i]), ("ppv_ci", ppv[:, i]), ("f1_ci", f1[:, i])):
            ok = values[~np.isnan(values)]
            out[key][name] = (
                [_r(np.percentile(ok, tail)), _r(np.percentile(ok, 100 - tail))] if ok.size else [None, None]
            )
    return out
