"""ECGs as images: a record as chart, GAF, MTF and RP; hyperparameter studies; the efficiency plot."""

from __future__ import annotations

import streamlit as st

from dashboard.common import dataset, guarded, record, sources, upload_widget
from ecgcore import viz
from ecgcore.data.preprocess import Preprocessing, shape_record
from ecgcore.data.representations import LAYOUTS
from ecgcore.runs.store import RunStore

st.title("ECGs as images")
st.caption(
    "What the image models read: the record drawn on ECG paper (25 mm/s, 10 mm/mV) and the Gramian angular, "
    "Markov transition and recurrence fields of leads I, II and V2 (red, green, blue)."
)

tab_record, tab_studies, tab_efficiency = st.tabs(["Record as images", "Studies", "Efficiency"])

with tab_record:
    srcs = sources()
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
    label = c1.selectbox("Data", list(srcs), key="img_source")
    ds = guarded("Opening the data", lambda: dataset(srcs[label])[0])
    rec = None
    if ds is not None and len(ds):
        record_id = c2.selectbox("Record", list(ds.index["record_id"].astype(str)), key="img_record")
        rec = guarded("Reading the record", lambda: record(srcs[label], record_id))
    layout = c3.selectbox("Chart layout", list(LAYOUTS), key="img_layout")
    size = c4.select_slider("Field size", [32, 64, 128], value=64, key="img_size")
    with st.expander("Or upload a record"):
        uploaded = upload_widget("img_upload")
    rec = uploaded or rec
    if rec is not None:
        prep = Preprocessing(leads=rec.leads, fs=rec.fs, duration=rec.duration, normalize="none")
        fig = guarded(
            "Drawing the record",
            lambda: viz.representations_figure(shape_record(rec, prep), rec.fs, rec.leads, layout, size),
        )
        if fig is not None:
            st.plotly_chart(fig, width="stretch")

with tab_studies:
    from ecgcore.tune import load_studies
    from ecgcore.tune.study import default_storage, open_storage

    storage = st.text_input("Study storage", value=default_storage(), key="img_storage")
    import optuna

    summaries = guarded("Reading the studies", lambda: optuna.get_all_study_summaries(open_storage(storage)))
    names = sorted({s.study_name.split(".")[0] for s in summaries or []})
    if not names:
        st.info(
            "No study yet: start one with `python -m ecgcore tune --study NAME --space vision --data ...`."
        )
    else:
        name = st.selectbox("Study", names, key="img_study")
        for study in load_studies(name, storage):
            st.subheader(study.study_name)
            frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
            st.dataframe(frame, hide_index=True)
            for title, fig in viz.study_figures(study).items():
                st.plotly_chart(fig, width="stretch", key=f"{study.study_name}-{title}")

with tab_efficiency:
    from ecgcore.bench import efficiency_frame

    runs = RunStore().list_runs()
    done = runs[runs["status"] == "done"] if len(runs) else runs
    if not len(done):
        st.info("No finished run yet.")
    else:
        chosen = st.multiselect(
            "Runs",
            list(done["id"]),
            default=list(done["id"])[:8],
            key="img_runs",
            help="Parameters, multiply-accumulates and disk size against the run's headline test score",
        )
        if chosen:
            frame = guarded("Measuring the models", lambda: efficiency_frame(chosen))
            if frame is not None and len(frame):
                score = (
                    str(frame["score_name"].dropna().iloc[0])
                    if frame["score_name"].notna().any()
                    else "score"
                )
                st.plotly_chart(viz.efficiency_figure(frame, "score", score), width="stretch")
                st.dataframe(frame, hide_index=True)
