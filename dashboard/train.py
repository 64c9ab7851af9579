"""Train: a form over TrainConfig, a launch into the worker process, and a live view polling the run store.

The run trains in its own process (:func:`ecgcore.runs.worker.launch`), so closing the tab does not
stop it; the live part only reads the store, so the page stays responsive while a run trains.
"""

from __future__ import annotations

import time

import streamlit as st
import torch

from dashboard.common import dataset, metric_label, metric_text, sources
from ecgcore import viz
from ecgcore.data import parse_spec
from ecgcore.data.inputs import INPUTS
from ecgcore.models import list_models
from ecgcore.runs import worker
from ecgcore.runs.store import ACTIVE, RunStore
from ecgcore.train.config import LABEL_MODES, NORMALIZATIONS, OPTIMIZERS, SCHEDULES, TrainConfig
from ecgcore.train.validate import validate
from ecgcore.vocab import LEADS_8, LEADS_12, TARGET_KEYS, TARGETS_BY_KEY

TASKS = {
    "Regression (intervals)": "regression",
    "Classification (PTB-XL superclasses)": "classification",
    "Transfer (regression backbone -> classification)": "transfer",
}
APPROACHES = {
    "combined": "Approach 1: all source backbones combined",
    "qrs": "Approach 2: the QRS backbone only",
}
STRATEGIES = {
    "linear_probe": "Linear probe (backbone frozen)",
    "gradual_unfreeze": "Gradual unfreezing",
    "discriminative": "Fine-tuning with discriminative learning rates",
}
POLL_S = 2.0
#: Form defaults sized for the machine: the published model and rate on a GPU, a small quick model on a CPU
#: (cnn at 100 Hz for 5 epochs trains on the 300-record demo set in about a minute on 2 CPU cores).
GPU = torch.cuda.is_available()
DEFAULTS = (
    dict(model="inception1d", fs=500.0, epochs=20, batch=64)
    if GPU
    else dict(model="cnn", fs=100.0, epochs=5, batch=32)
)


