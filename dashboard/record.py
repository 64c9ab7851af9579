"""Record & saliency: one record (from a source or an upload) and one finished run: prediction and attributions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common import (
    csv_download,
    dataset,
    guarded,
    html_download,
    record,
    run_label,
    sources,
    upload_key,
    upload_widget,
)
from ecgcore import viz
from ecgcore.data.preprocess import shape_record
from ecgcore.explain import Attribution, explain_record, figure_bytes, render_report
from ecgcore.explain.report import BASELINE_NAMES, METHOD_NAMES, target_label, technical_lines
from ecgcore.io import Record
from ecgcore.predict import Predictor, load_predictor
from ecgcore.runs.store import RunStore
from ecgcore.vocab import TARGETS_BY_KEY

METHODS = METHOD_NAMES
BASELINES = BASELINE_NAMES


@st.cache_resource(show_spinner="Loading the model ...", max_entries=4)
def predictor(store_dir: str, run_id: str) -> Predictor:
    """The run's best model with its preprocessing, loaded once."""
    return load_predictor(run_id, runs_dir=store_dir)


@st.cache_data(show_spinner="Explaining the prediction ...", max_entries=16)
def explained(
    store_dir: str,
    run_id: str,
    _rec: Record,
    rec_key: str,
    method: str,
    baseline: str,
    target: int | None,
    evaluate: bool,
) -> tuple[dict, Attribution]:
    """:func:`ecgcore.explain.report.explain_record`: prediction, attribution, lead / wave shares (and faithfulness)."""
    return explain_record(
        predictor(store_dir, run_id),
        _rec,
        method=method,
        baseline=baseline,
        target=target,
        evaluate=evaluate,
        run_dir=RunStore(store_dir).run_dir(run_id),
    )


def pick_record() -> tuple[Record | None, str, pd.Series | None]:
    """Record chooser: a source and record id (default: the one open in the Explorer) or an upload."""
    how = st.radio("Record", ["From a data source", "Upload a file"], horizontal=True, key="s_how")
    if how == "Upload a file":
        rec = upload_widget("saliency")
        return rec, upload_key(rec) if rec is not None else "", None
    available = sources()
    last_spec, last_id = st.session_state.get("explorer_record", ("ptbxl:bundled", None))
    labels = list(available)
    default = next((i for i, label in enumerate(labels) if available[label] == last_spec), 0)
    c1, c2 = st.columns([2, 1])
    label = c1.selectbox("Source", labels, index=default, key="s_source")
    opened = guarded(f"Opening {label}", lambda: dataset(available[label]))
    if opened is None:
        return None, "", None
    ids = opened[0].index["record_id"].astype(str).tolist()
    record_id = c2.selectbox(
        "Record id", ids, index=ids.index(last_id) if last_id in ids else 0, key="s_record"
    )
    rec = guarded(f"Reading record {record_id}", lambda: record(available[label], record_id))
    return rec, f"{available[label]}:{record_id}", opened[0].row(record_id)


def show_prediction(summary: dict, row: pd.Series | None) -> None:
    """Class probabilities (raw, and calibrated when the run is), or predicted against measured intervals."""
    result = summary["prediction"]
    if result["task"] == "classification":
        c1, c2 = st.columns(2)
        c1.plotly_chart(viz.probabilities(result["probabilities"]), key="s_probs")
        if "calibrated_probabilities" in result:
            c2.plotly_chart(
                viz.probabilities(
                    result["calibrated_probabilities"],
                    title=f"Calibrated ({result['calibration']['method']})",
                ),
                key="s_cal",
            )
        else:
            c2.caption(
                "Not calibrated: calibrate the run on the Results page (Plots) for calibrated probabilities."
            )
        truth = [c for c in result["probabilities"] if row is not None and c in row and row[c] == 1]
        st.write(
            f"**Predicted:** {', '.join(result['predicted'])}"
            + (f" · **Labels in the dataset:** {', '.join(truth) or 'none'}" if row is not None else "")
        )
        return
    measured_values = summary.get("measured") or {}
    lines = []
    for k, v in result["intervals"].items():
        unit = TARGETS_BY_KEY[k].unit
        m = measured_values.get(k)
        label = row[k] if row is not None and k in row and pd.notna(row[k]) else None
        lines.append(
            f"**{TARGETS_BY_KEY[k].name}** {v:.0f} {unit} (model)"
            + (
                f" · {m:.0f} {unit} (measured from the ECG)"
                if m is not None
                else " · not measurable from the ECG"
            )
            + (f" · {label:.0f} {unit} (dataset label)" if label is not None else "")
        )
    st.markdown("  \n".join(lines))
    st.caption(
        "*model*: this run's prediction · *measured from the ECG*: ECG Lab's own measurement of this record · "
        "*dataset label*: the value the dataset shipped with"
    )


def technical_detail(summary: dict, run_id: str) -> None:
    """The method, scores and prediction table, for researchers (in an expander)."""
    with st.expander("Technical detail (for researchers)"):
        st.markdown(
            "  \n".join(technical_lines(summary))
            + f"  \nRun {run_id}; computed in {summary['attribution_time_s']:.2f} s."
        )
        result = summary["prediction"]
        if result["task"] == "regression":
            measured_values = summary.get("measured") or {}
            table = pd.DataFrame(
                [
                    {
                        "output": k,
                        "model": v,
                        "measured from the ECG": measured_values.get(k),
                        "model − measured": v - measured_values[k]
                        if measured_values.get(k) is not None
                        else None,
                        "unit": TARGETS_BY_KEY[k].unit,
                    }
                    for k, v in result["intervals"].items()
                ]
            )
            st.dataframe(
                table,
                hide_index=True,
                column_config={c: st.column_config.NumberColumn(format="%.1f") for c in table.columns[1:4]},
            )


