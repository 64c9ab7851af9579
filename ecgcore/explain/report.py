"""Explain one record with one run, and the per-record report (PDF / PNG).

:func:`explain_record` is the one pipeline behind ``python -m ecgcore explain``, ``report`` and the
dashboard: preprocess the record exactly as the run was trained, attribute the chosen output,
summarise per lead and per wave (wave fiducials from :func:`ecgcore.measure.measure_record` on the
record, rescaled to the model's sampling rate), and optionally measure faithfulness.

:func:`render_report` draws the report with matplotlib's object API (no pyplot, so it is safe in
the dashboard's threads): the ECG on standard paper (25 mm/s, 10 mm/mV, 1 mm and 5 mm grid) with
the absolute attribution as a heatmap behind every lead, the prediction (calibrated probabilities,
or predicted against measured intervals), the top leads and waves, the model card and the statement
that this is a research tool, not a diagnosis.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ecgcore.explain.attributions import (
    IG_FIRST_STEPS,
    IG_TOLERANCE,
    Attribution,
    attribute,
    default_baseline,
    describe_baseline,
    lead_importance,
    top_items,
    wave_coverage,
    wave_importance,
)
from ecgcore.explain.calibration import calibrated_prediction, load_calibration, run_directory
from ecgcore.explain.faithfulness import deletion_test, randomisation_test
from ecgcore.guard import check_record
from ecgcore.paths import atomic_write_bytes
from ecgcore.predict import Refused
from ecgcore.vocab import SALIENCY_COLOURMAP, SALIENCY_KEY, TARGET_KEYS, TARGETS_BY_KEY

DISCLAIMER = (
    "RESEARCH TOOL - NOT A DIAGNOSIS. Produced by a research model; it has not been validated for "
    "clinical use and must not guide the care of any patient."
)
#: Attribution methods and baselines as a reader names them.
METHOD_NAMES = {
    "ig": "Integrated Gradients",
    "saliency": "Saliency (gradient magnitude)",
    "gradientshap": "GradientSHAP",
    "occlusion": "Occlusion (0.2 s windows per lead)",
    "gradcam": "Grad-CAM (last convolution)",
}
BASELINE_NAMES = {
    "zeros": "a flat signal",
    "lead_mean": "each lead's mean",
    "lowpass": "a low-pass filtered copy",
}
MM_PER_S = 25.0
MM_PER_MV = 10.0
ROW_MV = 3.0  # vertical space per lead
_MM = 1 / 25.4


def resolve_target(meta: dict, target: str | int | None, outputs: np.ndarray) -> tuple[int, str]:
    """Output index and name from a class name / target key / index; default: predicted class or first target.

    Raises
    ------
    ValueError
        If the name or index is not one of the run's outputs.
    """
    names = list(meta["classes"] if meta["task"] == "classification" else meta["targets"])
    if target is None:
        index = int(np.argmax(outputs)) if meta["task"] == "classification" else 0
    elif str(target).lstrip("-").isdigit():
        index = int(target)
    else:
        lowered = {n.lower(): i for i, n in enumerate(names)}
        if str(target).lower() not in lowered:
            raise ValueError(
                f"unknown target {target!r}; this {meta['task']} run predicts {', '.join(names)}"
            )
        index = lowered[str(target).lower()]
    if not 0 <= index < len(names):
        raise ValueError(
            f"target index {index} out of range; this run has {len(names)} outputs ({', '.join(names)})"
        )
    return index, names[index]


def _measure(record) -> tuple[Any, str | None]:
    """The interval measurement of the record, or ``(None, reason)`` when it cannot be measured."""
    from ecgcore.measure import measure_record

    try:
        return measure_record(record), None
    except ValueError as exc:
        return None, str(exc)


def explain_record(
    predictor,
    record,
    *,
    method: str = "ig",
    baseline: str | None = None,
    target: str | int | None = None,
    n_steps: int = IG_FIRST_STEPS,
    internal_batch_size: int | None = None,
    tolerance: float | None = IG_TOLERANCE,
    precision: str = "auto",
    evaluate: bool = False,
    randomisation: str = "full",
    deletion_steps: int = 20,
    random_repeats: int = 5,
    seed: int = 0,
    run_dir: Path | None = None,
) -> tuple[dict, Attribution]:
    """Attribution and summaries for one record with a trained run (see the module docstring).

    Parameters
    ----------
    predictor
        :func:`ecgcore.predict.load_predictor` output.
    record
        :class:`ecgcore.io.Record` (any rate and lead set the preprocessing can turn into model input).
    baseline
        One of :data:`~ecgcore.explain.attributions.BASELINES`; default (``None``): chosen from the
        run's normalisation by :func:`~ecgcore.explain.attributions.default_baseline`. The summary
        names it (``baseline``) and says what it means for this run (``baseline_meaning``).
    target
        Class name, regression target key or output index; default: the predicted class / first target.
    n_steps, tolerance, precision
        Integrated Gradients: steps start at ``n_steps`` and double until the completeness gap is under
        ``tolerance`` (``None``: exactly ``n_steps``), in the fastest ``precision`` that meets it
        (``"auto"``: bf16 where native, else fp32); the summary reports ``ig_steps``, ``ig_gap`` and
        ``ig_precision``. The randomisation check re-runs IG with the same steps and precision.
    evaluate
        Also run the deletion test and the ``randomisation`` (``"full"`` / ``"cascading"``) sanity check.
    run_dir
        The run's directory: its ``calibration.json``, if any, calibrates the probabilities.

    Raises
    ------
    ecgcore.predict.Refused
        When the prediction guard refuses the record (flat or saturated leads, no QRS): the message
        gives the reason, and there is no number or map to show.

    Returns
    -------
    tuple
        ``(summary dict, Attribution)``; the dict is JSON-able.
    """
    meta, prep = predictor.meta, predictor.prep
    verdict = check_record(record, meta)
    if verdict.refused:  # nothing to explain: the guard gives a reason and no number
        raise Refused(f"{record.path or record.record_id}: no prediction: {verdict.refused}")
    baseline = baseline or default_baseline(prep.normalize, prep.bandpass)
    x = predictor.prepare(record)
    with torch.no_grad():
        outputs = predictor.model(x).float().cpu().numpy()[0]
    index, name = resolve_target(meta, target, outputs)
    started = time.perf_counter()
    attr = attribute(
        predictor.model,
        x,
        index,
        method,
        baseline,
        fs=prep.fs,
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
        seed=seed,
        tolerance=tolerance,
        precision=precision,
    )
    elapsed = time.perf_counter() - started
    leads = lead_importance(attr.values, prep.leads)
    summary: dict[str, Any] = {
        **attr.to_dict(),
        "record_id": record.record_id,
        "run_id": meta.get("run_id"),
        "task": meta["task"],
        "target": name,
        "target_index": index,
        "attribution_time_s": round(elapsed, 4),
        "baseline_meaning": describe_baseline(attr.baseline, prep.normalize),
        "lead_importance": leads,
        "top_leads": top_items(leads),
    }
    measurement, reason = _measure(record)
    if measurement is not None and measurement.beat_fiducials:
        scale = prep.fs / record.fs
        try:
            waves = wave_importance(attr.values, measurement.beat_fiducials, scale)
            summary["wave_importance"] = waves
            summary["wave_coverage"] = wave_coverage(attr.values.shape[1], measurement.beat_fiducials, scale)
            summary["top_waves"] = top_items(waves)
        except ValueError as exc:
            reason = str(exc)
    if "wave_importance" not in summary:
        summary["wave_importance"] = None
        summary["wave_note"] = f"no per-wave summary: {reason or 'no beats measured'}"
    calibration = load_calibration(run_dir) if run_dir is not None else None
    summary["prediction"] = calibrated_prediction(predictor, record, calibration)
    if measurement is not None:
        summary["measured"] = {k: getattr(measurement, k) for k in TARGET_KEYS}
    if evaluate:
        summary["faithfulness"] = {
            "deletion": deletion_test(
                predictor.model,
                x,
                attr,
                baseline=baseline,
                fs=prep.fs,
                n_steps=deletion_steps,
                n_repeats=random_repeats,
                seed=seed,
            ),
            "randomisation": randomisation_test(
                predictor.model,
                x,
                attr,
                mode=randomisation,
                fs=prep.fs,
                seed=seed,
                n_steps=attr.extra.get("ig_steps", n_steps),  # the map's own steps and precision, fixed
                internal_batch_size=internal_batch_size,
                precision=attr.extra.get("ig_precision", "fp32"),
            ),
        }
    return summary, attr


# --- drawing -----------------------------------------------------------------------------------
def draw_ecg(ax, signal_mv: np.ndarray, fs: float, leads, attribution: np.ndarray | None = None) -> None:
    """One row per lead on ECG paper, the absolute attribution (shared scale) as a heatmap behind each trace."""
    from scipy.ndimage import uniform_filter1d

    n_leads, n = signal_mv.shape
    duration = n / fs
    t = np.arange(n) / fs
    top = n_leads * ROW_MV
    ax.set_xlim(0, duration)
    ax.set_ylim(0, top)
    ax.set_facecolor("#fff7f7")
    for step, colour, width in ((0.04, "#f6cccc", 0.3), (0.2, "#e89a9a", 0.7)):  # 1 mm and 5 mm lines
        xs = np.arange(0, duration + 1e-9, step)
        ys = np.arange(0, top + 1e-9, step * MM_PER_S / MM_PER_MV)
        lines = [[(xv, 0), (xv, top)] for xv in xs] + [[(0, yv), (duration, yv)] for yv in ys]
        ax.add_collection(LineCollection(lines, colors=colour, linewidths=width, zorder=0))
    heat = None
    if attribution is not None:
        heat = uniform_filter1d(np.abs(attribution), size=max(1, int(0.02 * fs)), axis=1)
        vmax = float(np.percentile(heat, 99.5)) or 1.0
    for i, lead in enumerate(leads):
        centre = top - (i + 0.5) * ROW_MV
        if heat is not None:
            ax.imshow(
                heat[i][None, :],
                extent=(0, duration, centre - ROW_MV / 2, centre + ROW_MV / 2),
                aspect="auto",
                cmap=SALIENCY_COLOURMAP,
                vmin=0,
                vmax=vmax,
                alpha=0.6,
                zorder=1,
                interpolation="bilinear",
            )
        trace = signal_mv[i] - np.median(signal_mv[i])
        ax.plot(t, np.clip(trace, -ROW_MV / 2, ROW_MV / 2) + centre, color="black", lw=0.6, zorder=2)
        ax.text(0.05, centre + 0.9, lead, fontsize=9, fontweight="bold", zorder=3)
    ax.set_xticks(np.arange(0, duration + 1e-9, 1.0))
    ax.set_yticks([])
    ax.set_xlabel("time (s)  -  25 mm/s, 10 mm/mV")


def draw_key(fig: Figure, rect: tuple[float, float, float, float]) -> None:
    """The saliency colour map's key (0 to the largest attribution) in ``rect`` (figure fractions)."""
    key = fig.add_axes(rect)
    key.imshow(
        np.linspace(0, 1, 256)[None, :],
        aspect="auto",
        cmap=SALIENCY_COLOURMAP,
        alpha=0.6,
        extent=(0, 1, 0, 1),
    )
    key.set_yticks([])
    key.set_xticks([0, 0.5, 1])
    key.tick_params(labelsize=7)
    key.set_title(SALIENCY_KEY, fontsize=7, loc="left")


