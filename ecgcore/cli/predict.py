"""``python -m ecgcore predict --run ID RECORD ...``: intervals or class probabilities, one JSON line per record.

A classification run calibrated with ``explain --calibrate`` also gets ``calibrated_probabilities``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("records", nargs="+", help="record files (WFDB .hea/.dat/.mat, DeepFake .asc, CSV)")
    parser.add_argument("--run", required=True, help="id of a finished run (or its directory)")
    parser.add_argument("--runs-dir", type=Path, help="run store directory (default: $ECGLAB_HOME/runs)")
    parser.add_argument("--fs", type=float, help="sampling rate of CSV records (Hz)")
    parser.add_argument(
        "--checkpoint", default="best", choices=["best", "last"], help="which checkpoint to use"
    )


def main(args: argparse.Namespace) -> int:
    from ecgcore.explain.calibration import calibrated_prediction, load_calibration
    from ecgcore.io import read_record
    from ecgcore.predict import load_predictor

    try:
        predictor = load_predictor(args.run, runs_dir=args.runs_dir, which=args.checkpoint)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    calibration = load_calibration(args.run, args.runs_dir)
    for path in args.records:
        record = read_record(path, fs=args.fs)
        start = time.perf_counter()
        result = calibrated_prediction(predictor, record, calibration)
        result["path"] = str(path)
        result["ms"] = round(1000 * (time.perf_counter() - start), 2)
        print(json.dumps(result))
    return 0
