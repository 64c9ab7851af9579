"""Settings: where the user's PTB-XL, PTB-XL+ and DeepFake folders are, each validated when saved."""

import os

import streamlit as st

from ecgcore import paths
from ecgcore.data import format_spec, open_source
from ecgcore.data.ptbxl_plus import load_ptbxl_plus

#: setting key -> (label, how to validate a folder: a callable raising with a clear message)
FOLDERS = {
    "ptbxl_dir": (
        "PTB-XL folder (with ptbxl_database.csv, records100/, records500/)",
        lambda d: open_source(format_spec("ptbxl", d)),
    ),
    "ptbxl_plus_dir": ("PTB-XL+ folder (12SL / Uni-G features; optional interval labels)", load_ptbxl_plus),
    "deepfake_dir": (
        "DeepFake ECG folder (ground-truth CSV + .asc files)",
        lambda d: open_source(format_spec("deepfake", d)),
    ),
    "challenge_dir": (
        "PhysioNet/CinC Challenge 2020/2021 folder (.hea + .mat records with # Dx SNOMED labels; e.g. Georgia)",
        lambda d: open_source(f"challenge:{d}"),
    ),
}

st.title("Settings")
st.write(
    "Where your datasets live. Saved in "
    f"`{paths.data_home() / 'settings.json'}` and remembered across restarts; an environment variable "
    "(shown beside each field) wins over the saved value."
)
saved = paths.load_settings()
with st.form("folders"):
    values = {}
    for key, (label, _) in FOLDERS.items():
        env = paths.SETTING_ENV[key]
        locked = bool(os.environ.get(env))
        values[key] = st.text_input(
            label,
            value=saved.get(key, ""),
            key=f"setting_{key}",
            disabled=locked,
            help=f"Environment variable {env}" + (" is set and wins." if locked else "."),
            placeholder="/path/to/folder (leave empty if you do not have it)",
        )
    submitted = st.form_submit_button("Validate and save", type="primary")

if submitted:
    good = {}
    for key, folder in values.items():
        label, check = FOLDERS[key]
        folder = folder.strip()
        if not folder:
            good[key] = ""
            continue
        try:
            check(folder)
        except (ValueError, OSError) as exc:
            st.error(f"{label.split(' (')[0]}: {exc}")
        else:
            good[key] = folder
            st.success(f"{label.split(' (')[0]}: {folder} is valid.")
    paths.save_settings({k: v for k, v in good.items() if not os.environ.get(paths.SETTING_ENV[k])})
    st.cache_resource.clear()
    st.caption("Saved the valid folders; invalid ones were left as they were.")

st.subheader("Data directory")
st.write(f"Caches, generated data, runs and settings: `{paths.data_home()}` (set `ECGLAB_HOME` to move it).")
