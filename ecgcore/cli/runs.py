"""``python -m ecgcore runs list | show ID | cancel ID | resume ID | repair``: the run store from the terminal.

``repair`` checks the store file (SQLite's quick check), rebuilds a damaged one from the run
directories (the damaged file is kept, renamed with a timestamp) and adds back run directories the
store does not list.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Columns ``runs list`` prints (headline metrics are added when present).
LIST_COLUMNS = ["id", "status", "task", "model", "data", "device", "epoch", "total_steps", "created"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "show", "cancel", "resume", "repair"])
    parser.add_argument("run_id", nargs="?", help="the run (show, cancel, resume)")
    parser.add_argument("--runs-dir", type=Path, help="run store directory (default: $ECGLAB_HOME/runs)")
    parser.add_argument(
        "--wait", action="store_true", help="resume: train in this process instead of a background one"
    )
    parser.add_argument("--json", action="store_true", help="list: print JSON records instead of a table")


def main(args: argparse.Namespace) -> int:
    from ecgcore.runs import worker
    from ecgcore.runs.store import RunStore, check_resumable, repair

    if args.action == "repair":
        print(repair(args.runs_dir).message())
        return 0
    store = RunStore(args.runs_dir)
    worker.refresh_dead(args.runs_dir)
    if args.action == "list":
        runs = store.list_runs()
        columns = [c for c in LIST_COLUMNS if c in runs.columns]
        columns += [c for c in runs.columns if c.startswith(("val_", "test_", "baseline_"))]
        if args.json:
            print(runs[columns].to_json(orient="records", indent=2))
        else:
            print(runs[columns].to_string(index=False) if len(runs) else f"no runs in {store.path}")
        return 0
    if not args.run_id:
        raise ValueError(f"runs {args.action} needs a run id (see: python -m ecgcore runs list)")
    try:
        run = store.get_run(args.run_id)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    if args.action == "show":
        run["epochs"] = store.epochs(args.run_id).to_dict(orient="records")
        print(json.dumps(run, indent=2, default=str))
    elif args.action == "cancel":
        print(json.dumps({"id": args.run_id, "status": worker.cancel(args.run_id, args.runs_dir)}))
    elif args.wait:
        from ecgcore.progress import cli_progress
        from ecgcore.runs import run_training

        check_resumable(store, args.run_id)
        summary = run_training(
            store.config(args.run_id),
            runs_dir=args.runs_dir,
            run_id=args.run_id,
            resume=True,
            progress=cli_progress("resume"),
        )
        print(json.dumps(summary, indent=2, default=str))
    else:
        worker.resume(args.run_id, args.runs_dir)
        log = store.run_dir(args.run_id) / worker.LOG_NAME
        print(json.dumps({"id": args.run_id, "status": "queued", "log": str(log)}))
    return 0
