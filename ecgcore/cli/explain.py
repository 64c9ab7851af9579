"""``python -m ecgcore explain``: attributions per lead and wave for records, with faithfulness checks.

Prints one JSON object per record (one per line): the explained output, per-lead and per-wave
importance, the prediction, and with ``--eval`` the deletion test and the model-randomisation check.
``--calibrate temperature|platt`` fits calibration on the run's validation split, stores it with the
run (``calibration.json``) and prints the per-class ECE before and after.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ecgcore.explain.attributions import BASELINES, IG_FIRST_STEPS, IG_PRECISIONS, IG_TOLERANCE, METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("records", nargs="*", metavar="RECORD", help="record files (WFDB, .mat, .asc, CSV)")
    parser.add_argument("--run", required=True, help="run id (or run directory)")
    parser.add_argument(
        "--runs-dir", type=Path, default=None, help="run store directory (default: the data home's)"
    )
    parser.add_argument(
        "--method",
        choices=(*METHODS, "guided_gradcam"),
        default="ig",
        help="attribution method (default ig; image runs: gradcam, guided_gradcam, ig, saliency)",
    )
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        default=None,
        help="baseline for ig, gradientshap, occlusion and deletion (default: from the run's "
        "normalisation: zeros for z-scored, standardised or millivolt input, lead_mean for min-max)",
    )
    parser.add_argument(
        "--target",
        default=None,
        help="class name, target key (hr, pr, qrs, qt) or output index; "
        "default: the predicted class / the first target",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"Integrated Gradients: first step count, doubled until the completeness gap is under --tolerance "
        f"(default {IG_FIRST_STEPS}; image runs: exactly this many, default 32)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=IG_TOLERANCE,
        help=f"largest IG completeness gap |delta| / |f(x) - f(baseline)| accepted (default {IG_TOLERANCE})",
    )
    parser.add_argument(
        "--fixed-steps", action="store_true", help="exactly --steps IG steps, no convergence check"
    )
    parser.add_argument(
        "--precision",
        choices=IG_PRECISIONS,
        default="auto",
        help="IG precision: auto (bf16 where native, fp32 when bf16 cannot meet the tolerance), fp32, bf16",
    )
    parser.add_argument("--batch", type=int, default=None, help="IG steps per forward pass (default: all)")
    parser.add_argument(
        "--eval", action="store_true", help="also measure faithfulness (deletion, randomisation)"
    )
    parser.add_argument(
        "--randomisation",
        choices=("full", "cascading"),
        default="full",
        help="model randomisation for --eval (default full)",
    )
    parser.add_argument(
        "--png",
        type=Path,
        default=None,
        help="write the ECG with its heatmap to this PNG (with several records: FILE_<record id>.png)",
    )
    parser.add_argument("--fs", type=float, default=None, help="sampling rate of CSV records (Hz)")
    parser.add_argument(
        "--calibrate",
        choices=("temperature", "platt"),
        default=None,
        help="fit and store calibration for the (classification) run first",
    )


def main(args: argparse.Namespace) -> int:
    from ecgcore.data.preprocess import shape_record
    from ecgcore.explain.calibration import calibrate_run, run_directory
    from ecgcore.explain.report import attribution_figure, explain_record, save_figure
    from ecgcore.io import read_record
    from ecgcore.predict import load_predictor
    from ecgcore.train.checkpoint import jsonable

    if not args.records and not args.calibrate:
        raise ValueError("give at least one RECORD to explain (or --calibrate)")
    run_dir = run_directory(args.run, args.runs_dir)
    if args.calibrate:
        calib = calibrate_run(run_dir, method=args.calibrate)
        ece = {
            split: {k: round(m[k]["ece_mean"], 4) for k in ("before", "after")}
            for split, m in calib.metrics.items()
        }
        print(
            json.dumps(
                {
                    "run_id": str(args.run),
                    "calibration": args.calibrate,
                    "temperature": calib.temperature,
                    "mean_class_ece": ece,
                }
            )
        )
    if not args.records:
        return 0
    predictor = load_predictor(run_dir)
    if predictor.representation != "signal":
        from ecgcore.explain.images import explain_image_record

        for path in args.records:
            record = read_record(path, fs=args.fs)
            print(
                json.dumps(
                    explain_image_record(predictor, record, args.method, args.target, args.steps or 32)
                )
            )
        return 0
    for path in args.records:
        record = read_record(path, fs=args.fs)
        summary, attr = explain_record(
            predictor,
            record,
            method=args.method,
            baseline=args.baseline,
            target=args.target,
            n_steps=args.steps or IG_FIRST_STEPS,
            internal_batch_size=args.batch,
            tolerance=None if args.fixed_steps else args.tolerance,
            precision=args.precision,
            evaluate=args.eval,
            randomisation=args.randomisation,
            run_dir=run_dir,
        )
        if args.png is not None:
            png = (
                args.png
                if len(args.records) == 1
                else args.png.with_name(f"{args.png.stem}_{record.record_id}.png")
            )
            title = f"{record.record_id}: {args.method} attribution of '{summary['target']}' (baseline {summary['baseline'] or 'none'})"
            save_figure(
                attribution_figure(
                    shape_record(record, predictor.prep),
                    predictor.prep.fs,
                    predictor.prep.leads,
                    attr.values,
                    title,
                ),
                png,
            )
            summary["png"] = str(png)
        print(json.dumps(jsonable(summary)), flush=True)
    return 0
