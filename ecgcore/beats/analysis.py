"""Long-record beat analysis: detect -> classify -> cluster -> report.

:func:`analyse_record` reads a record window by window twice: first to find every R peak
(:func:`ecgcore.beats.detect.detect_record`), then, knowing every beat's RR context, to cut the model
windows and morphology vectors of each window's beats and classify them straight away, so memory
holds only a few minutes of signal plus a few small numbers per beat. The beats are then clustered
by morphology (:mod:`ecgcore.beats.cluster`), the clusters' templates give each beat a correlation
with the dominant morphology, and the morphological cross-check flags predictions the waveform
contradicts; by default the V calls it finds narrow and shaped like the dominant beat are counted N, and
marked (:func:`override_contradicted_v`), then premature N calls shaped like the dominant beat in a regular
rhythm are counted S, and marked (the S rule, :func:`promote_premature_n`).

Before classification counts, the beat-vs-artefact model (:mod:`ecgcore.beats.artefact`; by default the
shipped one, ``artefact_model=None`` switches it off) scores every detection on its own 100-sample
window; the detections it rejects leave the beats (classes, clusters, heart rate) but are kept in
:attr:`BeatAnalysis.rejected` (their samples) and the report, so nothing is lost silently. The RR context
of every beat stays the one computed from all detections.

The beat model of a window runs in a worker thread while the next window is read and cut (PyTorch
releases the interpreter lock), so the two cores of a small machine both work; the model itself runs on
one thread (:data:`ecgcore.beats.classify.INFERENCE_THREADS`). Once the clusters are known, a third pass
delineates every kept beat from its cluster's template in each window (:mod:`ecgcore.beats.intervals`:
per-beat PR, QRS, QT and a per-minute QT/QTc trend). :attr:`BeatAnalysis.timings` holds the CPU seconds each
stage took (``read``, ``detect``, ``features``, ``artefact``, ``classify``, ``cluster``, ``delineate``) and the
analysis's ``wall`` seconds.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgcore.beats import features as feat
from ecgcore.beats.aami import CLASS_INDEX, CLASSES
from ecgcore.beats.artefact import ArtefactFilter, default_filter
from ecgcore.beats.classify import BeatClassifier
from ecgcore.beats.cluster import MERGE_THRESHOLD, N_CLUSTERS, Cluster, cluster_beats, describe
from ecgcore.beats.detect import WINDOW_S, detect_record, stage, timed_windows
from ecgcore.beats.events import EventRules, HolterEvents, artefact_intervals, holter_events, minute_rates
from ecgcore.beats.intervals import BeatIntervals, IntervalTrend, delineate_record, interval_trend
from ecgcore.beats.longrecord import open_record
from ecgcore.io import RecordInfo
from ecgcore.progress import ProgressFn, report

#: Context read on either side of a classification window (s): beyond the model window and filters.
CONTEXT_S = feat.CONTEXT_S
#: Cross-check limits: a beat is premature when its RR before is under PREMATURE of the local RR (late
#: above LATE);
#: wide when its QRS estimate exceeds WIDE_MS; like the dominant beat above SAME_SHAPE correlation.
PREMATURE = 0.85
LATE = 1.05
WIDE_MS = 120.0
SAME_SHAPE = 0.95
#: The cross-check's flag on a V call that the waveform contradicts (:func:`override_contradicted_v`).
CONTRADICTED_V = "V but narrow and shaped like the dominant beat"
#: The flag of such a beat once its call was turned N.
OVERRIDDEN_V = "called V, but narrow and shaped like the dominant beat: counted N"
#: The S rule (:func:`promote_premature_n`): an N beat at most S_PREMATURE of the local RR, in a rhythm
#: whose median successive-RR change is at most S_IRREGULAR of the local RR (AF stays out).
S_PREMATURE = 0.80
S_IRREGULAR = 0.10
#: The flag of a beat the S rule turned S.
PROMOTED_S = (
    "called N, but premature with a pause, in a regular rhythm, shaped like the dominant beat: counted S"
)


@dataclass
class BeatAnalysis:
    """Every beat of a record: position, class, probability, RR context, QRS width, cluster, flags."""

    record: str
    fs: float
    n_samples: int
    channels: tuple[str, ...]
    samples: np.ndarray
    classes: np.ndarray
    probability: np.ndarray
    rr: np.ndarray
    qrs_ms: np.ndarray
    morph: np.ndarray
    cluster: np.ndarray
    clusters: list[Cluster] = field(default_factory=list)
    correlation: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flags: list[str] = field(default_factory=list)
    model: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    #: Per-beat wave boundaries from the clusters' templates (None: not delineated).
    intervals: BeatIntervals | None = None
    #: Detections the beat-vs-artefact filter rejected: their samples and P(artefact); the filter used
    #: (``{"model", "threshold"}``, empty when it was off).
    rejected: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rejected_probability: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    artefact_filter: dict = field(default_factory=dict)
    #: The thresholds of the Holter events (pauses, VT/SVT rate, bigeminy cycles, brady/tachy).
    event_rules: EventRules = field(default_factory=EventRules)
    #: Per beat, whether the cross-check turned its V call N (:func:`override_contradicted_v`; None: the
    #: override was off). A reader's relabel (:meth:`relabel_cluster`) replaces the call and clears this.
    overridden: np.ndarray | None = None
    #: Per beat, whether the S rule turned its N call S (:func:`promote_premature_n`; None: the rule was off).
    promoted: np.ndarray | None = None

    @property
    def events(self) -> HolterEvents:
        """The rhythm events and Holter summary of the beats as they are now (recomputed on every call,
        so a relabelled or merged cluster shows at once); the rejected detections keep false pauses out."""
        return holter_events(
            self.samples, self.classes, self.fs, self.n_samples, self.rejected, rules=self.event_rules
        )

    def interval_trend(self) -> IntervalTrend | None:
        """Per-minute QT, RR, QTc (Bazett, Fridericia) over the N beats (None without intervals)."""
        if self.intervals is None:
            return None
        return interval_trend(self.samples, self.classes, self.intervals.qt_ms, self.fs, self.n_samples)

    def hr_per_minute(self) -> list[float | None]:
        """Heart rate (bpm) per minute of the record: 60 over the mean RR of the intervals ending in that
        minute, those around a rejected detection left out (:func:`ecgcore.beats.events.minute_rates`)."""
        excluded = artefact_intervals(self.samples, self.rejected)
        hr = minute_rates(self.samples, self.fs, self.n_samples, excluded).hr
        return [round(float(v), 1) if np.isfinite(v) else None for v in hr]

    def relabel_cluster(self, cluster_id: int, label: str) -> int:
        """Give every beat of cluster ``cluster_id`` the class ``label``; returns how many beats changed.
        The reader's label replaces the model's call and any rule's change of it (their ``overridden`` and
        ``promoted`` are cleared, so a beat relabelled V is flagged :data:`CONTRADICTED_V` again and no longer
        counts as overridden)."""
        if label not in CLASS_INDEX:
            raise ValueError(f"unknown beat class {label!r}; expected one of {', '.join(CLASSES)}")
        members = self.cluster == cluster_id
        if not members.any():
            raise ValueError(f"no cluster {cluster_id} in {self.record}")
        changed = int(np.sum(self.classes[members] != CLASS_INDEX[label]))
        self.classes[members] = CLASS_INDEX[label]
        self.probability[members] = 1.0
        for changed_by_rule in (self.overridden, self.promoted):
            if changed_by_rule is not None:
                changed_by_rule[members] = False
        for c in self.clusters:
            if c.id == cluster_id:
                c.label = label
        self.flags = cross_check(self)
        return changed

    def merge_clusters(self, keep: int, other: int) -> int:
        """Move every beat of cluster ``other`` into cluster ``keep`` (two morphologies a reader judges the
        same); clusters are renumbered by size and described anew. Returns how many beats moved."""
        ids = {c.id for c in self.clusters}
        for cid in (keep, other):
            if cid not in ids:
                raise ValueError(f"no cluster {cid} in {self.record}")
        if keep == other:
            raise ValueError(f"cluster {keep} cannot be merged with itself")
        moved = self.cluster == other
        self.cluster[moved] = keep
        counts = np.bincount(self.cluster)
        order = np.argsort(-counts, kind="stable")
        mapping = np.zeros(counts.size, dtype=np.int64)
        mapping[order] = np.arange(counts.size)
        self.cluster = mapping[self.cluster]
        self.clusters = describe(self.morph, self.classes, self.cluster)
        _check_shapes(self)
        return int(moved.sum())

    def called(self) -> list[str]:
        """Per beat, the model's call where a rule changed it ("V" overridden, "N" promoted to S), else ""."""
        calls = [""] * self.samples.size
        for mask, label in ((self.promoted, "N"), (self.overridden, "V")):  # a V turned N, then S: "V"
            if mask is not None:
                for i in np.flatnonzero(mask):
                    calls[i] = label
        return calls

    def counts(self) -> dict[str, int]:
        return {c: int(np.sum(self.classes == i)) for i, c in enumerate(CLASSES)}

    def _per_beat_intervals(self) -> dict[str, np.ndarray]:
        if self.intervals is None:
            return {}
        return {"pr_ms": self.intervals.pr_ms, "qrs_ms": self.intervals.qrs_ms, "qt_ms": self.intervals.qt_ms}

    def intervals_report(self) -> dict | None:
        """The ``intervals`` part of :meth:`to_json`: the N beats' median PR / QRS / QT and the per-minute
        QT / QTc trend (None without intervals)."""
        per_beat = self._per_beat_intervals()
        if not per_beat:
            return None
        normal = self.classes == CLASS_INDEX["N"]
        return {
            "groups": "the clusters found by the analysis (a later merge does not re-delineate)",
            "median_n_beats_ms": {
                k: _ms(np.nanmedian(v[normal])) if np.isfinite(v[normal]).any() else None
                for k, v in per_beat.items()
            },
            "trend_per_minute": self.interval_trend().to_json(),
        }

    def to_json(self, beats: bool = True) -> dict:
        """The report: rate, counts, the Holter summary and events (:mod:`ecgcore.beats.events`), clusters,
        HR per minute and (with ``beats``) every beat."""
        holter = self.events.to_json()
        out = {
            "record": self.record,
            "fs": self.fs,
            "duration_s": round(self.n_samples / self.fs, 3),
            "model": self.model,
            "n_beats": int(self.samples.size),
            "counts": self.counts(),
            "hr_per_minute": self.hr_per_minute(),
            "clusters": [c.to_json() for c in self.clusters],
            "timings": {stage: round(seconds, 3) for stage, seconds in self.timings.items()},
            "artefact_filter": self.artefact_filter or None,
            "n_rejected": int(self.rejected.size),
            "summary": holter["summary"],
            "events": holter["events"],
            "v_override": "off" if self.overridden is None else "on",
            "n_overridden": 0 if self.overridden is None else int(self.overridden.sum()),
            "s_rule": "off" if self.promoted is None else "on",
            "n_promoted": 0 if self.promoted is None else int(self.promoted.sum()),
        }
        per_beat = self._per_beat_intervals()
        if per_beat:
            out["intervals"] = self.intervals_report()
        if beats:
            called = self.called()
            out["beats"] = [
                {
                    "sample": int(s),
                    "class": CLASSES[int(c)],
                    "probability": round(float(p), 4),
                    "cluster": int(k),
                }
                | ({"flag": f} if f else {})
                | ({"called": called[i]} if called[i] else {})
                | {name: _ms(values[i]) for name, values in per_beat.items()}
                for i, (s, c, p, k, f) in enumerate(
                    zip(self.samples, self.classes, self.probability, self.cluster, self.flags)
                )
            ]
            out["rejected"] = [
                {"sample": int(s), "p_artefact": round(float(p), 4)}
                for s, p in zip(self.rejected, self.rejected_probability)
            ]
        return out


