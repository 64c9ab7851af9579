"""``python -m ecgcore measure``: intervals of records, or validation against wave annotations.

``measure RECORD ...`` prints one JSON object per record (HR, PR, QRS, QT, QTc, beats, fiducials,
flags, and the reason for every missing value); with ``--figures DIR`` it also writes
``DIR/<record>.html``, the ECG with every beat's fiducials and the representative beats the intervals
were measured on, readable offline. ``measure --eval-annotations ANNOTATOR RECORD ...``
prints one JSON object per fiducial: matched beats, mean and SD of (ours - annotation) in ms, the
CSE tolerance and pass/fail (``ludb`` = one annotation file per lead; anything else, e.g. ``q1c``,
is the extension of a QT Database annotation file); ``--per-record`` first prints each record's own,
``--beat-classes atr`` then one line per beat class. ``--beat-templates dominant`` gives only the
beats like the representative beat fiducials (the default gives every beat its own group's).
"""

from __future__ import annotations

import argparse
import html
import json
import math
from pathlib import Path

import pandas as pd
from plotly.offline import get_plotlyjs

from ecgcore import viz
from ecgcore.io import Record, iter_chunks, read_record, record_info
from ecgcore.measure import Measurement, measure_record
from ecgcore.measure.annotations import evaluate_record, summarize
from ecgcore.progress import cli_progress, report
from ecgcore.vocab import LEADS_12, TARGET_KEYS

#: Records longer than this (s) are measured window by window even without ``--window``.
LONG_RECORD_S = 1800
DEFAULT_WINDOW_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "records",
        nargs="+",
        metavar="RECORD",
        help="record files (WFDB .hea, .mat, .asc, .csv) or paths without extension",
    )
    parser.add_argument(
        "--eval-annotations",
        metavar="ANNOTATOR",
        default=None,
        help="validate against manual annotations: 'ludb' (one file per lead) or a QTDB annotator extension such as q1c",
    )
    parser.add_argument(
        "--reference-support",
        type=int,
        default=None,
        metavar="K",
        help="with --eval-annotations: reference = K-th earliest onset / K-th latest offset over the "
        "annotated leads (default: the delineator's own rule, 2 for LUDB's 12 leads, 1 for QTDB; "
        "1 = the single earliest / latest mark)",
    )
    parser.add_argument(
        "--per-record",
        action="store_true",
        help="with --eval-annotations: first one JSON line per record (its mean and SD of ours - "
        "annotation per fiducial), to find the records furthest off",
    )
    parser.add_argument(
        "--beat-templates",
        choices=("group", "dominant"),
        default="group",
        help="per-beat fiducials: 'group' (default) from each beat's own morphology group's median beat, so "
        "ectopic, paced and wide beats get their own QRS and T boundaries; 'dominant': only the beats like "
        "the representative beat get fiducials (the representative beat's)",
    )
    parser.add_argument(
        "--beat-classes",
        metavar="ANNOTATOR",
        default=None,
        help="with --eval-annotations: also one JSON line per beat class (ANSI/AAMI EC57: N, S, V, F, Q) of "
        "the beat labels in this annotation file, e.g. atr; beats of records without one are 'unlabelled'",
    )
    parser.add_argument("--fs", type=float, default=None, help="sampling rate for CSV records (Hz)")
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        metavar="S",
        help=f"measure in windows of S seconds, one JSON line per window (with its start_s); records "
        f"longer than {LONG_RECORD_S // 60} minutes are measured in {DEFAULT_WINDOW_S:g} s windows anyway, "
        "read window by window so memory stays that of one window",
    )
    parser.add_argument(
        "--brief", action="store_true", help="print only the intervals, beats and flags (no fiducial lists)"
    )
    parser.add_argument(
        "--figures",
        metavar="DIR",
        type=Path,
        default=None,
        help="also write DIR/<record>.html: the ECG with every beat's fiducials and the representative "
        "beats (plotly.js is written once beside them, so the pages open offline)",
    )


