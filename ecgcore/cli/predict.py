"""``python -m ecgcore predict --run ID FOLDER_OR_RECORD ...``: intervals or class probabilities, one JSON line
per record.

Folders are searched (recursively) for records: WFDB / Challenge headers (``.hea``), DeepFake ``.asc`` and
``.csv`` files. Records are predicted ``--batch-size`` at a time on the run's inference network (batch norms
folded, bf16 where the CPU has it natively unless ``--precision fp32``); a progress bar and the rate in
records/s go to stderr. A record that cannot be read gets a line ``{"path", "error"}`` and the exit code is 1.
Every line carries the prediction guard's verdict: ``refused`` (the reason; then no number is given, e.g.
a flat line) and ``flags`` (doubts to read beside the number: a header rate the rhythm does not fit, a
value outside what the model was trained on, preparation unlike the run's). A checkpoint changed after it
was saved is refused with its file named. A classification run calibrated with ``explain --calibrate``
also gets ``calibrated_probabilities`` (those records are predicted one at a time; the calibration is applied to the same logits as the prediction).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

#: Files that start a record inside a folder (a .dat / .mat belongs to its .hea).
FOLDER_SUFFIXES = (".hea", ".asc", ".csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "records", nargs="+", help="record files (WFDB .hea/.dat/.mat, DeepFake .asc, CSV) or folders of them"
    )
    parser.add_argument("--run", required=True, help="id of a finished run (or its directory)")
    parser.add_argument("--runs-dir", type=Path, help="run store directory (default: $ECGLAB_HOME/runs)")
    parser.add_argument("--fs", type=float, help="sampling rate of CSV records (Hz)")
    parser.add_argument(
        "--checkpoint", default="best", choices=["best", "last"], help="which checkpoint to use"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="records per forward pass (default 32)")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto: bf16 where the CPU/GPU computes it natively, else fp32",
    )
    parser.add_argument(
        "--compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="run the network through torch.compile (about 2.5x the records/s; the compile costs 5-30 s per "
        "input shape at the start). auto: on from 2,000 records",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def record_paths(items: list[str]) -> list[Path]:
    """Files as given, and the record files inside each folder (sorted)."""
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in FOLDER_SUFFIXES and p.is_file())
            if not found:
                raise ValueError(
                    f"{item}: no ECG records in this folder (looked for {', '.join(FOLDER_SUFFIXES)})"
                )
            paths.extend(found)
        else:
            paths.append(item)
    return paths


def main(args: argparse.Namespace) -> int:
    from ecgcore.explain.calibration import calibrated_prediction, load_calibration
    from ecgcore.io import ECGFormatError, read_record
    from ecgcore.predict import compile_pays_off, guarded_predictions, load_predictor
    from ecgcore.progress import cli_progress

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    paths = record_paths(args.records)
    compiled = compile_pays_off(len(paths)) if args.compile == "auto" else args.compile == "on"
    try:
        predictor = load_predictor(
            args.run,
            runs_dir=args.runs_dir,
            which=args.checkpoint,
            precision=args.precision,
            compiled=compiled,
        )
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    calibration = load_calibration(args.run, args.runs_dir)
    errors: list[dict] = []
    read: list[str] = []  # paths of the records read, in order (results come back in this order)

    def records() -> Iterator:
        for path in paths:
            try:
                record = read_record(path, fs=args.fs)
            except ECGFormatError as exc:
                errors.append({"path": str(path), "error": str(exc)})
                continue
            read.append(str(path))
            yield record

    start = time.perf_counter()
    progress = None if args.quiet else cli_progress("predict")
    if calibration is not None and predictor.meta["task"] == "classification":
        results = []
        for record in records():
            results.append(calibrated_prediction(predictor, record, calibration))
            if progress:
                progress(len(results), len(paths), "records")
    else:
        results = guarded_predictions(
            predictor, records(), args.batch_size, total=len(paths), progress=progress
        )
    seconds = time.perf_counter() - start
    for result, path in zip(results, read):
        result["path"] = path
        print(json.dumps(result))
    for error in errors:
        print(json.dumps(error))
    print(
        f"{len(results)} records in {seconds:.1f} s ({len(results) / max(seconds, 1e-9):.1f} records/s, "
        f"{predictor.precision}); {len(errors)} unreadable",
        file=sys.stderr,
    )
    return 1 if errors else 0