def config_form(store: RunStore) -> TrainConfig | None:
    """The training form; returns the config when submitted and valid (errors are shown on the page)."""
    models = {m.name: m for m in list_models()}
    srcs = sources()
    task_label = st.radio("Task", list(TASKS), horizontal=True, key="t_task")
    st.caption(
        f"Defaults are sized for this machine ({'GPU' if GPU else 'no GPU found'}): {DEFAULTS['model']} at "
        f"{DEFAULTS['fs']:g} Hz for {DEFAULTS['epochs']} epochs. Regression needs interval labels: "
        "the DeepFake demo set (build it on Home) or PTB-XL with a PTB-XL+ folder."
    )
    task = TASKS[task_label]
    # No st.form: in a form, Enter in any field submits it and started a run; here only the button does.
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        labels = list(srcs)
        trainable = [
            label for label in labels if missing_labels(srcs[label], task, list(TARGET_KEYS)) is None
        ]
        if not trainable:
            st.warning(
                "None of your data can train this task yet: "
                + (
                    "regression needs interval labels: build the DeepFake demo set on **Home**, or set a "
                    "PTB-XL folder with its PTB-XL+ folder in **Settings**."
                    if task == "regression"
                    else "classification needs PTB-XL's superclass labels: set your PTB-XL folder in **Settings**."
                )
            )
        preferred = (
            [label for label in trainable if parse_spec(srcs[label]).path != "bundled"] or trainable or labels
        )
        if st.session_state.get("t_data") not in labels or (
            st.session_state.get("t_data_task") != task and st.session_state.get("t_data") not in trainable
        ):
            st.session_state["t_data"] = preferred[0]  # default to data that can train the chosen task
        st.session_state["t_data_task"] = task
        data_label = c1.selectbox(
            "Data",
            labels,
            key="t_data",
            help="Build the DeepFake demo set on Home, or set your folders in Settings",
            format_func=lambda label: label if label in trainable else f"{label} (cannot train this task)",
        )
        subset = c1.selectbox(
            "PTB-XL half",
            ["all", "A", "B"],
            key="t_subset",
            help="Patient-disjoint halves: regression on A, classification on B (transfer study)",
        )
        names = list(models)
        model = c2.selectbox(
            "Model",
            names,
            index=names.index(DEFAULTS["model"]) if DEFAULTS["model"] in names else 0,
            key="t_model",
            help="See the descriptions below the form",
        )
        inputs = sorted(INPUTS)
        representation = c2.selectbox(
            "Input",
            inputs,
            index=inputs.index("signal"),
            key="t_representation",
            help="What the model reads: the signal, the record drawn as a chart, GAF / MTF / RP images of "
            "leads I, II, V2, or a pair for the fusion model (2D models for images: resnet18, cnn2d, ...)",
        )
        if task == "regression":
            targets = c3.multiselect(
                "Targets",
                TARGET_KEYS,
                default=list(TARGET_KEYS),
                key="t_targets",
                format_func=lambda k: f"{TARGETS_BY_KEY[k].name} ({TARGETS_BY_KEY[k].unit})",
            )
            loss = c3.selectbox("Loss", ["l1", "mse"], key="t_loss")
            label_mode = "single"
        else:
            targets, loss = list(TARGET_KEYS), "l1"
            label_mode = c3.selectbox(
                "Labels",
                LABEL_MODES,
                key="t_label_mode",
                help="single: softmax over single-superclass records; multi: sigmoid per class",
            )
        transfer = None
        if task == "transfer":
            done = store.list_runs()
            done = done[(done["status"] == "done") & (done["task"] == "regression")] if len(done) else done
            t1, t2, t3 = st.columns(3)
            source_runs = t1.multiselect(
                "Source regression runs",
                done["id"].tolist() if len(done) else [],
                key="t_sources",
                help="Finished regression runs whose backbones are reused",
            )
            approach = t2.selectbox(
                "Approach", list(APPROACHES), format_func=APPROACHES.get, key="t_approach"
            )
            strategy = t3.selectbox(
                "Strategy", list(STRATEGIES), format_func=STRATEGIES.get, key="t_strategy"
            )
            transfer = {"sources": source_runs, "approach": approach, "strategy": strategy}
        d1, d2, d3, d4 = st.columns(4)
        rates = [100.0, 250.0, 500.0]
        fs = d1.selectbox("Sampling rate (Hz)", rates, index=rates.index(DEFAULTS["fs"]), key="t_fs")
        leads = d2.radio("Leads", ["8 (I, II, V1-V6)", "12"], key="t_leads")
        max_records = d3.number_input("Max records (0 = all)", 0, 10_000_000, 0, key="t_max_records")
        fraction = d4.slider("Training fraction", 0.05, 1.0, 1.0, 0.05, key="t_fraction")
        e1, e2, e3, e4 = st.columns(4)
        epochs = e1.number_input("Epochs", 1, 1000, DEFAULTS["epochs"], key="t_epochs")
        batch_size = e2.number_input("Batch size", 2, 4096, DEFAULTS["batch"], key="t_batch")
        lr = e3.number_input("Learning rate", 1e-6, 1.0, 1e-3, format="%.5f", key="t_lr")
        schedule = e4.selectbox("Schedule", SCHEDULES, key="t_schedule")
        f1, f2, f3, f4 = st.columns(4)
        optimizer = f1.selectbox("Optimizer", OPTIMIZERS, index=list(OPTIMIZERS).index("adamw"), key="t_opt")
        normalize = f2.selectbox("Normalization", NORMALIZATIONS, key="t_norm")
        patience = f3.number_input("Early-stopping patience (0 = off)", 0, 1000, 0, key="t_patience")
        seed = f4.number_input("Seed", 0, 2**31 - 1, 0, key="t_seed")
        g1, g2, g3, g4 = st.columns(4)
        amp = g1.toggle(
            "Mixed precision (AMP)",
            value=True,
            key="t_amp",
            help="bf16/fp16 on GPUs; on CPUs only with native bf16",
        )
        augment = g2.toggle("Augmentation", value=False, key="t_augment")
        bandpass = g3.toggle("Band-pass filter", value=True, key="t_bandpass")
        device = g4.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="t_device")
        submitted = st.button(
            "Start training",
            type="primary",
            icon=":material/play_arrow:",
            key="t_start",
            disabled=data_label not in trainable,
        )
    with st.expander("Model descriptions"):
        for info in models.values():
            st.markdown(f"**{info.name}** — {info.description}  \n*{info.reference}*")
    if not submitted:
        return None
    if not srcs:
        st.error("No data source: build the DeepFake demo set on Home or set a folder in Settings.")
        return None
    if transfer is not None and not transfer["sources"]:
        st.error("Transfer needs at least one finished regression run as its source.")
        return None
    if subset != "all" and parse_spec(srcs[data_label]).kind != "ptbxl":
        st.error("The PTB-XL halves A and B exist only for PTB-XL data; choose 'all' for this source.")
        return None
    labels_problem = missing_labels(srcs[data_label], task, targets)
    if labels_problem:
        st.error(labels_problem)
        return None
    try:
        config = TrainConfig(
            task="classification" if task == "transfer" else task,
            targets=tuple(targets),
            label_mode=label_mode,
            data=srcs[data_label],
            subset=None if subset == "all" else subset,
            train_fraction=float(fraction),
            max_records=int(max_records) or None,
            model=model,
            leads=LEADS_8 if leads.startswith("8") else LEADS_12,
            fs=float(fs),
            normalize=normalize,
            bandpass=bandpass,
            epochs=int(epochs),
            batch_size=int(batch_size),
            lr=float(lr),
            optimizer=optimizer,
            schedule=schedule,
            loss=loss,
            amp=amp,
            patience=int(patience) or None,
            augment=augment,
            seed=int(seed),
            device=device,
            transfer=transfer,
            representation=representation,
        )
        validate(config)  # the command line's checks: device, sizes, model arguments, memory
        return config
    except ValueError as exc:
        st.error(f"Invalid settings: {exc}")
        return None


