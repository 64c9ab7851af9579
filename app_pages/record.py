"""Record & saliency: one record (from a source or an upload) and one finished run: prediction and attributions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecgcore import viz
from ecgcore.explain.attributions import Attribution, attribute, lead_importance, wave_coverage, wave_importance
from ecgcore.explain.faithfulness import deletion_test, randomisation_test
from ecgcore.io import Record
from ecgcore.runs.store import RunStore
from ecgcore.train.checkpoint import Predictor, load_predictor
from ecgcore.vocab import TARGETS_BY_KEY
from app_pages.common import (
    csv_download, dataset, guarded, html_download, measured, record, sources, upload_key, upload_widget,
)

METHODS = {"ig": "Integrated Gradients", "saliency": "Saliency (|gradient|)", "gradientshap": "GradientSHAP",
           "occlusion": "Occlusion (0.2 s windows per lead)", "gradcam": "Grad-CAM (last convolution)"}
BASELINES = {"zeros": "zeros", "lead_mean": "per-lead mean", "lowpass": "low-pass filtered copy"}


@st.cache_resource(show_spinner="Loading the model ...", max_entries=4)
def predictor(store_dir: str, run_id: str) -> Predictor:
    """The run's best model with its preprocessing, loaded once."""
    return load_predictor(run_id, runs_dir=store_dir)


@st.cache_data(show_spinner="Computing the attributions ...", max_entries=16)
def cached_attribution(store_dir: str, run_id: str, _rec: Record, rec_key: str, method: str, baseline: str,
                       target: int) -> Attribution:
    """:func:`ecgcore.explain.attributions.attribute` of one output for the record's model input."""
    pred = predictor(store_dir, run_id)
    return attribute(pred.model, pred.prepare(_rec), target, method, baseline, fs=pred.prep.fs)


@st.cache_data(show_spinner="Measuring faithfulness (deletion and model randomisation) ...", max_entries=8)
def cached_faithfulness(store_dir: str, run_id: str, _rec: Record, rec_key: str, _attr: Attribution,
                        attr_key: tuple) -> dict:
    """Deletion test against random deletion, and the model-randomisation rank correlation."""
    pred = predictor(store_dir, run_id)
    x = pred.prepare(_rec)
    baseline = _attr.baseline or "zeros"
    return {"deletion": deletion_test(pred.model, x, _attr, baseline=baseline, fs=pred.prep.fs),
            "randomisation": randomisation_test(pred.model, x, _attr, fs=pred.prep.fs)}


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
    record_id = c2.selectbox("Record id", ids, index=ids.index(last_id) if last_id in ids else 0, key="s_record")
    rec = guarded(f"Reading record {record_id}", lambda: record(available[label], record_id))
    return rec, f"{available[label]}:{record_id}", opened[0].row(record_id)


def show_prediction(pred: Predictor, rec: Record, rec_key: str, row: pd.Series | None) -> None:
    """Class probabilities, or predicted intervals beside the measured ones and the dataset's labels."""
    result = pred.predict(rec)
    if result["task"] == "classification":
        st.plotly_chart(viz.probabilities(result["probabilities"]), key="s_probs")
        truth = [c for c in result["probabilities"] if row is not None and c in row and row[c] == 1]
        st.write(f"**Predicted:** {', '.join(result['predicted'])}"
                 + (f" · **Labels in the dataset:** {', '.join(truth) or 'none'}" if row is not None else ""))
        return
    summary = (measured(rec, rec_key) or {"summary": {}})["summary"]
    table = pd.DataFrame([{
        "interval": f"{TARGETS_BY_KEY[k].name} ({TARGETS_BY_KEY[k].unit})",
        "predicted": v,
        "measured (ecgcore.measure)": summary.get(k),
        "dataset label": row[k] if row is not None and k in row and pd.notna(row[k]) else None,
    } for k, v in result["intervals"].items()])
    table["predicted - measured"] = table["predicted"] - pd.to_numeric(table["measured (ecgcore.measure)"])
    st.dataframe(table, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.1f")
                                                        for c in table.columns[1:]})


st.title("Record & saliency")
st.caption("Which leads and which parts of the record drove a prediction. A research tool, not a diagnosis.")
store = RunStore()
runs = store.list_runs()
done = runs[runs["status"] == "done"]["id"].tolist() if len(runs) else []
rec, rec_key, row = pick_record()
if not done:
    st.info("No finished run yet: train one on the Train page, then come back to see its predictions and saliency.")
    st.stop()
