"""``python -m ecgcore measure``: intervals of records, or validation against wave annotations.

``measure RECORD ...`` prints one JSON object per record (HR, PR, QRS, QT, QTc, beats, fiducials,
flags, and the reason for every missing value). ``measure --eval-annotations ANNOTATOR RECORD ...``
prints one JSON object per fiducial: matched beats, mean and SD of (ours - annotation) in ms, the
CSE tolerance and pass/fail (``ludb`` = one annotation file per lead; anything else, e.g. ``q1c``,
is the extension of a QT Database annotation file).
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from ecgcore.io import read_record
from ecgcore.measure import measure_record
from ecgcore.measure.annotations import evaluate_record, summarize
from ecgcore.progress import cli_progress, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("records", nargs="+", metavar="RECORD", help="record files (WFDB .hea, .mat, .asc, .csv) or paths without extension")
    parser.add_argument("--eval-annotations", metavar="ANNOTATOR", default=None,
                        help="validate against manual annotations: 'ludb' (one file per lead) or a QTDB annotator extension such as q1c")
    parser.add_argument("--reference-support", type=int, default=None, metavar="K",
                        help="with --eval-annotations: reference = K-th earliest onset / K-th latest offset over the "
                             "annotated leads (default: the delineator's own rule, 2 for LUDB's 12 leads, 1 for QTDB; "
                             "1 = the single earliest / latest mark)")
    parser.add_argument("--fs", type=float, default=None, help="sampling rate for CSV records (Hz)")
    parser.add_argument("--brief", action="store_true", help="print only the intervals, beats and flags (no fiducial lists)")


def main(args: argparse.Namespace) -> int:
    if args.reference_support is not None and args.reference_support < 1:
        raise ValueError(f"--reference-support must be at least 1, got {args.reference_support}")
    if args.eval_annotations:
        progress = cli_progress("evaluating") if len(args.records) > 1 else None
        frames = []
        for i, path in enumerate(args.records):
            frames.append(evaluate_record(path, args.eval_annotations, args.reference_support))
            report(progress, i + 1, len(args.records), str(path))
        summary = summarize(pd.concat(frames, ignore_index=True))
        beats = summary.pop("beats")
        for name, row in summary.items():
            print(json.dumps({"fiducial": name, **row, "records": len(args.records), "annotated_beats": beats["annotated"],
                              "reference_support": args.reference_support or "auto"}))
        return 0
    for path in args.records:
        record = read_record(path, fs=args.fs)
        out = measure_record(record).to_dict()
        if args.brief:
            out = {k: v for k, v in out.items() if k not in ("r_peaks", "beat_fiducials")}
        print(json.dumps({"record": str(path), "leads": list(record.leads), **out}))
    return 0
