"""The beat-vs-artefact model: does a detection sit on a beat, or on noise?

As in the study: the beat classifier's architecture (``cnn_bilstm_attention_beat``) on a short window,
:data:`HALF` samples (at 360 Hz) either side of the detection, plus the RR context channels. The
development records hold almost no false detections (1 in 67,827), so the labels come from
**noise-added copies** of the records (:data:`CONDITIONS`: electrode motion and muscle noise at 6 to
-6 dB, baseline wander, :mod:`ecgcore.beats.noise`): a detection on a noisy copy that matches a
reference beat within 150 ms is a *beat*, one that matches none is an *artefact*
(:func:`ecgcore.beats.dataset.record_beats` with ``noise``).

:func:`cross_validate` scores it leave-records-out (patients grouped, :mod:`ecgcore.beats.splits`):
Se and PPV of artefact rejection, and detection PPV before and after rejection with the Se lost, per
noise condition. :func:`load_artefact_model` loads a checkpoint for
``analyse_record(..., artefact_model=...)``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecgcore.beats.classify import INPUTS, BeatClassifier
from ecgcore.beats.dataset import BeatSet, build_beat_set
from ecgcore.beats.evaluate import read_reference
from ecgcore.beats.features import MODEL_FS
from ecgcore.beats.splits import patient_of, shared_patients, stratified_folds
from ecgcore.beats.train_default import Recipe, train_model, validation_split
from ecgcore.train.checkpoint import load_checkpoint

#: Half-window of the beat-vs-artefact model (samples at MODEL_FS): the study's 50.
HALF = 50
CLASSES: tuple[str, ...] = ("beat", "artefact")
#: Noise conditions the labels come from: (kind, SNR dB). Detections on the clean record add no
#: artefacts worth the name; each condition is one noisy copy of every record.
CONDITIONS: tuple[tuple[str, float], ...] = (
    ("em", 6.0),
    ("em", 0.0),
    ("em", -3.0),
    ("em", -6.0),
    ("ma", 0.0),
    ("ma", -6.0),
    ("bw", 0.0),
)
#: Probability of "artefact" above which a detection is rejected.
THRESHOLD = 0.5


def noisy_beat_set(
    records: Sequence[str | Path], conditions: Sequence[tuple[str, float]] = CONDITIONS
) -> tuple[BeatSet, np.ndarray]:
    """Beat windows (``HALF`` either side) of the detections on every record's noisy copies, all
    conditions together, and the condition index of each row. Labels: EC57 class, or -1 (artefact)."""
    sets = [
        build_beat_set(records, half=HALF, noise=(kind, snr, i + 1))
        for i, (kind, snr) in enumerate(conditions)
    ]
    n_rec = len(sets[0].records)
    return (
        BeatSet(
            windows=np.concatenate([s.windows for s in sets]),
            rr=np.concatenate([s.rr for s in sets]),
            labels=np.concatenate([s.labels for s in sets]),
            record=np.concatenate([s.record for s in sets]),
            records=list(sets[0].records),
            samples=np.concatenate([s.samples for s in sets]),
        ),
        np.concatenate([np.full(len(s.labels), i) for i, s in enumerate(sets)])
        if n_rec
        else np.zeros(0, int),
    )


def artefact_labels(labels: np.ndarray) -> np.ndarray:
    """0 for a detection on a beat (any EC57 class), 1 for an artefact (no reference beat there)."""
    return (np.asarray(labels) < 0).astype(np.int64)


def describe() -> dict:
    """The ``beats`` entry of a beat-vs-artefact checkpoint's description."""
    return {"half": HALF, "fs": MODEL_FS, "classes": list(CLASSES), "inputs": INPUTS}


