"""Explorer: pick a source, filter and page through its records, see one on ECG paper with its intervals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.common import (
    csv_download,
    dataset,
    envelope,
    guarded,
    html_download,
    measured,
    record,
    source_key,
    sources,
    upload_key,
    upload_widget,
)
from ecgcore import viz
from ecgcore.data.labels import challenge_map
from ecgcore.io import Record, RecordChunk, RecordInfo, read_window
from ecgcore.vocab import LEADS_12, SUPERCLASSES, TARGET_KEYS, TARGETS_BY_KEY

UPLOAD = "Upload a record"
BUNDLED_SPEC = "ptbxl:bundled"
PAGE_SIZE = 20
SEX = {0: "male", 1: "female", "Male": "male", "Female": "female"}  # PTB-XL's 0/1, the Challenge's words
LAYOUTS = {"3x4 + rhythm strip (II)": "3x4", "one lead per row": "rows"}
#: Window lengths offered for a long record (s).
WINDOWS_S = (10, 30, 60)


def filter_index(index: pd.DataFrame, classes: tuple[str, ...] = ()) -> pd.DataFrame:
    """Filter widgets for the columns the index has (``classes``: the source's label columns, when it
    names them); returns the matching rows."""
    keep = np.ones(len(index), dtype=bool)
    cols = st.columns(4)
    classes = [c for c in classes if c in index] or (list(SUPERCLASSES) if "superclass" in index else [])
    if classes:
        chosen = cols[0].multiselect(
            "Class", classes, key="f_superclass", help="Records that have any of these classes"
        )
        if chosen:
            keep &= index[list(chosen)].sum(axis=1).to_numpy() > 0
    folds = cols[1].multiselect(
        "Fold",
        sorted(index["fold"].unique().tolist()),
        key="f_fold",
        help="PTB-XL strat_fold (1-8 train, 9 validation, 10 test)",
    )
    if folds:
        keep &= index["fold"].isin(folds).to_numpy()
    if "sex" in index:
        sexes = cols[2].multiselect("Sex", sorted(set(SEX.values())), key="f_sex")
        if sexes:
            keep &= index["sex"].map(SEX).isin(sexes).to_numpy()
    if "age" in index and index["age"].notna().any():
        lo, hi = int(index["age"].min()), int(index["age"].max())
        if lo < hi:
            age = cols[3].slider("Age", lo, hi, (lo, hi), key="f_age")
            if age != (lo, hi):
                keep &= index["age"].between(*age).to_numpy()
    interval_cols = st.columns(4)
    for col, key in zip(interval_cols, TARGET_KEYS):
        values = index[key].dropna()
        if len(values) and values.min() < values.max():
            lo, hi = float(np.floor(values.min())), float(np.ceil(values.max()))
            target = TARGETS_BY_KEY[key]
            chosen = col.slider(f"{target.name} ({target.unit})", lo, hi, (lo, hi), key=f"f_{key}")
            if chosen != (lo, hi):
                keep &= index[key].between(*chosen).to_numpy()
    return index[keep]


def decoded_labels(dx: str) -> str:
    """A Challenge record's ``# Dx`` codes as Challenge abbreviations (the code itself when unlisted)."""
    codes = [c for c in str(dx).split(",") if c]
    return ", ".join(d["abbreviation"] or d["code"] for d in challenge_map().decode(codes))


#: What the panel shows, measured from the signal: (summary key, name, unit).
MEASURED = (
    ("hr", "Heart rate", "bpm"),
    ("pr", "PR interval", "ms"),
    ("qrs", "QRS duration", "ms"),
    ("qt", "QT interval", "ms"),
    ("qtc_bazett", "QTc (Bazett)", "ms"),
    ("qtc_fridericia", "QTc (Fridericia)", "ms"),
)
LABEL_HELP = {
    "deepfake": "The dataset's label: the DeepFake set's ground-truth CSV",
    "ptbxl": "The dataset's label: PTB-XL+ 12SL intervals",
}
NO_LABEL_HELP = (
    "No label: this source has no interval labels (PTB-XL needs a PTB-XL+ folder, set in Settings)"
)


