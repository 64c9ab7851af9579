"""What several pages share: the data sources the user has, cached datasets and records, uploads.

Pages hold no science: they call ``ecgcore`` and draw with :mod:`ecgcore.viz`. This module keeps
the caching (``st.cache_resource`` for datasets, ``st.cache_data`` for records and measurements)
and the one way of turning an upload into a :class:`ecgcore.io.Record` in one place.
"""

from __future__ import annotations

import hashlib
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from ecgcore import paths, viz
from ecgcore.data import format_spec, open_source, parse_spec
from ecgcore.data.base import ECGDataset
from ecgcore.data.deepfake import DEMO_NAME, remeasure_if_stale
from ecgcore.io import (
    UPLOAD_WHOLE_MAX_BYTES,
    ECGFormatError,
    Envelope,
    Record,
    RecordInfo,
    hide_folder,
    read_saved_upload,
    read_upload,
    record_envelope,
    record_info,
    stage_upload,
)
from ecgcore.measure import measure_record, measurement_version
from ecgcore.vocab import TARGETS_BY_KEY

BUNDLED = "PTB-XL sample (bundled, real records)"


def demo_dir() -> Path:
    """Where the generated DeepFake demo set lives (it may not exist yet)."""
    return paths.generated_dir() / DEMO_NAME


def demo_ready() -> bool:
    """Whether the DeepFake demo set has been built."""
    return (demo_dir() / "generation.json").is_file()


def sources() -> dict[str, str]:
    """Label -> ``open_source`` spec of every source the user has: bundled, demo, and the configured folders."""
    settings = paths.load_settings()
    out = {BUNDLED: format_spec("ptbxl", "bundled")}
    if settings.get("ptbxl_dir"):
        spec = format_spec("ptbxl", settings["ptbxl_dir"], plus_dir=settings.get("ptbxl_plus_dir") or None)
        out[f"PTB-XL ({settings['ptbxl_dir']})"] = spec
    if demo_ready():
        out["DeepFake demo set (generated)"] = format_spec("deepfake", demo_dir())
    if settings.get("deepfake_dir"):
        out[f"DeepFake ({settings['deepfake_dir']})"] = format_spec("deepfake", settings["deepfake_dir"])
    if settings.get("challenge_dir"):
        out[f"Challenge ({settings['challenge_dir']})"] = format_spec("challenge", settings["challenge_dir"])
    return out


