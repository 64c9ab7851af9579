"""Results: every run in the store, side-by-side comparison, evaluation plots and the reproduction tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import wide as wide_tables
from dashboard.common import csv_download, guarded, html_download, metric_label
from ecgcore import experiments as ex
from ecgcore import viz
from ecgcore.experiments import PRESETS, list_experiments
from ecgcore.runs import worker
from ecgcore.runs.store import ACTIVE, RunStore
from ecgcore.vocab import TARGETS_BY_KEY

RUN_COLUMNS = {
    "name": st.column_config.TextColumn("name", width="medium"),
    "tags": st.column_config.TextColumn("tags"),
    "notes": st.column_config.TextColumn("notes"),
    "epoch": st.column_config.TextColumn("epoch", help="epochs trained / planned"),
    "epochs_planned": None,
    "id": st.column_config.TextColumn("run", width="medium"),
    "created": st.column_config.TextColumn("created (UTC)"),
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


def metric_columns(columns) -> list[str]:
    """The headline metric columns among ``columns``: validation, test, then baseline, as they come."""
    return [c for prefix in ("val_", "test_", "baseline_") for c in columns if str(c).startswith(prefix)]


def metric_config(column: str):
    """A number column titled with the metric's friendly name and unit."""
    label, note = metric_label(column)
    return st.column_config.NumberColumn(
        label, help=note or None, format="%.1f" if note in ("ms", "bpm") else "%.3f"
    )


def epoch_text(epoch, planned) -> str:
    """``epoch 6/6`` as the Train page says it (the store counts epochs from 0)."""
    done = 0 if epoch is None or pd.isna(epoch) else int(epoch) + 1
    return f"{done}/{int(planned)}" if planned is not None and pd.notna(planned) else f"{done}"


def runs_table(store: RunStore) -> pd.DataFrame:
    """Filter widgets and the table of runs (sortable by any column header); returns the selected runs."""
    runs = store.list_runs()
    if not len(runs):
        st.info(
            "No runs yet: start one on the **Train** page, or reproduce a published table in the "
            "**Reproduction tables** tab above."
        )
        return runs
    for column in ("name", "tags", "notes"):
        if column not in runs:
            runs[column] = None
    runs["epoch"] = [
        epoch_text(e, p) for e, p in zip(runs["epoch"], runs.get("epochs_planned", [None] * len(runs)))
    ]
    all_tags = sorted({t for tags in runs["tags"].dropna() for t in str(tags).split(",") if t})
    c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
    text = c1.text_input("Search", key="r_search", placeholder="name, tag, notes, data or run id")
    tags = c2.multiselect("Tags", all_tags, key="r_tags")
    status = c3.multiselect("Status", sorted(runs["status"].unique()), key="r_status")
    task = c4.multiselect("Task", sorted(runs["task"].unique()), key="r_task")
    model = c5.multiselect("Model", sorted(runs["model"].unique()), key="r_model")
    keep = np.ones(len(runs), dtype=bool)
    for column, chosen in (("status", status), ("task", task), ("model", model)):
        if chosen:
            keep &= runs[column].isin(chosen).to_numpy()
    if tags:
        keep &= runs["tags"].fillna("").map(lambda t: bool(set(str(t).split(",")) & set(tags))).to_numpy()
    if text:
        haystack = runs[["id", "name", "tags", "notes", "data"]].fillna("").astype(str).agg(" ".join, axis=1)
        keep &= haystack.str.contains(text, case=False, regex=False).to_numpy()
    shown = runs[keep].reset_index(drop=True)
    metrics = metric_columns(shown.columns)
    first = [
        "name",
        "tags",
        "id",
        "status",
        "task",
        "model",
        *metrics,
        "epoch",
        "device",
        "data",
        "notes",
    ]
    first += ["created", "message", "error"]
    hidden = {c for c, v in RUN_COLUMNS.items() if v is None}
    order = [c for c in first if c in shown] + [c for c in shown if c not in first and c not in hidden]
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        column_config={**RUN_COLUMNS, **{c: metric_config(c) for c in metrics}},
        column_order=order,
        key="r_runs",
    )
    csv_download(shown, "runs", key="dl_runs")
    chosen = shown.iloc[event.selection.rows]
    if len(shown):
        label_runs(store, chosen if len(chosen) else shown.head(1), all_tags)
    return chosen


