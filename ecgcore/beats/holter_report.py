"""The Holter report a clinician reads: summary rows, event rows, and a printable HTML page.

:func:`summary_sections` and :func:`event_rows` are the tables the Holter page shows and the report prints
(one source for both); :func:`report_html` is the whole report of a :class:`BeatAnalysis` (record,
duration, analysis settings with the model files, the artefact filter and the V override, the summary, the
hourly table, every event) and :func:`write_report` writes it atomically. The report says right under its
title that it is a research tool's automated analysis, not a diagnosis.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from ecgcore.beats.analysis import BeatAnalysis
from ecgcore.beats.events import SUSTAINED_S, HolterEvents, clock
from ecgcore.paths import atomic_write_text
from ecgcore.version import package_version

DISCLAIMER = (
    "Automated analysis by ECG Lab, a research tool: not a diagnosis. The beat classifier was trained on "
    "development data only and makes mistakes (missed or extra beats create or hide pauses, ectopic beats "
    "are missed or over-called). Every event must be checked on the ECG by a qualified reader."
)


def _bpm(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} bpm"


def _run(run: dict | None) -> str:
    if run is None:
        return "–"
    return f"{run['beats']} beats at {run['rate_bpm']:.0f} bpm, {run['time']}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _ectopy(x: dict, name: str, fast: str, fast_bpm: float) -> list[tuple[str, str]]:
    """The rows of one ectopic class (``summary["ventricular"]`` or ``["supraventricular"]``)."""
    return [
        (f"{name} beats", f"{x['beats']:,} ({x['burden_pct']:.2f} % of beats)"),
        ("Isolated", f"{x['isolated']:,}"),
        ("Couplets", f"{x['couplets']:,}"),
        ("Runs (≥ 3 beats)", f"{x['runs']:,}, of which {x['triplets']:,} triplets"),
        (
            f"{fast} (run > {fast_bpm:g} bpm)",
            f"{x[fast.lower()]:,}, of which {x[f'{fast.lower()}_sustained']:,} sustained (> {SUSTAINED_S:g} s)",
        ),
        ("Longest run", _run(x["longest_run"])),
        ("Fastest run", _run(x["fastest_run"])),
    ]


def summary_sections(summary: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """The summary as titled sections of (item, value) rows, in the order a Holter report gives them:
    heart rate, ventricular ectopy, supraventricular ectopy, pauses."""
    hr, v, s, p = (
        summary["heart_rate"],
        summary["ventricular"],
        summary["supraventricular"],
        summary["pauses"],
    )
    rules = summary["rules"]
    at = lambda name: f" at {hr[f'{name}_time']}" if hr[f"{name}_time"] else ""  # noqa: E731
    cycles = f"≥ {rules['min_cycles']} cycles"
    return [
        (
            "Heart rate",
            [
                ("Analysed", f"{clock(summary['duration_s'])} (h:mm:ss), {summary['beats']:,} beats"),
                ("Mean", _bpm(hr["mean_bpm"])),
                ("Minimum (1-min average)", _bpm(hr["min_bpm"]) + at("min")),
                ("Maximum (1-min average)", _bpm(hr["max_bpm"]) + at("max")),
                (f"Time below {rules['brady_bpm']:g} bpm", _minutes(hr["bradycardia_s"])),
                (f"Time above {rules['tachy_bpm']:g} bpm", _minutes(hr["tachycardia_s"])),
            ],
        ),
        (
            "Ventricular ectopy (V)",
            [
                *_ectopy(v, "V", "VT", rules["vt_bpm"]),
                (f"Bigeminy ({cycles})", f"{v['bigeminy_episodes']:,} episodes, {v['bigeminy_s']:g} s"),
                (f"Trigeminy ({cycles})", f"{v['trigeminy_episodes']:,} episodes, {v['trigeminy_s']:g} s"),
            ],
        ),
        ("Supraventricular ectopy (S)", _ectopy(s, "S", "SVT", rules["svt_bpm"])),
        (
            "Pauses",
            [
                (f"Pauses (RR > {rules['pause_s']:g} s)", f"{p['count']:,}"),
                (
                    "Longest",
                    "–" if p["longest_s"] is None else f"{p['longest_s']:.2f} s at {p['longest_time']}",
                ),
                ("Long RR across an artefact (not counted)", f"{p['artefact_excluded']:,}"),
            ],
        ),
    ]


def event_rows(events: HolterEvents) -> list[dict]:
    """One row per event: time, kind, beats, rate, duration (and its start in seconds, for jump-to)."""
    return [
        {
            "time": clock(e.start_s),
            "start (s)": round(e.start_s, 2),
            "event": e.kind,
            "beats": e.beats,
            "rate (bpm)": None if e.rate_bpm is None else round(e.rate_bpm),
            "duration (s)": round(e.duration_s, 2),
        }
        for e in events.events
    ]


def settings_rows(analysis: BeatAnalysis, summary: dict) -> list[tuple[str, str]]:
    """The analysis settings a reader needs to judge the report (``summary``: its events' summary)."""
    filt = analysis.artefact_filter
    return [
        ("Beat classifier", Path(analysis.model).name or "–"),
        (
            "Beat-vs-artefact filter",
            f"{Path(filt['model']).name}, rejects P(artefact) > {filt['threshold']:g}" if filt else "off",
        ),
        ("Detections rejected as artefact", f"{analysis.rejected.size:,}"),
        (
            "V calls overridden",
            "off (the model's calls)"
            if analysis.overridden is None
            else f"{int(analysis.overridden.sum()):,} V calls narrow and shaped like the dominant beat counted N",
        ),
        ("Event rules", analysis.event_rules.describe()),
        ("Heart-rate method", summary["heart_rate"]["method"]),
        ("Software", f"ECG Lab {package_version()}"),
    ]


def _table(rows: list[tuple[str, str]], heading: str = "") -> str:
    head = f"<tr><th colspan='2' class='sec'>{html.escape(heading)}</th></tr>" if heading else ""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{head}{body}</table>"


def _grid(rows: list[dict], empty: str) -> str:
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{'–' if v is None else html.escape(str(v))}</td>" for v in r.values())
        + "</tr>"
        for r in rows
    )
    return f"<table class='grid'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body { font-family: Helvetica, Arial, sans-serif; font-size: 11pt; margin: 2em; color: #111; }