def missing_labels(spec: str, task: str, targets: list[str]) -> str | None:
    """Why ``spec`` cannot train ``task`` (no interval labels / no superclass labels), or ``None``."""
    try:
        index = dataset(spec)[0].index
    except (ValueError, OSError) as exc:
        return f"{spec} could not be opened: {exc}"
    if task == "regression":
        empty = [k for k in targets if k not in index or not index[k].notna().any()]
        if empty:
            return (
                f"{spec} has no interval labels for {', '.join(empty)}: use the DeepFake demo set (Home) or "
                "PTB-XL with a PTB-XL+ folder (Settings)."
            )
    elif "superclass" not in index:
        return f"{spec} has no superclass labels: classification and transfer train on PTB-XL."
    return None


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "—"
    return time.strftime("%H:%M:%S", time.gmtime(max(seconds, 0))) if seconds >= 60 else f"{seconds:.0f} s"


@st.fragment(run_every=POLL_S)
def live(store_dir: str) -> None:
    """Status, progress, curves and controls of the selected run; re-run every ``POLL_S`` seconds."""
    store = RunStore(store_dir)
    worker.refresh_dead(store_dir)
    runs = store.list_runs()
    if not len(runs):
        st.info("No runs yet: fill in the form and press Start training.")
        return
    ids = runs["id"].tolist()
    active = runs[runs["status"].isin(ACTIVE)]["id"].tolist()
    if st.session_state.get("t_live_run") not in ids:  # reopened page: show the running run, else the newest
        st.session_state["t_live_run"] = active[0] if active else ids[0]
    run_id = st.selectbox(
        "Run", ids, key="t_live_run", help="Newest first; a running run is shown when you come back"
    )
    run = store.get_run(run_id)
    status, total = run["status"], run["total_steps"] or 0
    step = run["step"] or 0
    frac = 1.0 if status == "done" else (step / total if total else 0.0)
    epochs = run["config"]["epochs"]
    epoch = (run["epoch"] + 1) if run["epoch"] is not None else 0
    st.progress(
        min(frac, 1.0),
        text=f"**{status}** · epoch {epoch}/{epochs} · step {step}/{total or '?'} · "
        f"ETA {format_eta(run['eta_s']) if status in ACTIVE else '—'} · "
        f"device {run['device'] or '—'} · {run['message'] or ''}",
    )
    if status == "failed":
        st.error(f"The run failed: {run['error']}")
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button("Cancel", disabled=status not in ACTIVE, key="t_cancel", icon=":material/stop:"):
        st.toast(f"{run_id}: {worker.cancel(run_id, store_dir)}")
    if c2.button(
        "Resume",
        disabled=status not in ("interrupted", "cancelled", "failed"),
        key="t_resume",
        icon=":material/replay:",
    ):
        try:
            worker.resume(run_id, store_dir)
        except ValueError as exc:
            st.error(str(exc))
    frame, steps = store.epochs(run_id), store.steps(run_id)
    if len(frame) or len(steps):
        metric = next(
            (m for m in (("mae_over_sd", "mae") if run["task"] == "regression" else ("auc",)) if m in frame),
            None,
        )
        st.plotly_chart(
            viz.learning_curves(
                {run_id: frame},
                metric,
                metric_label=metric_label(f"val_{metric}")[0] if metric else None,
                steps={run_id: steps},
                steps_per_epoch={run_id: total / epochs} if total else None,
            ),
            key="t_curves",
        )
        st.caption("The thin line is the training loss streamed step by step; the markers are per epoch.")
    else:
        st.caption("Curves appear after the first training steps.")
    if status == "done":
        headline = run["summary"].get("headline", {})
        numbers = " · ".join(metric_text(k, v) for k, v in headline.items() if isinstance(v, (int, float)))
        st.success(
            f"Run {run_id} is done (epoch {epoch}/{epochs}): {numbers} — compare it on the Results page."
        )
    log = store.run_dir(run_id) / worker.LOG_NAME
    if log.exists():
        with st.expander("Log (last lines)"):
            st.code("\n".join(log.read_text(errors="replace").splitlines()[-20:]) or "(empty)")