def show_measurement(rec: Record, key: str, row: pd.Series | None = None) -> dict | None:
    """The intervals measured from this ECG, as a row of numbers, and the dataset's labels beside them.

    The two can differ: a label is what the dataset shipped with, the measurement is what
    ``ecgcore.measure`` finds in the signal today. Returns the measurement (``None`` if not measurable).
    """
    result = measured(rec, key)
    if result is None:
        return None
    m = result["summary"]
    cols = st.columns(len(MEASURED) + 1)
    for col, (field, name, unit) in zip(cols, MEASURED):
        value = m.get(field)
        col.metric(
            name,
            f"{value:.0f} {unit}" if value is not None else "—",
            help=m.get("missing", {}).get(field) or "Measured from this ECG (median beats, all leads)",
        )
    cols[-1].metric("Beats", f"{m.get('n_beats', 0)}", help="Beats the measurement used")
    labelled = [
        f"{TARGETS_BY_KEY[k].name} {row[k]:.0f} {TARGETS_BY_KEY[k].unit}"
        for k in ("hr", "pr", "qrs", "qt")
        if row is not None and k in row and pd.notna(row[k])
    ]
    st.caption(
        "**Measured from the ECG** (above)"
        + (
            f" · **dataset label**: {' · '.join(labelled)}"
            if labelled
            else " · no dataset label for this record"
        )
        + (f" · flags: {', '.join(m['flags'])}" if m.get("flags") else "")
    )
    return result


def show_representative_beats(rec: Record, result: dict) -> None:
    """Every lead's median beat with the global boundaries the intervals were measured between."""
    if result["median_beat"].size == 0:
        return
    m = result["summary"]
    intervals = " · ".join(
        f"{label} {m[k]:.0f} ms"
        for k, label in (("pr", "PR"), ("qrs", "QRS"), ("qt", "QT"))
        if m.get(k) is not None
    )
    with st.expander("Representative beats: where the intervals were measured"):
        st.caption(
            "The median of the aligned beats in each lead (band-passed, as measured). One onset and "
            "offset holds for all leads: the earliest / latest that enough leads agree on."
        )
        fig = viz.representative_beats(
            result["median_beat"],
            result["median_fs"],
            rec.leads,
            result["representative_fiducials_s"],
            title=intervals,
        )
        st.plotly_chart(fig, key="representative_beats", width="stretch")