@st.cache_resource(show_spinner="Opening the dataset ...")
def dataset(spec: str) -> tuple[ECGDataset, list[str]]:
    """The dataset of ``spec`` and the warnings opening it gave (missing files ...), opened once per process."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = parse_spec(spec)
        if parsed.kind == "deepfake":  # a generated set measured by older code: measure it again first
            remeasure_if_stale(parsed.path)
        ds = open_source(spec)
    return ds, [paths.display_text(str(w.message)) for w in caught]


@st.cache_data(show_spinner=False, max_entries=64)
def record(spec: str, record_id: str) -> Record:
    """One record of a dataset, read once."""
    return dataset(spec)[0].read(record_id)


@st.cache_data(show_spinner="Measuring intervals ...", max_entries=64)
def measurement(_record: Record, key: str) -> dict[str, Any]:
    """:func:`ecgcore.measure.measure_record` of a record as a dict (``key`` names the record for the cache)."""
    m = measure_record(_record)
    return {
        "summary": m.to_dict(),
        "beat_fiducials": {k: list(v) for k, v in m.beat_fiducials.items()},
        "median_beat": m.median_beat,
        "median_fs": m.median_fs,
        "representative_fiducials_s": m.representative_fiducials_s(),
    }


@st.cache_data(show_spinner="Reading the whole record for its overview ...", max_entries=16)
def envelope(_source: Path | Record, key: str, fs: float | None = None) -> Envelope:
    """:func:`ecgcore.io.record_envelope` of a long record (read in chunks; ``fs`` for a CSV), once per
    ``key`` and ``fs``."""
    return record_envelope(_source, fs=fs)


def source_key(source: Path | Record) -> str:
    """A cache key for a long record: a file's path, size and time of change, or a record's samples."""
    if isinstance(source, Record):
        return upload_key(source)
    info = Path(source).stat()
    return f"file:{source}:{info.st_size}:{info.st_mtime_ns}"


def upload_key(rec: Record) -> str:
    """A cache key for an uploaded record: its file name and a hash of its samples."""
    return f"upload:{rec.path}:{hashlib.sha1(rec.signal.tobytes()).hexdigest()[:16]}"


def measured(rec: Record, key: str) -> dict[str, Any] | None:
    """:func:`measurement`, with a problem shown on the page instead of raised (``None`` then)."""
    try:
        return measurement(rec, f"{key}@{measurement_version()}")  # a new measurement is never a stale hit
    except ValueError as exc:
        st.warning(f"Intervals could not be measured: {exc}")
    return None


def uploads_to_records(
    files: list, fs: float | None, long_ok: bool = False
) -> list[tuple[str, Record | RecordInfo | ECGFormatError]]:
    """Every record among the uploaded files: ``(file name, record or the reason it could not be read)``.

    A WFDB ``.hea`` (with the ``.dat`` / ``.mat`` of the same name), each ``.edf``, ``.asc`` and ``.csv`` is
    one record, read by :func:`ecgcore.io.read_upload` (CSV needs ``fs``); files that belong to no
    record are named in one error. With ``long_ok`` every record is kept on disk (:func:`staged_record`)
    and a WFDB ``.dat``, EDF or CSV record longer than :data:`ecgcore.viz.LONG_RECORD_S` is not read:
    its :class:`~ecgcore.io.RecordInfo` is returned, for reading window by window.
    Without ``long_ok`` (pages that use a record whole) an upload over
    :data:`ecgcore.io.UPLOAD_WHOLE_MAX_BYTES` is refused with that reason before it is parsed.
    """
    named = [(f.name, f.getvalue()) for f in files]
    mains = [name for name, _ in named if Path(name).suffix.lower() in (".hea", ".edf", ".asc", ".csv")]
    out: list[tuple[str, Record | ECGFormatError]] = []
    for main in mains:
        group = [
            (n, d)
            for n, d in named
            if Path(n).stem == Path(main).stem and (n == main or Path(n).suffix.lower() in (".dat", ".mat"))
        ]
        try:
            if long_ok:  # every record staged: a later one of this upload must not evict an earlier one
                out.append((main, staged_record(group, fs, keep=max(4, len(mains)))))
            else:  # pages that use the record whole
                out.append((main, read_upload(group, fs=fs, max_bytes=UPLOAD_WHOLE_MAX_BYTES)))
        except (ECGFormatError, ValueError, OSError) as exc:
            out.append((main, ECGFormatError(paths.display_text(str(exc)))))
    used = {Path(m).stem for m in mains}
    loose = [n for n, _ in named if Path(n).stem not in used]
    if loose:
        out.append(
            (
                ", ".join(loose),
                ECGFormatError(
                    f"{', '.join(loose)}: no record among the uploaded files; expected a WFDB .hea (with its "
                    ".dat or .mat of the same name), an EDF, a DeepFake .asc or a CSV"
                ),
            )
        )
    return out


@st.cache_data(show_spinner=False, max_entries=16)
def staged_info(main: str, fs: float | None) -> RecordInfo:
    """:func:`ecgcore.io.record_info` of a staged upload, once per file and rate (its folder is named by its
    contents, so the answer never goes stale): a long CSV's rows are not counted again at every rerun."""
    return record_info(Path(main), fs=fs)


def staged_record(group: list[tuple[str, bytes]], fs: float | None, keep: int = 4) -> Record | RecordInfo:
    """An upload kept on disk (written once, :func:`ecgcore.io.stage_upload`): a WFDB ``.dat``, EDF or CSV
    record longer than :data:`ecgcore.viz.LONG_RECORD_S` comes back as its :class:`~ecgcore.io.RecordInfo`
    (header only; a CSV's rows counted in chunks), to read window by window; any other is read whole."""
    main = stage_upload(group, paths.subdir("uploads"), keep)
    fs = fs if main.suffix.lower() == ".csv" else None
    if main.suffix.lower() in (".hea", ".edf", ".csv"):
        try:
            info = staged_info(str(main), fs)
        except ECGFormatError as exc:  # name the uploaded file, not the folder it was kept in
            raise ECGFormatError(hide_folder(str(exc), main.parent)) from None
        if info.format in ("wfdb", "edf", "edf+", "csv") and info.duration > viz.LONG_RECORD_S:
            return info
    return read_saved_upload(main, [name for name, _ in group], fs)


