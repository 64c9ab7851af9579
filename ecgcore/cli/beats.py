"""``python -m ecgcore beats``: beat-by-beat analysis of long records, and its evaluation.

``beats RECORD ...`` prints one JSON object per record: sampling rate, number of beats, every beat's
sample index, EC57 class (N, S, V, F, Q), probability, cluster and cross-check flag, the morphology
clusters, the heart rate per minute, and each beat's PR, QRS and QT (ms, from its cluster's template in
each window) with a per-minute QT/QTc trend (``--no-intervals`` skips them). ``--run ID`` (a finished
beat-model run) or ``--model FILE`` chooses the classifier; the default is the shipped one
(assets/models/beats-default.safetensors).

``beats --eval-annotations atr RECORD ...`` scores detection and classes against the WFDB beat
annotations ``RECORD.atr`` within 150 ms (ANSI/AAMI EC57) over the annotated span: one JSON line per
class (``beat``, N, S, V, F, Q) with n_reference, se, ppv and f1, then a ``total`` line over the five
classes; ``--per-record`` first prints one line per record and class. ``--noise em:6`` adds synthetic
noise (bw, ma, em at the SNR in dB) before detection; ``--detection-only`` skips the classifier.

Detections pass the shipped beat-vs-artefact filter first (assets/models/beats-artefact.safetensors;
the rejected ones are listed under ``rejected`` in the JSON, and the evaluation scores the filtered
detections and says so on its ``beat`` line); ``--no-artefact-filter`` switches it off,
``--artefact-model FILE`` / ``--artefact-threshold P`` choose another model or threshold.

``--report FILE.html`` also writes each record's printable Holter report (summary, events, the analysis
settings; :mod:`ecgcore.beats.holter_report`) atomically; with several records FILE is a folder and each
report is ``<record>-holter.html`` in it. ``--pause-s`` sets the pause threshold (RR, s).

V calls the morphological cross-check contradicts (narrow and shaped like the dominant beat) are counted
N, and listed (``"called": "V"`` and their flag on the beat, ``n_overridden``); ``--no-v-override``
keeps the model's calls (the evaluation says which on its ``beat`` line). Then N calls that are premature
(RR before at most 0.80 of the local RR, followed by a longer RR), narrow and shaped like the dominant beat
in a regular rhythm are counted S and listed (``"called": "N"``, ``n_promoted``); ``--no-s-rule`` keeps
them N.

``beats train-default`` retrains the shipped classifier, ``beats train-artefact`` the shipped
beat-vs-artefact model (see assets/models/README.md). ``beats transfer-study [FOLDER]`` pretrains on the
MIT-BIH/SVDB excerpts and compares fine-tuning with training from scratch on the other records' patient
folds (``--folds K``, ``--fractions 0.1,0.3,1`` of the fine-tuning beats; :mod:`ecgcore.beats.pretrain`).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

from ecgcore.progress import cli_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "records",
        nargs="+",
        metavar="RECORD",
        help="WFDB records (path with or without .hea) or EDF/EDF+ files; or `train-default` / `train-artefact` / "
        "`transfer-study` [FOLDER]",
    )
    parser.add_argument(
        "--run", default=None, metavar="ID", help="classify with this finished beat-model run"
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="FILE",
        help="classify with this beat-model checkpoint (.safetensors)",
    )
    parser.add_argument(
        "--eval-annotations",
        default=None,
        metavar="ANNOTATOR",
        help="score against beat annotations (e.g. atr)",
    )
    parser.add_argument(
        "--per-record", action="store_true", help="with --eval-annotations: lines per record first"
    )
    parser.add_argument(
        "--noise",
        default=None,
        metavar="KIND:SNR",
        help="with --eval-annotations: add bw, ma or em noise at SNR dB",
    )
    parser.add_argument(
        "--channel",
        type=int,
        default=None,
        metavar="I",
        help="with --detection-only: detect on this channel alone (0 = first)",
    )
    parser.add_argument(
        "--detection-only", action="store_true", help="with --eval-annotations: score detection only"
    )
    parser.add_argument(
        "--clusters", type=int, default=None, metavar="K", help="k-means clusters before merging"
    )
    parser.add_argument(
        "--merge-threshold",
        type=float,
        default=None,
        help="template cosine similarity that merges two clusters",
    )
    parser.add_argument(
        "--no-artefact-filter",
        action="store_true",
        help="keep every detection (no beat-vs-artefact rejection)",
    )
    parser.add_argument(
        "--artefact-model",
        default=None,
        metavar="FILE",
        help="beat-vs-artefact checkpoint (default: the shipped one)",
    )
    parser.add_argument(
        "--artefact-threshold",
        type=float,
        default=None,
        metavar="P",
        help="reject detections whose P(artefact) exceeds P (default: the model's own)",
    )
    parser.add_argument(
        "--no-v-override",
        action="store_true",
        help="keep V calls the cross-check contradicts (narrow, shaped like the dominant beat) as V",
    )
    parser.add_argument(
        "--no-s-rule",
        action="store_true",
        help="keep premature N calls shaped like the dominant beat in a regular rhythm as N (no S rule)",
    )
    parser.add_argument("--no-beats", action="store_true", help="leave the per-beat list out of the JSON")
    parser.add_argument(
        "--no-intervals",
        action="store_true",
        help="skip the per-beat PR/QRS/QT delineation from the clusters (and the QT/QTc trend)",
    )
    parser.add_argument(
        "--report",
        default=None,
        metavar="FILE",
        help="also write the printable Holter report (HTML); a folder when several records are given",
    )
    parser.add_argument(
        "--pause-s",
        type=float,
        default=None,
        metavar="S",
        help="pause threshold of the Holter events: RR longer than S seconds (default 2.0)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="train-default / train-artefact: where to write the model (default assets/models)",
    )
    parser.add_argument(
        "--cross-validate",
        type=int,
        default=None,
        metavar="K",
        help="train-default: K-fold leave-records-out table instead of training the shipped model",
    )
    parser.add_argument(
        "--split",
        choices=("records", "de-chazal"),
        default="records",
        help="train-default: held-out development records, or de Chazal's DS1 (train) / DS2 (test)",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=3,
        metavar="K",
        help="transfer-study: patient folds of the target records",
    )
    parser.add_argument(
        "--fractions",
        type=_fractions,
        default=(0.1, 0.3, 1.0),
        metavar="F,F",
        help="transfer-study: shares of the fine-tuning beats (default 0.1,0.3,1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _fractions(text: str) -> tuple[float, ...]:
    """``--fractions 0.1,0.3,1`` as numbers (argparse names this function in its message on a bad value)."""
    return tuple(float(x) for x in text.split(","))


def main(args: argparse.Namespace) -> int:
    if args.records[0] == "train-default":
        from ecgcore.beats.train_default import main as train_main

        return train_main(
            args.records[1:],
            out=args.out,
            quiet=args.quiet,
            cross_validate_k=args.cross_validate,
            split=args.split,
        )
    if args.records[0] == "train-artefact":
        from ecgcore.beats.artefact import main as train_artefact

        return train_artefact(args.records[1:], out=args.out, quiet=args.quiet)
    if args.records[0] == "transfer-study":
        from ecgcore.beats.pretrain import main as transfer_study

        return transfer_study(args.records[1:], k=args.folds, fractions=args.fractions, quiet=args.quiet)
    if args.eval_annotations:
        return _evaluate(args)
    from ecgcore.beats.analysis import analyse_record
    from ecgcore.beats.cluster import MERGE_THRESHOLD, N_CLUSTERS
    from ecgcore.beats.events import EventRules

    rules = EventRules(pause_s=args.pause_s) if args.pause_s is not None else EventRules()
    several = len(args.records) > 1
    if args.report:
        _check_report(Path(args.report), several)
    classifier = _classifier(args)
    artefact = _artefact_filter(args)
    for path in args.records:
        progress = None if args.quiet else cli_progress(Path(path).name)
        result = analyse_record(
            path,
            classifier,
            n_clusters=args.clusters or N_CLUSTERS,
            merge_threshold=args.merge_threshold if args.merge_threshold is not None else MERGE_THRESHOLD,
            progress=progress,
            intervals=not args.no_intervals,
            artefact_model=artefact,
            override_v=not args.no_v_override,
            s_rule=not args.no_s_rule,
        )
        result.event_rules = rules
        if progress is not None:
            print(file=sys.stderr)
        if args.report:
            _write_report(result, Path(args.report), several)
        print(json.dumps(result.to_json(beats=not args.no_beats)), flush=True)
    return 0


def _check_report(report: Path, several: bool) -> None:
    """Refuse a ``--report`` destination that cannot be written before the analysis starts: a missing
    folder (one record), or a file where the folder of several records' reports should be."""
    if several and report.exists() and not report.is_dir():
        raise ValueError(f"--report {report}: with several records this is a folder, but a file is there")
    if not several and not report.parent.is_dir():
        raise FileNotFoundError(f"--report {report}: no folder {report.parent}")


