"""Results: every run in the store, side-by-side comparison, evaluation plots and the reproduction tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ecgcore import experiments as ex
from ecgcore import viz
from ecgcore.experiments import PRESETS, list_experiments, to_markdown
from ecgcore.runs import worker
from ecgcore.runs.store import ACTIVE, RunStore
from pages.views.common import csv_download, guarded, html_download

RUN_COLUMNS = {
    "id": st.column_config.TextColumn("run", width="medium"),
    "created": st.column_config.TextColumn("created (UTC)"),
    "val_mae": st.column_config.NumberColumn("val MAE", format="%.3f"),
    "test_mae": st.column_config.NumberColumn("test MAE", format="%.3f"),
    "baseline_test_mae": st.column_config.NumberColumn("baseline test MAE", format="%.3f"),
    "val_auc": st.column_config.NumberColumn("val AUC", format="%.3f"),
    "test_auc": st.column_config.NumberColumn("test AUC", format="%.3f"),
    "baseline_test_auc": st.column_config.NumberColumn("baseline test AUC", format="%.3f"),
    "eta_s": None,
    "pid": None,
    "pid_start": None,
    "config_key": None,
    "best_checkpoint": None,
    "last_checkpoint": None,
    "total_steps": None,
    "step": None,
    "updated": None,
}


@st.cache_data(show_spinner="Predicting on the run's evaluation records ...", max_entries=16)
def evaluation_predictions(
    store_dir: str, run_id: str, split: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Truth and predictions of a finished run's best model on its ``val`` or ``test`` rows (cached)."""
    from ecgcore.runs import predict_split

    return predict_split(RunStore(store_dir), run_id, split)


def runs_table(store: RunStore) -> pd.DataFrame:
    """Filter widgets and the table of runs; returns the selected runs."""
    runs = store.list_runs()
    if not len(runs):
        st.info("No runs yet: start one on the Train page, or reproduce a table below.")
        return runs
    c1, c2, c3, c4 = st.columns(4)
    status = c1.multiselect("Status", sorted(runs["status"].unique()), key="r_status")
    task = c2.multiselect("Task", sorted(runs["task"].unique()), key="r_task")
    model = c3.multiselect("Model", sorted(runs["model"].unique()), key="r_model")
    text = c4.text_input("Data contains", key="r_data")
    keep = np.ones(len(runs), dtype=bool)
    for column, chosen in (("status", status), ("task", task), ("model", model)):
        if chosen:
            keep &= runs[column].isin(chosen).to_numpy()
    if text:
        keep &= runs["data"].str.contains(text, regex=False).to_numpy()
    shown = runs[keep].reset_index(drop=True)
    first = [
        "id",
        "status",
        "task",
        "model",
        "val_mae",
        "test_mae",
        "baseline_test_mae",
        "val_auc",
        "test_auc",
        "baseline_test_auc",
        "epoch",
        "device",
        "data",
        "created",
        "message",
        "error",
    ]
    hidden = {c for c, v in RUN_COLUMNS.items() if v is None}
    order = [c for c in first if c in shown] + [c for c in shown if c not in first and c not in hidden]
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        column_config=RUN_COLUMNS,
        column_order=order,
        key="r_runs",
    )
    csv_download(shown, "runs", key="dl_runs")
    return shown.iloc[event.selection.rows]


def compare(store: RunStore, chosen: pd.DataFrame) -> None:
    """Headline metrics and differing settings of the chosen runs, side by side, with their learning curves."""
    if chosen.empty:
        st.caption("Select runs in the table (tick the boxes) to compare them here.")
        return
    configs = {i: store.get_run(i)["config"] for i in chosen["id"]}
    keys = sorted({k for c in configs.values() for k in c})
    differing = [k for k in keys if len({str(c.get(k)) for c in configs.values()}) > 1] or ["model", "data"]
    settings = pd.DataFrame({i: {k: str(configs[i].get(k)) for k in differing} for i in chosen["id"]})
    headline = chosen.set_index("id")[[c for c in chosen if c.startswith(("val_", "test_", "baseline_"))]]
    metrics = headline.T.astype(float).round(4)
    st.write("**Settings that differ**")
    st.dataframe(settings, width="stretch")
    st.write("**Headline metrics** (baseline = the trivial predictor on the same records)")
    st.dataframe(metrics, width="stretch")
    csv_download(
        pd.concat([settings, metrics.astype(str)]).reset_index(names="field"), "comparison", key="dl_compare"
    )
    frames = {i: store.epochs(i) for i in chosen["id"]}
    frames = {i: f for i, f in frames.items() if len(f)}
    if frames:
        tasks = set(chosen["task"])
        metric = "mae" if tasks == {"regression"} else "auc" if tasks == {"classification"} else None
        fig = viz.learning_curves(frames, metric)
        st.plotly_chart(fig, key="r_curves")
        html_download(fig, "learning-curves", key="dl_curves")