def cross_check(a: BeatAnalysis) -> list[str]:
    """Per beat, why its waveform contradicts its predicted class ("" when it does not).

    * called N but premature, wide and unlike the dominant beat: a ventricular beat?
    * called N but premature with the dominant shape: a supraventricular beat?
    * called S but coming later than the local RR (an S beat in a run of S beats keeps the local RR);
    * called V but narrow and shaped like the dominant beat (:data:`CONTRADICTED_V`); once
      :func:`override_contradicted_v` has turned such a call N, :data:`OVERRIDDEN_V` while it stays N;
    * :data:`PROMOTED_S` on an N call the S rule (:func:`promote_premature_n`) turned S, while it stays S.
    """
    premature = a.rr[:, 0] < PREMATURE
    wide = a.qrs_ms > WIDE_MS
    same = a.correlation >= SAME_SHAPE
    cls = a.classes
    overridden = np.zeros(cls.size, dtype=bool) if a.overridden is None else a.overridden
    promoted = np.zeros(cls.size, dtype=bool) if a.promoted is None else a.promoted
    rules = [
        (overridden & (cls == CLASS_INDEX["N"]), OVERRIDDEN_V),
        (promoted & (cls == CLASS_INDEX["S"]), PROMOTED_S),
        (
            (cls == CLASS_INDEX["N"]) & premature & wide & ~same,
            "N but premature, wide and unlike the dominant beat",
        ),
        ((cls == CLASS_INDEX["N"]) & premature & same, "N but premature"),
        ((cls == CLASS_INDEX["S"]) & (a.rr[:, 0] > LATE), "S but later than the local RR"),
        ((cls == CLASS_INDEX["V"]) & ~wide & same, CONTRADICTED_V),
    ]
    flags = [""] * cls.size
    for mask, text in rules:
        for i in np.flatnonzero(mask):
            if not flags[i]:
                flags[i] = text
    return flags