def _write_report(result, report: Path, several: bool) -> None:
    """The record's Holter report at ``report`` (a folder of ``<record>-holter.html`` with ``several``)."""
    from ecgcore.beats.holter_report import write_report

    if several or report.is_dir():
        report = report / f"{result.record}-holter.html"
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
        write_report(result, report)
    except OSError as exc:  # e.g. no permission, disk full: a clear message, not a traceback
        raise ValueError(f"--report {report}: cannot write it ({exc.strerror or exc})") from exc
    print(f"report: {report}", file=sys.stderr)


def _classifier(args: argparse.Namespace):
    from ecgcore.beats.classify import load_classifier, run_checkpoint

    if args.run and args.model:
        raise ValueError("give --run or --model, not both")
    return load_classifier(run_checkpoint(args.run) if args.run else args.model)


def _artefact_filter(args: argparse.Namespace):
    """The beat-vs-artefact filter the options ask for (None with ``--no-artefact-filter``)."""
    from ecgcore.beats.artefact import load_artefact_model

    if args.no_artefact_filter:
        if args.artefact_model or args.artefact_threshold is not None:
            raise ValueError("--no-artefact-filter: leave out --artefact-model and --artefact-threshold")
        return None
    if args.artefact_threshold is not None and not 0.0 <= args.artefact_threshold <= 1.0:
        raise ValueError(f"--artefact-threshold {args.artefact_threshold}: expected a probability in [0, 1]")
    return load_artefact_model(args.artefact_model, args.artefact_threshold)


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from ecgcore.beats.analysis import analyse_record
    from ecgcore.beats.detect import detect_record
    from ecgcore.beats.evaluate import Counts, read_reference, score
    from ecgcore.beats.longrecord import open_record, read_span
    from ecgcore.beats.noise import add_noise, parse_noise
    from ecgcore.measure.rpeaks import detect_qrs

    noise = parse_noise(args.noise) if args.noise else None
    if (noise is not None or args.channel is not None) and not args.detection_only:
        raise ValueError("--noise and --channel score detection only: add --detection-only")
    classifier = None if args.detection_only else _classifier(args)
    artefact = _artefact_filter(args)
    total, n_rejected = Counts(), 0
    for path in args.records:
        info = open_record(path)
        ref = read_reference(info.path, args.eval_annotations)
        if noise is not None or args.channel is not None:  # whole record in memory: 15-30 min records
            signal = read_span(info, 0, info.n_samples).astype(np.float64)
            if args.channel is not None:
                if not 0 <= args.channel < signal.shape[0]:
                    raise ValueError(f"{info.path}: no channel {args.channel} (it has {signal.shape[0]})")
                signal = signal[[args.channel]]
            if noise is not None:
                signal = add_noise(
                    signal, info.fs, *noise, ref.samples, seed=zlib.crc32(info.record_id.encode())
                )
            samples = detect_qrs(signal, info.fs)
            kept = _kept(info, samples, artefact, signal)
            counts, rejected = score(ref, kept), samples.size - kept.size
        elif classifier is None:
            samples = detect_record(info)
            kept = _kept(info, samples, artefact)
            counts, rejected = score(ref, kept), samples.size - kept.size
        else:
            result = analyse_record(
                info,
                classifier,
                artefact_model=artefact,
                intervals=False,
                override_v=not args.no_v_override,
                s_rule=not args.no_s_rule,
            )
            counts, rejected = score(ref, result.samples, result.classes), result.rejected.size
        n_rejected += int(rejected)
        total.add(counts)
        if args.per_record:
            for line in counts.lines()[: 1 if classifier is None else None]:
                if line["n_reference"] or line["n_detected"]:
                    print(json.dumps({"record": info.record_id, **line}), flush=True)
    lines = total.lines()[:1] if classifier is None else total.lines()
    lines[0] |= {
        "artefact_filter": artefact.describe() if artefact else "off",
        "rejected": n_rejected,
    } | (
        {}
        if classifier is None
        else {
            "v_override": "off" if args.no_v_override else "on",
            "s_rule": "off" if args.no_s_rule else "on",
        }
    )
    for line in lines:
        print(json.dumps(line), flush=True)
    classes = [x for x in lines if x["class"] != "beat"]
    if any(x["n_detected"] for x in classes):
        n_ref = sum(x["n_reference"] for x in classes)
        correct = sum(total.true_ref.get(x["class"], 0) for x in classes)
        print(
            json.dumps(
                {
                    "class": "total",
                    "n_reference": n_ref,
                    "correct": correct,
                    "accuracy": round(correct / n_ref, 4) if n_ref else None,
                    "macro_f1": round(float(np.mean([x["f1"] or 0 for x in classes if x["n_reference"]])), 4),
                }
            )
        )
    return 0


def _kept(info, samples, artefact, signal=None):
    """The detections ``samples`` the artefact filter keeps (all of them when it is off)."""
    from ecgcore.beats.artefact import filter_record

    if artefact is None:
        return samples
    return samples[filter_record(info, samples, artefact, signal) <= artefact.threshold]