def evaluation_plots(store: RunStore) -> None:
    """ROC and confusion matrix (classification) or scatter and Bland-Altman per interval (regression)."""
    runs = store.list_runs()
    done = runs[runs["status"] == "done"]["id"].tolist() if len(runs) else []
    if not done:
        st.caption("Evaluation plots appear once a run is done.")
        return
    c1, c2 = st.columns([3, 1])
    run_id = c1.selectbox("Run", done, key="r_plot_run")
    split = c2.radio("Split", ["val", "test"], horizontal=True, key="r_plot_split")
    summary = store.get_run(run_id)["summary"]
    task = summary.get("task")
    confusion = summary.get("metrics", {}).get(split, {}).get("confusion")
    if task == "classification" and confusion is not None and np.ndim(confusion) == 2:  # single-label: C x C
        fig = viz.confusion_matrix(confusion, summary["names"], title=f"Confusion matrix ({split})")
        st.plotly_chart(fig, key="r_confusion")
    if task == "classification":
        calibration(store, run_id)
    if not st.toggle(
        "Predict on the evaluation records for ROC / scatter / Bland-Altman plots", key="r_predict"
    ):
        return
    result = guarded(
        f"Predicting with run {run_id}", lambda: evaluation_predictions(str(store.root), run_id, split)
    )
    if result is None:
        return
    truth, pred, names = result
    if task == "classification":
        fig = viz.roc_curves(truth, pred, names)
        st.plotly_chart(fig, key="r_roc")
        html_download(fig, f"roc-{run_id}-{split}", key="dl_roc")
        table = pd.DataFrame(pred, columns=[f"p_{n}" for n in names])
        table.insert(
            0, "truth", [names[int(t)] for t in truth] if np.ndim(truth) == 1 else list(map(list, truth))
        )
    else:
        for j, key in enumerate(names):
            a, b = st.columns(2)
            a.plotly_chart(viz.predicted_vs_measured(truth[:, j], pred[:, j], key), key=f"r_scatter_{key}")
            b.plotly_chart(viz.bland_altman(truth[:, j], pred[:, j], key), key=f"r_ba_{key}")
        table = pd.DataFrame(
            {
                **{f"{k}_reference": truth[:, j] for j, k in enumerate(names)},
                **{f"{k}_predicted": pred[:, j] for j, k in enumerate(names)},
            }
        )
    csv_download(
        table, f"predictions-{run_id}-{split}", key="dl_predictions", label="Download predictions (CSV)"
    )


@st.fragment(run_every=10)
def keep_launching(name: str, preset: str, parallel: int, store_dir: str) -> None:
    """While this page is open: start the experiment's next runs whenever fewer than ``parallel`` are active.

    Runs already started keep training in their own processes if the page is closed; pressing
    Reproduce again later starts what is still missing (finished runs are reused, never retrained).
    """
    sources = ex.data_sources()
    planned = ex.plan(name, preset, sources, store_dir)
    count = {
        s: sum(p.status == s for p in planned) for s in ("done", "queued", "running", "missing", "waiting")
    }
    active = count["queued"] + count["running"]
    if count["missing"] and active < parallel:
        try:
            started = ex.launch_missing(name, preset, sources, store_dir, limit=parallel - active)
        except (ValueError, OSError) as exc:
            st.error(f"Could not start the runs: {exc}")
            return
        st.toast(f"Started {', '.join(started)}")
    st.progress(
        count["done"] / len(planned),
        text=f"{count['done']}/{len(planned)} runs done · {active} training · "
        f"{count['missing']} to start · {count['waiting']} waiting for their source runs "
        "(follow them on the Train page)",
    )