def upload_to_record(files: list, fs: float | None) -> Record:
    """The first record among uploaded files (see :func:`uploads_to_records`).

    Raises
    ------
    ECGFormatError
        If the files do not form a readable record (the message names the file and the problem).
    """
    found = uploads_to_records(files, fs)
    for _, rec in found:
        if isinstance(rec, Record):
            return rec
    if found:
        raise found[0][1]
    raise ECGFormatError("no file was uploaded")


def upload_widget(key: str, long_ok: bool = False) -> Record | RecordInfo | None:
    """File uploader (several records at once) + sampling-rate box for CSV; the chosen record, or ``None``.

    With several records uploaded they are listed and the user picks one, or steps through them with
    the previous / next buttons; a file that could not be read is named with what is wrong in it.
    ``long_ok``: a long WFDB or EDF record comes back as its :class:`~ecgcore.io.RecordInfo`, unread (see
    :func:`uploads_to_records`).
    """
    files = st.file_uploader(
        "Upload records: WFDB .hea + .dat/.mat, EDF, DeepFake .asc, or CSV (one column per lead, mV); "
        "several at once are listed",
        type=None,  # checked by ecgcore.io.check_upload_name, which says why a file is refused
        accept_multiple_files=True,
        key=f"{key}_files",
    )
    if not files:
        return None
    fs = None
    if any(f.name.lower().endswith(".csv") for f in files):
        fs = st.number_input("Sampling rate of the CSV (Hz)", min_value=1.0, value=500.0, key=f"{key}_fs")
    found = uploads_to_records(files, fs, long_ok)
    for _, problem in found:
        if not isinstance(problem, (Record, RecordInfo)):
            st.error(f"Could not read the upload: {paths.display_text(str(problem))}")
    records = {name: rec for name, rec in found if isinstance(rec, (Record, RecordInfo))}
    if len(records) <= 1:
        return next(iter(records.values()), None)
    names = list(records)
    pick_key = f"{key}_pick"
    if st.session_state.get(pick_key) not in names:
        st.session_state[pick_key] = names[0]
    c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
    at = names.index(st.session_state[pick_key])

    def step(by: int) -> None:
        st.session_state[pick_key] = names[min(max(at + by, 0), len(names) - 1)]

    c2.button(
        "Previous",
        key=f"{key}_prev",
        disabled=at == 0,
        icon=":material/chevron_left:",
        on_click=step,
        args=(-1,),
    )
    c3.button(
        "Next",
        key=f"{key}_next",
        disabled=at == len(names) - 1,
        icon=":material/chevron_right:",
        on_click=step,
        args=(1,),
    )
    chosen = c1.selectbox(
        f"Uploaded records ({len(names)})",
        names,
        key=pick_key,
        format_func=lambda n: (
            f"{n} — {len(records[n].leads)} leads, {records[n].fs:g} Hz, {records[n].duration:.1f} s"
        ),
    )
    return records[chosen]


def store_repair_banner() -> None:
    """Open the run store (a damaged one is rebuilt from the run directories) and say so in this session."""
    from ecgcore.runs.store import RunStore, take_repair_notice

    try:
        RunStore()
    except (OSError, sqlite3.Error) as exc:
        st.error(f"The run store could not be opened: {exc}")
        return
    notice = take_repair_notice()
    if notice:
        st.session_state["store_repair_notice"] = notice
    if "store_repair_notice" in st.session_state:
        st.warning(f"Run store repaired: {st.session_state['store_repair_notice']}", icon=":material/build:")


def html_download(fig: go.Figure, name: str, key: str) -> None:
    """A button that downloads ``fig`` as a self-contained interactive HTML file (built only when clicked)."""
    st.download_button(
        "Download figure (HTML)",
        data=lambda: fig.to_html(include_plotlyjs=True),
        file_name=f"{name}.html",
        mime="text/html",
        key=key,
        on_click="ignore",
        icon=":material/download:",
    )


