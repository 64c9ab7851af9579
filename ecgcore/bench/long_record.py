"""Long-record benchmark (owned by helper "holter"): the beat analysis of a day-long record."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecgcore import paths as ecg_paths
from ecgcore.progress import ProgressFn, report

LONG_RECORD_TARGET = {"seconds": 60.0, "peak_rss_mb": 1536.0}
#: The stages of the beat analysis whose CPU seconds the long-record benchmark reports, in pipeline order.
LONG_RECORD_STAGES = ("read", "detect", "features", "artefact", "classify", "cluster", "delineate")


def build_long_record(source: Path, hours: float = 24.0, fs: float = 250.0) -> Path:
    """A ``hours``-long 2-lead WFDB record (format 16, 250 Hz) made of real records concatenated.

    The records of ``source`` (e.g. the QT Database development folder) sampled at ``fs`` with two
    or more channels are taken in name order, their first two channels, repeated until the length
    is reached. Written once under the data home's ``bench`` folder and reused.
    """
    import wfdb

    n_total = int(hours * 3600 * fs)
    target = ecg_paths.subdir("bench") / f"long-{round(hours * 3600)}s-{Path(source).name}"
    if target.with_suffix(".hea").exists():
        return target
    parts = []
    for header in sorted(Path(source).glob("*.hea")):
        hdr = wfdb.rdheader(str(header.with_suffix("")))
        if hdr.fs == fs and hdr.n_sig >= 2:
            parts.append(header.with_suffix(""))
    if not parts:
        raise FileNotFoundError(f"{source}: no 2-lead WFDB records at {fs:g} Hz to build a long record from")
    digital = np.empty((n_total, 2), dtype=np.int16)
    pos, i = 0, 0
    while pos < n_total:
        rec = wfdb.rdrecord(str(parts[i % len(parts)]), channels=[0, 1], physical=True)
        chunk = np.clip(np.round(np.nan_to_num(rec.p_signal) * 200.0), -32768, 32767).astype(np.int16)
        take = min(len(chunk), n_total - pos)
        digital[pos : pos + take] = chunk[:take]
        pos, i = pos + take, i + 1
    tmp = target.with_name(target.name + "-tmp")
    wfdb.wrsamp(
        tmp.name,
        fs=fs,
        units=["mV", "mV"],
        sig_name=["ECG1", "ECG2"],
        d_signal=digital,
        fmt=["16", "16"],
        adc_gain=[200.0, 200.0],
        baseline=[0, 0],
        write_dir=str(target.parent),
    )
    # rename the data file first, then the header (which names it): a header exists only when complete
    tmp.with_suffix(".dat").replace(target.with_suffix(".dat"))
    header = tmp.with_suffix(".hea").read_text().replace(tmp.name, target.name)
    ecg_paths.atomic_write_text(target.with_suffix(".hea"), header)
    tmp.with_suffix(".hea").unlink()
    return target


def bench_long_record(
    source: Path, hours: float = 24.0, progress: ProgressFn | None = None, artefact_filter: bool = True
) -> dict[str, Any]:
    """Time and peak memory of the beat analysis (detect, classify, cluster, delineate) of a ``hours``-long record.

    The analysis runs as ``python -m ecgcore beats RECORD --no-beats`` in a child process, so its
    peak resident memory is the child's own (VmHWM), and the time is the command's wall time
    including Python's start-up and imports; ``cpu_seconds`` (user + system CPU time of the child) says
    how much of that wall time was spent computing rather than waiting for a shared machine's cores.
    ``stages`` are the CPU seconds of each stage of the analysis (:data:`LONG_RECORD_STAGES`, as the
    analysis measures them, per thread: the model runs beside feature extraction, so they can add up to
    more than the analysis's wall time), ``analysis_seconds`` its wall time without start-up and imports.
    ``artefact_filter=False`` runs it with ``--no-artefact-filter``; ``n_rejected`` counts the detections
    the filter rejected.
    """
    import resource
    import subprocess
    import sys

    report(progress, 0, 2, "building the long record")
    record = build_long_record(source, hours)
    report(progress, 1, 2, "analysing it")
    load_start = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # children's CPU adds up over calls
    started = time.perf_counter()
    # The child reports its own peak resident memory since exec (VmHWM, Linux): ru_maxrss of a child
    # also counts the parent's pages it was forked with.
    code = (
        "import sys; from ecgcore.cli import main; rc = main(sys.argv[1:]); "
        "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')] "
        "if sys.platform == 'linux' else []; "
        "sys.stderr.write('VmHWM_kB ' + (hwm[0] if hwm else '') + chr(10)); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "beats", str(record), "--no-beats", "--quiet"]
        + ([] if artefact_filter else ["--no-artefact-filter"]),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"beat analysis of {record} failed: {done.stderr.strip()[-500:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    hwm = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("VmHWM_kB")]
    peak_mb = int(hwm[0][0]) / 1024 if hwm and hwm[0] else usage.ru_maxrss / 1024
    import json

    summary = json.loads(done.stdout.splitlines()[-1])
    report(progress, 2, 2, "done")
    return {
        "record": str(record),
        "hours": hours,
        "fs": summary["fs"],
        "n_beats": summary["n_beats"],
        "counts": summary["counts"],
        "n_rejected": summary.get("n_rejected"),
        "stages": {stage: summary.get("timings", {}).get(stage) for stage in LONG_RECORD_STAGES},
        "analysis_seconds": summary.get("timings", {}).get("wall"),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "target": LONG_RECORD_TARGET,
        "meets_target": seconds < LONG_RECORD_TARGET["seconds"]
        and peak_mb < LONG_RECORD_TARGET["peak_rss_mb"],
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }


def format_long_record(result: dict) -> str:
    """:func:`bench_long_record` as plain text: the headline, then CPU seconds per stage."""
    target = result["target"]
    lines = [
        f"{result['hours']:g} h record, {result['n_beats']:,} beats: {result['seconds']:.1f} s wall "
        f"(analysis {result['analysis_seconds'] or float('nan'):.1f} s), {result['cpu_seconds']:.1f} CPU s, "
        f"peak {result['peak_rss_mb']:.0f} MB; target < {target['seconds']:g} s and < {target['peak_rss_mb']:g} MB: "
        f"{'met' if result['meets_target'] else 'NOT met'}",
        f"{result['cpu_count']} CPUs, load average {result['loadavg_start'][0]:.1f} -> {result['loadavg_end'][0]:.1f}",
        "stage      CPU s",
    ]
    lines += [
        f"{stage:<10} {seconds:6.1f}" for stage, seconds in result["stages"].items() if seconds is not None
    ]
    return "\n".join(lines)
