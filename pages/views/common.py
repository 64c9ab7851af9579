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

from ecgcore import paths
from ecgcore.data import format_spec, open_source
from ecgcore.data.base import ECGDataset
from ecgcore.data.deepfake import DEMO_NAME
from ecgcore.io import ECGFormatError, Record, read_upload
from ecgcore.measure import measure_record

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


def upload_key(rec: Record) -> str:
    """A cache key for an uploaded record: its file name and a hash of its samples."""
    return f"upload:{rec.path}:{hashlib.sha1(rec.signal.tobytes()).hexdigest()[:16]}"


def measured(rec: Record, key: str) -> dict[str, Any] | None:
    """:func:`measurement`, with a problem shown on the page instead of raised (``None`` then)."""
    try:
        return measurement(rec, key)
    except ValueError as exc:
        st.warning(f"Intervals could not be measured: {exc}")
    return None


def upload_to_record(files: list, fs: float | None) -> Record:
    """Read uploaded files as one record (:func:`ecgcore.io.read_upload`); CSV needs ``fs``.

    Raises
    ------
    ECGFormatError
        If a name is not a plain file name of a supported type, or the files do not form one
        readable record (the message names the file and the problem, never a server path).
    """
    return read_upload([(f.name, f.getvalue()) for f in files], fs)


def upload_widget(key: str) -> Record | None:
    """File uploader + sampling-rate box for CSV; the record, or ``None`` (errors are shown, never raised)."""
    files = st.file_uploader(
        "Upload a record: WFDB .hea + .dat/.mat, DeepFake .asc, or CSV (one column per lead, mV)",
        type=None,  # checked by ecgcore.io.check_upload_name, which says why a file is refused
        accept_multiple_files=True,
        key=f"{key}_files",
    )
    if not files:
        return None
    fs = None
    if any(f.name.lower().endswith(".csv") for f in files):
        fs = st.number_input("Sampling rate of the CSV (Hz)", min_value=1.0, value=500.0, key=f"{key}_fs")
    try:
        return upload_to_record(files, fs)
    except (ECGFormatError, ValueError, OSError) as exc:
        st.error(f"Could not read the upload: {paths.display_text(str(exc))}")
        return None


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


def guarded(what: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a data or format problem is shown as an error naming ``what`` instead of a traceback."""
    try:
        return fn()
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        st.error(paths.display_text(f"{what}: {exc}"))
        return None
