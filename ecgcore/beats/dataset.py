"""Labelled beat windows from annotated records, and the batch source that trains beat models on them.

:func:`build_beat_set` runs the same detection and feature extraction as the analysis
(:mod:`ecgcore.beats.analysis`) on each record, and labels every detected beat with the EC57 class of
the reference beat it matches within 150 ms (:mod:`ecgcore.beats.evaluate`); a detection no reference
beat matches is labelled :data:`ARTEFACT` (no beat there). Training on detected positions, not on the
annotations' own, means the models see beats centred exactly as they will be at analysis time.

:class:`BeatSource` is a batch source for the common trainer: it yields ``(inputs, targets)`` with
``inputs`` ``[B, C, 2*half]`` in an input layout (:func:`ecgcore.beats.features.model_input`). Class
imbalance (N outnumbers V a hundredfold) is handled by the training rows: :func:`balanced_rows` draws
them with repeats so that rare classes are oversampled (:func:`balanced_indices`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ecgcore.beats import features as feat
from ecgcore.beats.detect import WINDOW_S, detect_record
from ecgcore.beats.evaluate import TOLERANCE_S, ReferenceBeats, match_beats, read_reference
from ecgcore.beats.longrecord import analysis_windows, open_record, read_span
from ecgcore.beats.noise import add_noise
from ecgcore.measure.rpeaks import detect_qrs
from ecgcore.paths import cache_dir
from ecgcore.progress import ProgressFn, report

#: Label of a detection that matches no reference beat.
ARTEFACT = -1
#: Default oversampling of rare classes (see :func:`balanced_indices`): between uniform (0) and equal (1).
BALANCE_POWER = 0.75
#: Bump when the windows change, so cached beat sets are rebuilt.
VERSION = 2


@dataclass
class BeatSet:
    """Beat windows ``[n, 2, 2*half]`` (float16), RR context ``[n, 2]``, labels ``[n]`` (EC57 index or
    :data:`ARTEFACT`), for each beat its record's index in ``records`` and its sample in that record;
    ``templates`` ``[n, 2, 2*half]`` (float16): each beat's analysis-window dominant template (None when
    not built); ``layout``: the input layout :meth:`inputs` builds by default (a ``features.LAYOUTS`` name)."""

    windows: np.ndarray
    rr: np.ndarray
    labels: np.ndarray
    record: np.ndarray
    records: list[str]
    samples: np.ndarray
    templates: np.ndarray | None = None
    layout: str = feat.INPUTS

    def rows_of(self, names: Sequence[str]) -> np.ndarray:
        """Rows of the beats of the records named."""
        wanted = [i for i, r in enumerate(self.records) if r in set(names)]
        return np.flatnonzero(np.isin(self.record, wanted))

    def inputs(self, rows: np.ndarray | None = None, layout: str | None = None) -> np.ndarray:
        """Model inputs of ``rows`` (default all) in ``layout`` (default the set's :attr:`layout`)."""
        rows = np.arange(len(self.labels)) if rows is None else rows
        layout = layout or self.layout
        rr = self.rr[rows]
        if feat.rr_channels(layout) == 4:
            rr = np.concatenate([rr, self.rr_record[rows]], axis=1)
        templates = None
        if feat.uses_templates(layout):
            if self.templates is None:
                raise ValueError(f"layout {layout!r} needs templates; this beat set has none")
            templates = self.templates[rows].astype(np.float32)
        return feat.model_input(
            self.windows[rows].astype(np.float32), rr, templates, feat.uses_difference(layout)
        )

    @cached_property
    def rr_record(self) -> np.ndarray:
        """``[n, 2]`` :func:`ecgcore.beats.features.rr_record` of every beat, per record (computed once)."""
        out = np.ones((len(self.labels), 2), dtype=np.float32)
        for i in range(len(self.records)):
            rows = np.flatnonzero(self.record == i)
            out[rows] = feat.rr_record(self.samples[rows])
        return out


def record_beats(
    path: str | Path,
    annotator: str = "atr",
    half: int = feat.CLASSIFIER_HALF,
    noise: tuple[str, float, int] | None = None,
) -> dict[str, np.ndarray]:
    """Windows, dominant templates, RR context and labels of one record's detected beats (see the
    module docstring); windows and templates are cut per analysis window exactly as
    :func:`ecgcore.beats.analysis.analyse_record` cuts them.

    ``noise`` ``(kind, snr_db, seed)`` adds synthetic noise (:func:`ecgcore.beats.noise.add_noise`) to
    the whole record first and detects on that copy (whole record in memory: meant for the 15-minute
    development records); the detections that match no reference beat are the artefacts the
    beat-vs-artefact model learns from.
    """
    info = open_record(path)
    ref = read_reference(info.path, annotator)
    noisy = None
    if noise is None:
        samples = detect_record(info)
    else:
        kind, snr_db, seed = noise
        noisy = add_noise(read_span(info, 0, info.n_samples), info.fs, kind, snr_db, ref.samples, seed)
        samples = detect_qrs(noisy, info.fs)
    samples, labels = label_detections(ref, samples, info.fs)
    rr = feat.rr_context(samples, info.fs)
    out, templates = [], []
    for w in analysis_windows(info, WINDOW_S, feat.CONTEXT_S):
        lo, hi = np.searchsorted(samples, [w.keep_start, w.keep_stop])
        if hi > lo:
            signal = w.signal if noisy is None else noisy[:, w.start : w.start + w.signal.shape[1]]
            f = feat.chunk_features(
                signal, info.fs, samples[lo:hi] - w.start, (half,), template_halves=(half,)
            )
            out.append(f[f"window{half}"].astype(np.float16))
            templates.append(np.broadcast_to(f[f"template{half}"], out[-1].shape).astype(np.float16))
    empty = np.zeros((0, feat.MODEL_LEADS, 2 * half), dtype=np.float16)
    return {
        "windows": np.concatenate(out) if out else empty,
        "templates": np.concatenate(templates) if templates else empty,
        "rr": rr.astype(np.float32),
        "labels": labels,
        "samples": samples,
    }


def label_detections(ref: ReferenceBeats, samples: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """The detections within the annotated span (widened by the 150 ms tolerance) and their labels: the
    EC57 class of the reference beat each matches (one-to-one, closest first), else :data:`ARTEFACT`."""
    samples = np.asarray(samples, dtype=np.int64)
    tol = int(round(TOLERANCE_S * fs))
    first, last = ref.samples.min() - tol, ref.samples.max() + tol
    samples = samples[(samples >= first) & (samples <= last)]
    labels = np.full(samples.size, ARTEFACT, dtype=np.int64)
    pairs = match_beats(ref.samples, samples, tol)
    labels[pairs[:, 1]] = ref.classes[pairs[:, 0]]
    return samples, labels


def build_beat_set(
    records: Sequence[str | Path],
    annotator: str = "atr",
    half: int = feat.CLASSIFIER_HALF,
    progress: ProgressFn | None = None,
    cache: bool = True,
    noise: tuple[str, float, int] | None = None,
) -> BeatSet:
    """The labelled beats of ``records`` (cached per record under the data home's cache); ``noise``: see
    :func:`record_beats` (each record gets its own noise seed, derived from ``noise``'s and its index)."""
    parts, names = [], []
    for i, path in enumerate(records):
        spec = None if noise is None else (noise[0], noise[1], noise[2] * 1000 + i)
        parts.append(
            _cached(Path(path), annotator, half, spec) if cache else record_beats(path, annotator, half, spec)
        )
        names.append(Path(path).name)
        report(progress, i + 1, len(records), Path(path).name)
    return BeatSet(
        windows=np.concatenate([p["windows"] for p in parts]),
        rr=np.concatenate([p["rr"] for p in parts]),
        labels=np.concatenate([p["labels"] for p in parts]),
        record=np.concatenate([np.full(len(p["labels"]), i) for i, p in enumerate(parts)]),
        records=names,
        samples=np.concatenate([p["samples"] for p in parts]),
        templates=np.concatenate([p["templates"] for p in parts]),
    )


def _cached(
    path: Path, annotator: str, half: int, noise: tuple[str, float, int] | None = None
) -> dict[str, np.ndarray]:
    info = open_record(path)
    stamp = [str(info.path.resolve()), annotator, half, VERSION] + ([list(noise)] if noise else [])
    for ext in ("hea", "dat", annotator):
        f = info.path.with_suffix(f".{ext}")
        if f.exists():
            stamp.append([f.stat().st_size, f.stat().st_mtime_ns])
    key = hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:16]
    file = cache_dir() / "beats" / f"{info.record_id}-{key}.npz"
    if file.exists():
        with np.load(file) as z:
            return {k: z[k] for k in z.files}
    data = record_beats(path, annotator, half, noise)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(file)
    return data


def balanced_indices(
    labels: np.ndarray, n: int, rng: np.random.Generator, power: float = 1.0, natural: tuple[int, ...] = ()
) -> np.ndarray:
    """``n`` rows drawn with replacement, each with probability proportional to count(its class)^-power.

    ``power=1`` makes every present class equally likely; ``0`` is plain uniform sampling; between
    them the rare classes are seen more often without being repeated as much. Classes in ``natural``
    are not balanced up: their rows get the per-row weight of the most common class (they keep their
    natural share beside it), for classes too rare or too patient-specific to learn across patients.
    """
    labels = np.asarray(labels)
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weight = counts.astype(np.float64) ** (-power)
    weight[np.isin(values, natural)] = weight[counts.argmax()]
    p = weight[inverse]
    return rng.choice(labels.size, size=n, replace=True, p=p / p.sum())


def balanced_rows(
    labels: np.ndarray,
    rows: np.ndarray,
    n: int,
    seed: int,
    power: float = BALANCE_POWER,
    natural: tuple[int, ...] = (),
) -> np.ndarray:
    """``n`` of ``rows`` (with repeats) drawn by :func:`balanced_indices` over their labels, seeded:
    a training set in which the rare classes (but those in ``natural``) are oversampled and N undersampled."""
    rng = np.random.default_rng(seed)
    return np.sort(rows[balanced_indices(labels[rows], n, rng, power, natural)])


class BeatSource:
    """Batch source for the common trainer (:func:`ecgcore.train.loop.fit`) over a :class:`BeatSet`.

    ``iterate(list of row arrays)`` yields ``(inputs [B, C, 2*half] float32, targets [B] int64)`` on
    ``device``, building each batch's inputs (in ``layout``, default the set's) from the float16 windows,
    templates and the RR context, so the set stays a fifth of the size of its float32 inputs.
    ``labels`` replaces the set's labels (another task on the same windows). With ``redraw`` (the
    training rows), every training row is replaced, each time it is served, by a random training row of the same class (seeded): the class-balanced row
    slots of an epoch then show new beats every epoch, so N's variety is not cut to one draw.
    """

    mode = "host"

    def __init__(
        self,
        beats: BeatSet,
        device: str | torch.device = "cpu",
        labels: np.ndarray | None = None,
        redraw: np.ndarray | None = None,
        seed: int = 0,
        layout: str | None = None,
    ) -> None:
        self.beats = beats
        self.layout = layout
        self.labels = beats.labels if labels is None else np.asarray(labels)
        self.device = torch.device(device)
        self.pool = None if redraw is None else np.unique(redraw)
        if self.pool is not None:
            self.by_class = {
                c: self.pool[self.labels[self.pool] == c] for c in np.unique(self.labels[self.pool])
            }
        self.rng = np.random.default_rng(seed)

    def _redrawn(self, rows: np.ndarray) -> np.ndarray:
        if self.pool is None:
            return rows
        rows = rows.copy()
        for i in np.flatnonzero(np.isin(rows, self.pool)):
            same = self.by_class[self.labels[rows[i]]]
            rows[i] = same[self.rng.integers(same.size)]
        return rows

    def iterate(self, batches: list[np.ndarray]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for rows in batches:
            rows = self._redrawn(np.asarray(rows))
            x = torch.from_numpy(self.beats.inputs(rows, self.layout)).to(self.device)
            y = torch.from_numpy(self.labels[rows].astype(np.int64)).to(self.device)
            yield x, y


class BeatAugment:
    """A seeded batch transform of model inputs ``[B, C, L]`` in input layout ``layout`` (two lead windows,
    two or four RR channels, and in the template layouts two template or beat-minus-template channels): per beat and lead an amplitude scale (log-normal, SD
    0.15; the template of that lead is scaled alike, as a whole record's gain would be), a baseline
    offset and slope (SD 0.1), white noise (SD up to 0.05 of the QRS amplitude) and a shift of up to
    ``shift`` samples (detection jitter) of the beat's own window; the RR ratios get a 3 % log-normal
    jitter. The classes do not change under any of these."""

    def __init__(self, seed: int, shift: int = 4, layout: str = feat.INPUTS) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.shift = shift
        self.rr_channels = feat.rr_channels(layout)
        self.difference = feat.uses_difference(layout)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, _, length = x.shape
        g = self.gen
        k = 2 + self.rr_channels
        leads, rr, template = x[:, :2], x[:, 2:k], x[:, k:]
        if self.difference:  # augment the beat and its template, then take their difference again
            template = leads - template
        ramp = torch.linspace(-1, 1, length)
        scale = torch.exp(0.15 * torch.randn(b, 2, 1, generator=g))
        offset = 0.1 * torch.randn(b, 2, 1, generator=g) + 0.1 * torch.randn(b, 2, 1, generator=g) * ramp
        noise = 0.05 * torch.rand(b, 1, 1, generator=g) * torch.randn(b, 2, length, generator=g)
        leads = leads * scale + offset + noise
        if self.shift:
            shifts = torch.randint(-self.shift, self.shift + 1, (b,), generator=g)
            index = (torch.arange(length)[None, :] - shifts[:, None]).clamp(0, length - 1)
            leads = torch.gather(leads, 2, index[:, None, :].expand(b, 2, length))
        jitter = torch.exp(0.03 * torch.randn(b, 2, 1, generator=g))
        if self.rr_channels == 4:  # RR before over the record's usual RR moves with RR before
            jitter = torch.cat([jitter, jitter[:, :1], torch.ones(b, 1, 1)], dim=1)
        rr = (rr + 1.0) * jitter - 1.0
        template = template * scale if template.shape[1] else template
        return torch.cat([leads, rr, leads - template if self.difference else template], dim=1)
