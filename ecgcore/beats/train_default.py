"""The shipped beat classifier: how it is trained, evaluated leave-records-out, and written.

``python -m ecgcore beats train-default [FOLDER] [--out DIR]`` (FOLDER: the QT Database development
folder, default ``../shared/qtdb-dev`` next to the project) does, reproducibly (seeded, CPU):

1. builds the labelled beats of every record with a ``.atr`` file (:func:`ecgcore.beats.dataset.build_beat_set`);
2. splits the records (never the beats) into held-out test records (every fifth, sorted by name,
   from the third), validation records (every eighth of the rest) and training records;
3. trains ``cnn_bilstm_attention_beat`` at :data:`SMALL` sizes through the common fit loop
   (:func:`ecgcore.train.loop.fit`) on class-balanced training rows (:func:`ecgcore.beats.dataset.balanced_rows`);
4. scores the held-out records beat by beat (150 ms matching, per EC57 class) against the majority
   class (every beat N), and writes the weights and those figures to ``DIR/beats-default.safetensors``
   (+ ``.json``).

``--cross-validate K`` instead trains K models, each with one K-th of the records held out, and
prints the pooled per-class table (every record evaluated once, by a model that never saw it).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ecgcore.beats.aami import CLASSES
from ecgcore.beats.classify import DEFAULT_MODEL, BeatClassifier, describe, flush_denormals
from ecgcore.beats.dataset import BeatSet, BeatSource, balanced_rows, build_beat_set
from ecgcore.beats.evaluate import Counts, read_reference, score
from ecgcore.beats.features import CLASSIFIER_HALF, MODEL_FS
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


def _config(folder: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        task="classification",
        label_mode="single",
        data=f"beats:{folder}",
        model=MODEL,
        model_kwargs=dict(SMALL),
        fs=MODEL_FS,
        duration=2 * CLASSIFIER_HALF / MODEL_FS,
        normalize="none",
        bandpass=True,
        epochs=epochs,
        batch_size=128,
        lr=3e-3,
        weight_decay=1e-2,
        schedule="onecycle",
        amp=False,
        device="cpu",
        seed=SEED,
        representation="beats",
    )


def prepared(
    beats: BeatSet, split: dict[str, list[str]], config: TrainConfig, epoch_rows: int, seed: int = SEED
) -> PreparedData:
    """The trainer's view of a beat set: labelled rows per split, training rows class-balanced, at most
    :data:`MONITOR_ROWS` validation and test rows (seeded)."""
    labelled = beats.labels >= 0
    rows = {
        name: np.intersect1d(beats.rows_of(records), np.flatnonzero(labelled))
        for name, records in split.items()
    }
    rows["train"] = balanced_rows(beats.labels, rows["train"], epoch_rows, seed)
    rng = np.random.default_rng(seed)
    for name in ("val", "test"):
        if rows[name].size > MONITOR_ROWS:
            rows[name] = np.sort(rng.choice(rows[name], MONITOR_ROWS, replace=False))
    return PreparedData(
        inputs=beats.windows,
        rows=rows,
        y=beats.labels,
        y_eval=beats.labels,
        names=CLASSES,
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
    epochs: int = EPOCHS,
    epoch_rows: int = EPOCH_ROWS,
    progress: ProgressFn | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train the classifier through the common fit loop; returns its best weights (eval mode) and summary."""
    torch.manual_seed(SEED)
    config = _config(folder, epochs)
    model = create_model(MODEL, 4, len(CLASSES), **SMALL)
    with flush_denormals():  # denormals slow CPU training several times over
        summary = fit(
            config,
            prepared(beats, split, config, epoch_rows),
            model,
            run_dir,
            device=torch.device("cpu"),
            source=BeatSource(beats),
            progress=progress,
        )
    best, _ = load_checkpoint(run_dir / "best.safetensors")
    return best, summary


def score_records(
    beats: BeatSet, names: list[str], folder: Path, classifier: BeatClassifier | None
) -> Counts:
    """Per-class counts on records ``names`` (every beat N when ``classifier`` is None: the majority baseline)."""
    total = Counts()
    for name in names:
        rows = beats.rows_of([name])
        if classifier is None:
            classes = np.zeros(rows.size, dtype=np.int64)
        else:
            classes = classifier.predict_proba(beats.inputs(rows)).argmax(axis=1)
        total.add(score(read_reference(folder / name), beats.samples[rows], classes))
    return total


def cross_validate(
    folder: Path, k: int, epochs: int = EPOCHS, epoch_rows: int = EPOCH_ROWS, quiet: bool = False
) -> dict:
    """Leave-records-out: ``k`` models, each tested on the one k-th of records it never saw; pooled counts."""
    records = annotated_records(folder)
    beats = build_beat_set(records, progress=None if quiet else cli_progress("beats"))
    names = sorted(beats.records)
    total, baseline = Counts(), Counts()
    for fold in range(k):
        test = names[fold::k]
        rest = [n for n in names if n not in test]
        split = {"train": [n for n in rest if n not in rest[3::8]], "val": rest[3::8], "test": test}
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = train_model(
                beats,
                split,
                Path(tmp),
                folder,
                epochs,
                epoch_rows,
                None if quiet else cli_progress(f"fold {fold + 1}/{k}"),
            )
        total.add(score_records(beats, test, folder, BeatClassifier(model)))
        baseline.add(score_records(beats, test, folder, None))
    return {"records": len(names), "folds": k, "model": total.lines(), "majority_baseline": baseline.lines()}


def main(argv: list[str], out: str | None = None, quiet: bool = False) -> int:
    """``beats train-default [FOLDER] [--cross-validate K]``."""
    k = None
    if "--cross-validate" in argv:
        i = argv.index("--cross-validate")
        k = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    if k is not None:
        print(json.dumps(cross_validate(folder, k, quiet=quiet)))
        return 0
    start = time.monotonic()
    records = annotated_records(folder)
    beats = build_beat_set(records, progress=None if quiet else cli_progress("beats"))
    split = split_records(beats.records)
    target = Path(out) / DEFAULT_MODEL.name if out else DEFAULT_MODEL
    with tempfile.TemporaryDirectory() as tmp:
        model, summary = train_model(
            beats, split, Path(tmp), folder, progress=None if quiet else cli_progress("train")
        )
    held_out = score_records(beats, split["test"], folder, BeatClassifier(model))
    baseline = score_records(beats, split["test"], folder, None)
    counts = {n: int(np.sum(beats.labels[beats.rows_of(r)] >= 0)) for n, r in split.items()}
    meta = {
        "beats": describe(),
        "trained_on": {"folder": folder.name, "records": split, "labelled_beats": counts},
        "held_out": {"model": held_out.lines(), "majority_baseline": baseline.lines()},
        "training": {
            "epochs": EPOCHS,
            "rows_per_epoch": EPOCH_ROWS,
            "seed": SEED,
            "seconds": round(time.monotonic() - start, 1),
            "best_epoch": summary.get("best_epoch"),
        },
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(target, model, meta)
    print(file=sys.stderr)
    print(json.dumps({"written": str(target), **meta["held_out"], "labelled_beats": counts}))
    return 0