def target_label(name: str) -> str:
    """``hr`` -> ``Heart rate``; a class name as it is."""
    return TARGETS_BY_KEY[name].name if name in TARGETS_BY_KEY else name


def attribution_figure(
    signal_mv: np.ndarray, fs: float, leads, attribution: np.ndarray, title: str
) -> Figure:
    """The ECG with its heatmap only, at true paper scale (``explain --png``)."""
    width, height = signal_mv.shape[1] / fs * MM_PER_S, len(leads) * ROW_MV * MM_PER_MV
    fig = Figure(figsize=((width + 20) * _MM, (height + 25) * _MM))
    ax = fig.add_axes((10 / (width + 20), 15 / (height + 25), width / (width + 20), height / (height + 25)))
    draw_ecg(ax, signal_mv, fs, leads, attribution)
    ax.set_title(title, fontsize=9, loc="left")
    draw_key(fig, (1 - 70 / (width + 20), 4 / (height + 25), 55 / (width + 20), 3 / (height + 25)))
    return fig


def _fmt(value: Any, digits: int = 1) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and not np.isfinite(value))
        else f"{value:.{digits}f}"
    )


def _prediction_lines(summary: dict) -> list[str]:
    """The prediction as a clinician reads it: plain names, units, which number is the model's."""
    pred = summary["prediction"]
    return _prediction_values(pred, summary) + [f"Check: {flag}" for flag in pred.get("flags", [])]


