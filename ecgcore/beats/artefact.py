"""The beat-vs-artefact model: does a detection sit on a beat, or on noise?

As in the study: the beat classifier's architecture (``cnn_bilstm_attention_beat``) on a short window,
:data:`HALF` samples (at 360 Hz) either side of the detection, plus the RR context channels (the
4-channel layout ``leads2+rr2`` of :func:`ecgcore.beats.features.model_input`). The development records
hold almost no false detections (1 in 67,827), so the labels come from **noise-added copies** of the
records (:data:`CONDITIONS`: electrode motion and muscle noise at 6 to -6 dB, baseline wander; the noise
is synthetic, :mod:`ecgcore.beats.noise`): a detection on a noisy copy that matches a reference beat
within 150 ms is a *beat*, one that matches none is an *artefact*
(:func:`ecgcore.beats.dataset.record_beats` with ``noise``).

A detection is rejected when P(artefact) exceeds the checkpoint's threshold (:data:`THRESHOLD` for the
shipped :data:`DEFAULT_MODEL`). :func:`choose_threshold` is the rule that chose it: the best mean
detection F1 over the noisy conditions among the thresholds that reject at most :data:`CLEAN_LOSS`
of the true beats of the clean records. It was applied to cross-validated scores of one half of the
development patients and confirmed on the other half (/work/notes/issue-18-artefact.md,
assets/models/README.md).

``python -m ecgcore beats train-artefact [FOLDER]`` (:func:`main`) trains the shipped model on every
annotated record (:data:`RECIPE`, seeded). :func:`load_artefact_model` gives an :class:`ArtefactFilter`
for ``analyse_record(..., artefact_model=...)``; :func:`filter_record` applies one to detections of a
record (or of a noisy copy of it held in memory) for the evaluation.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ecgcore.beats import features as feat
from ecgcore.beats.classify import INPUTS, BeatClassifier
from ecgcore.beats.dataset import BeatSet, build_beat_set
from ecgcore.beats.detect import WINDOW_S
from ecgcore.beats.features import MODEL_FS
from ecgcore.beats.longrecord import analysis_windows
from ecgcore.beats.splits import patient_of
from ecgcore.beats.train_default import (
    DEFAULT_FOLDER,
    Recipe,
    annotated_records,
    train_model,
    validation_split,
)
from ecgcore.io import RecordInfo
from ecgcore.paths import PROJECT_DIR
from ecgcore.progress import cli_progress
from ecgcore.train.checkpoint import load_checkpoint, save_checkpoint

#: Half-window of the beat-vs-artefact model (samples at MODEL_FS): the study's 50.
HALF = 50
CLASSES: tuple[str, ...] = ("beat", "artefact")
#: The shipped beat-vs-artefact model (see assets/models/README.md, its model card).
DEFAULT_MODEL = PROJECT_DIR / "assets" / "models" / "beats-artefact.safetensors"
#: Noise conditions the labels come from: (kind, SNR dB). Detections on the clean record add no
#: artefacts worth the name; each condition is one noisy copy of every record (noise seed = index + 1).
CONDITIONS: tuple[tuple[str, float], ...] = (
    ("em", 6.0),
    ("em", 0.0),
    ("em", -3.0),
    ("em", -6.0),
    ("ma", 0.0),
    ("ma", -6.0),
    ("bw", 0.0),
)
#: How the shipped model is trained (the recipe the previous session cross-validated).
RECIPE = Recipe(epochs=6, epoch_rows=8000, redraw=True)
#: Thresholds on P(artefact) the choice looks at.
GRID: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999)
#: Largest share of the clean records' true beats a threshold may reject: a tenth of the 0.5 % the
#: detection goal (Se >= 99.5 %) leaves.
CLEAN_LOSS = 0.0005
#: Probability of "artefact" above which the shipped model rejects a detection (chosen by
#: :func:`choose_threshold` on half of the development patients, confirmed on the other half).
THRESHOLD = 0.998


@dataclass
class ArtefactFilter:
    """A beat-vs-artefact model and the P(artefact) above which it rejects a detection."""

    model: BeatClassifier
    threshold: float = THRESHOLD

    @property
    def half(self) -> int:
        return self.model.half

    @property
    def source(self) -> str:
        return self.model.source

    def probability(self, inputs: np.ndarray) -> np.ndarray:
        """P(artefact) per detection, for model inputs ``[n, 4, 2*half]``."""
        return self.model.predict_proba(inputs)[:, 1]

    def describe(self) -> dict:
        return {"model": self.source, "threshold": self.threshold}


def noisy_beat_set(
    records: Sequence[str | Path],
    conditions: Sequence[tuple[str, float]] = CONDITIONS,
    first_seed: int = 1,
) -> tuple[BeatSet, np.ndarray]:
    """Beat windows (``HALF`` either side) of the detections on every record's noisy copies, all
    conditions together, and the condition index of each row. Labels: EC57 class, or -1 (artefact).
    Condition ``i`` uses noise seed ``first_seed + i`` (so other seeds give other noise)."""
    sets = [
        build_beat_set(records, half=HALF, noise=(kind, snr, first_seed + i))
        for i, (kind, snr) in enumerate(conditions)
    ]
    return concatenate(sets)


def concatenate(sets: Sequence[BeatSet]) -> tuple[BeatSet, np.ndarray]:
    """Beat sets of the same records one after the other, and the index of the set each row came from."""
    return (
        BeatSet(
            windows=np.concatenate([s.windows for s in sets]),
            rr=np.concatenate([s.rr for s in sets]),
            labels=np.concatenate([s.labels for s in sets]),
            record=np.concatenate([s.record for s in sets]),
            records=list(sets[0].records),
            samples=np.concatenate([s.samples for s in sets]),
        ),
        np.concatenate([np.full(len(s.labels), i) for i, s in enumerate(sets)]),
    )


def artefact_labels(labels: np.ndarray) -> np.ndarray:
    """0 for a detection on a beat (any EC57 class), 1 for an artefact (no reference beat there)."""
    return (np.asarray(labels) < 0).astype(np.int64)


def describe(threshold: float = THRESHOLD) -> dict:
    """The ``beats`` entry of a beat-vs-artefact checkpoint's description."""
    return {"half": HALF, "fs": MODEL_FS, "classes": list(CLASSES), "inputs": INPUTS, "threshold": threshold}