def csv_download(frame, name: str, key: str, label: str = "Download CSV") -> None:
    """A button that downloads a table as CSV."""
    st.download_button(
        label,
        data=frame.to_csv(index=False).encode("utf-8"),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
        icon=":material/download:",
    )


def guarded(what: str, fn: Callable[[], Any], hide: Path | None = None) -> Any:
    """Run ``fn``; a data or format problem is shown as an error naming ``what`` instead of a traceback
    (without the folder ``hide``: where an upload was kept)."""
    try:
        return fn()
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        st.error(paths.display_text(f"{what}: {exc if hide is None else hide_folder(str(exc), hide)}"))
        return None


def short_data(spec: str) -> str:
    """A data spec as a reader names it: ``DeepFake demo set``, ``PTB-XL sample``, ``PTB-XL (folder name)``."""
    try:
        parsed = parse_spec(spec)
    except ValueError:
        return spec
    kind, path = parsed.kind, str(parsed.path)
    if kind == "ptbxl" and path == "bundled":
        return "PTB-XL sample"
    if Path(path).name == DEMO_NAME:
        return "DeepFake demo set"
    names = {"ptbxl": "PTB-XL", "deepfake": "DeepFake", "wfdb": "WFDB", "challenge": "Challenge"}
    return f"{names.get(kind, kind)} ({Path(path).name or path})"


def headline(row: Any) -> str:
    """A run's headline score in words, e.g. ``val MAE / SD 0.62`` or ``val AUC 0.871`` (empty when it has none)."""
    for column, label, digits in (
        ("val_auc", "val AUC", 3),
        ("val_mae_over_sd", "val MAE / SD", 2),
        ("val_mae", "val MAE", 1),
    ):
        value = row.get(column) if hasattr(row, "get") else None
        if value is not None and value == value:
            return f"{label} {value:.{digits}f}"
    return ""


def run_label(row: Any) -> str:
    """How a run is listed in pickers: its name (or id), task, data and headline score."""
    parts = [str(row.get("name") or row["id"]), str(row["task"]), short_data(str(row["data"])), headline(row)]
    return " · ".join(p for p in parts if p)


_SPLITS = {"val": "validation", "test": "test", "train": "training"}
_MEASURES = {
    "mae_over_sd": ("MAE / SD", "unitless: each target's MAE over its training SD, averaged"),
    "mae": ("MAE", "averaged over targets of different units"),
    "rmse": ("RMSE", "averaged over targets of different units"),
    "auc": ("macro AUC", "0.5 = chance, 1 = perfect"),
    "accuracy": ("accuracy", "share of records"),
    "f1_macro": ("macro F1", "0-1"),
}


def metric_label(key: str) -> tuple[str, str]:
    """A metric column as a reader names it, and its unit or a note: ``test_mae_pr`` -> ``test MAE PR interval (ms)``.

    Handles ``[baseline_]{val,test}_{measure}[_{target}]`` (the store's headline columns, old and new
    metric names alike); anything else comes back as it is.
    """
    prefix, rest = ("baseline ", key[len("baseline_") :]) if key.startswith("baseline_") else ("", key)
    split, _, measure = rest.partition("_")
    if split not in _SPLITS or not measure:
        return key, ""
    for name, (label, note) in sorted(_MEASURES.items(), key=lambda kv: -len(kv[0])):
        if measure == name:
            return f"{prefix}{split} {label}", note
        if measure.startswith(f"{name}_") and measure[len(name) + 1 :] in TARGETS_BY_KEY:
            target = TARGETS_BY_KEY[measure[len(name) + 1 :]]
            return f"{prefix}{split} {label} {target.name} ({target.unit})", target.unit
    return key, ""


def metric_text(key: str, value: float) -> str:
    """``test MAE PR interval 18.4 ms`` / ``validation macro AUC 0.871``: a metric with its unit."""
    label, unit = metric_label(key)
    if unit in ("bpm", "ms"):
        return f"{label.replace(f' ({unit})', '')} {value:.1f} {unit}"
    return f"{label} {value:.3f}"