run_id = st.selectbox("Run", done, key="s_run")
if rec is None:
    st.stop()
pred = guarded(f"Loading run {run_id}", lambda: predictor(str(store.root), run_id))
if pred is None:
    st.stop()
outputs = pred.meta.get("targets") or pred.meta.get("classes")
st.caption(f"Model {pred.meta['config']['model']} · {pred.meta['task']} · leads {', '.join(pred.prep.leads)} · "
           f"{pred.prep.fs:g} Hz · {pred.prep.duration:g} s")
try:
    model_rec = rec.select(pred.prep.leads).resample(pred.prep.fs)
except ValueError as exc:  # a lead the model needs is missing from the record
    st.error(f"This record does not fit run {run_id}: {exc}")
    st.stop()
guarded("Predicting", lambda: show_prediction(pred, rec, rec_key, row))

st.subheader("Saliency per lead")
c1, c2, c3 = st.columns(3)
method = c1.selectbox("Method", list(METHODS), format_func=METHODS.get, key="s_method")
baseline = c2.selectbox("Baseline", list(BASELINES), format_func=BASELINES.get, key="s_baseline",
                        disabled=method in ("saliency", "gradcam"), help="What an absent signal is replaced by")
output = c3.selectbox("Explain the output", range(len(outputs)), format_func=lambda i: outputs[i], key="s_output")
attr = guarded("Computing the attributions",
               lambda: cached_attribution(str(store.root), run_id, rec, rec_key, method, baseline, int(output)))
if attr is not None:
    values = attr.values
    n = min(values.shape[1], model_rec.signal.shape[1])
    fig = viz.saliency_paper(model_rec.signal[:, :n], model_rec.fs, model_rec.leads, values[:, :n],
                             title=f"{rec.record_id}: {METHODS[method]}"
                                   + (f" (baseline {BASELINES[attr.baseline]})" if attr.baseline else "")
                                   + f" for {outputs[output]}, run {run_id}")
    st.plotly_chart(fig, key="s_heatmap", width="stretch")
    if not attr.lead_resolved:
        st.caption("Grad-CAM has no lead axis: every lead shows the same time course.")
    i1, i2 = st.columns(2)
    i1.plotly_chart(viz.lead_importance(lead_importance(values, model_rec.leads)), key="s_importance")
    fiducials = (measured(model_rec, f"{rec_key}@{model_rec.fs:g}") or {}).get("beat_fiducials")
    if fiducials:
        waves = guarded("Attribution per wave", lambda: wave_importance(values[:, :n], fiducials))
        if waves:
            i2.plotly_chart(viz.lead_importance(waves, title="Share of attribution per wave"), key="s_waves")
            i2.caption("Time share of each wave (chance level): " + ", ".join(
                f"{w} {v:.2f}" for w, v in wave_coverage(n, fiducials).items()))
    st.caption(f"Output {outputs[output]}: score {attr.score:.3f}"
               + (f", baseline score {attr.baseline_score:.3f}" if attr.baseline_score is not None else "")
               + (f", completeness gap {attr.delta:.3g}" if attr.delta is not None else ""))
    if st.toggle("Measure faithfulness (deletion curve, model randomisation)", key="s_faithful"):
        result = guarded("Faithfulness", lambda: cached_faithfulness(str(store.root), run_id, rec, rec_key, attr,
                                                                     (method, attr.baseline, int(output))))
        if result:
            d, r = result["deletion"], result["randomisation"]
            f1, f2, f3 = st.columns(3)
            f1.metric("Deletion area (attribution order)", f"{d['auc']:.3f}")
            f2.metric("Deletion area (random order)", f"{d['random_auc']:.3f} ± {d['random_auc_sd']:.3f}")
            f3.metric("Rank correlation with a randomised model",
                      f"{r['spearman']:.2f}" if r["spearman"] is not None else "—")
            st.caption(("The attribution beats random deletion." if d["beats_random"] else
                        "The attribution does NOT beat random deletion: do not trust this map.")
                       + " A high rank correlation with the randomised model means the map reflects the input, "
                         "not what the model learned.")
    d1, d2 = st.columns(2)
    with d1:
        html_download(fig, f"saliency-{rec.record_id}-{run_id}", key="dl_saliency")
    with d2:
        csv_download(pd.DataFrame(values[:, :n].T, columns=list(model_rec.leads)),
                     f"attribution-{rec.record_id}-{run_id}", key="dl_attr", label="Download attributions (CSV)")