def load_artefact_model(path: str | Path) -> BeatClassifier:
    """The beat-vs-artefact model in checkpoint ``path`` (``FileNotFoundError`` / ``ValueError`` as
    :func:`ecgcore.beats.classify.load_classifier`); ``predict_proba(...)[:, 1]`` is P(artefact)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no beat-vs-artefact model there")
    model, meta = load_checkpoint(path)
    spec = meta.get("beats") or {}
    if tuple(spec.get("classes", ())) != CLASSES or spec.get("inputs") != INPUTS:
        raise ValueError(f"{path}: not a beat-vs-artefact checkpoint (its description: {spec!r})")
    return BeatClassifier(model=model, half=int(spec["half"]), classes=CLASSES, source=str(path))


def rejected(model: BeatClassifier, inputs: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """True for the detections the model calls artefacts."""
    return model.predict_proba(inputs)[:, 1] > threshold


def cross_validate(
    folder: Path,
    records: Sequence[Path],
    k: int,
    recipe: Recipe = Recipe(),
    thresholds: Sequence[float] = (THRESHOLD,),
) -> dict:
    """Leave-records-out scores of the beat-vs-artefact model (see the module docstring), one set per
    rejection threshold on P(artefact)."""
    start, cpu = time.monotonic(), time.process_time()
    beats, condition = noisy_beat_set(records)
    y = artefact_labels(beats.labels)
    counts = {n: np.bincount(y[beats.rows_of([n])], minlength=2) for n in beats.records}
    folds = stratified_folds(beats.records, counts, k, recipe.seed)
    p_artefact = np.zeros(y.size)
    for test in folds:
        rest = [n for n in beats.records if n not in test]
        split = {**validation_split(rest), "test": test}
        if shared_patients(split):
            raise ValueError(f"patients {sorted(shared_patients(split))} on both sides of a fold")
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = train_model(beats, split, Path(tmp), folder, recipe, names=CLASSES, labels=y)
        rows = beats.rows_of(test)
        p_artefact[rows] = BeatClassifier(model, half=HALF, classes=CLASSES).predict_proba(
            beats.inputs(rows)
        )[:, 1]
    n_reference = sum(read_reference(folder / n).samples.size for n in beats.records)
    out = {"records": len(beats.records), "patients": len({patient_of(n) for n in beats.records}), "folds": k}
    out["thresholds"] = [
        _scores(y, condition, p_artefact > t, n_reference) | {"threshold": t} for t in thresholds
    ]
    out["seconds"] = round(time.monotonic() - start, 1)
    out["cpu_seconds"] = round(time.process_time() - cpu, 1)
    return out


def _scores(y: np.ndarray, condition: np.ndarray, reject: np.ndarray, n_reference: int) -> dict:
    """Artefact rejection Se / PPV overall, and detection PPV and Se before and after rejection per condition."""
    out: dict = {"rejection": _se_ppv(y == 1, reject), "conditions": []}
    for i, (kind, snr) in enumerate(CONDITIONS):
        at = condition == i
        beat, art, rej = at & (y == 0), at & (y == 1), at & reject
        out["conditions"].append(
            {
                "noise": f"{kind}:{snr:g}",
                "detections": int(at.sum()),
                "artefacts": int(art.sum()),
                "n_reference": n_reference,
                "ppv_before": _ratio(beat.sum(), at.sum()),
                "ppv_after": _ratio((beat & ~rej).sum(), (at & ~rej).sum()),
                "se_before": _ratio(beat.sum(), n_reference),
                "se_after": _ratio((beat & ~rej).sum(), n_reference),
                "beats_rejected": int((beat & rej).sum()),
                "artefacts_rejected": int((art & rej).sum()),
            }
        )
    return out


def _ratio(a, b) -> float | None:
    return round(float(a) / float(b), 5) if b else None


def _se_ppv(truth: np.ndarray, called: np.ndarray) -> dict:
    tp = int(np.sum(truth & called))
    return {
        "n_artefacts": int(truth.sum()),
        "n_rejected": int(called.sum()),
        "se": _ratio(tp, truth.sum()),
        "ppv": _ratio(tp, called.sum()),
    }