def identical_runs(store: RunStore, config: TrainConfig) -> list[dict]:
    """Runs with the same settings (:meth:`TrainConfig.key`) that are training or finished, newest first."""
    runs = store.list_runs()
    if not len(runs):
        return []
    same = runs[(runs["config_key"] == config.key()) & runs["status"].isin([*ACTIVE, "done"])]
    return same[["id", "status"]].to_dict("records")


def start(config: TrainConfig) -> None:
    """Launch ``config`` in its own process and show it in the live view."""
    run_id = worker.launch(config)
    st.session_state["t_live_run"] = run_id
    st.session_state["t_started"] = run_id


def duplicate_prompt(store: RunStore) -> None:
    """When the settings match a running or finished run: say so, and offer to open it or start anyway."""
    pending = st.session_state.get("t_pending")
    if pending is None:
        return
    config, same = pending
    first = same[0]
    st.warning(
        f"A run with exactly these settings is already {'finished' if first['status'] == 'done' else first['status']}: "
        f"**{first['id']}**"
        + (f" (and {len(same) - 1} more)" if len(same) > 1 else "")
        + ". Training it again gives the same model (same data, seed and settings)."
    )
    c1, c2, c3, _ = st.columns([1, 1, 1, 3])
    if c1.button("Open it", key="t_open_same", type="primary", icon=":material/open_in_new:"):
        st.session_state["t_live_run"] = first["id"]
        del st.session_state["t_pending"]
        st.rerun()
    if c2.button("Start another anyway", key="t_start_anyway"):
        del st.session_state["t_pending"]
        start(config)
        st.rerun()
    if c3.button("Cancel", key="t_pending_cancel"):
        del st.session_state["t_pending"]
        st.rerun()


st.title("Train")
store = RunStore()
config = config_form(store)
if config is not None:
    same = identical_runs(store, config)
    if same:
        st.session_state["t_pending"] = (config, same)
    else:
        st.session_state.pop("t_pending", None)
        start(config)
duplicate_prompt(store)
if st.session_state.get("t_started"):
    st.success(
        f"Started run {st.session_state['t_started']}: it trains in its own process (closing this tab does not stop it)."
    )
st.subheader("Live")
live(str(store.root))