def write_figures(record: Record, m: Measurement, folder: Path, name: str) -> Path:
    """Write ``folder/<name>.html``: ``record`` on ECG paper with its beat fiducials, then its representative beats."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "plotly.min.js"
    if not script.exists():
        script.write_text(get_plotlyjs(), encoding="utf-8")
    intervals = ", ".join(
        f"{label} {getattr(m, key):.0f}"
        for key, label in ((k, k.upper()) for k in TARGET_KEYS)
        if getattr(m, key) is not None
    )
    layout = "3x4" if set(record.leads) <= set(LEADS_12) else "rows"
    figures = [
        viz.ecg_paper(
            record.signal,
            record.fs,
            record.leads,
            layout=layout,
            fiducials=m.beat_fiducials,
            title=f"{name}: {intervals or 'no interval measured'}",
        )
    ]
    if m.median_beat.size:
        figures.append(
            viz.representative_beats(
                m.median_beat,
                m.median_fs,
                record.leads,
                m.representative_fiducials_s(),
                title="Representative beats and the global boundaries",
            )
        )
    body = "\n".join(fig.to_html(full_html=False, include_plotlyjs=False) for fig in figures)
    path = folder / f"{name}.html"
    path.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(name)}</title>'
        f'<script src="plotly.min.js"></script></head><body>{body}</body></html>',
        encoding="utf-8",
    )
    return path


def print_classes(diffs: pd.DataFrame) -> None:
    """One JSON line per EC57 beat class of the annotated beats' labels: counts, mean and SD per fiducial."""
    from ecgcore.beats.aami import CLASSES, SYMBOL_TO_CLASS

    classes = diffs["label"].map(lambda s: SYMBOL_TO_CLASS.get(s, "unlabelled" if s == "" else "other"))
    for name in (*CLASSES, "other", "unlabelled"):
        part = diffs[classes == name]
        if part.empty:
            continue
        one = summarize(part)
        counts = one.pop("beats")
        fiducials = {f: {k: row[k] for k in ("matched", "mean_ms", "sd_ms")} for f, row in one.items()}
        print(json.dumps({"class": name, "annotated_beats": counts["annotated"], **fiducials}))


def measure_windows(path: str, window: float, fs: float | None, brief: bool, per_group: bool = True) -> None:
    """Print one JSON line per window of ``window`` seconds of the record (read window by window)."""
    for chunk in iter_chunks(path, window, fs=fs):
        out = measure_record(chunk, per_group).to_dict()
        if brief:
            out = {k: v for k, v in out.items() if k not in ("r_peaks", "beat_fiducials")}
        print(
            json.dumps(
                {"record": str(path), "start_s": round(chunk.start_s, 3), "leads": list(chunk.leads), **out}
            )
        )


def main(args: argparse.Namespace) -> int:
    if args.reference_support is not None and args.reference_support < 1:
        raise ValueError(f"--reference-support must be at least 1, got {args.reference_support}")
    per_group = args.beat_templates == "group"
    if args.eval_annotations:
        progress = cli_progress("evaluating") if len(args.records) > 1 else None
        frames = []
        for i, path in enumerate(args.records):
            frames.append(
                evaluate_record(
                    path, args.eval_annotations, args.reference_support, per_group, args.beat_classes
                )
            )
            report(progress, i + 1, len(args.records), str(path))
            if args.per_record:
                one = summarize(frames[-1])
                print(
                    json.dumps(
                        {
                            "record": str(path),
                            "annotated_beats": one.pop("beats")["annotated"],
                            **{
                                name: {
                                    k: row[k]
                                    for k in ("matched", "mean_ms", "sd_ms", "annotation_only", "ours_only")
                                }
                                for name, row in one.items()
                            },
                        }
                    )
                )
        diffs = pd.concat(frames, ignore_index=True)
        summary = summarize(diffs)
        beats = summary.pop("beats")
        for name, row in summary.items():
            print(
                json.dumps(
                    {
                        "fiducial": name,
                        **row,
                        "records": len(args.records),
                        "annotated_beats": beats["annotated"],
                        "reference_support": args.reference_support or "auto",
                        "beat_templates": args.beat_templates,
                    }
                )
            )
        if args.beat_classes:
            print_classes(diffs)
        return 0
    if args.window is not None and not (math.isfinite(args.window) and args.window > 0):
        raise ValueError(f"--window must be a positive number of seconds, got {args.window}")
    names: set[str] = set()
    for path in args.records:
        window = args.window
        if window is None and record_info(path, fs=args.fs).duration > LONG_RECORD_S:
            window = DEFAULT_WINDOW_S
        if window is not None:
            measure_windows(path, window, args.fs, args.brief, per_group)
            continue
        record = read_record(path, fs=args.fs)
        m = measure_record(record, per_group)
        out = m.to_dict()
        if args.brief:
            out = {k: v for k, v in out.items() if k not in ("r_peaks", "beat_fiducials")}
        if args.figures is not None:
            stem = name = Path(path).stem
            while name in names:  # two records of the same name (from different folders)
                name = f"{stem}-{len(names)}"
            names.add(name)
            out["figure"] = str(write_figures(record, m, args.figures, name))
        print(json.dumps({"record": str(path), "leads": list(record.leads), **out}))
    return 0