def override_contradicted_v(a: BeatAnalysis) -> int:
    """Turn the V calls the cross-check flags :data:`CONTRADICTED_V` into N, keeping which ones in
    :attr:`BeatAnalysis.overridden` (their flag becomes :data:`OVERRIDDEN_V`; beats an earlier call turned
    stay marked); returns how many this call turned.

    Under 5-fold leave-records-out CV of the shipped recipe on the development records it raised V PPV
    at each of 3 seeds at no loss of V Se (assets/models/README.md); ``analyse_record(override_v=False)``
    and ``beats --no-v-override`` leave the calls as the model made them."""
    turned = np.asarray(a.flags, dtype=object) == CONTRADICTED_V
    a.overridden = turned if a.overridden is None else a.overridden | turned
    a.classes[turned] = CLASS_INDEX["N"]
    a.clusters = describe(a.morph, a.classes, a.cluster)
    a.flags = cross_check(a)
    return int(turned.sum())


def rr_irregularity(samples: np.ndarray, fs: float) -> np.ndarray:
    """Per beat, the median over the 17 successive-RR changes centred on it of |RR[k+1] - RR[k]| over the
    local median RR: small in sinus rhythm with isolated ectopics (they move 2 of the 17), large in AF."""
    if samples.size < 4:
        return np.zeros(samples.size)
    rr = np.diff(samples) / fs
    change = feat.local_median(np.abs(np.diff(rr)) / feat.local_median(rr)[1:])
    return np.concatenate([change[:1], change, change[-1:]])