def label_runs(store: RunStore, runs: pd.DataFrame, existing: list[str]) -> None:
    """Name, tag and annotate a run (the first selected one, else the newest)."""
    row = runs.iloc[0]
    with (
        st.expander(f"Name, tag and annotate run {row['id']}"),
        st.form(f"r_label_{row['id']}", enter_to_submit=False, border=False),
    ):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", value=row.get("name") or "", key=f"r_name_{row['id']}")
        current = [t for t in str(row.get("tags") or "").split(",") if t]
        tags = c2.multiselect(
            "Tags",
            sorted({*existing, *current}),
            default=current,
            accept_new_options=True,
            key=f"r_tags_{row['id']}",
            help="Pick or type new tags",
        )
        notes = st.text_area("Notes", value=row.get("notes") or "", key=f"r_notes_{row['id']}", height=80)
        if st.form_submit_button("Save", icon=":material/save:"):
            store.label(row["id"], name=name, tags=tags, notes=notes)
            st.rerun()


def compare(store: RunStore, chosen: pd.DataFrame) -> None:
    """Headline metrics and differing settings of the chosen runs, side by side, with their learning curves."""
    if chosen.empty:
        st.caption("Select runs in the table (tick the boxes) to compare them here.")
        return
    got = {i: store.get_run(i) for i in chosen["id"]}
    configs = {i: r["config"] for i, r in got.items()}
    names = {i: (chosen.set_index("id").loc[i].get("name") or i) for i in chosen["id"]}
    keys = sorted({k for c in configs.values() for k in c})
    differing = [k for k in keys if len({str(c.get(k)) for c in configs.values()}) > 1] or ["model", "data"]
    settings = pd.DataFrame({names[i]: {k: str(configs[i].get(k)) for k in differing} for i in chosen["id"]})
    settings = settings.reset_index(names="setting")
    metrics = chosen.set_index("id")[metric_columns(chosen.columns)].T.astype(float)
    metrics = metrics.rename(columns=names).dropna(how="all")
    metrics = metrics.round(3)
    metrics.insert(0, "metric", [metric_label(k)[0] for k in metrics.index])
    metrics.insert(1, "unit or note", [metric_label(k)[1] for k in metrics.index])
    st.write("**Settings that differ**")
    st.dataframe(
        settings,
        width="stretch",
        hide_index=True,
        column_config={"setting": st.column_config.TextColumn(width="medium")},
    )
    st.write("**Headline metrics** (baseline = the trivial predictor on the same records)")
    st.dataframe(
        metrics,
        width="stretch",
        hide_index=True,
        column_config={"metric": st.column_config.TextColumn(width="large")},
    )
    per_target = per_target_table(got, names)
    if per_target is not None:
        st.write("**Per interval** (mean absolute error in each interval's unit)")
        st.dataframe(per_target, width="stretch", hide_index=True)
    csv_download(
        pd.concat(
            [
                settings.rename(columns={"setting": "field"}),
                metrics.rename(columns={"metric": "field"}).astype(str),
            ]
        ),
        "comparison",
        key="dl_compare",
    )
    frames = {i: store.epochs(i) for i in chosen["id"]}
    frames = {i: f for i, f in frames.items() if len(f)}
    if frames:
        tasks = set(chosen["task"])
        columns = {c for f in frames.values() for c in f.columns}
        metric = curve_metric(tasks.pop() if len(tasks) == 1 else None, columns)
        fig = viz.learning_curves(
            frames, metric, metric_label=metric_label(f"val_{metric}")[0] if metric else None
        )
        st.plotly_chart(fig, key="r_curves")
        html_download(fig, "learning-curves", key="dl_curves")


def per_target_table(runs: dict[str, dict], names: dict[str, str]) -> pd.DataFrame | None:
    """Each regression run's validation and test MAE per interval, with its unit (None without such runs)."""
    rows = []
    for run_id, run in runs.items():
        metrics = (run.get("summary") or {}).get("metrics", {})
        for split in ("val", "test"):
            for key, values in (metrics.get(split, {}).get("per_target") or {}).items():
                if key in TARGETS_BY_KEY and isinstance(values, dict) and "mae" in values:
                    target = TARGETS_BY_KEY[key]
                    rows.append(
                        {
                            "run": names[run_id],
                            "split": split,
                            "interval": f"{target.name} ({target.unit})",
                            "MAE": values["mae"],
                        }
                    )
    if not rows:
        return None
    frame = pd.DataFrame(rows).pivot_table(
        index=["interval"], columns=["run", "split"], values="MAE", sort=False
    )
    frame.columns = [f"{run} · {split}" for run, split in frame.columns]
    return frame.round(1).reset_index()


