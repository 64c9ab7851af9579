"""Holter: beat-by-beat analysis of a long record (detect, classify, cluster, per-beat intervals), its Holter
summary (heart rate, ectopic counts and burden, pauses) and rhythm events with jump-to, a downloadable report,
the overview, QT/QTc trend and strips; WFDB or EDF, from a folder, an upload, or the shipped example record.

All the science is in :mod:`ecgcore.beats`; the figures come from :mod:`ecgcore.viz`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from ecgcore import paths, viz
from ecgcore.beats.aami import CLASSES
from ecgcore.beats.analysis import analyse_record
from ecgcore.beats.classify import load_classifier
from ecgcore.beats.detect import WINDOW_S
from ecgcore.beats.features import MORPH_SPAN_S
from ecgcore.beats.holter_report import DISCLAIMER, event_rows, report_html, summary_sections
from ecgcore.beats.intervals import MIN_TREND_BEATS
from ecgcore.beats.longrecord import EXAMPLE_RECORD, open_record, read_span, records_in, save_upload
from ecgcore.io import ECGFormatError

STRIP_S = 10.0

st.title("Holter")
st.caption(
    "Beat-by-beat analysis of a long recording: R peaks, EC57 beat classes (N, S, V, F, Q), morphology clusters. "
    "The shipped classifier was trained on development data only: a research tool, not a diagnosis."
)

SOURCES = ["a folder", "an upload", "the example record"]


def _open_example() -> None:
    st.session_state["holter_source"] = SOURCES[2]


st.button(
    "Open the example record",
    on_click=_open_example,
    help="QT Database sel853: 15 min, 2 leads, 250 Hz, shipped with ECG Lab (attribution in assets/README.md)",
)
source = st.radio("Record from", SOURCES, horizontal=True, key="holter_source")
record_path: Path | None = None
try:
    if source == SOURCES[2]:
        record_path = EXAMPLE_RECORD
        st.caption(
            "The example: QT Database record sel853 (PhysioNet, ODC Attribution licence; Laguna et al. 1997), "
            "a 15-minute excerpt of MIT-BIH Supraventricular Arrhythmia record 853 with supraventricular and "
            "ventricular beats. The shipped classifier was not trained on it, but it is a development record."
        )
    elif source == SOURCES[0]:
        folder = st.text_input(
            "Folder with WFDB records (.hea + .dat) or EDF files",
            value=paths.load_settings().get("holter_dir", ""),
        )
        if folder:
            found = records_in(folder)
            if not found:
                st.warning(f"{folder}: no WFDB records or EDF files there")
            else:
                record_path = st.selectbox("Record", found, format_func=lambda p: p.name)
    else:
        files = st.file_uploader(
            "Header and signal files (.hea + .dat), or one EDF/EDF+ file (.edf)", accept_multiple_files=True
        )
        if files:
            record_path = save_upload(
                [(f.name, f.getvalue()) for f in files], paths.subdir("uploads") / "holter"
            )
except (ECGFormatError, FileNotFoundError) as exc:
    st.error(str(exc))
    record_path = None

if record_path is None:
    st.stop()

try:
    info = open_record(record_path)
except ECGFormatError as exc:
    st.error(str(exc))
    st.stop()
st.write(f"**{info.record_id}**: {info.duration / 3600:.2f} h, {info.fs:g} Hz, leads {', '.join(info.leads)}")
key = f"holter:{record_path}"
if st.button("Analyse", type="primary") or key in st.session_state:
    if key not in st.session_state:
        try:
            classifier = load_classifier()
        except (FileNotFoundError, ValueError) as exc:
            st.error(str(exc))
            st.stop()
        bar = st.progress(0.0, text="starting ...")
        st.session_state[key] = analyse_record(
            info,
            classifier,
            progress=lambda d, t, m="": bar.progress(
                min(d / t, 1.0) if t else 0.0, text=f"{m} ({d * 100 // max(t, 1)} %)"
            ),
        )
        bar.empty()
else:
    st.stop()

result = st.session_state[key]
labels = [CLASSES[c] for c in result.classes]
counts = result.counts()
rejected = result.rejected  # detections the beat-vs-artefact filter rejected
cols = st.columns(len(CLASSES) + 2)
cols[0].metric("beats", f"{result.samples.size:,}")
for col, name in zip(cols[1:], CLASSES):
    col.metric(name, f"{counts[name]:,}")
cols[-1].metric(
    "rejected",
    f"{rejected.size:,}",
    help="Detections the beat-vs-artefact filter rejected: left out of the beats, drawn as grey ~ on the strip",
)


def show_strip(start: float, key: str, title: str = "") -> None:
    """The strip of ``STRIP_S`` seconds from ``start`` on ECG paper with beat labels, rejected detections,
    wave boundaries, and the table of the beats in view (``title`` before its "from ... s")."""
    first, last = int(start * info.fs), int((start + STRIP_S) * info.fs)
    inside = np.flatnonzero((result.samples >= first) & (result.samples < last))
    noise = rejected[(rejected >= first) & (rejected < last)]
    beats_here = result.intervals.select(inside) if result.intervals is not None else None
    st.plotly_chart(
        viz.holter_strip(
            read_span(info, first, last),
            info.fs,
            info.leads,
            start,
            np.concatenate([result.samples[inside], noise]) - first,
            [labels[i] for i in inside] + ["~"] * noise.size,
            boundaries=None
            if beats_here is None
            else {name: getattr(beats_here, name) - first for name in ("qrs_on", "qrs_off", "t_off")},
            title=f"{title} · from {start:.1f} s" if title else "",
        ),
        width="stretch",
        key=f"{key}_chart",
    )
    if beats_here is not None and inside.size:
        st.caption("Dotted lines: QRS onset and offset (blue), T offset (green) of each beat.")
        st.dataframe(
            pd.DataFrame(
                {
                    "time (s)": np.round(result.samples[inside] / result.fs, 2),
                    "class": [labels[i] for i in inside],
                    "cluster": result.cluster[inside],
                    "PR (ms)": np.round(beats_here.pr_ms, 0),
                    "QRS (ms)": np.round(beats_here.qrs_ms, 0),
                    "QT (ms)": np.round(beats_here.qt_ms, 0),
                }
            ),
            width="stretch",
            hide_index=True,
            key=f"{key}_beats",
        )


holter = result.events  # derived from the beats as they are now: a relabel or merge shows at once
hr_minutes = result.hr_per_minute()  # drawn in the Summary and the Overview tabs
summary_tab, events_tab, overview, intervals_tab, gallery, strip_tab, ectopics = st.tabs(
    ["Summary", "Events", "Overview", "Intervals", "Clusters", "Strip", "Ectopic beats"]
)
with summary_tab:
    hr, summary = holter.summary["heart_rate"], holter.summary
    bpm = lambda v: "–" if v is None else f"{v:.0f} bpm"  # noqa: E731
    cols = st.columns(6)
    cols[0].metric("HR min", bpm(hr["min_bpm"]), help=f"at {hr['min_time']}; {hr['method']}")
    cols[1].metric("HR mean", bpm(hr["mean_bpm"]), help=hr["method"])
    cols[2].metric("HR max", bpm(hr["max_bpm"]), help=f"at {hr['max_time']}; {hr['method']}")
    cols[3].metric("V burden", f"{summary['ventricular']['burden_pct']:.1f} %", help="V beats / all beats")
    cols[4].metric(
        "S burden", f"{summary['supraventricular']['burden_pct']:.1f} %", help="S beats / all beats"
    )
    cols[5].metric(
        "pauses", f"{summary['pauses']['count']:,}", help=f"RR > {summary['rules']['pause_s']:g} s"
    )
    sections = summary_sections(summary)
    left, right = st.columns(2)
    for column, part in ((left, sections[:1] + sections[3:]), (right, sections[1:3])):
        for heading, rows in part:
            column.table(pd.DataFrame(rows, columns=[heading, ""]).set_index(heading))
    st.plotly_chart(
        viz.hr_trend(hr_minutes, "Heart rate per minute, with the events", holter.starts()),
        width="stretch",
        key="holter_summary_hr",
    )
    st.caption(f"{DISCLAIMER} Rules: {result.event_rules.describe()}.")
    st.download_button(
        "Download the report (HTML, printable)",
        report_html(result, holter),
        file_name=f"{result.record}-holter.html",
        mime="text/html",
    )

with events_tab:
    rows = pd.DataFrame(event_rows(holter))
    if rows.empty:
        st.info("No couplets, runs, bigeminy or trigeminy episodes, or pauses in this record.")
    else:
        kinds = list(dict.fromkeys(rows["event"]))
        shown = st.multiselect("Show", kinds, default=kinds, key="holter_event_kinds")
        rows = rows.assign(index=range(len(rows)))[rows["event"].isin(shown)].reset_index(drop=True)
        st.dataframe(
            rows.drop(columns=["start (s)", "index"]),
            width="stretch",
            height=min(300, 35 * (len(rows) + 1) + 3),
            hide_index=True,
        )
        st.caption(
            "Isolated ectopic beats are counted in the Summary and listed in the Ectopic beats tab. "
            "A long RR with a rejected detection inside is listed as 'pause (artefact)' and not counted."
        )
        if len(rows):
            pick = st.selectbox(
                "Event",
                range(len(rows)),
                format_func=lambda i: (
                    f"{rows['time'].iloc[i]} · {rows['event'].iloc[i]} · {rows['beats'].iloc[i]} beats"
                ),
                key="holter_event",
            )
            event = holter.events[int(rows["index"].iloc[pick])]
            centre = event.start_s + event.duration_s / 2
            rate = "" if event.rate_bpm is None else f", {event.rate_bpm:.0f} bpm"
            show_strip(
                min(max(0.0, centre - STRIP_S / 2), max(0.0, info.duration - STRIP_S)),
                key="holter_event_strip",
                title=f"{event.kind} at {rows['time'].iloc[pick]}: {event.beats} beats{rate}",
            )

with overview:
    st.plotly_chart(viz.hr_trend(hr_minutes), width="stretch")
    st.plotly_chart(viz.beat_classes_over_time(result.samples, labels, result.fs), width="stretch")

with intervals_tab:
    report = result.intervals_report()
    if report is None:
        st.info("This analysis has no per-beat intervals.")
    else:
        medians = report["median_n_beats_ms"]
        cols = st.columns(3)
        for col, (name, key_ms) in zip(cols, (("PR", "pr_ms"), ("QRS", "qrs_ms"), ("QT", "qt_ms"))):
            value = medians[key_ms]
            col.metric(f"median {name} of N beats", "–" if value is None else f"{value:.0f} ms")
        st.plotly_chart(viz.interval_trend(report["trend_per_minute"]), width="stretch")
        st.caption(
            f"Each beat is delineated from its cluster's median beat in its {WINDOW_S / 60:g}-minute window, "
            f"placed at the beat's own aligned position: the beats of one cluster in one window share that "
            f"template's QT, so QT changes show from window to window, not within one (QTc follows each "
            f"minute's RR). "
            f"Trend: {report['trend_per_minute']['method']}; a minute with fewer than "
            f"{MIN_TREND_BEATS} such beats is left blank. Intervals come from {report['groups']}."
        )

with gallery:
    st.caption(
        "k-means over beat morphology, clusters merged by template similarity. Relabel a cluster to relabel all its "
        "beats; merge two clusters that are one morphology."
    )
    if len(result.clusters) > 1:
        ids = [c.id for c in result.clusters]
        name = {c.id: f"cluster {c.id} ({c.label}, {c.count:,} beats)" for c in result.clusters}
        one, two, go = st.columns([2, 2, 1], vertical_alignment="bottom")
        merged = one.selectbox(
            "Merge cluster", ids, index=len(ids) - 1, format_func=name.get, key=f"merge_from{len(ids)}"
        )
        into = two.selectbox(
            "into", [i for i in ids if i != merged], format_func=name.get, key=f"merge_into{len(ids)}"
        )
        if go.button("Merge"):
            moved = result.merge_clusters(into, merged)
            st.toast(f"{moved:,} beats moved into {name[into]}")
            st.rerun()
    for cluster in result.clusters[:12]:
        left, right = st.columns([3, 1])
        examples = result.morph[cluster.examples]
        left.plotly_chart(
            viz.cluster_template(cluster.template, examples, MORPH_SPAN_S, cluster.label, cluster.count),
            width="stretch",
            key=f"cluster{cluster.id}",
        )
        new = right.selectbox("class", CLASSES, index=CLASSES.index(cluster.label), key=f"label{cluster.id}")
        if new != cluster.label and right.button("Relabel", key=f"relabel{cluster.id}"):
            changed = result.relabel_cluster(cluster.id, new)
            st.toast(f"cluster {cluster.id}: {changed} beats relabelled {new}")
            st.rerun()

with ectopics:
    ectopic = np.flatnonzero(result.classes != 0)
    table = pd.DataFrame(
        {
            "time (s)": np.round(result.samples[ectopic] / result.fs, 2),
            "class": [labels[i] for i in ectopic],
            "probability": np.round(result.probability[ectopic], 3),
            "flag": [result.flags[i] for i in ectopic],
        }
    )
    st.dataframe(table, width="stretch", height=260)
    if len(table):
        pick = st.selectbox(
            "Jump to",
            range(len(table)),
            format_func=lambda i: f"{table['time (s)'].iloc[i]:.1f} s · {table['class'].iloc[i]}",
        )
        if st.button("Show in the strip"):
            st.session_state["holter_start"] = max(0.0, float(table["time (s)"].iloc[pick]) - STRIP_S / 2)
            st.info(f"The Strip tab now shows {st.session_state['holter_start']:.1f} s onwards.")

with strip_tab:
    start = st.number_input(
        "Start (s)",
        min_value=0.0,
        max_value=max(0.0, info.duration - STRIP_S),
        step=STRIP_S,
        key="holter_start",
    )
    show_strip(start, key="holter_strip")