def promote_premature_n(a: BeatAnalysis) -> int:
    """The S rule: an N call that is premature (RR before at most :data:`S_PREMATURE` of the local RR),
    followed by an RR not shorter than its RR before (sinus arrhythmia stays out), narrow and shaped like
    the dominant beat, in a regular rhythm (:func:`rr_irregularity` at most :data:`S_IRREGULAR`: AF stays
    out) becomes S; :attr:`BeatAnalysis.promoted` keeps which (flag :data:`PROMOTED_S`). Returns how many.

    Run after :func:`override_contradicted_v`. Under 5-fold leave-records-out CV of the shipped recipe on
    the development records it raised S F1 at each of 3 seeds (assets/models/README.md);
    ``analyse_record(s_rule=False)`` and ``beats --no-s-rule`` leave the N calls as they were."""
    gaps = np.diff(a.samples).astype(np.float64)
    before, after = np.concatenate([[np.inf], gaps]), np.concatenate([gaps, [-np.inf]])
    a.promoted = (
        (a.classes == CLASS_INDEX["N"])
        & (a.rr[:, 0] <= S_PREMATURE)
        & (after >= before)
        & (a.qrs_ms <= WIDE_MS)
        & (a.correlation >= SAME_SHAPE)
        & (rr_irregularity(a.samples, a.fs) <= S_IRREGULAR)
    )
    a.classes[a.promoted] = CLASS_INDEX["S"]
    a.clusters = describe(a.morph, a.classes, a.cluster)
    a.flags = cross_check(a)
    return int(a.promoted.sum())


