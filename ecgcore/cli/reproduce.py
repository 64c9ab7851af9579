"""``python -m ecgcore reproduce EXPERIMENT --preset quick|paper|tiny --data ...``

The seed study's ``table1``, ``table2``, ``transfer``, ``fractions``; the PTB-XL -> G12EC study's
``g12ec-transfer``, ``g12ec-fractions``, ``ptbxl-fractions``, ``downsampling``, ``calibration``,
``frequency`` (these need ``--data ptbxl:DIR --data challenge:DIR``).

Trains the runs the experiment is missing (finished runs with the same configuration are reused),
then prints the markdown table (ours, trivial baseline, published) and writes it as .md, .csv and
.json (under the data directory's ``results/`` or ``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ecgcore.progress import cli_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ecgcore.experiments.definitions import EXPERIMENTS, PRESETS

    parser.add_argument("experiment", choices=list(EXPERIMENTS), help="which table to reproduce")
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="quick",
        help="quick: CPU-sized (minutes); paper: the published settings (GPU, full data); "
        "tiny: a smoke test whose numbers mean nothing",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KIND:DIR",
        help="ptbxl:DIR (the full PTB-XL, needed by table2, transfer, fractions and the G12EC study), "
        "deepfake:DIR (a DeepFake folder; table1 generates one when not given), challenge:DIR[;db=...] "
        "(G12EC in the Challenge layout, for the G12EC study); repeatable",
    )
    parser.add_argument("--plus", metavar="DIR", help="PTB-XL+ folder: interval labels for PTB-XL (optional)")
    parser.add_argument(
        "--runs-dir", type=Path, help="run store directory (default: the data directory's runs/)"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the table files (default: <data dir>/results/...)"
    )
    parser.add_argument(
        "--plan", action="store_true", help="only show which runs exist and which are missing"
    )


def main(args: argparse.Namespace) -> int:
    from ecgcore.experiments import (
        DataRequired,
        check_data,
        data_sources,
        get_experiment,
        get_preset,
        plan,
        plan_frame,
        reproduce,
    )

    experiment, preset = get_experiment(args.experiment), get_preset(args.preset)
    sources = data_sources(args.data, args.plus)
    from ecgcore.data.challenge import LeakageError

    try:
        check_data(experiment, sources)
    except (DataRequired, LeakageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.plan:
        print(plan_frame(plan(experiment, preset, sources, args.runs_dir)).to_string(index=False))
        return 0
    start = time.monotonic()
    result = reproduce(
        experiment,
        preset,
        sources,
        runs_dir=args.runs_dir,
        out_dir=args.out,
        progress=None,
        run_progress=lambda name: cli_progress(label=name[:28]),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(result.markdown)
    elapsed = time.monotonic() - start
    print(
        f"trained {len(result.trained)} runs, reused {len(result.reused)}, failed {len(result.failed)} "
        f"in {elapsed:.0f} s; wrote {', '.join(str(p) for p in result.paths.values())}",
        file=sys.stderr,
    )
    for name, why in result.failed.items():
        print(f"failed: {name}: {why}", file=sys.stderr)
    return 1 if result.failed else 0
