"""``python -m ecgcore bench``: training and prediction speed, printed as a table and saved as JSON."""

from __future__ import annotations

import argparse
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
    parser.add_argument("--out", type=Path, help="JSON output (default: $ECGLAB_HOME/bench/bench-TIME.json)")
    parser.add_argument(
        "--ig-steps", type=int, help="first step count of the Integrated Gradients timing (0: skip it)"
    )
    parser.add_argument(
        "--scaling",
        nargs="*",
        type=int,
        metavar="N",
        help="also time cache build and one training epoch (100 Hz) at N records each "
        "(default sizes 500 2000 8000; long: hours for 8000 on 2 busy cores)",
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
    result = run_bench(settings, progress=cli_progress("bench"))
    out = args.out or subdir("bench") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_json(out, result)  # written before the (long) scaling table, and again with it
    print(format_table(result), flush=True)
    if args.scaling is not None:
        sizes = tuple(args.scaling or (500, 2000, 8000))
        result["scaling"] = bench_scaling(sizes, progress=cli_progress("scaling"))
        atomic_write_json(out, result)
        print(format_scaling(result["scaling"]))
    print(f"written to {out}")
    return 0
