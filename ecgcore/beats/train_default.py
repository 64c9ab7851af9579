"""The shipped beat classifier: how it is trained, evaluated leave-records-out, and written.

``python -m ecgcore beats train-default [FOLDER] [--out DIR] [--split records|de-chazal]`` (FOLDER: the
QT Database development folder, default ``../shared/qtdb-dev`` next to the project) does, reproducibly
(seeded, CPU):

1. builds the labelled beats of every record with a ``.atr`` file (:func:`ecgcore.beats.dataset.build_beat_set`);
2. splits the records (never the beats): ``records`` (default) holds out every fifth record, sorted by
   name, from the third, and validates on every eighth patient of the rest; ``de-chazal`` trains on
   MIT-BIH DS1 and tests on DS2 (:mod:`ecgcore.beats.splits`, for a user's MIT-BIH folder; the qtdb
   ``selNNN`` excerpts count as their MIT-BIH patients);
3. trains ``cnn_bilstm_attention_beat`` at :data:`SMALL` sizes through the common fit loop
   (:func:`ecgcore.train.loop.fit`) with the :data:`FINAL` :class:`Recipe` (class-balanced rows,
   optionally redrawn every epoch and augmented);
4. scores the held-out records beat by beat (150 ms matching, per EC57 class) against the majority
   class (every beat N), and writes the weights and those figures to ``DIR/beats-default.safetensors``
   (+ ``.json``).

``--cross-validate K`` instead trains K models on patient-grouped folds stratified so that each holds V
and S beats (:func:`ecgcore.beats.splits.stratified_folds`), each tested on the records it never saw,
and prints the pooled per-class table with bootstrap-by-record 95 % intervals beside the all-N baseline.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ecgcore.beats.aami import CLASSES
from ecgcore.beats.classify import DEFAULT_MODEL, BeatClassifier, describe, flush_denormals
from ecgcore.beats.dataset import (
    BALANCE_POWER,
    BeatAugment,
    BeatSet,
    BeatSource,
    balanced_rows,
    build_beat_set,
)
from ecgcore.beats.evaluate import Counts, bootstrap_by_record, read_reference, score
from ecgcore.beats.features import CLASSIFIER_HALF, INPUTS, LAYOUTS, MODEL_FS
from ecgcore.beats.splits import de_chazal_split, patient_of, shared_patients, stratified_folds
from ecgcore.beats.synth import with_synthetic_v
from ecgcore.models import create_model
from ecgcore.paths import PROJECT_DIR
from ecgcore.progress import ProgressFn, cli_progress
from ecgcore.train.batches import PreparedData
from ecgcore.train.checkpoint import load_checkpoint, save_checkpoint
from ecgcore.train.config import TrainConfig
from ecgcore.train.loop import fit

#: Where the development records are by default (the project's sibling ``shared`` folder).
DEFAULT_FOLDER = PROJECT_DIR.parent / "shared" / "qtdb-dev"
MODEL = "cnn_bilstm_attention_beat"
#: The shipped sizes: about a seventh of the study's MACs per beat, so a day-long record (some 100 000
#: beats) classifies in tens of seconds on a 2-core CPU.
SMALL = {"channels": 16, "lstm_hidden": 24, "attention_hidden": 24, "head_hidden": 32}
EPOCHS = 10
EPOCH_ROWS = 6_000
#: Validation and test rows the fit loop scores each epoch / at the end (a seeded sample: the held-out
#: records are scored in full, beat by beat, afterwards).
MONITOR_ROWS = 2_000
SEED = 0


def annotated_records(folder: str | Path) -> list[Path]:
    """Records of ``folder`` with beat annotations (``.atr``), sorted by name."""
    folder = Path(folder)
    records = sorted(p.with_suffix("") for p in folder.glob("*.atr"))
    if not records:
        raise FileNotFoundError(f"{folder}: no records with beat annotations (.atr) there")
    return records


def split_records(names: list[str]) -> dict[str, list[str]]:
    """Record-level split: test = every fifth from the third, val = every eighth of the rest, train = the rest."""
    names = sorted(names)
    test = names[2::5]
    rest = [n for n in names if n not in test]
    val = rest[3::8]
    return {"train": [n for n in rest if n not in val], "val": val, "test": test}


@dataclass(frozen=True)
class Recipe:
    """How a beat model is trained: epochs, training rows per epoch (class-balanced with
    :func:`balanced_rows`'s ``balance_power``; with ``redraw`` each slot shows a fresh beat of its class
    every epoch, :class:`BeatSource`), batch augmentation (:class:`BeatAugment`), model sizes, seed,
    and the input layout (``inputs``, a :data:`ecgcore.beats.features.LAYOUTS` name)."""

    epochs: int = EPOCHS
    epoch_rows: int = EPOCH_ROWS
    balance_power: float = BALANCE_POWER
    augment: bool = False
    redraw: bool = False
    sizes: tuple[tuple[str, int], ...] = tuple(SMALL.items())
    lr: float = 3e-3
    seed: int = SEED
    inputs: str = INPUTS
    #: Classes not balanced up (drawn at N's per-beat rate: ``natural`` of
    #: :func:`ecgcore.beats.dataset.balanced_indices`).
    natural: tuple[str, ...] = ()
    #: Synthetic V beats per real V beat of the training records (:func:`ecgcore.beats.synth.with_synthetic_v`;
    #: 0: none).
    synthetic_v: float = 0.0

    def to_json(self) -> dict:
        return {**asdict(self), "sizes": dict(self.sizes)}


#: The recipe ``train-default`` ships with (chosen by 5-fold leave-records-out cross-validation on the
#: development records, two seeds: the dominant-template and record-relative RR inputs lifted V F1 from
#: 0.45 / 0.27 to 0.64 / 0.63; development figures, and a third seed gave 0.547: assets/models/README.md).
FINAL = Recipe(redraw=True, augment=True, inputs="leads2+rr4+template2")


def _config(folder: Path, recipe: Recipe, model: str = MODEL, half: int = CLASSIFIER_HALF) -> TrainConfig:
    return TrainConfig(
        task="classification",
        label_mode="single",
        data=f"beats:{folder}",
        model=model,
        model_kwargs=dict(recipe.sizes),
        fs=MODEL_FS,
        duration=2 * half / MODEL_FS,
        normalize="none",
        bandpass=True,
        epochs=recipe.epochs,
        batch_size=128,
        lr=recipe.lr,
        weight_decay=1e-2,
        schedule="onecycle",
        amp=False,
        device="cpu",
        seed=recipe.seed,
        representation="beats",
    )


def prepared(
    beats: BeatSet,
    split: dict[str, list[str]],
    config: TrainConfig,
    recipe: Recipe,
    names: tuple[str, ...] = CLASSES,
    labels: np.ndarray | None = None,
) -> PreparedData:
    """The trainer's view of a beat set: labelled rows per split (``labels``: default the beat set's),
    one epoch of class-balanced training rows, at most :data:`MONITOR_ROWS` validation and test rows (seeded)."""
    labels = beats.labels if labels is None else labels
    labelled = labels >= 0
    rows = {
        name: np.intersect1d(beats.rows_of(records), np.flatnonzero(labelled))
        for name, records in split.items()
    }
    rng = np.random.default_rng(recipe.seed)
    for name in ("val", "test"):
        if rows.get(name, np.zeros(0)).size > MONITOR_ROWS:
            rows[name] = np.sort(rng.choice(rows[name], MONITOR_ROWS, replace=False))
    return PreparedData(
        inputs=beats.windows,
        rows={
            **rows,
            "train": balanced_rows(
                labels,
                rows["train"],
                recipe.epoch_rows,
                recipe.seed,
                recipe.balance_power,
                tuple(names.index(c) for c in recipe.natural),
            ),
        },
        y=labels,
        y_eval=labels,
        names=names,
        record_ids=np.asarray(beats.records)[beats.record],
        target_mean=None,
        target_sd=None,
        dropped={},
        prep=config.preprocessing(),
        stats={},
        kind="beats",
        spec="",
    )


def train_model(
    beats: BeatSet,
    split: dict[str, list[str]],
    run_dir: Path,
    folder: Path,
    recipe: Recipe = Recipe(),
    progress: ProgressFn | None = None,
    *,
    model: torch.nn.Module | None = None,
    names: tuple[str, ...] = CLASSES,
    labels: np.ndarray | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train a beat model through the common fit loop; returns its best weights (eval mode) and summary.

    ``model`` (default: a new ``cnn_bilstm_attention_beat`` at ``recipe.sizes``) may come pretrained;
    ``names`` / ``labels`` train another task on the same windows (the beat-vs-artefact model).
    """
    torch.manual_seed(recipe.seed)
    if recipe.synthetic_v:
        if labels is not None:
            raise ValueError("synthetic V beats are for the N/S/V/F/Q classifier, not for other labels")
        beats = with_synthetic_v(beats, split["train"], recipe.synthetic_v, recipe.seed)
    half = beats.windows.shape[-1] // 2
    config = _config(folder, recipe, half=half)
    if model is None:
        model = create_model(MODEL, LAYOUTS[recipe.inputs], len(names), **dict(recipe.sizes))
    data = prepared(beats, split, config, recipe, names, labels)
    pool = np.intersect1d(beats.rows_of(split["train"]), np.flatnonzero(data.y >= 0))
    source = BeatSource(
        beats, labels=labels, redraw=pool if recipe.redraw else None, seed=recipe.seed, layout=recipe.inputs
    )
    with flush_denormals():  # denormals slow CPU training several times over
        summary = fit(
            config,
            data,
            model,
            run_dir,
            device=torch.device("cpu"),
            source=source,
            progress=progress,
            augment=(lambda epoch, rank: BeatAugment(recipe.seed * 1000 + epoch, layout=recipe.inputs))
            if recipe.augment
            else None,
        )
    best, _ = load_checkpoint(run_dir / "best.safetensors")
    return best, summary