def load_artefact_model(path: str | Path | None = None, threshold: float | None = None) -> ArtefactFilter:
    """The beat-vs-artefact filter in checkpoint ``path`` (default: the shipped :data:`DEFAULT_MODEL`),
    rejecting above ``threshold`` (default: the checkpoint's own). ``FileNotFoundError`` for a missing
    file, ``ValueError`` for a checkpoint that is not a beat-vs-artefact model."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no beat-vs-artefact model there"
            + (" (run `python -m ecgcore beats train-artefact`)" if path == DEFAULT_MODEL else "")
        )
    model, meta = load_checkpoint(path)
    spec = meta.get("beats") or {}
    if tuple(spec.get("classes", ())) != CLASSES or spec.get("inputs") != INPUTS:
        raise ValueError(f"{path}: not a beat-vs-artefact checkpoint (its description: {spec!r})")
    classifier = BeatClassifier(model=model, half=int(spec["half"]), classes=CLASSES, source=str(path))
    return ArtefactFilter(
        classifier, float(spec.get("threshold", THRESHOLD) if threshold is None else threshold)
    )


@lru_cache(maxsize=1)
def default_filter() -> ArtefactFilter:
    """The shipped filter, loaded once per process."""
    return load_artefact_model()


def filter_record(
    info: RecordInfo, samples: np.ndarray, artefact: ArtefactFilter, signal: np.ndarray | None = None
) -> np.ndarray:
    """P(artefact) of each detection (``samples``, sorted, of the record ``info``), its windows cut as the
    analysis cuts them (:data:`~ecgcore.beats.detect.WINDOW_S` windows, RR context from all ``samples``);
    ``signal`` ``[leads, n]`` replaces the record's own (a noisy copy held in memory)."""
    samples = np.asarray(samples, dtype=np.int64)
    rr = feat.rr_context(samples, info.fs)
    out = np.zeros(samples.size)
    for w in analysis_windows(info, WINDOW_S, feat.CONTEXT_S):
        lo, hi = np.searchsorted(samples, [w.keep_start, w.keep_stop])
        if hi > lo:
            chunk = w.signal if signal is None else signal[:, w.start : w.start + w.signal.shape[1]]
            f = feat.chunk_features(chunk, info.fs, samples[lo:hi] - w.start, (artefact.half,))
            out[lo:hi] = artefact.probability(feat.model_input(f[f"window{artefact.half}"], rr[lo:hi]))
    return out


def detection_scores(
    y: np.ndarray,
    condition: np.ndarray,
    names: Sequence[str],
    reject: np.ndarray,
    n_reference: int,
) -> list[dict]:
    """Per condition (``names[i]`` for rows with ``condition == i``): detections, artefacts, and detection
    Se, PPV and F1 (150 ms matching, ``n_reference`` reference beats) before and after rejection, with the
    true beats and artefacts rejected."""
    out = []
    for i, name in enumerate(names):
        at = condition == i
        beat, art, rej = at & (y == 0), at & (y == 1), at & reject
        kept_beats, kept = (beat & ~rej).sum(), (at & ~rej).sum()
        out.append(
            {
                "noise": name,
                "n_reference": int(n_reference),
                "detections": int(at.sum()),
                "artefacts": int(art.sum()),
                **_detection("before", beat.sum(), at.sum(), n_reference),
                **_detection("after", kept_beats, kept, n_reference),
                "beats_rejected": int((beat & rej).sum()),
                "artefacts_rejected": int((art & rej).sum()),
            }
        )
    return out


