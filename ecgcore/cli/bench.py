"""``python -m ecgcore bench``: training and prediction speed, printed as a table and saved as JSON."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and short time budgets (about 2-4 minutes on a busy CPU)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    parser.add_argument(
        "--rounds", type=int, help="rounds of timed training steps (every configuration in turn)"
    )
    parser.add_argument("--batch-size", type=int, help="batch size of the trainer measurements")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument(
        "--images", action="store_true", help="only the image benchmark (charts/s, fields/s, 2D training)"
    )
    parser.add_argument(
        "--long-record",
        metavar="FOLDER",
        type=Path,
        help="instead: time and peak memory of the beat analysis of a day-long 2-lead 250 Hz record built "
        "from the real records of FOLDER (e.g. ../shared/qtdb-dev)",
    )
    parser.add_argument("--hours", type=float, default=24.0, help="with --long-record: its length")
    parser.add_argument(
        "--strips",
        nargs="+",
        metavar="FOLDER",
        type=Path,
        help="instead: R-peak detection on 10 s single-lead strips of annotated records (LUDB folders: every "
        "lead; folders of .atr records: 10 seeded windows per record, each lead), clean and with em/ma/bw noise "
        "at 12/6/0/-6 dB, Se/PPV/F1 at 150 and 75 ms per half of the patients (ecgcore.beats.strips; about 80 s "
        "idle for ../shared/ludb-dev and ../shared/qtdb-dev)",
    )
    parser.add_argument(
        "--strip-half",
        choices=("tune", "confirm", "both"),
        default="both",
        help="with --strips: which patients",
    )
    parser.add_argument(
        "--detector",
        choices=("detect_qrs", "product"),
        default="detect_qrs",
        help="with --strips: detect_qrs alone, or the product's path (each strip written as a WFDB record, "
        "detect_record, then the beat-vs-artefact filter, as `beats --eval-annotations` runs; ~8x slower)",
    )
    parser.add_argument("--out", type=Path, help="JSON output (default: $ECGLAB_HOME/bench/bench-TIME.json)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time one record through the compiled inference network (Predictor(compiled=True); the "
        "compile, about 5-25 s per record length on 2 cores, is reported apart)",
    )
    parser.add_argument(
        "--ig-steps", type=int, help="first step count of the Integrated Gradients timing (0: skip it)"
    )
    parser.add_argument(
        "--scaling",
        nargs="*",
        type=int,
        metavar="N",
        help="instead: cache build and one training epoch (100 Hz, fp32 and the default precision) at N records "
        "each (default 500 2000 8000), on records derived from 32 generated ones (each shifted in time: "
        "distinct, same cost); about 8-10 min on an idle 2-core CPU (estimated from its bench rates)",
    )
    parser.add_argument(
        "--sweep",
        nargs="*",
        metavar="PART",
        help="instead: sweep training settings at 500 Hz, interleaved (PARTs: batch threads fused layout compile "
        "onnx inference; default all): batch 8-64 x fp32/mixed, threads 1/2, fused AdamW, channels-last vs plain "
        "layout, torch.compile modes (compile time apart), ONNX Runtime vs torch prediction, the inference "
        "network's layouts and its compiled form (with 'compile'); --rounds/--batch-size apply "
        "(about 20-30 min idle, all parts; 'layout inference' about 2 min)",
    )
    parser.add_argument(
        "--scaling-default-only",
        action="store_true",
        help="with --scaling: time the epoch in the default precision only (skips the fp32 epoch)",
    )


def main(args: argparse.Namespace) -> int:
    from ecgcore.bench import BenchSettings, bench_scaling, format_scaling, format_table, run_bench
    from ecgcore.paths import atomic_write_json, subdir
    from ecgcore.progress import cli_progress

    if args.images:
        from ecgcore.bench import bench_images, format_images

        result = bench_images(
            device="cpu" if args.device == "auto" else args.device, progress=cli_progress("bench")
        )
        out = args.out or subdir("bench") / f"images-{time.strftime('%Y%m%d-%H%M%S')}.json"
        atomic_write_json(out, result)
        print(format_images(result))
        print(f"written to {out}")
        return 0
    if args.strips is not None:
        from ecgcore.beats.strips import DETECTORS, bench_strips, format_strips

        halves = ("tune", "confirm") if args.strip_half == "both" else (args.strip_half,)
        result = bench_strips(args.strips, DETECTORS[args.detector](), halves=halves)
        out = args.out or subdir("bench") / f"strips-{time.strftime('%Y%m%d-%H%M%S')}.json"
        atomic_write_json(out, result)
        for tolerance in (0.15, 0.075):
            print(format_strips(result, tolerance), end="\n\n")
        print(f"written to {out}")
        return 0
    if args.long_record is not None:
        import json

        from ecgcore.bench import bench_long_record, format_long_record

        result = bench_long_record(args.long_record, args.hours, progress=cli_progress("long record"))
        out = args.out or subdir("bench") / f"long-record-{time.strftime('%Y%m%d-%H%M%S')}.json"
        atomic_write_json(out, result)
        print()
        print(format_long_record(result))
        print(json.dumps(result))
        return 0
    settings = BenchSettings.quick(args.device) if args.quick else BenchSettings(device=args.device)
    if args.rounds is not None:
        settings.rounds = args.rounds
    if args.threads is not None:
        settings.threads = args.threads
    if args.batch_size is not None:
        settings.batch_size = args.batch_size
    if args.ig_steps is not None:
        settings.ig_steps = args.ig_steps
    settings.compile_predict = args.compile
    if args.sweep is not None:
        from ecgcore.bench.sweep import SWEEP_PARTS, format_sweep, run_sweep

        unknown = set(args.sweep) - set(SWEEP_PARTS)
        if unknown:
            raise SystemExit(
                f"bench --sweep: unknown part(s) {sorted(unknown)}; choose from {list(SWEEP_PARTS)}"
            )
        sweep_settings = BenchSettings(rounds=args.rounds or 2, steps=1, batch_size=args.batch_size or 32)
        sweep_settings.threads = args.threads
        result = run_sweep(sweep_settings, tuple(args.sweep or SWEEP_PARTS), progress=cli_progress("sweep"))
        out = args.out or subdir("bench") / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}.json"
        atomic_write_json(out, result)
        print(format_sweep(result))
        print(f"written to {out}")
        return 0
    if args.scaling is not None:
        sizes = tuple(args.scaling or (500, 2000, 8000))
        load_start = os.getloadavg()
        rows = bench_scaling(
            sizes,
            precisions=(True,) if args.scaling_default_only else (False, True),
            progress=cli_progress("scaling"),
        )
        result = {"scaling": rows, "loadavg_start": load_start, "loadavg_end": os.getloadavg()}
        out = args.out or subdir("bench") / f"scaling-{time.strftime('%Y%m%d-%H%M%S')}.json"
        atomic_write_json(out, result)
        print(format_scaling(rows))
        print(f"load average {load_start[0]:.1f} -> {result['loadavg_end'][0]:.1f}; written to {out}")
        return 0
    result = run_bench(settings, progress=cli_progress("bench"))
    out = args.out or subdir("bench") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_json(out, result)
    print(format_table(result), flush=True)
    print(f"written to {out}")
    return 0
