"""Explorer: pick a source, filter and page through its records, see one on ECG paper with its intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ecgcore import viz
from ecgcore.data.labels import challenge_map
from ecgcore.io import Record
from ecgcore.vocab import LEADS_12, SUPERCLASSES, TARGET_KEYS, TARGETS_BY_KEY
from pages.views.common import (
    csv_download,
    dataset,
    guarded,
    html_download,
    measured,
    record,
    sources,
    upload_key,
    upload_widget,
)

UPLOAD = "Upload a record"
PAGE_SIZE = 20
SEX = {0: "male", 1: "female", "Male": "male", "Female": "female"}  # PTB-XL's 0/1, the Challenge's words
LAYOUTS = {"3x4 + rhythm strip (II)": "3x4", "one lead per row": "rows"}


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


def show_measurement(rec: Record, key: str) -> dict | None:
    """The measured intervals beside the ECG; returns the measurement (or ``None`` if not measurable)."""
    result = measured(rec, key)
    if result is None:
        return None
    m = result["summary"]
    for field, label, unit in (
        ("hr", "HR", "bpm"),
        ("pr", "PR", "ms"),
        ("qrs", "QRS", "ms"),
        ("qt", "QT", "ms"),
        ("qtc_bazett", "QTc (Bazett)", "ms"),
        ("qtc_fridericia", "QTc (Fridericia)", "ms"),
    ):
        value = m.get(field)
        st.metric(
            label, f"{value:.0f} {unit}" if value is not None else "—", help=m.get("missing", {}).get(field)
        )
    st.caption(
        f"{m.get('n_beats', 0)} beats" + (f"; flags: {', '.join(m['flags'])}" if m.get("flags") else "")
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
    """A record on ECG paper with layout and lead controls, its measurements, metadata and downloads."""
    if set(LEADS_12) - set(rec.leads) and {"I", "II"} <= set(rec.leads):
        rec = rec.select(
            [lead for lead in LEADS_12 if lead in rec.leads or lead in ("III", "aVR", "aVL", "aVF")]
        )
        st.caption(f"Leads {', '.join(rec.metadata.get('derived', []))} derived from I and II.")
    c1, c2, c3 = st.columns([2, 5, 1])
    layout = LAYOUTS[c1.radio("Layout", list(LAYOUTS), key="layout", horizontal=True)]
    shown = c2.pills(
        "Leads", rec.leads, selection_mode="multi", default=list(rec.leads), key=f"leads_{len(rec.leads)}"
    )
    marks = c3.toggle(
        "Fiducials", value=True, key="fiducials", help="Measured P onset, QRS on/offset, T offset per beat"
    )
    plot_col, numbers = st.columns([5, 1])
    with numbers:
        result = show_measurement(rec, key)
    fiducials = None if result is None else result["beat_fiducials"]
    if not shown:
        plot_col.info("Select at least one lead to draw.")
        return
    fig = viz.ecg_paper(
        rec.signal,
        rec.fs,
        rec.leads,
        layout=layout,
        shown=shown,
        fiducials=fiducials if marks else None,
        title=f"{rec.record_id} — {rec.fs:g} Hz, {rec.duration:.1f} s, 25 mm/s, 10 mm/mV",
    )
    plot_col.plotly_chart(fig, key="ecg_paper", width="stretch")
    d1, d2 = st.columns(2)
    with d1:
        html_download(fig, f"ecg-{rec.record_id}", key="dl_ecg_html")
    with d2:
        signal = pd.DataFrame(rec.signal.T, columns=list(rec.leads))
        signal.insert(0, "time_s", np.arange(len(signal)) / rec.fs)
        csv_download(signal, f"ecg-{rec.record_id}", key="dl_ecg_csv", label="Download signal (CSV, mV)")
    if result is not None:
        show_representative_beats(rec, result)
    with st.expander("Metadata and labels", expanded=row is not None):
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


def browse(filtered: pd.DataFrame, total: int) -> pd.Series:
    """One page of the filtered records as a table; returns the selected row (the page's first by default)."""
    n_pages = (len(filtered) - 1) // PAGE_SIZE + 1
    p1, p2 = st.columns([1, 5])
    page = p1.number_input("Page", 1, n_pages, 1, key="explorer_page")
    p2.caption(f"{len(filtered)} of {total} records, page {page} of {n_pages}")
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
                *TARGET_KEYS,
                "report",
            )
            if c in view
        ]
    ].copy()
    if "sex" in shown:
        shown["sex"] = shown["sex"].map(SEX)
    table = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="explorer_table",
        height=260,
        column_config={
            "record_id": st.column_config.TextColumn("record"),
            "hr": st.column_config.NumberColumn("HR (bpm)", format="%.0f"),
            "pr": st.column_config.NumberColumn("PR (ms)", format="%.0f"),
            "qrs": st.column_config.NumberColumn("QRS (ms)", format="%.0f"),
            "qt": st.column_config.NumberColumn("QT (ms)", format="%.0f"),
        },
    )
    csv_download(filtered, "records", key="dl_records", label="Download the filtered list (CSV)")
    picked = table.selection.rows
    return view.iloc[picked[0] if picked else 0]


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
    uploaded = upload_widget("explorer")
    if uploaded is not None:
        show_record(uploaded, upload_key(uploaded))
    st.stop()

spec = available[choice]
opened = guarded(f"Opening {choice}", lambda: dataset(spec))
if opened is None:
    st.stop()
ds, notes = opened
for note in notes:
    st.caption(note)
records_tab, overview_tab = st.tabs(["Records", "Overview"])
with records_tab:
    with st.expander("Filters", expanded=False):
        filtered = filter_index(ds.index, tuple(getattr(ds, "classes", ())))
    if filtered.empty:
        st.info("No record matches the filters.")
    else:
        row = browse(filtered, len(ds.index))
        st.session_state["explorer_record"] = (spec, str(row["record_id"]))
        rec = guarded(f"Reading record {row['record_id']}", lambda: record(spec, str(row["record_id"])))
        if rec is not None:
            st.subheader(f"Record {row['record_id']}")
            show_record(rec, f"{spec}:{row['record_id']}", row)
with overview_tab:
    overview(ds.index)