def record_counts(
    beats: BeatSet, names: list[str], folder: Path, classifier: BeatClassifier | None
) -> dict[str, Counts]:
    """Per-record counts on records ``names`` (every beat N when ``classifier`` is None: the majority baseline)."""
    out = {}
    for name in names:
        rows = beats.rows_of([name])
        if classifier is None:
            classes = np.zeros(rows.size, dtype=np.int64)
        else:
            classes = classifier.predict_proba(beats.inputs(rows, classifier.inputs)).argmax(axis=1)
        out[name] = score(read_reference(folder / name), beats.samples[rows], classes)
    return out


def score_records(
    beats: BeatSet, names: list[str], folder: Path, classifier: BeatClassifier | None
) -> Counts:
    """Per-class counts summed over records ``names`` (see :func:`record_counts`)."""
    total = Counts()
    for counts in record_counts(beats, names, folder, classifier).values():
        total.add(counts)
    return total


def validation_split(names: list[str]) -> dict[str, list[str]]:
    """Training and validation records of a training side: every eighth patient validates (at least one)."""
    patients = sorted({patient_of(n) for n in names})
    val = set(patients[3::8] or patients[len(patients) // 2 : len(patients) // 2 + 1])
    return {
        "train": [n for n in names if patient_of(n) not in val],
        "val": [n for n in names if patient_of(n) in val],
    }


def class_counts(beats: BeatSet) -> dict[str, np.ndarray]:
    """Labelled beats per EC57 class, per record."""
    return {
        name: np.bincount(beats.labels[beats.rows_of([name])].clip(-1) + 1, minlength=len(CLASSES) + 1)[1:]
        for name in beats.records
    }


def cross_validate(
    folder: Path, k: int, recipe: Recipe = Recipe(), quiet: bool = False, beats: BeatSet | None = None
) -> dict:
    """Leave-records-out: ``k`` models, each tested on the one k-th of patients it never saw (folds
    stratified so that each holds V and S beats, :func:`stratified_folds`); counts pooled over folds,
    with bootstrap-by-record 95 % intervals, beside the all-N baseline."""
    start, cpu = time.monotonic(), time.process_time()
    if beats is None:
        beats = build_beat_set(annotated_records(folder), progress=None if quiet else cli_progress("beats"))
    folds = stratified_folds(beats.records, class_counts(beats), k, recipe.seed)
    model_counts: dict[str, Counts] = {}
    baseline_counts: dict[str, Counts] = {}
    for i, test in enumerate(folds):
        rest = [n for n in beats.records if n not in test]
        split = {**validation_split(rest), "test": test}
        if shared_patients(split):
            raise ValueError(f"fold {i + 1}: patients {sorted(shared_patients(split))} on both sides")
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = train_model(
                beats, split, Path(tmp), folder, recipe, None if quiet else cli_progress(f"fold {i + 1}/{k}")
            )
        model_counts.update(record_counts(beats, test, folder, BeatClassifier(model, inputs=recipe.inputs)))
        baseline_counts.update(record_counts(beats, test, folder, None))
    labelled = beats.labels >= 0
    return {
        "records": len(beats.records),
        "beats": int(labelled.sum()),
        "folds": [len(f) for f in folds],
        "recipe": recipe.to_json(),
        "model": with_intervals(model_counts, seed=recipe.seed),
        "majority_baseline": with_intervals(baseline_counts, seed=recipe.seed),
        "seconds": round(time.monotonic() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }


def with_intervals(per_record: dict[str, Counts], seed: int = SEED) -> list[dict]:
    """Pooled per-class lines with bootstrap-by-record 95 % intervals of Se, PPV and F1."""
    total = Counts()
    for counts in per_record.values():
        total.add(counts)
    intervals = bootstrap_by_record(list(per_record.values()), seed=seed)
    return [{**line, **intervals.get(line["class"], {})} for line in total.lines()]


def choose_split(names: list[str], how: str) -> dict[str, list[str]]:
    """``records``: :func:`split_records`; ``de-chazal``: train (and validate) on DS1, test on DS2
    (:func:`ecgcore.beats.splits.de_chazal_split`: MIT-BIH records or their qtdb excerpts only)."""
    if how == "records":
        return split_records(names)
    if how != "de-chazal":
        raise ValueError(f"split {how!r}: expected 'records' or 'de-chazal'")
    ds = de_chazal_split(names)
    if not ds["train"] or not ds["test"]:
        raise ValueError(
            f"--split de-chazal needs MIT-BIH Arrhythmia records of both DS1 and DS2 (found {len(ds['train'])} "
            f"DS1 and {len(ds['test'])} DS2 records; {len(ds['excluded'])} others left out)"
        )
    return {**validation_split(ds["train"]), "test": ds["test"]}


def main(
    argv: list[str],
    out: str | None = None,
    quiet: bool = False,
    cross_validate_k: int | None = None,
    split: str = "records",
    recipe: Recipe = FINAL,
) -> int:
    """``beats train-default [FOLDER] [--cross-validate K] [--split records|de-chazal]``."""
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    if cross_validate_k is not None:
        print(json.dumps(cross_validate(folder, cross_validate_k, recipe, quiet=quiet)))
        return 0
    start = time.monotonic()
    records = annotated_records(folder)
    beats = build_beat_set(records, progress=None if quiet else cli_progress("beats"))
    parts = choose_split(beats.records, split)
    if shared_patients(parts):
        raise ValueError(f"patients {sorted(shared_patients(parts))} on both sides of the split")
    target = Path(out) / DEFAULT_MODEL.name if out else DEFAULT_MODEL
    with tempfile.TemporaryDirectory() as tmp:
        model, summary = train_model(
            beats, parts, Path(tmp), folder, recipe, progress=None if quiet else cli_progress("train")
        )
    held_out = score_records(beats, parts["test"], folder, BeatClassifier(model, inputs=recipe.inputs))
    baseline = score_records(beats, parts["test"], folder, None)
    counts = {n: int(np.sum(beats.labels[beats.rows_of(r)] >= 0)) for n, r in parts.items()}
    meta = {
        "beats": describe(inputs=recipe.inputs),
        "trained_on": {"folder": folder.name, "split": split, "records": parts, "labelled_beats": counts},
        "held_out": {"model": held_out.lines(), "majority_baseline": baseline.lines()},
        "training": {
            **recipe.to_json(),
            "seconds": round(time.monotonic() - start, 1),
            "best_epoch": summary.get("best_epoch"),
        },
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(target, model, meta)
    print(file=sys.stderr)
    print(json.dumps({"written": str(target), **meta["held_out"], "labelled_beats": counts}))
    return 0