def _detection(when: str, true: int, detected: int, n_reference: int) -> dict:
    se, ppv = _ratio(true, n_reference), _ratio(true, detected)
    f1 = round(2 * se * ppv / (se + ppv), 5) if se and ppv else None
    return {f"se_{when}": se, f"ppv_{when}": ppv, f"f1_{when}": f1}


def choose_threshold(
    y: np.ndarray,
    condition: np.ndarray,
    names: Sequence[str],
    p_artefact: np.ndarray,
    n_reference: int,
    clean: str = "clean",
    grid: Sequence[float] = GRID,
    max_clean_loss: float = CLEAN_LOSS,
) -> tuple[float, list[dict]]:
    """The threshold of ``grid`` with the best mean detection F1 after rejection over the noisy conditions
    (every name but ``clean``; ``n_reference`` reference beats in each), among those that reject at most ``max_clean_loss`` of the true beats of
    condition ``clean`` (ties: the higher threshold, which rejects less); and one line per threshold."""
    noisy = [i for i, n in enumerate(names) if n != clean]
    at_clean = (condition == names.index(clean)) & (y == 0)
    lines = []
    for t in sorted(grid):
        reject = p_artefact > t
        rows = detection_scores(y, condition, names, reject, n_reference)
        lines.append(
            {
                "threshold": t,
                "clean_loss": _ratio((at_clean & reject).sum(), at_clean.sum()),
                "mean_f1_after": round(float(np.mean([rows[i]["f1_after"] or 0.0 for i in noisy])), 5),
            }
        )
    allowed = [line for line in lines if (line["clean_loss"] or 0.0) <= max_clean_loss]
    if not allowed:
        raise ValueError(
            f"no threshold of {list(grid)} rejects at most {max_clean_loss:.2%} of the clean beats"
        )
    best = max(allowed, key=lambda line: (line["mean_f1_after"], line["threshold"]))
    return float(best["threshold"]), lines


def train_artefact_model(
    beats: BeatSet,
    y: np.ndarray,
    records: Sequence[str],
    folder: Path,
    recipe: Recipe = RECIPE,
    quiet: bool = True,
) -> tuple[BeatClassifier, dict]:
    """A beat-vs-artefact model trained on the rows of ``records`` (every eighth patient validates; the fit
    loop's own test split is the validation records again: the real tests are run by the caller)."""
    split = validation_split(sorted(records))
    split["test"] = split["val"]
    with tempfile.TemporaryDirectory() as tmp:
        model, summary = train_model(
            beats,
            split,
            Path(tmp),
            folder,
            recipe,
            None if quiet else cli_progress("train"),
            names=CLASSES,
            labels=y,
        )
    return BeatClassifier(model, half=HALF, classes=CLASSES), summary | {"split": split}


def _ratio(a, b) -> float | None:
    return round(float(a) / float(b), 5) if b else None


def main(argv: list[str], out: str | None = None, quiet: bool = False) -> int:
    """``beats train-artefact [FOLDER] [--out DIR]``: train the shipped beat-vs-artefact model on every
    annotated record of FOLDER (:data:`CONDITIONS`, :data:`RECIPE`, seeded) and write it with
    :data:`THRESHOLD` to ``DIR/beats-artefact.safetensors`` (+ ``.json``)."""
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    start = time.monotonic()
    beats, _ = noisy_beat_set(annotated_records(folder))
    y = artefact_labels(beats.labels)
    model, summary = train_artefact_model(beats, y, beats.records, folder, RECIPE, quiet)
    target = Path(out) / DEFAULT_MODEL.name if out else DEFAULT_MODEL
    meta = {
        "beats": describe(THRESHOLD),
        "trained_on": {
            "folder": folder.name,
            "records": summary["split"],
            "patients": len({patient_of(n) for n in beats.records}),
            "noise": [f"{kind}:{snr:g}" for kind, snr in CONDITIONS],
            "detections": int(y.size),
            "artefacts": int(y.sum()),
        },
        "training": {
            **RECIPE.to_json(),
            "seconds": round(time.monotonic() - start, 1),
            "best_epoch": summary.get("best_epoch"),
        },
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(target, model.model, meta)
    if not quiet:
        print(file=sys.stderr)
    print(
        json.dumps({"written": str(target), "trained_on": meta["trained_on"], "training": meta["training"]})
    )
    return 0