st.title("Record & saliency")
st.caption("Which leads and which parts of the record drove a prediction. A research tool, not a diagnosis.")
store = RunStore()
runs = store.list_runs()
done = runs[runs["status"] == "done"]["id"].tolist() if len(runs) else []
rec, rec_key, row = pick_record()
if not done:
    st.info(
        "No finished run yet: train one on the Train page, then come back to see its predictions and saliency."
    )
    st.stop()
by_id = runs.set_index("id")
run_id = st.selectbox(
    "Run",
    done,
    key="s_run",
    format_func=lambda i: run_label({"id": i, **by_id.loc[i].to_dict()}),
    help="Finished runs, newest first: name (or id), task, data and validation score",
)
if rec is None:
    st.stop()
pred = guarded(f"Loading run {run_id}", lambda: predictor(str(store.root), run_id))
if pred is None:
    st.stop()
outputs = pred.meta.get("targets") or pred.meta.get("classes")
st.caption(
    f"Model {pred.meta['config']['model']} · {pred.meta['task']} · leads {', '.join(pred.prep.leads)} · "
    f"{pred.prep.fs:g} Hz · {pred.prep.duration:g} s"
)
st.subheader("Prediction")
prediction_box = st.container()
st.subheader("Saliency per lead")
c1, c2, c3 = st.columns(3)
method = c1.selectbox("Attribution method", list(METHODS), format_func=METHODS.get, key="s_method")
baseline = c2.selectbox(
    "Baseline",
    list(BASELINES),
    format_func=BASELINES.get,
    key="s_baseline",
    disabled=method in ("saliency", "gradcam"),
    help="What an absent signal is replaced by",
)
AUTO = -1
output = c3.selectbox(
    "Explain the output",
    [AUTO, *range(len(outputs))],
    key="s_output",
    format_func=lambda i: (
        ("the predicted class" if pred.meta["task"] == "classification" else target_label(outputs[0]))
        if i == AUTO
        else target_label(outputs[i])
    ),
)
evaluate = st.toggle(
    "Measure faithfulness (deletion curve against random deletion, model randomisation)", key="s_faithful"
)
done_explaining = guarded(
    "Explaining",
    lambda: explained(
        str(store.root), run_id, rec, rec_key, method, baseline, None if output == AUTO else output, evaluate
    ),
)
if done_explaining is None:
    st.stop()
summary, attr = done_explaining
with prediction_box:
    show_prediction(summary, row)
signal = guarded("Preparing the record", lambda: shape_record(rec, pred.prep))
if signal is None:
    st.stop()
fig = viz.saliency_paper(
    signal,
    pred.prep.fs,
    pred.prep.leads,
    attr.values,
    title=f"{rec.record_id}: what the model's {target_label(summary['target'])} leaned on ({METHODS[method]})",
)
st.plotly_chart(fig, key="s_heatmap", width="stretch")
st.caption(
    "The band-passed signal the model saw, in mV."
    + (" Grad-CAM has no lead axis: every lead shows the same time course." if not attr.lead_resolved else "")
)
i1, i2 = st.columns(2)
i1.plotly_chart(viz.lead_importance(summary["lead_importance"]), key="s_importance")
if summary.get("wave_importance"):
    i2.plotly_chart(
        viz.lead_importance(summary["wave_importance"], title="Share of attribution per wave"), key="s_waves"
    )
    i2.caption(
        "Time share of each wave (the chance level): "
        + ", ".join(f"{w} {v:.2f}" for w, v in summary["wave_coverage"].items())
    )
else:
    i2.info(summary.get("wave_note", "No per-wave summary."))
technical_detail(summary, run_id)
if evaluate:
    d, r = summary["faithfulness"]["deletion"], summary["faithfulness"]["randomisation"]
    f1, f2, f3 = st.columns(3)
    f1.metric("Deletion area (attribution order)", f"{d['auc']:.3f}")
    f2.metric("Deletion area (random order)", f"{d['random_auc']:.3f} ± {d['random_auc_sd']:.3f}")
    f3.metric(
        "Rank correlation with a randomised model",
        f"{r['spearman']:.2f}" if r["spearman"] is not None else "—",
    )
    st.caption(
        (
            "The attribution beats random deletion."
            if d["beats_random"]
            else "The attribution does NOT beat random deletion: do not trust this map."
        )
        + " A high rank correlation with the randomised model would mean the map shows the input, "
        "not what the model learned."
    )
run_dir = store.run_dir(run_id)


def report_file(fmt: str) -> bytes:
    """The per-record report (ECG with saliency, prediction, top leads and waves, model card) as PDF or PNG."""
    return figure_bytes(
        render_report(summary, attr, signal, pred.prep.fs, pred.prep.leads, pred.meta, run_dir), fmt
    )


d1, d2, d3, d4 = st.columns(4)
for column, fmt, mime in ((d1, "pdf", "application/pdf"), (d2, "png", "image/png")):
    column.download_button(
        f"Report ({fmt.upper()})",
        data=lambda fmt=fmt: report_file(fmt),
        mime=mime,
        file_name=f"report-{rec.record_id}-{run_id}.{fmt}",
        on_click="ignore",
        key=f"dl_{fmt}",
        icon=":material/download:",
    )
with d3:
    html_download(fig, f"saliency-{rec.record_id}-{run_id}", key="dl_saliency")
with d4:
    csv_download(
        pd.DataFrame(attr.values.T, columns=list(pred.prep.leads)),
        f"attribution-{rec.record_id}-{run_id}",
        key="dl_attr",
        label="Attributions (CSV)",
    )