h1 { font-size: 16pt; margin-bottom: 0.2em; } h2 { font-size: 13pt; margin-top: 1.4em; border-bottom: 1px solid #999; }
.warn { border: 2px solid #c53030; padding: 0.6em; background: #fff5f5; }
table { border-collapse: collapse; margin: 0.4em 0; } th, td { padding: 2px 8px; text-align: left; vertical-align: top; }
table.kv th { font-weight: normal; color: #333; min-width: 16em; } table.kv th.sec { font-weight: bold; color: #111; padding-top: 0.6em; }
table.grid th { border-bottom: 1px solid #333; } table.grid td { border-bottom: 1px solid #ddd; }
@media print { body { margin: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def report_html(analysis: BeatAnalysis, events: HolterEvents | None = None) -> str:
    """The printable Holter report of ``analysis`` as one self-contained HTML page (``events``: its
    :attr:`BeatAnalysis.events`, when the caller has them already)."""
    events = events if events is not None else analysis.events
    summary = events.summary
    hours = [
        {"hour": f"{row['hour']}–{row['hour'] + 1} h", "mean HR (bpm)": row["mean_hr_bpm"]}
        | {k: v for k, v in row.items() if k not in ("hour", "mean_hr_bpm")}
        for row in summary["per_hour"]
    ]
    title = f"Holter report: {analysis.record}"
    recording = [
        ("Record", analysis.record),
        ("Duration", f"{clock(analysis.n_samples / analysis.fs)} (h:mm:ss)"),
        ("Sampling rate, leads", f"{analysis.fs:g} Hz, {', '.join(analysis.channels)}"),
        ("Report made", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
    ]
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='warn'><b>Not a diagnosis.</b> {html.escape(DISCLAIMER)}</p>"
        f"<h2>Recording</h2>{_table(recording)}"
        f"<h2>Analysis settings</h2>{_table(settings_rows(analysis, summary))}"
        "<h2>Summary</h2>"
        + "".join(_table(rows, heading) for heading, rows in summary_sections(summary))
        + f"<h2>Per hour of recording</h2>{_grid(hours, 'No beats.')}"
        f"<h2>Events ({len(events.events):,})</h2>"
        "<p>Couplets, runs, bigeminy and trigeminy episodes and pauses, in time order (time from the "
        "record's start); isolated ectopic beats are counted above, not listed.</p>"
        f"{_grid([{k: v for k, v in r.items() if k != 'start (s)'} for r in event_rows(events)], 'No events.')}"
        "</body></html>"
    )


def write_report(analysis: BeatAnalysis, path: str | Path) -> Path:
    """Write :func:`report_html` of ``analysis`` to ``path`` atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, report_html(analysis))
    return path