def show_record(rec: Record, key: str, row: pd.Series | None = None) -> None:
    """A record on ECG paper, full width, with layout and lead controls, calipers, measurements and downloads."""
    if set(LEADS_12) - set(rec.leads) and {"I", "II"} <= set(rec.leads):
        rec = rec.select(
            [lead for lead in LEADS_12 if lead in rec.leads or lead in ("III", "aVR", "aVL", "aVF")]
        )
        st.caption(f"Leads {', '.join(rec.metadata.get('derived', []))} derived from I and II.")
    result = show_measurement(rec, key, row)
    c1, c2, c3 = st.columns([1.6, 5, 1.2])
    layout = LAYOUTS[c1.radio("Layout", list(LAYOUTS), key="layout", horizontal=True)]
    shown = c2.pills(
        "Leads", rec.leads, selection_mode="multi", default=list(rec.leads), key=f"leads_{len(rec.leads)}"
    )
    marks = c3.toggle(
        "Fiducials", value=True, key="fiducials", help="Measured P onset, QRS on/offset, T offset per beat"
    )
    fiducials = None if result is None else result["beat_fiducials"]
    if not shown:
        st.info("Select at least one lead to draw.")
        return
    points = calipers(key, layout, shown)
    start_s = rec.start_s if isinstance(rec, RecordChunk) else 0.0
    span = (
        f"{viz.clock(start_s, rec.total / rec.fs)}–{viz.clock(start_s + rec.duration, rec.total / rec.fs)} "
        f"of {viz.clock(rec.total / rec.fs)}"
        if isinstance(rec, RecordChunk)
        else f"{rec.duration:.1f} s"
    )
    fig = viz.ecg_paper(
        rec.signal,
        rec.fs,
        rec.leads,
        layout=layout,
        shown=shown,
        fiducials=fiducials if marks else None,
        title=f"{rec.record_id} — {rec.fs:g} Hz, {span}, 25 mm/s, 10 mm/mV",
        calipers=[(t, y) for t, _, y, _ in points],
        start_s=start_s,
    )
    event = st.plotly_chart(
        fig,
        key="ecg_paper",
        width="stretch",
        on_select="rerun",
        selection_mode="points",
        config={"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    )
    if take_click(event, key, layout, shown):
        st.rerun()
    d1, d2 = st.columns(2)
    with d1:
        html_download(fig, f"ecg-{rec.record_id}", key="dl_ecg_html")
    with d2:
        signal = pd.DataFrame(rec.signal.T, columns=list(rec.leads))
        signal.insert(0, "time_s", start_s + np.arange(len(signal)) / rec.fs)
        csv_download(signal, f"ecg-{rec.record_id}", key="dl_ecg_csv", label="Download signal (CSV, mV)")
    if result is not None:
        show_representative_beats(rec, result)
    with st.expander("Metadata and labels", expanded=False):
        diagnoses = rec.metadata.get("diagnoses")
        if diagnoses:  # a Challenge record: its # Dx SNOMED codes, decoded
            st.dataframe(pd.DataFrame(diagnoses), hide_index=True)
        elif row is not None:
            labels = [c for c in SUPERCLASSES if c in row and row[c] == 1]
            st.write(
                f"**Superclasses:** {', '.join(labels) or 'none'}"
                + (f" · **SCP codes:** {row['scp_codes']}" if "scp_codes" in row else "")
                + (f" · **Report:** {row['report']}" if "report" in row else "")
            )
        st.json({k: v for k, v in rec.metadata.items()}, expanded=False)


def show_long(record: Path | Record | RecordInfo, row: pd.Series | None = None) -> None:
    """A record too long to draw whole: an overview of all of it (read in chunks, a fixed number of points)
    and a window of it on ECG paper, read alone (a WFDB ``.dat`` or EDF only over the window, a CSV in one
    chunked pass). A :class:`RecordInfo` stands for its file (with its rate, which a CSV needs)."""
    source, fs, kept = record, None, None
    if isinstance(record, RecordInfo):  # an upload: its messages name the file, not the folder it is kept in
        source, fs, kept = record.path, record.fs if record.format == "csv" else None, record.path.parent
    key = source_key(source) + (f"@{fs:g}Hz" if fs else "")  # a CSV's windows change with the rate given
    env = guarded("Reading the overview", lambda: envelope(source, key, fs), kept)  # a bad value far in
    if env is None:
        return
    bins = len(env.edges) - 1
    st.caption(
        f"{env.record_id}: {viz.clock(env.duration)} ({env.duration:,.0f} s) at {env.fs:g} Hz, too long to "
        f"draw whole. The overview shows each lead's lowest to highest value in {bins} stretches of "
        f"{env.duration / bins:.1f} s; click it, or move the window below, to see that stretch on ECG paper."
    )
    tag = hashlib.sha1(key.encode()).hexdigest()[:10]
    at, box, last = f"long_at_{tag}", f"long_box_{tag}", f"long_click_{tag}"
    c1, c2, c3, c4 = st.columns([2, 4, 2, 3], vertical_alignment="bottom")
    seconds = c1.radio("Window", WINDOWS_S, format_func=lambda s: f"{s} s", horizontal=True, key="long_len")
    latest = max(0, int(env.duration - seconds))

    def move(to: float) -> None:  # a callback, or before the widgets are drawn: both widgets follow
        st.session_state[at] = st.session_state[box] = min(max(0, int(to)), latest)

    if at not in st.session_state or st.session_state[at] > latest:
        move(st.session_state.get(at, 0))
    start = st.session_state[at]
    event = st.plotly_chart(
        viz.record_overview(
            env,
            (start, start + seconds),
            title=f"{env.record_id} — the whole record, {viz.clock(env.duration)}",
        ),
        key="long_overview",
        width="stretch",
        on_select="rerun",
        selection_mode="points",
        config={"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    )
    clicked = [p for p in (event.selection.points if event else []) if p.get("customdata") is not None]
    if clicked and float(clicked[-1]["x"]) != st.session_state.get(last):
        st.session_state[last] = float(clicked[-1]["x"])
        move(float(clicked[-1]["x"]) - seconds / 2)
        st.rerun()
    c2.slider(
        "Window start (s from the record's start)",
        0,
        max(latest, 1),
        key=at,
        on_change=lambda: move(st.session_state[at]),
        disabled=latest == 0,
    )
    c3.number_input(
        "Start at (s)",
        0,
        max(latest, 1),
        step=seconds,
        key=box,
        on_change=lambda: move(st.session_state[box]),
    )
    with c4:
        b1, b2 = st.columns(2)
        b1.button(
            "Earlier",
            key="long_prev",
            icon=":material/chevron_left:",
            disabled=start == 0,
            on_click=move,
            args=(start - seconds,),
        )
        b2.button(
            "Later",
            key="long_next",
            icon=":material/chevron_right:",
            disabled=start >= latest,
            on_click=move,
            args=(start + seconds,),
        )
    window = guarded(
        f"Reading {viz.clock(start)}–{viz.clock(start + seconds)} of {env.record_id}",
        lambda: read_window(source, start, seconds, fs=fs),
        kept,
    )
    if window is not None:
        show_record(window, f"{key}@{window.start}", row)


CALIPERS = "explorer_calipers"


def calipers(key: str, layout: str, shown: list[str]) -> list[tuple[float, float, float, str]]:
    """The caliper points of this record and view ``(time s, mV, plot y, lead)``, with their reading and a clear button."""
    view = (key, layout, tuple(shown))
    state = st.session_state.get(CALIPERS)
    if state is None or state["view"] != view:
        state = st.session_state[CALIPERS] = {"view": view, "points": [], "last": None}
    points = state["points"]
    c1, c2 = st.columns([6, 1], vertical_alignment="center")
    if len(points) == 2:
        (ta, va, _, la), (tb, vb, _, lb) = points
        reading = viz.caliper((ta, va), (tb, vb))
        c1.markdown(
            f"**Calipers** {la} {ta:.3f} s → {lb} {tb:.3f} s: **{reading.text()}**",
            help="Δt between the two points, the rate it would be as an RR interval, and the amplitude "
            "difference (each point relative to its own lead's baseline)",
        )
    elif len(points) == 1:
        c1.caption(
            f"Calipers: first point {points[0][3]} {points[0][0]:.3f} s; click a second point on the trace."
        )
    else:
        c1.caption(
            "Hover the trace for time and amplitude. Calipers: click two points on the trace for Δt (ms, bpm) "
            "and Δ amplitude (mV). Drag to zoom, double-click to reset."
        )
    if c2.button("Clear calipers", key="clear_calipers", disabled=not points):
        state["points"], state["last"] = [], None
        st.rerun()
    return points


def take_click(event, key: str, layout: str, shown: list[str]) -> bool:
    """Add the point just clicked on the ECG to the calipers (a third click starts a new pair); True if added."""
    state = st.session_state.get(CALIPERS)
    chosen = [p for p in (event.selection.points if event else []) if p.get("customdata") is not None]
    if state is None or state["view"] != (key, layout, tuple(shown)) or not chosen:
        return False
    p = chosen[-1]
    mv = p["customdata"][0] if isinstance(p["customdata"], list) else p["customdata"]
    point = (
        float(p["x"]),
        float(mv),
        float(p["y"]),
        str(p.get("legendgroup") or p.get("data", {}).get("name", "")),
    )
    if (point[0], point[2]) == state["last"]:
        return False
    state["last"] = (point[0], point[2])
    state["points"] = [*state["points"], point] if len(state["points"]) < 2 else [point]
    return True


def browse(filtered: pd.DataFrame, total: int, labels_note: str) -> pd.Series:
    """The filtered records a page at a time, with previous / next (also the ← / → keys); returns the current row.

    The current record is the one picked in the table, or stepped to with the buttons.
    """
    n = len(filtered)
    n_pages = (n - 1) // PAGE_SIZE + 1
    pos = min(int(st.session_state.get("explorer_pos", 0)), n - 1)

    def step(by: int) -> None:  # runs before the page: the table follows to the record's page
        moved = min(max(pos + by, 0), n - 1)
        st.session_state["explorer_pos"] = moved
        st.session_state["explorer_page"] = moved // PAGE_SIZE + 1
        _, rows = st.session_state.get("explorer_picked", (1, ()))
        st.session_state["explorer_picked"] = (moved // PAGE_SIZE + 1, rows)  # the old pick is not new

    b1, b2, b3 = st.columns([1, 1, 6], vertical_alignment="center")
    b1.button(
        "Previous",
        key="explorer_prev",
        disabled=pos == 0,
        shortcut="Left",
        icon=":material/chevron_left:",
        on_click=step,
        args=(-1,),
    )
    b2.button(
        "Next",
        key="explorer_next",
        disabled=pos >= n - 1,
        shortcut="Right",
        icon=":material/chevron_right:",
        on_click=step,
        args=(1,),
    )
    b3.caption(f"Record {pos + 1} of {n} ({total} in the source) · ← / → step through them")
    p1, p2 = st.columns([1, 5])
    page = p1.number_input("Page", 1, n_pages, key="explorer_page")
    p2.caption(f"page {page} of {n_pages}. {labels_note}")
    view = filtered.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    view = view.assign(diagnoses=view["dx"].map(decoded_labels)) if "dx" in view else view
    shown = view[
        [
            c
            for c in (
                "record_id",
                "database",
                "diagnoses",
                "patient_id",
                "fold",
                "split",
                "superclass",
                "age",
                "sex",
            )
            if c in view
        ]
    ].copy()
    if "sex" in shown:
        shown["sex"] = shown["sex"].map(SEX)
    config = {"record_id": st.column_config.TextColumn("record")}
    for k in TARGET_KEYS:
        if k in view:
            target = TARGETS_BY_KEY[k]
            column = f"{target.name.split()[0] if k != 'hr' else 'HR'} label ({target.unit})"
            shown[column] = [f"{v:.0f}" if pd.notna(v) else "—" for v in view[k]]
            config[column] = st.column_config.TextColumn(column, help=labels_note)
    if "report" in view:
        shown["report"] = view["report"]  # last: the long text
    table = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="explorer_table",
        height=260,
        column_config=config,
    )
    csv_download(filtered, "records", key="dl_records", label="Download the filtered list (CSV)")
    picked = (page, tuple(table.selection.rows))
    if picked != st.session_state.get("explorer_picked") and picked[1]:  # a new pick in the table wins
        pos = (page - 1) * PAGE_SIZE + picked[1][0]
    st.session_state["explorer_picked"] = picked
    st.session_state["explorer_pos"] = pos
    return filtered.iloc[pos]


def overview(index: pd.DataFrame) -> None:
    """Dataset overview charts."""
    if "superclass" in index:
        c1, c2 = st.columns(2)
        c1.plotly_chart(viz.class_distribution(index), key="ov_classes")
        c2.plotly_chart(viz.fold_distribution(index), key="ov_folds")
    else:
        st.plotly_chart(viz.fold_distribution(index), key="ov_folds")
    keys = [k for k in TARGET_KEYS if index[k].notna().any()]
    if keys:
        st.plotly_chart(viz.interval_histograms(index, keys), key="ov_intervals")
    else:
        st.caption(
            "This source has no interval labels (set a PTB-XL+ folder in Settings for PTB-XL's 12SL intervals)."
        )


st.title("Explorer")
available = sources()
choice = st.selectbox("Source", [*available, UPLOAD], key="explorer_source")
if choice == UPLOAD:
    uploaded = upload_widget("explorer", long_ok=True)
    if uploaded is not None and uploaded.duration > viz.LONG_RECORD_S:
        # a long WFDB, EDF or CSV upload is a RecordInfo: kept on disk, read window by window
        show_long(uploaded)
    elif uploaded is not None:
        show_record(uploaded, upload_key(uploaded))
    st.stop()

spec = available[choice]
opened = guarded(f"Opening {choice}", lambda: dataset(spec))
if opened is None:
    st.stop()
ds, notes = opened
for note in notes if spec != BUNDLED_SPEC else ():  # the bundled sample's missing record: said once, on Home
    st.caption(note)
records_tab, overview_tab = st.tabs(["Records", "Overview"])
with records_tab:
    with st.expander("Filters", expanded=False):
        filtered = filter_index(ds.index, tuple(getattr(ds, "classes", ())))
    if filtered.empty:
        st.info("No record matches the filters.")
    else:
        has_labels = any(k in ds.index and ds.index[k].notna().any() for k in ("hr", "pr", "qrs", "qt"))
        row = browse(
            filtered,
            len(ds.index),
            (LABEL_HELP.get(ds.kind, "The dataset's label") if has_labels else NO_LABEL_HELP)
            + "; the panel below the table is measured from the ECG.",
        )
        st.session_state["explorer_record"] = (spec, str(row["record_id"]))
        rec = guarded(f"Reading record {row['record_id']}", lambda: record(spec, str(row["record_id"])))
        if rec is not None:
            st.subheader(f"Record {row['record_id']}")
            if rec.duration > viz.LONG_RECORD_S:
                show_long(rec, row)
            else:
                show_record(rec, f"{spec}:{row['record_id']}", row)
with overview_tab:
    overview(ds.index)