def show_wide(table: pd.DataFrame, name: str) -> None:
    """The table wide: models as rows, targets as columns (ours ± interval | published | baseline) for a split."""
    splits = wide_tables.splits_of(table)
    labels = {"test": "test", "val": "validation", "train": "training"}
    split = st.radio(
        "Split",
        [s for s in ("test", "val", "train") if s in splits],
        format_func=labels.get,
        horizontal=True,
        key=f"r_split_{name}",
    )
    frame, flagged = wide_tables.wide(table, split)
    st.markdown(wide_tables.to_markdown(frame))
    st.caption(
        ("Mean absolute error (MAE) in each interval's unit. " if "target" in table else "")
        + "**Bold**: the best of ours in the column. "
        + (
            f"{wide_tables.NOT_BEATEN}: does not beat the trivial baseline ({flagged} cells). "
            if flagged
            else ""
        )
        + ("± half the 95 % interval (bootstrap over the test records). " if split == "test" else "")
        + "Baseline: the training mean (regression) or class prior (classification) on the same records."
    )


def curve_metric(task: str | None, columns: set[str]) -> str | None:
    """The validation metric the learning curves show: MAE / SD (or MAE) for regression, AUC otherwise."""
    wanted = {"regression": ("mae_over_sd", "mae"), "classification": ("auc",)}.get(task or "", ())
    return next((m for m in wanted if m in columns), None)


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
    st.caption(experiments[name]["description"] + "  \n" + wide_tables.preset_words(PRESETS[preset]))
    with st.expander("Every setting of this preset"):
        st.caption(PRESETS[preset].describe())
    sources = ex.data_sources()
    try:
        ex.check_data(name, sources)
    except ex.DataRequired as exc:
        st.info(str(exc))
        return
    planned = ex.plan(name, preset, sources, store.root)
    counts = ex.plan_frame(planned)["status"].value_counts().to_dict()
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
            bar.empty()
    launching = st.session_state.get("r_job") == job
    if launching and st.button("Stop starting runs", key="r_stop", icon=":material/pause:"):
        del st.session_state["r_job"]
        st.rerun()
    busy = launching or bool(counts.get("queued") or counts.get("running"))
    st.fragment(run_every=POLL_S if busy else None)(live_table)(
        name, preset, int(parallel), str(store.root), busy
    )


#: How often the reproduction table refreshes while its runs train (s).
POLL_S = 3.0


def live_table(name: str, preset: str, parallel: int, store_dir: str, polling: bool) -> None:
    """The reproduction's progress and table, redrawn every ``POLL_S`` s while runs train (no reload).

    While the user's reproduce job is on, it also starts the next runs whenever fewer than ``parallel``
    are active. Runs already started keep training in their own processes if the page is closed;
    pressing Reproduce again later starts what is still missing (finished runs are reused).
    """
    sources = ex.data_sources()
    planned = ex.plan(name, preset, sources, store_dir)
    count = {
        s: sum(p.status == s for p in planned) for s in ("done", "queued", "running", "missing", "waiting")
    }
    active = count["queued"] + count["running"]
    launching = st.session_state.get("r_job") == (name, preset, parallel)
    if launching and count["missing"] and active < parallel:
        try:
            started = ex.launch_missing(name, preset, sources, store_dir, limit=parallel - active)
        except (ValueError, OSError) as exc:
            st.error(f"Could not start the runs: {exc}")
        else:
            st.toast(f"Started {', '.join(started)}")
            planned = ex.plan(name, preset, sources, store_dir)
            count = {
                s: sum(p.status == s for p in planned)
                for s in ("done", "queued", "running", "missing", "waiting")
            }
            active = count["queued"] + count["running"]
    if launching and not active and not count["missing"] and not count["waiting"]:
        del st.session_state["r_job"]  # all done: stop launching
        launching = False
    st.progress(
        count["done"] / len(planned),
        text=f"{count['done']}/{len(planned)} runs done · {active} training · {count['missing']} to start"
        + (f" · {count['waiting']} waiting for their source runs" if count["waiting"] else "")
        + (" · the table below fills in as each run finishes" if active else ""),
    )
    with st.expander("Runs of this table"):
        st.dataframe(ex.plan_frame(planned), hide_index=True, width="stretch")
    table = guarded("Building the table", lambda: ex.build_table(name, preset, sources, store_dir, planned))
    if table is not None:
        show_wide(table, name)
        csv_download(table, f"{name}-{preset}", key="dl_table", label="Download the long table (CSV)")
        for note in ex.table_notes(name, preset, sources):
            st.caption(note)
    if polling and not active and not launching:
        st.rerun()  # nothing trains any more: redraw the page once, without the polling


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