def _prediction_values(pred: dict, summary: dict) -> list[str]:
    if pred["task"] == "regression":
        measured = summary.get("measured") or {}
        lines = []
        for key, value in pred["intervals"].items():
            unit = pred["units"][key]
            m = measured.get(key)
            lines.append(
                f"{target_label(key) + ':':14}{_fmt(value, 0):>5} {unit} (model)"
                + (
                    f"  ·  {_fmt(m, 0)} {unit} (measured from the ECG)"
                    if m is not None
                    else "  ·  not measurable"
                )
            )
        lines.append(
            "measured from the ECG = ECG Lab's own measurement of this record, independent of the model"
        )
        return lines
    calibrated = pred.get("calibrated_probabilities")
    lines = [f"{'class':6}{'probability':>12}" + (f"{'calibrated':>12}" if calibrated else "")]
    for cls, p in pred["probabilities"].items():
        lines.append(f"{cls:6}{p:12.0%}" + (f"{calibrated[cls]:12.0%}" if calibrated else ""))
    lines.append(
        f"predicted: {', '.join(pred['predicted']) or 'none'}"
        + ("   (probabilities calibrated)" if calibrated else "   (probabilities not calibrated)")
    )
    return lines


def _explanation_lines(summary: dict) -> list[str]:
    """Which leads and waves the model's output leaned on, in words."""
    lines = [
        f"for the model's {target_label(summary['target'])}, shaded on the ECG above (key at the bottom right)"
    ]
    lines.append("leads: " + ", ".join(f"{lead} {share:.0%}" for lead, share in summary["top_leads"]))
    if summary.get("wave_importance"):
        cover = summary["wave_coverage"]
        lines.append(
            "waves: "
            + ", ".join(
                f"{w} {s:.0%} (the wave is {cover[w]:.0%} of the record)" for w, s in summary["top_waves"]
            )
        )
    else:
        lines.append(summary.get("wave_note", "no per-wave summary"))
    faith = summary.get("faithfulness")
    if faith:
        d = faith["deletion"]
        lines.append(
            "check: removing the shaded parts first "
            + (
                "changes the output faster than removing random parts (as it should)"
                if d["beats_random"]
                else "does NOT change the output faster than random: do not rely on the shading"
            )
        )
    if not summary.get("lead_resolved", True):
        lines.append("Grad-CAM has no lead axis: the same time course is shown on every lead")
    return lines


