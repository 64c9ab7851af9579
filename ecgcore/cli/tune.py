"""``python -m ecgcore tune --study NAME --space FILE|preset --trials N``: a staged Optuna search.

Every trial is a run of the run store. The study lives in ``studies.db`` beside the run store unless
``--storage`` gives another database URL; start the same command in several processes or on several
machines (with one shared ``--storage``) to share the trials. Running it again resumes. Training options
(``--data``, ``--model``, ``--representation``, ``--epochs`` ...) override the space's base configuration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ecgcore.cli.train import _OPTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, help="study name (stages are stored as NAME.STAGE)")
    parser.add_argument("--space", required=True, help="space JSON file or preset (vision, quick)")
    parser.add_argument("--trials", type=int, default=25, help="trials of each sampled (TPE) stage")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite in the run store's folder)")
    parser.add_argument("--runs-dir", type=Path, help="run store directory (default: $ECGLAB_HOME/runs)")
    for option in (
        "--data",
        "--model",
        "--model-kwargs",
        "--representation",
        "--task",
        "--epochs",
        "--batch-size",
        "--leads",
        "--fs",
        "--duration",
        "--max-records",
        "--seed",
        "--device",
    ):
        if option in _OPTIONS:
            _, kind, text = _OPTIONS[option]
            parser.add_argument(option, type=kind, default=None, help=text)


def main(args: argparse.Namespace) -> int:
    from ecgcore.tune import load_space, run_study

    space = load_space(args.space)
    overrides = {
        field: getattr(args, option[2:].replace("-", "_"))
        for option, (field, _, _) in _OPTIONS.items()
        if getattr(args, option[2:].replace("-", "_"), None) is not None
    }
    result = run_study(
        args.study, space, args.trials, storage=args.storage, runs_dir=args.runs_dir, overrides=overrides
    )
    print(json.dumps(result, indent=1))
    return 0
