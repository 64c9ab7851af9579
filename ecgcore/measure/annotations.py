"""Validate the delineation against manual wave annotations (QT Database and LUDB layouts).

Both layouts are WFDB annotation files read with :func:`wfdb.rdann`: a wave is its peak symbol
(``p``, ``t``, or a beat label such as ``N`` for the QRS) bracketed by ``(`` (onset) and ``)``
(offset). The QT Database has one file per record (extension = the annotator, e.g. ``q1c``) whose
marks hold for both leads; LUDB (annotator ``ludb``) has one file per lead, its extension the lead
name (``i``, ``ii``, ... ``v6``). For several leads the reference of a beat is what the
annotations imply across leads, by the rule the delineator itself follows for global fiducials
(:func:`ecgcore.measure.delineate.support_count`): the earliest onset / latest offset that at least
``k`` leads support, ``k`` = 2 for 8-12 annotated leads, 1 for the QT Database's single stream. On
LUDB's 12 independently annotated leads the single earliest / latest mark is one lead's outlier
often enough to dominate the spread: in lead II of LUDB record 29 the experts end a flat T wave
130 ms after the latest of the other 11 leads (485 against 330-353 ms after the R peak, medians
over the beats). ``support=1`` gives that extreme reference all the same.

Per-beat fiducials: each beat's fiducials are its morphology group's median-beat fiducials placed at
that beat's own (template-aligned) QRS position (the representative beat's for the dominant beats;
``per_group=False``: the dominant beats only); a long record is measured in consecutive 10 s
segments so the offsets follow slow changes of the rhythm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecgcore.measure.core import measure
from ecgcore.measure.delineate import support_count

#: CSE working party tolerances (ms): the largest acceptable SD of (algorithm - experts).
CSE_TOLERANCE_MS: dict[str, float] = {
    "p_on": 10.2,
    "p_off": 12.7,
    "qrs_on": 6.5,
    "qrs_off": 11.6,
    "t_off": 30.6,
}
#: Martinez et al. (2004) wavelet delineator on the QT Database: mean, SD (ms).
MARTINEZ_2004: dict[str, tuple[float, float]] = {
    "p_on": (2.0, 14.8),
    "qrs_on": (4.6, 7.7),
    "qrs_off": (0.8, 8.7),
    "t_off": (-1.6, 18.1),
}
#: Peak symbols of the P and T waves; every other non-bracket symbol is a QRS (beat label).
P_SYMBOL, T_SYMBOLS = "p", ("t", "T")
#: Symbols that are neither waves nor beats (rhythm, noise, comment, U wave ...).
NON_BEAT = set("()pTt~+|\"=!xu^[]'@s")
#: QRS annotations of different leads belong to one beat when their complexes overlap or, where
#: a complex has no marked onset / offset, their peaks are this close (s).
CLUSTER_S = 0.1
#: Long records are measured in segments of this length (s), like a standard 10 s ECG.
SEGMENT_S = 10.0
#: An annotated beat is matched to ours when the QRS positions differ by less than this (s).
MATCH_S = 0.15
LUDB_LEADS = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6")


@dataclass
class Wave:
    """One annotated wave: ``kind`` is ``"p"``, ``"qrs"`` or ``"t"``; onset/offset None when not marked."""

    kind: str
    peak: int
    onset: int | None
    offset: int | None


def parse_waves(samples: Sequence[int], symbols: Sequence[str]) -> list[Wave]:
    """Waves of one annotation stream: each peak symbol with the ``(`` just before and ``)`` just after it."""
    waves = []
    n = len(symbols)
    for i, sym in enumerate(symbols):
        if sym == P_SYMBOL:
            kind = "p"
        elif sym in T_SYMBOLS:
            kind = "t"
        elif sym not in NON_BEAT:
            kind = "qrs"
        else:
            continue
        onset = int(samples[i - 1]) if i > 0 and symbols[i - 1] == "(" else None
        offset = int(samples[i + 1]) if i + 1 < n and symbols[i + 1] == ")" else None
        waves.append(Wave(kind, int(samples[i]), onset, offset))
    return waves


def read_annotations(record: str | Path, annotator: str) -> dict[str, list[Wave]]:
    """Waves per annotation stream: ``{lead: waves}`` for LUDB, ``{annotator: waves}`` otherwise.

    Raises
    ------
    FileNotFoundError
        If no annotation file exists (naming the files looked for).
    """
    base = Path(record)
    base = base.with_suffix("") if base.suffix in (".hea", ".dat") else base
    if annotator.lower() == "ludb":
        files = {lead: base.with_name(f"{base.name}.{lead}") for lead in LUDB_LEADS}
        found = {lead: path for lead, path in files.items() if path.is_file()}
        if not found:
            raise FileNotFoundError(
                f"{base}: no LUDB annotation file (looked for {base.name}.i ... {base.name}.v6)"
            )
    else:
        path = base.with_name(f"{base.name}.{annotator}")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no annotation file for annotator {annotator!r}")
        found = {annotator: path}
    out = {}
    for name, path in found.items():
        try:
            ann = wfdb.rdann(str(base), path.suffix[1:])
        except Exception as exc:  # wfdb raises many types for malformed files
            raise ValueError(
                f"{path}: unreadable WFDB annotation file ({type(exc).__name__}: {exc})"
            ) from exc
        out[name] = parse_waves(ann.sample, ann.symbol)
    return out


def reference_beats(waves: dict[str, list[Wave]], fs: float, support: int | None = None) -> pd.DataFrame:
    """One row per annotated beat: QRS position and the global fiducials implied across streams.

    QRS annotations of all streams whose complexes overlap (onset to offset, widened to
    :data:`CLUSTER_S` around the peak where a bound is not marked) form one beat: in a bundle
    branch block the leads' QRS peaks can lie more than 100 ms apart. A P wave belongs to the
    next beat, a T wave to the previous one. Columns: ``qrs`` (median QRS peak), ``p_on``,
    ``p_off``, ``qrs_on``, ``qrs_off``, ``t_off`` (samples, NaN where nobody marked it).

    ``support`` = k takes the k-th earliest onset / k-th latest offset (the extreme one where fewer
    streams marked the wave), so that one lead's mark on a flat or noisy wave does not set the
    reference; 1 takes the earliest / latest mark of any stream. The default (None) is the
    delineator's own rule, :func:`~ecgcore.measure.delineate.support_count` of the number of streams.
    """
    if support is None:
        support = support_count(len(waves))
    qrs = sorted((w for stream in waves.values() for w in stream if w.kind == "qrs"), key=lambda w: w.peak)
    half = CLUSTER_S * fs / 2
    clusters: list[list[Wave]] = []
    end = -np.inf
    for w in qrs:
        start = w.onset if w.onset is not None else w.peak - half
        if clusters and start <= end:
            clusters[-1].append(w)
        else:
            clusters.append([w])
            end = -np.inf
        end = max(end, w.offset if w.offset is not None else w.peak + half)
    centres = np.array([np.median([w.peak for w in c]) for c in clusters])

    def pick(values: list[int | None], latest: bool) -> float:
        vals = sorted((v for v in values if v is not None), reverse=latest)
        return float(vals[min(support, len(vals)) - 1]) if vals else np.nan

    rows = []
    others = [w for stream in waves.values() for w in stream if w.kind != "qrs"]
    for i, cluster in enumerate(clusters):
        p = [
            w
            for w in others
            if w.kind == "p"
            and (i == 0 or w.peak > centres[i - 1])
            and centres[i] - 0.5 * fs < w.peak < centres[i]
        ]
        t = [
            w
            for w in others
            if w.kind == "t"
            and centres[i] < w.peak < centres[i] + 0.8 * fs
            and (i + 1 == len(clusters) or w.peak < centres[i + 1])
        ]
        rows.append(
            {
                "qrs": centres[i],
                "p_on": pick([w.onset for w in p], False),
                "p_off": pick([w.offset for w in p], True),
                "qrs_on": pick([w.onset for w in cluster], False),
                "qrs_off": pick([w.offset for w in cluster], True),
                "t_off": pick([w.offset for w in t], True),
            }
        )
    return pd.DataFrame(rows, columns=["qrs", *CSE_TOLERANCE_MS])


def annotated_span(waves: dict[str, list[Wave]]) -> tuple[int, int]:
    """First and last annotated sample over all streams (only that span is scored)."""
    marks = [
        v for stream in waves.values() for w in stream for v in (w.onset, w.peak, w.offset) if v is not None
    ]
    return min(marks), max(marks)


def _our_beats(
    signal: np.ndarray, fs: float, leads: Sequence[str], first: int, last: int, per_group: bool = True
) -> pd.DataFrame:
    """Our per-beat fiducials over ``[first, last]`` samples, measured in :data:`SEGMENT_S` segments.

    Segments overlap by 2 s and each keeps only the beats more than 1 s from its cut ends, so every
    beat is measured with its whole P-QRS-T inside a segment.
    """
    n = signal.shape[1]
    seg, margin = int(SEGMENT_S * fs), int(fs)
    if n <= 2 * seg:
        bounds = [(0, n)]
    else:
        lo, hi = max(0, first - 2 * margin), min(n, last + 2 * margin)
        bounds = [(s, min(n, s + seg)) for s in range(lo, hi, seg - 2 * margin)]
    parts = []
    for start, stop in bounds:
        if stop - start < 2 * fs:
            continue
        m = measure(signal[:, start:stop], fs, leads, per_group)
        frame = pd.DataFrame({k: v + start for k, v in m.beat_fiducials.items()})
        frame["qrs"] = m.r_peaks + start
        frame["group"] = m.beat_groups if m.beat_groups.size == m.r_peaks.size else -1
        keep_lo = start + margin if start > 0 else -np.inf
        keep_hi = stop - margin if stop < n else np.inf
        parts.append(frame[(frame["qrs"] >= keep_lo) & (frame["qrs"] < keep_hi)])
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["qrs", "group", *CSE_TOLERANCE_MS])
    )


def beat_labels(record: str | Path, annotator: str, qrs: np.ndarray, fs: float) -> np.ndarray:
    """The beat label (e.g. MIT-BIH ``N``, ``V``, ``/``) of the ``annotator`` beat nearest each QRS sample in ``qrs``.

    A QRS with no labelled beat within :data:`MATCH_S`, or a record without that annotation file,
    gets ``""``. Labels are any symbol that is not a wave bracket, a wave peak or a non-beat mark.
    """
    base = Path(record)
    base = base.with_suffix("") if base.suffix in (".hea", ".dat") else base
    out = np.full(len(qrs), "", dtype=object)
    if not base.with_name(f"{base.name}.{annotator}").is_file():
        return out
    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as exc:  # wfdb raises many types for malformed files
        raise ValueError(
            f"{base}.{annotator}: unreadable WFDB annotation file ({type(exc).__name__}: {exc})"
        ) from exc
    symbols = np.asarray(ann.symbol, dtype=object)
    beat = ~np.isin(symbols, list(NON_BEAT))
    samples, symbols = np.asarray(ann.sample)[beat], symbols[beat]
    if samples.size == 0 or len(qrs) == 0:
        return out
    q = np.asarray(qrs, dtype=float)
    nearest = np.abs(samples[None, :] - q[:, None]).argmin(axis=1)
    near = np.abs(samples[nearest] - q) <= MATCH_S * fs
    out[near] = symbols[nearest[near]]
    return out


def evaluate_record(
    record: str | Path,
    annotator: str,
    support: int | None = None,
    per_group: bool = True,
    labels: str | None = None,
) -> pd.DataFrame:
    """Differences (ours - annotation, ms) per annotated beat and fiducial for one record.

    The signal is read with :func:`wfdb.rdrecord` with every channel as named in the header (the QT
    Database's ``MLII`` is not one of the 12 standard leads, yet its annotators used it).
    Columns: ``record``, ``qrs`` (annotated QRS sample), ``matched`` (bool), ``group`` (our beat's morphology group, -1 if none) and, per fiducial,
    ``ref_<f>`` and ``ours_<f>`` (samples), ``in_span_<f>`` (ours lies inside the annotated span)
    and ``<f>`` (difference in ms, NaN if either is missing). ``support``: see :func:`reference_beats`;
    ``per_group``: see :func:`ecgcore.measure.measure`; ``labels``: an annotator of beat labels (e.g.
    ``atr``) whose label of each annotated beat goes in column ``label`` (:func:`beat_labels`).
    """
    base = Path(record)
    base = base.with_suffix("") if base.suffix in (".hea", ".dat") else base
    waves = read_annotations(base, annotator)
    try:
        rec = wfdb.rdrecord(str(base))
    except Exception as exc:
        raise ValueError(f"{base}: unreadable WFDB record ({type(exc).__name__}: {exc})") from exc
    fs = float(rec.fs)
    signal = np.nan_to_num(rec.p_signal.T)
    ref = reference_beats(waves, fs, support)
    if ref.empty:
        raise ValueError(f"{base}: the {annotator} annotations hold no QRS complex")
    ours = _our_beats(signal, fs, rec.sig_name, int(ref["qrs"].min()), int(ref["qrs"].max()), per_group)
    out = pd.DataFrame({"record": base.name, "qrs": ref["qrs"]})
    idx = np.full(len(ref), -1)
    if len(ours):
        q = ours["qrs"].to_numpy(dtype=float)
        nearest = np.abs(q[None, :] - ref["qrs"].to_numpy()[:, None]).argmin(axis=1)
        ok = np.abs(q[nearest] - ref["qrs"].to_numpy()) <= MATCH_S * fs
        idx = np.where(ok, nearest, -1)
    out["matched"] = idx >= 0
    out["group"] = (
        np.where(idx >= 0, ours["group"].to_numpy(dtype=float)[np.maximum(idx, 0)], -1).astype(int)
        if len(ours)
        else -1
    )
    if labels is not None:
        out["label"] = beat_labels(base, labels, ref["qrs"].to_numpy(), fs)
    first, last = annotated_span(waves)
    for f in CSE_TOLERANCE_MS:
        theirs = ref[f].to_numpy(dtype=float)
        mine = (
            np.where(idx >= 0, ours[f].to_numpy(dtype=float)[np.maximum(idx, 0)], np.nan)
            if len(ours)
            else np.full(len(ref), np.nan)
        )
        out[f"ref_{f}"] = theirs
        out[f"ours_{f}"] = mine
        out[f"in_span_{f}"] = (mine >= first) & (mine <= last)
        out[f] = (mine - theirs) * 1000.0 / fs
    return out


def summarize(diffs: pd.DataFrame) -> dict[str, dict]:
    """Per fiducial: matched count, mean and SD of (ours - annotation) in ms, CSE tolerance, pass/fail.

    Also counts the annotated beats where only the annotation (``annotation_only``) or only we
    (``ours_only``, inside the annotated span) have the fiducial, e.g. P waves we missed or found
    where experts saw none.
    """
    out = {}
    for f, tol in CSE_TOLERANCE_MS.items():
        d = diffs[f].dropna().to_numpy() if f in diffs else np.zeros(0)
        has_ref, has_ours = diffs[f"ref_{f}"].notna() & diffs["matched"], diffs[f"ours_{f}"].notna()
        sd = float(np.std(d, ddof=1)) if d.size > 1 else None
        out[f] = {
            "matched": int(d.size),
            "mean_ms": round(float(d.mean()), 2) if d.size else None,
            "sd_ms": round(sd, 2) if sd is not None else None,
            "tolerance_sd_ms": tol,
            "pass": bool(sd is not None and sd <= tol),
            "annotation_only": int((has_ref & ~has_ours).sum()),
            "ours_only": int((diffs[f"ref_{f}"].isna() & diffs[f"in_span_{f}"]).sum()),
        }
        if f in MARTINEZ_2004:
            out[f]["martinez_2004_mean_sd_ms"] = list(MARTINEZ_2004[f])
    out["beats"] = {"annotated": int(len(diffs)), "matched": int(diffs["matched"].sum())}
    return out
