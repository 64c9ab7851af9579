"""Pretraining and transfer for the beat classifier, inter-patient, as in the study.

The study pretrained its beat models on a large set and fine-tuned them on a smaller one. Here, on the
QT Database development folder:

* **pretraining records**: the arrhythmia databases' excerpts (:func:`is_pretraining_record`: the
  MIT-BIH Arrhythmia ``sel1xx/2xx`` and Supraventricular Arrhythmia ``sel8xx`` excerpts), which hold
  most of the S and V beats;
* **target records**: every other record (European ST-T, ST Change, Long-Term, Normal Sinus Rhythm
  excerpts), split into ``k`` patient-grouped folds stratified by class. Rotation ``i`` fine-tunes on
  fold ``i`` (``fraction`` of its labelled beats per class, seeded) and evaluates on the other folds;

so no patient is in two of pretraining, fine-tuning and evaluation (checked). Three models per
rotation are evaluated on the same records: the pretrained model as it is, that model fine-tuned on
the fine-tuning beats (the same recipe, weights from pretraining), and the same architecture trained
from scratch on the same fine-tuning beats (the same recipe, random weights).

``python -m ecgcore beats transfer-study [FOLDER] [--folds K] [--fractions 0.1,0.3,1]`` (:func:`main`)
runs it with the shipped recipe (seeded) and prints the pooled tables as one JSON object.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgcore.beats.classify import BeatClassifier
from ecgcore.beats.dataset import BeatSet, build_beat_set
from ecgcore.beats.evaluate import Counts
from ecgcore.beats.splits import mitbih_record, shared_patients, stratified_folds
from ecgcore.beats.train_default import (
    DEFAULT_FOLDER,
    FINAL,
    Recipe,
    annotated_records,
    class_counts,
    record_counts,
    train_model,
    validation_split,
    with_intervals,
)
from ecgcore.progress import cli_progress

#: The recipe ``beats transfer-study`` trains every model with (pretraining, transfer and scratch alike).
RECIPE = FINAL

_SVDB = re.compile(r"^sel8\d\d$")


def is_pretraining_record(name: str) -> bool:
    """MIT-BIH Arrhythmia or Supraventricular Arrhythmia Database excerpts (qtdb ``sel1xx/2xx``, ``sel8xx``)."""
    return mitbih_record(name) is not None or bool(_SVDB.match(name))


def subsample(labels: np.ndarray, rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``labels`` with all but ``fraction`` of ``rows``' labelled beats (per class, seeded, at least one
    per class present) set to -1, so training sees only that share."""
    if fraction >= 1.0:
        return labels
    out = labels.copy()
    rng = np.random.default_rng(seed)
    for c in np.unique(labels[rows][labels[rows] >= 0]):
        of_c = rows[labels[rows] == c]
        keep = max(1, int(round(fraction * of_c.size)))
        out[rng.permutation(of_c)[keep:]] = -1
    return out


def transfer_study(
    beats: BeatSet,
    folder: Path,
    recipe: Recipe = Recipe(),
    k: int = 3,
    fractions: tuple[float, ...] = (1.0,),
) -> dict:
    """Pretrained-only, transfer and scratch, per fine-tuning fraction, pooled over ``k`` rotations
    (each target record is evaluated by the ``k - 1`` rotations that do not fine-tune on it)."""
    start, cpu = time.monotonic(), time.process_time()
    pre = [n for n in beats.records if is_pretraining_record(n)]
    target = [n for n in beats.records if not is_pretraining_record(n)]
    if not pre or not target:
        raise ValueError(
            f"{folder}: the transfer study needs pretraining records (MIT-BIH sel1xx/2xx, SVDB sel8xx) and "
            f"other records to fine-tune and evaluate on; found {len(pre)} and {len(target)}"
        )
    counts = class_counts(beats)
    folds = stratified_folds(target, {n: counts[n] for n in target}, k, recipe.seed)
    with tempfile.TemporaryDirectory() as tmp:
        monitor = validation_split(pre)
        pretrained, _ = train_model(beats, {**monitor, "test": monitor["val"]}, Path(tmp), folder, recipe)
    results: dict[str, dict[str, Counts]] = {"pretrained only": {}}
    ft_beats: dict[float, int] = {}
    for i, tune in enumerate(folds):
        evaluate = [n for n in target if n not in tune]
        split = {**validation_split(tune), "test": evaluate}
        if shared_patients({"pre": pre, **split}):
            raise ValueError(f"rotation {i + 1}: a patient in two of pretraining, fine-tuning, evaluation")
        _add(
            results["pretrained only"],
            record_counts(beats, evaluate, folder, BeatClassifier(pretrained, inputs=recipe.inputs)),
        )
        for fraction in fractions:
            labels = subsample(beats.labels, beats.rows_of(split["train"]), fraction, recipe.seed + i)
            ft_beats[fraction] = ft_beats.get(fraction, 0) + int(
                np.sum(labels[beats.rows_of(split["train"])] >= 0)
            )
            for name, init in (("transfer", copy.deepcopy(pretrained)), ("scratch", None)):
                with tempfile.TemporaryDirectory() as tmp:
                    model, _ = train_model(beats, split, Path(tmp), folder, recipe, model=init, labels=labels)
                key = f"{name} {fraction:g}"
                _add(
                    results.setdefault(key, {}),
                    record_counts(beats, evaluate, folder, BeatClassifier(model, inputs=recipe.inputs)),
                )
    return {
        "pretraining_records": pre,
        "pretraining_beats": int(np.sum(beats.labels[beats.rows_of(pre)] >= 0)),
        "target_folds": folds,
        "fine_tuning_beats_summed_over_rotations": {f"{f:g}": n for f, n in ft_beats.items()},
        "recipe": recipe.to_json(),
        "models": {name: with_intervals(c, seed=recipe.seed) for name, c in results.items()},
        "seconds": round(time.monotonic() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }


def _add(into: dict[str, Counts], per_record: dict[str, Counts]) -> None:
    """Sum each record's counts over the rotations that evaluate it (k - 1 of them): the bootstrap then
    resamples records, not record-rotation pairs."""
    for name, c in per_record.items():
        into.setdefault(name, Counts()).add(c)


def main(
    argv: list[str],
    k: int = 3,
    fractions: tuple[float, ...] = (0.1, 0.3, 1.0),
    quiet: bool = False,
    recipe: Recipe | None = None,
) -> int:
    """``beats transfer-study [FOLDER] [--folds K] [--fractions F,...]``: :func:`transfer_study` on the
    annotated records of FOLDER with :data:`RECIPE` (or ``recipe``), printed as one JSON object."""
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
        raise ValueError(f"--fractions {list(fractions)}: expected shares in (0, 1]")
    beats = build_beat_set(annotated_records(folder), progress=None if quiet else cli_progress("beats"))
    if not quiet:
        print(file=sys.stderr)
    print(json.dumps(transfer_study(beats, folder, recipe or RECIPE, k, tuple(fractions))))
    return 0
