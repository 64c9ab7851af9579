"""Labelled beat windows from annotated records, and the batch source that trains beat models on them.

:func:`build_beat_set` runs the same detection and feature extraction as the analysis
(:mod:`ecgcore.beats.analysis`) on each record, and labels every detected beat with the EC57 class of
the reference beat it matches within 150 ms (:mod:`ecgcore.beats.evaluate`); a detection no reference
beat matches is labelled :data:`ARTEFACT` (no beat there). Training on detected positions, not on the
annotations' own, means the models see beats centred exactly as they will be at analysis time.

:class:`BeatSource` is a batch source for the common trainer: it yields ``(inputs, targets)`` with
``inputs`` ``[B, 4, 2*half]`` (:func:`ecgcore.beats.features.model_input`). Class imbalance (N
outnumbers V a hundredfold) is handled by the training rows: :func:`balanced_rows` draws them with
repeats so that rare classes are oversampled (:func:`balanced_indices`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecgcore.beats import features as feat
from ecgcore.beats.detect import detect_record
from ecgcore.beats.evaluate import TOLERANCE_S, match_beats, read_reference
from ecgcore.beats.longrecord import analysis_windows, open_record
from ecgcore.paths import cache_dir
from ecgcore.progress import ProgressFn, report

#: Label of a detection that matches no reference beat.
ARTEFACT = -1
#: Default oversampling of rare classes (see :func:`balanced_indices`): between uniform (0) and equal (1).
BALANCE_POWER = 0.75
#: Bump when the windows change, so cached beat sets are rebuilt.
VERSION = 1


@dataclass
class BeatSet:
    """Beat windows ``[n, 2, 2*half]`` (float16), RR context ``[n, 2]``, labels ``[n]`` (EC57 index or
    :data:`ARTEFACT`), for each beat its record's index in ``records`` and its sample in that record."""

    windows: np.ndarray
    rr: np.ndarray
    labels: np.ndarray
    record: np.ndarray
    records: list[str]
    samples: np.ndarray

    def rows_of(self, names: Sequence[str]) -> np.ndarray:
        """Rows of the beats of the records named."""
        wanted = [i for i, r in enumerate(self.records) if r in set(names)]
        return np.flatnonzero(np.isin(self.record, wanted))

    def inputs(self, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(len(self.labels)) if rows is None else rows
        return feat.model_input(self.windows[rows].astype(np.float32), self.rr[rows])


def record_beats(
    path: str | Path, annotator: str = "atr", half: int = feat.CLASSIFIER_HALF
) -> dict[str, np.ndarray]:
    """Windows, RR context and labels of one record's detected beats (see the module docstring)."""
    info = open_record(path)
    ref = read_reference(info.path, annotator)
    samples = detect_record(info)
    tol = int(round(TOLERANCE_S * info.fs))
    first, last = ref.samples.min() - tol, ref.samples.max() + tol
    samples = samples[(samples >= first) & (samples <= last)]
    labels = np.full(samples.size, ARTEFACT, dtype=np.int64)
    pairs = match_beats(ref.samples, samples, tol)
    labels[pairs[:, 1]] = ref.classes[pairs[:, 0]]
    rr = feat.rr_context(samples, info.fs)
    out = []
    for w in analysis_windows(info, 300.0, 3.0):
        lo, hi = np.searchsorted(samples, [w.keep_start, w.keep_stop])
        if hi > lo:
            f = feat.chunk_features(w.signal, info.fs, samples[lo:hi] - w.start, (half,))
            out.append(f[f"window{half}"].astype(np.float16))
    win = np.concatenate(out) if out else np.zeros((0, feat.MODEL_LEADS, 2 * half), dtype=np.float16)
    return {"windows": win, "rr": rr.astype(np.float32), "labels": labels, "samples": samples}


def build_beat_set(
    records: Sequence[str | Path],
    annotator: str = "atr",
    half: int = feat.CLASSIFIER_HALF,
    progress: ProgressFn | None = None,
    cache: bool = True,
) -> BeatSet:
    """The labelled beats of ``records`` (cached per record under the data home's cache)."""
    parts, names = [], []
    for i, path in enumerate(records):
        parts.append(_cached(Path(path), annotator, half) if cache else record_beats(path, annotator, half))
        names.append(Path(path).name)
        report(progress, i + 1, len(records), Path(path).name)
    return BeatSet(
        windows=np.concatenate([p["windows"] for p in parts]),
        rr=np.concatenate([p["rr"] for p in parts]),
        labels=np.concatenate([p["labels"] for p in parts]),
        record=np.concatenate([np.full(len(p["labels"]), i) for i, p in enumerate(parts)]),
        records=names,
        samples=np.concatenate([p["samples"] for p in parts]),
    )


def _cached(path: Path, annotator: str, half: int) -> dict[str, np.ndarray]:
    info = open_record(path)
    stamp = [str(info.path.resolve()), annotator, half, VERSION]
    for ext in ("hea", "dat", annotator):
        f = info.path.with_suffix(f".{ext}")
        if f.exists():
            stamp.append([f.stat().st_size, f.stat().st_mtime_ns])
    key = hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:16]
    file = cache_dir() / "beats" / f"{info.record_id}-{key}.npz"
    if file.exists():
        with np.load(file) as z:
            return {k: z[k] for k in z.files}
    data = record_beats(path, annotator, half)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(file)
    return data


def balanced_indices(labels: np.ndarray, n: int, rng: np.random.Generator, power: float = 1.0) -> np.ndarray:
    """``n`` rows drawn with replacement, each with probability proportional to count(its class)^-power.

    ``power=1`` makes every present class equally likely; ``0`` is plain uniform sampling; between
    them the rare classes are seen more often without being repeated as much.
    """
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weight = counts.astype(np.float64) ** (-power)
    p = weight[inverse]
    return rng.choice(labels.size, size=n, replace=True, p=p / p.sum())


def balanced_rows(
    labels: np.ndarray, rows: np.ndarray, n: int, seed: int, power: float = BALANCE_POWER
) -> np.ndarray:
    """``n`` of ``rows`` (with repeats) drawn by :func:`balanced_indices` over their labels, seeded:
    a training set in which the rare classes are oversampled and N undersampled."""
    rng = np.random.default_rng(seed)
    return np.sort(rows[balanced_indices(labels[rows], n, rng, power)])


class BeatSource:
    """Batch source for the common trainer (:func:`ecgcore.train.loop.fit`) over a :class:`BeatSet`.

    ``iterate(list of row arrays)`` yields ``(inputs [B, 4, 2*half] float32, targets [B] int64)`` on
    ``device``, building each batch's inputs from the float16 windows and the RR context, so the
    set stays a fifth of the size of its float32 inputs.
    """

    mode = "host"

    def __init__(self, beats: BeatSet, device: str | torch.device = "cpu") -> None:
        self.beats = beats
        self.device = torch.device(device)

    def iterate(self, batches: list[np.ndarray]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for rows in batches:
            x = torch.from_numpy(self.beats.inputs(np.asarray(rows))).to(self.device)
            y = torch.from_numpy(self.beats.labels[rows].astype(np.int64)).to(self.device)
            yield x, y