def technical_lines(summary: dict) -> list[str]:
    """The method, baseline, scores and faithfulness figures, for researchers."""
    method = METHOD_NAMES.get(summary["method"], summary["method"])
    baseline = (
        BASELINE_NAMES.get(summary["baseline"], summary["baseline"]) if summary.get("baseline") else None
    )
    lines = [
        f"{method}"
        + (f" against {baseline}" if baseline else "")
        + (f" ({summary['baseline_meaning']})" if summary.get("baseline_meaning") else "")
        + f"; output {summary['target']} score {summary['score']:.3f}"
        + (
            f", baseline score {summary['baseline_score']:.3f}"
            if summary.get("baseline_score") is not None
            else ""
        )
        + (f", completeness gap {summary['delta']:.3g}" if summary.get("delta") is not None else "")
    ]
    faith = summary.get("faithfulness")
    if faith:
        d, r = faith["deletion"], faith["randomisation"]
        lines.append(
            f"deletion area {_fmt(d['normalised_auc'], 3)} vs random {_fmt(d['random_normalised_auc'], 3)} "
            f"(gain {d['gain']:+.3f}); rank correlation with a randomised model {_fmt(r['spearman'], 2)}"
        )
    return lines


def model_card(meta: dict, run_dir: Path | None) -> list[str]:
    """Data, metrics, date and commit of the run (and its calibration, when it has one)."""
    config = meta.get("config", {})
    summary = {}
    if run_dir is not None and (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
    lines = [
        f"run {meta.get('run_id')}  model {config.get('model')}  trained {meta.get('created')}  "
        f"commit {str(meta.get('git_commit') or 'unknown')[:10]}",
        f"data {config.get('data')}  leads {','.join(meta.get('leads', []))}  {meta.get('fs'):g} Hz",
    ]
    if summary:
        n = summary.get("n", {})
        lines.append(
            f"records train/val/test {n.get('train')}/{n.get('val')}/{n.get('test')}  "
            f"epochs {summary.get('epochs_run')}"
        )
        test, base = summary["metrics"]["test"], summary["baseline"]["test"]
        if meta["task"] == "regression":
            lines.append(
                "test MAE "
                + ", ".join(
                    f"{k.upper()} {_fmt(m['mae'])} {m.get('unit') or ''}".rstrip()
                    + f" (baseline {_fmt(base['per_target'][k]['mae'])})"
                    for k, m in test["per_target"].items()
                )
                + "; baseline = training median"
            )
        else:
            auc = _fmt(test.get("auc"), 3) if test.get("auc") is not None else "none"
            lines.append(
                f"test macro AUC {auc}  (trivial baseline {_fmt(base.get('auc'), 3)})"
                + (f"; {test['auc_note']}" if test.get("auc_note") else "")
            )
    else:
        lines.append(f"validation metrics at the saved epoch: {json.dumps(meta.get('metrics', {}))[:120]}")
    calibration = load_calibration(run_dir) if run_dir is not None else None
    if calibration is not None and "test" in calibration.metrics:
        test = calibration.metrics["test"]
        fitted = f"T = {calibration.temperature:.2f}" if calibration.method == "temperature" else "per class"
        lines.append(
            f"calibration: {calibration.method} scaling ({fitted}) fitted on the validation split; test mean "
            f"per-class ECE {test['before']['ece_mean']:.3f} -> {test['after']['ece_mean']:.3f}"
        )
    return lines


def render_report(
    summary: dict,
    attr: Attribution,
    signal_mv: np.ndarray,
    fs: float,
    leads,
    meta: dict,
    run_dir: Path | None = None,
) -> Figure:
    """The one-page report (see the module docstring) as a matplotlib figure at true paper scale."""
    width = signal_mv.shape[1] / fs * MM_PER_S
    ecg_h = len(leads) * ROW_MV * MM_PER_MV
    text_h, margin = 95.0, 15.0
    fig_w, fig_h = width + 2 * margin, ecg_h + text_h + 2 * margin
    fig = Figure(figsize=(fig_w * _MM, fig_h * _MM))
    ax = fig.add_axes((margin / fig_w, (margin + text_h) / fig_h, width / fig_w, ecg_h / fig_h))
    draw_ecg(ax, signal_mv, fs, leads, attr.values)
    fig.text(
        margin / fig_w,
        1 - 4 / fig_h,
        f"ECG Lab - record {summary['record_id']}",
        fontsize=13,
        fontweight="bold",
        va="top",
    )
    fig.text(
        margin / fig_w, 1 - 10.5 / fig_h, DISCLAIMER, fontsize=8, color="#b00020", fontweight="bold", va="top"
    )
    blocks = [
        ("Prediction", _prediction_lines(summary)),
        ("What the prediction leaned on", _explanation_lines(summary)),
        ("Model card", model_card(meta, run_dir)),
        ("Technical detail", technical_lines(summary)),
    ]
    y = (margin + text_h - 12) / fig_h
    for title, lines in blocks:
        fig.text(margin / fig_w, y, title, fontsize=10, fontweight="bold", va="top")
        y -= 5 / fig_h
        fig.text(margin / fig_w, y, "\n".join(lines), fontsize=8, family="monospace", va="top")
        y -= (len(lines) * 3.6 + 5) / fig_h
    draw_key(fig, (1 - (margin + 60) / fig_w, (margin + text_h - 10) / fig_h, 55 / fig_w, 3 / fig_h))
    fig.text(0.5, 4 / fig_h, DISCLAIMER, fontsize=8, color="#b00020", ha="center", va="bottom")
    return fig


def figure_bytes(fig: Figure, fmt: str, dpi: int = 150) -> bytes:
    """``fig`` as PDF or PNG bytes (for a download button)."""
    if fmt not in ("pdf", "png"):
        raise ValueError(f"the report is written as pdf or png, not {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` as PDF or PNG (by the suffix), atomically."""
    path = Path(path)
    try:
        data = figure_bytes(fig, path.suffix.lower().lstrip("."), dpi)
    except ValueError:
        raise ValueError(
            f"{path}: the report is written as .pdf or .png, not {path.suffix or 'no suffix'}"
        ) from None
    atomic_write_bytes(path, data)
    return path


def write_report(
    run_id_or_dir: str | Path,
    record,
    out: str | Path | list,
    *,
    runs_dir: str | Path | None = None,
    method: str = "ig",
    baseline: str | None = None,
    target: str | int | None = None,
    evaluate: bool = False,
    **kwargs,
) -> tuple[list[Path], dict]:
    """Explain ``record`` with the run and write the report to every path in ``out`` (``.pdf`` / ``.png``)."""
    from ecgcore.data.preprocess import shape_record
    from ecgcore.predict import load_predictor

    run_dir = run_directory(run_id_or_dir, runs_dir)
    predictor = load_predictor(run_dir)
    summary, attr = explain_record(
        predictor,
        record,
        method=method,
        baseline=baseline,
        target=target,
        evaluate=evaluate,
        run_dir=run_dir,
        **kwargs,
    )
    signal_mv = shape_record(record, predictor.prep)
    fig = render_report(
        summary, attr, signal_mv, predictor.prep.fs, predictor.prep.leads, predictor.meta, run_dir
    )
    paths = [save_figure(fig, p) for p in (out if isinstance(out, list) else [out])]
    return paths, summary