def analyse_record(
    path: str | Path | RecordInfo,
    classifier: BeatClassifier,
    n_clusters: int = N_CLUSTERS,
    merge_threshold: float = MERGE_THRESHOLD,
    window_s: float = WINDOW_S,
    progress: ProgressFn | None = None,
    artefact_model: ArtefactFilter | str | None = "default",
    intervals: bool = True,
    override_v: bool = True,
    s_rule: bool = True,
) -> BeatAnalysis:
    """Detect, reject artefacts, classify and cluster every beat of a long record, and (``intervals``)
    delineate each kept beat from its cluster's template (see the module docstring). ``artefact_model``:
    ``"default"`` (the shipped filter), an :class:`ArtefactFilter`, or None (no rejection); ``override_v``:
    V calls the waveform contradicts are counted N (:func:`override_contradicted_v`); ``s_rule``: then
    premature N calls shaped like the dominant beat in a regular rhythm are counted S
    (:func:`promote_premature_n`)."""
    info = path if isinstance(path, RecordInfo) else open_record(path)
    if isinstance(artefact_model, str) and artefact_model != "default":
        raise ValueError(f"artefact_model {artefact_model!r}: expected 'default', an ArtefactFilter or None")
    artefact = default_filter() if isinstance(artefact_model, str) else artefact_model
    halves = tuple(sorted({classifier.half} | ({artefact.half} if artefact else set())))
    template_halves = (classifier.half,) if classifier.templates else ()
    clock: dict[str, float] = {}
    started = time.perf_counter()
    parts = 3 if intervals else 2
    samples = detect_record(info, window_s, progress=_part(progress, 0, parts), clock=clock)
    rr = feat.rr_context(samples, info.fs)
    model_rr = feat.layout_rr(classifier.inputs, samples, info.fs)
    probabilities: list[Future] = []
    qrs, morph = [], []

    def classify(inputs: np.ndarray, artefact_inputs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        p_artefact = np.zeros(len(inputs), dtype=np.float32)
        if artefact_inputs is not None:
            with stage(clock, "artefact"):
                p_artefact = artefact.probability(artefact_inputs)
        with stage(clock, "classify"):
            return classifier.predict_proba(inputs), p_artefact

    # The model of one window runs in the worker while the next window is read and cut; at most two
    # windows' inputs wait, so memory stays bounded however far the model falls behind.
    with ThreadPoolExecutor(1, thread_name_prefix="beat-model") as worker:
        for w in timed_windows(info, window_s, CONTEXT_S, clock):
            lo, hi = np.searchsorted(samples, [w.keep_start, w.keep_stop])
            if hi > lo:
                with stage(clock, "features"):
                    f = feat.chunk_features(
                        w.signal, info.fs, samples[lo:hi] - w.start, halves, template_halves
                    )
                    inputs = classifier.model_input(f, model_rr[lo:hi])
                    artefact_inputs = (
                        feat.model_input(f[f"window{artefact.half}"], rr[lo:hi]) if artefact else None
                    )
                if len(probabilities) >= 2:
                    probabilities[-2].result()
                probabilities.append(worker.submit(classify, inputs, artefact_inputs))
                qrs.append(f["qrs_ms"])
                morph.append(f["morph"])
            report(progress, info.n_samples + w.keep_stop, parts * info.n_samples, "classifying")
        prob, p_art = zip(*[p.result() for p in probabilities]) if probabilities else ((), ())
    n_morph = 2 * len(np.arange(feat.MORPH_SPAN_S[0], feat.MORPH_SPAN_S[1] + 1e-9, 1 / feat.MORPH_FS))
    cat = lambda xs, shape, dtype: np.concatenate(xs).astype(dtype) if xs else np.zeros(shape, dtype)  # noqa: E731
    p_artefact = cat(p_art, 0, np.float32)
    keep = ~(p_artefact > artefact.threshold) if artefact else np.ones(samples.size, dtype=bool)
    result = BeatAnalysis(
        record=info.record_id,
        fs=info.fs,
        n_samples=info.n_samples,
        channels=info.leads,
        samples=samples[keep],
        classes=cat([p.argmax(axis=1) for p in prob], 0, np.int64)[keep],
        probability=cat([p.max(axis=1) for p in prob], 0, np.float32)[keep],
        rr=rr[keep],
        qrs_ms=cat(qrs, 0, np.float32)[keep],
        morph=cat(morph, (0, n_morph), np.float32)[keep],
        cluster=np.zeros(int(keep.sum()), dtype=np.int64),
        model=classifier.source,
        rejected=samples[~keep],
        rejected_probability=p_artefact[~keep],
        artefact_filter=artefact.describe() if artefact else {},
    )
    with stage(clock, "cluster"):
        recluster(result, n_clusters, merge_threshold)
        if override_v:
            override_contradicted_v(result)
        if s_rule:
            promote_premature_n(result)
    if intervals:
        result.intervals = delineate_record(
            info, result.samples, result.cluster, window_s, _part(progress, 2, parts), clock
        )
    result.timings = {**clock, "wall": time.perf_counter() - started}
    return result


def recluster(
    a: BeatAnalysis, n_clusters: int = N_CLUSTERS, merge_threshold: float = MERGE_THRESHOLD
) -> None:
    """(Re)compute the clusters, each beat's correlation with the dominant template, and the flags."""
    a.cluster, a.clusters = cluster_beats(a.morph, a.classes, n_clusters, merge_threshold)
    _check_shapes(a)


def _check_shapes(a: BeatAnalysis) -> None:
    """Each beat's correlation with the dominant (largest) cluster's template, then the cross-check flags."""
    if a.clusters:
        dominant = a.clusters[0].template.astype(np.float64)
        centred = a.morph - a.morph.mean(axis=1, keepdims=True)
        d = dominant - dominant.mean()
        a.correlation = (centred @ d) / np.maximum(np.linalg.norm(centred, axis=1) * np.linalg.norm(d), 1e-12)
    else:
        a.correlation = np.zeros(0)
    a.flags = cross_check(a)


def _ms(value: float) -> float | None:
    """A duration in ms for JSON: one decimal, None for NaN."""
    return round(float(value), 1) if np.isfinite(value) else None


def _part(progress: ProgressFn | None, index: int, parts: int) -> ProgressFn | None:
    """A progress function for part ``index`` of ``parts`` equal parts of a job."""
    if progress is None:
        return None
    return lambda done, total, message="": progress(index * total + done, parts * total, message)
