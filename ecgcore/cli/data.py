"""``python -m ecgcore data``: summarise a dataset folder, or generate DeepFake ECGs.

Examples
--------
``python -m ecgcore data summary --source ptbxl --path bundled``
``python -m ecgcore data summary --source challenge --path DIR --option labels=study18``
``python -m ecgcore data deepfake --out /tmp/deepfake --n 1000 --seed 0``
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from ecgcore.data import format_spec, open_source, source_kinds
from ecgcore.progress import cli_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    summary = sub.add_parser("summary", help="print a JSON summary of a dataset folder")
    summary.add_argument("--source", required=True, choices=source_kinds(), help="what the folder holds")
    summary.add_argument(
        "--path", required=True, help="the folder (for ptbxl, 'bundled' is the shipped sample)"
    )
    summary.add_argument(
        "--fs", type=float, default=None, help="ptbxl only: 100 or 500 Hz (default: the one present)"
    )
    summary.add_argument(
        "--plus-dir", default=None, help="ptbxl only: a PTB-XL+ folder for the interval labels"
    )
    summary.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any option of the source kind, repeatable (challenge: db=Georgia, labels=study18, ptbxl=DIR, "
        "seconds=10, long_s=60)",
    )
    deepfake = sub.add_parser("deepfake", help="generate DeepFake ECGs with the deepfake-ecg generator")
    deepfake.add_argument("--out", required=True, help="a new (or empty) folder to write into")
    deepfake.add_argument("--n", type=int, required=True, help="number of ECGs")
    deepfake.add_argument("--seed", type=int, default=0)
    deepfake.add_argument("--batch-size", type=int, default=64)
    deepfake.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")


def main(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _run(args)
        finally:
            for w in caught:  # one plain line each, on stderr (stdout stays pure JSON)
                print(f"warning: {w.message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    if args.action == "summary":
        if args.source != "ptbxl" and (args.fs is not None or args.plus_dir is not None):
            raise ValueError("--fs and --plus-dir apply to --source ptbxl only")
        spec = format_spec(args.source, args.path, fs=args.fs, plus_dir=args.plus_dir)
        dataset = open_source(spec + "".join(f";{option}" for option in args.option))
        print(json.dumps(dataset.describe(), indent=2))
        return 0
    from ecgcore.data.deepfake import generate_deepfake

    out = generate_deepfake(
        args.out,
        args.n,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        progress=cli_progress("deepfake", stream=sys.stderr),
    )
    print(json.dumps(open_source(format_spec("deepfake", out)).describe(), indent=2))
    return 0