def calibration(store: RunStore, run_id: str) -> None:
    """Temperature (or Platt) scaling fitted on the validation split; ECE and reliability before and after."""
    from ecgcore.explain.calibration import calibrate_run, load_calibration

    st.subheader("Calibration")
    c1, c2 = st.columns([1, 3])
    method = c1.radio(
        "Method",
        ["temperature", "platt"],
        key="r_cal_method",
        horizontal=True,
        help="Fitted on the validation split and stored with the run; predictions then use it",
    )
    if c2.button("Calibrate this run", key="r_calibrate", icon=":material/tune:"):
        guarded("Calibrating", lambda: calibrate_run(run_id, method, runs_dir=store.root))
    calib = guarded("Reading the calibration", lambda: load_calibration(run_id, runs_dir=store.root))
    if calib is None:
        st.caption("Not calibrated yet.")
        return
    split = "test" if "test" in calib.metrics else "val"
    before, after = calib.metrics[split]["before"], calib.metrics[split]["after"]
    st.caption(
        f"{calib.method} scaling"
        + (f", T = {calib.temperature:.3f}" if calib.method == "temperature" else "")
        + f"; ECE on the {split} split (held out from the fit): mean over classes "
        f"{before['ece_mean']:.3f} before, {after['ece_mean']:.3f} after."
    )
    table = pd.DataFrame(
        {
            "ECE before": {c: r["ece"] for c, r in before["per_class"].items()},
            "ECE after": {c: r["ece"] for c, r in after["per_class"].items()},
        }
    )
    a, b = st.columns([1, 2])
    a.dataframe(table.round(4), width="stretch")
    if "top_label" in before:
        fig = viz.reliability_diagram(
            before["top_label"], after["top_label"], title=f"Top-label reliability ({split})"
        )
    else:
        name = a.selectbox("Class", list(before["per_class"]), key="r_cal_class")
        fig = viz.reliability_diagram(
            before["per_class"][name], after["per_class"][name], title=f"Reliability of {name} ({split})"
        )
    b.plotly_chart(fig, key="r_reliability")


def reproduction(store: RunStore) -> None:
    """The reproduction tables: plan, table with baseline and published numbers, and a reproduce button."""
    experiments = {e["name"]: e for e in list_experiments()}
    c1, c2, c3 = st.columns([2, 1, 1])
    name = c1.selectbox(
        "Table", list(experiments), format_func=lambda n: experiments[n]["title"], key="r_exp"
    )
    preset = c2.selectbox(
        "Preset",
        list(PRESETS),
        key="r_preset",
        help="quick: CPU-sized; paper: the published settings; tiny: a smoke test",
    )
    parallel = c3.number_input(
        "Runs at once",
        1,
        16,
        1,
        key="r_parallel",
        help="How many training processes the button starts (CPU: keep it at 1-2)",
    )
    st.caption(experiments[name]["description"] + "  \n" + PRESETS[preset].describe())
    sources = ex.data_sources()
    try:
        ex.check_data(name, sources)
    except ex.DataRequired as exc:
        st.info(str(exc))
        return
    planned = ex.plan(name, preset, sources, store.root)
    plan = ex.plan_frame(planned)
    counts = plan["status"].value_counts().to_dict()
    st.write("Runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    job = (name, preset, int(parallel))
    if st.button(
        "Reproduce: start what is missing",
        type="primary",
        key="r_reproduce",
        icon=":material/play_arrow:",
        disabled=not (counts.get("missing") or counts.get("waiting")),
    ):
        bar = st.progress(0.0, text="preparing the data ...")
        try:
            ex.prepare_data(
                name,
                preset,
                sources,
                progress=lambda d, t, m="": bar.progress(
                    min(d / t, 1.0) if t else 0.0, text=f"{m} ({d}/{t})"
                ),
            )
        except (ValueError, OSError) as exc:
            st.error(f"Could not prepare the data: {exc}")
        else:
            st.session_state["r_job"] = job
    if st.session_state.get("r_job") == job:
        if st.button("Stop starting runs", key="r_stop", icon=":material/pause:"):
            del st.session_state["r_job"]
            st.rerun()
        keep_launching(name, preset, int(parallel), str(store.root))
    with st.expander("Runs of this table"):
        st.dataframe(plan, hide_index=True, width="stretch")
    table = guarded("Building the table", lambda: ex.build_table(name, preset, sources, store.root, planned))
    if table is None:
        return
    st.markdown(to_markdown(table))
    csv_download(table, f"{name}-{preset}", key="dl_table")
    for note in ex.table_notes(name, preset, sources):
        st.caption(note)


st.title("Results")
store = RunStore()
worker.refresh_dead(store.root)
runs_tab, compare_tab, plots_tab, tables_tab = st.tabs(["Runs", "Compare", "Plots", "Reproduction tables"])
with runs_tab:
    chosen = runs_table(store)
    if len(chosen) and chosen["status"].isin(ACTIVE).any():
        st.caption("Some selected runs are still training: see them live on the Train page.")
with compare_tab:
    compare(store, chosen)
with plots_tab:
    evaluation_plots(store)
with tables_tab:
    reproduction(store)
