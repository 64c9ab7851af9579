"""``python -m ecgcore report --run ID RECORD --out FILE.pdf``: the per-record report as PDF and/or PNG.

``--out`` may be given several times (``--out r.pdf --out r.png``); the suffix picks the format.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ecgcore.explain.attributions import BASELINES, METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("record", metavar="RECORD", help="record file (WFDB, .mat, .asc, CSV)")
    parser.add_argument("--run", required=True, help="run id (or run directory)")
    parser.add_argument(
        "--out", type=Path, action="append", required=True, help="output .pdf or .png (repeatable)"
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=None, help="run store directory (default: the data home's)"
    )
    parser.add_argument("--method", choices=METHODS, default="ig", help="attribution method (default ig)")
    parser.add_argument(
        "--baseline", choices=BASELINES, default="zeros", help="attribution baseline (default zeros)"
    )
    parser.add_argument("--target", default=None, help="class name, target key or output index to explain")
    parser.add_argument("--eval", action="store_true", help="include the faithfulness figures")
    parser.add_argument("--fs", type=float, default=None, help="sampling rate of a CSV record (Hz)")


def main(args: argparse.Namespace) -> int:
    from ecgcore.explain.report import write_report
    from ecgcore.io import read_record

    record = read_record(args.record, fs=args.fs)
    paths, summary = write_report(
        args.run,
        record,
        list(args.out),
        runs_dir=args.runs_dir,
        method=args.method,
        baseline=args.baseline,
        target=args.target,
        evaluate=args.eval,
    )
    print(
        json.dumps(
            {"record_id": record.record_id, "target": summary["target"], "written": [str(p) for p in paths]}
        )
    )
    return 0
