"""Small, fast, deterministic datasets on disk for everyone's tests.

Each builder writes a folder in the real layout of its source (DeepFake ECG, PTB-XL, PTB-XL+)
from :func:`ecgcore.data.synthetic.synthetic_ecg`, so the labels are true for the waveforms: a
model can learn them, and a reader that mixes up columns fails. Synthetic data, never presented
as real data.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecgcore.data.deepfake import GROUND_TRUTH
from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.paths import BUNDLED_PTBXL
from ecgcore.vocab import LEADS_8, LEADS_12, SUPERCLASSES, TARGET_KEYS

#: Name of the ground-truth CSV the DeepFake builder writes: the generator's (the published set uses
#: ``filtered_all_normals_121977_ground_truth.csv``; the reader accepts any ``*ground_truth*.csv``).
DEEPFAKE_CSV = GROUND_TRUTH
#: The true intervals of a :func:`make_ptbxl_dir` folder (not a PTB-XL file; readers ignore it).
PTBXL_TRUTH_CSV = "synthetic_intervals.csv"

#: One SCP code per superclass (each has ``diagnostic == 1`` and that class in scp_statements.csv).
SCP_FOR_CLASS = {"NORM": "NORM", "MI": "IMI", "STTC": "NDT", "CD": "CLBBB", "HYP": "LVH"}
#: How each superclass changes the synthetic morphology, so a classifier can learn it.
_MORPHOLOGY = {
    "NORM": dict(amplitude_scale=(0.9, 1.1), t_scale=(0.9, 1.1), qrs=(80, 100)),
    "MI": dict(amplitude_scale=(0.45, 0.6), t_scale=(-1.0, -0.7), qrs=(95, 110)),  # lost R, inverted T
    "STTC": dict(amplitude_scale=(0.9, 1.1), t_scale=(-0.1, 0.2), qrs=(80, 100)),  # flat T
    "CD": dict(amplitude_scale=(0.9, 1.1), t_scale=(0.9, 1.1), qrs=(135, 165)),  # wide QRS
    "HYP": dict(amplitude_scale=(2.0, 2.6), t_scale=(0.9, 1.1), qrs=(90, 105)),  # large voltages
}


def draw_intervals(rng: np.random.Generator, qrs_range: tuple[float, float] = (70, 120)) -> dict[str, float]:
    """Random but physiologically consistent HR (bpm), PR, QRS, QT (ms) for one synthetic beat train."""
    hr = rng.uniform(50, 110)
    rr = 60_000 / hr
    qrs = rng.uniform(*qrs_range)
    qt = max(rng.uniform(380, 440) * np.sqrt(rr / 1000), qrs + 120)  # Bazett-like QT for the rate
    pr = min(rng.uniform(120, 200), rr - qt - 30)  # next P starts after this T ends
    return {"hr": hr, "pr": pr, "qrs": qrs, "qt": qt}


def make_deepfake_dir(
    root: str | Path, n: int, seed: int = 0, fs: float = 500.0, asc_subdir: str | None = None
) -> Path:
    """Write ``n`` synthetic records in the DeepFake ECG layout and return the folder.

    ``{patid}.asc`` (5000 x 8 integer microvolts, I, II, V1-V6) and ``deepfake_ground_truth.csv``
    with ``patid, avgrrinterval, pr, qrs, qt`` (ms) that are true for the waveforms (the average RR
    is measured from the synthetic R peaks). ``asc_subdir`` puts the ``.asc`` files in a subfolder,
    as the published set does. The format fixes ``fs`` at 500 Hz.
    """
    if fs != 500:
        raise ValueError(f"the DeepFake .asc layout is 500 Hz only, not {fs}")
    root = Path(root)
    asc_dir = root / asc_subdir if asc_subdir else root
    asc_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for patid in range(n):
        iv = draw_intervals(rng)
        ecg = synthetic_ecg(
            iv["hr"],
            iv["pr"],
            iv["qrs"],
            iv["qt"],
            fs=fs,
            leads=LEADS_8,
            noise_mv=0.01,
            wander_mv=0.05,
            rr_jitter=0.02,
            amplitude_scale=rng.uniform(0.7, 1.3),
            seed=int(rng.integers(2**31)),
        )
        np.savetxt(asc_dir / f"{patid}.asc", np.round(ecg.signal.T * 1000).astype(np.int32), fmt="%i")
        avg_rr = float(np.mean(np.diff(ecg.fiducials["r_peak"])) / fs * 1000)
        rows.append(
            {
                "patid": patid,
                "avgrrinterval": round(avg_rr, 1),
                "pr": round(iv["pr"], 1),
                "qrs": round(iv["qrs"], 1),
                "qt": round(iv["qt"], 1),
            }
        )
    pd.DataFrame(rows).to_csv(root / DEEPFAKE_CSV, index=False)
    return root


def _superclass_plan(n: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Superclass sets for ``n`` records: every class represented, about 1 in 8 records multi-label."""
    plan: list[tuple[str, ...]] = [(SUPERCLASSES[i % len(SUPERCLASSES)],) for i in range(n)]
    for i in range(7, n, 8):
        plan[i] = ("CD", "HYP")
    order = rng.permutation(n)
    return [plan[i] for i in order]


def make_ptbxl_dir(root: str | Path, n: int, seed: int = 0, fs: int = 100) -> Path:
    """Write a PTB-XL-layout folder of ``n`` synthetic records and return it.

    ``ptbxl_database.csv`` has every real column (``scp_codes`` with real SCP codes, ``strat_fold``
    per patient, ``filename_lr`` and ``filename_hr``); ``scp_statements.csv`` is the real table.
    Records are written at ``fs`` only (100 -> ``records100``, 500 -> ``records500``), like the
    bundled sample's partial download. Patients have 1-3 records each; a record's superclasses
    change its morphology (MI: low R and inverted T; STTC: flat T; CD: wide QRS; HYP: large
    voltages). The true intervals are in ``synthetic_intervals.csv``.
    """
    if fs not in (100, 500):
        raise ValueError(f"PTB-XL has records at 100 or 500 Hz, not {fs}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUNDLED_PTBXL / "scp_statements.csv", root / "scp_statements.csv")
    columns = pd.read_csv(BUNDLED_PTBXL / "ptbxl_database.csv", nrows=0).columns
    rng = np.random.default_rng(seed)
    # patients with 1-3 records each; a patient's records share one fold (as PTB-XL's strat_fold)
    patient_of: list[int] = []
    while len(patient_of) < n:
        patient_of += [1000 + len(set(patient_of))] * int(rng.integers(1, 4))
    patient_of = patient_of[:n]
    patients = sorted(set(patient_of))
    fold_of = {p: (i % 10) + 1 for i, p in enumerate(rng.permutation(patients))}
    plan = _superclass_plan(n, rng)
    rows, truth = [], []
    wfdb_names = [lead.upper() if lead.startswith("aV") else lead for lead in LEADS_12]  # as PTB-XL's headers
    for i in range(n):
        ecg_id = i + 1
        classes = plan[i]
        morph = {k: rng.uniform(*v) for k, v in _MORPHOLOGY[classes[-1]].items()}
        if len(classes) > 1:  # combine: the widest QRS and the largest voltages
            morph = {k: max(rng.uniform(*_MORPHOLOGY[c][k]) for c in classes) for k in morph}
        iv = draw_intervals(rng, qrs_range=(morph["qrs"], morph["qrs"] + 1e-6))
        ecg = synthetic_ecg(
            iv["hr"],
            iv["pr"],
            iv["qrs"],
            iv["qt"],
            fs=fs,
            leads=LEADS_12,
            noise_mv=0.02,
            wander_mv=0.05,
            amplitude_scale=morph["amplitude_scale"],
            t_scale=morph["t_scale"],
            seed=int(rng.integers(2**31)),
        )
        folder = f"{(ecg_id // 1000) * 1000:05d}"
        lr, hr = f"records100/{folder}/{ecg_id:05d}_lr", f"records500/{folder}/{ecg_id:05d}_hr"
        target = Path(lr if fs == 100 else hr)
        (root / target.parent).mkdir(parents=True, exist_ok=True)
        wfdb.wrsamp(
            target.name,
            fs=fs,
            units=["mV"] * 12,
            sig_name=wfdb_names,
            p_signal=ecg.signal.T.astype(np.float64),
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            write_dir=str(root / target.parent),
        )
        codes = {SCP_FOR_CLASS[c]: 100.0 for c in classes}
        codes["SR"] = 0.0
        rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": float(patient_of[i]),
                "age": float(rng.integers(18, 90)),
                "sex": int(rng.integers(0, 2)),
                "nurse": 1.0,
                "site": 1.0,
                "device": "CS-12",
                "recording_date": f"1990-01-{(i % 28) + 1:02d} 10:00:00",
                "report": "synthetic",
                "scp_codes": repr(codes),
                "validated_by_human": True,
                "second_opinion": False,
                "initial_autogenerated_report": False,
                "strat_fold": fold_of[patient_of[i]],
                "filename_lr": lr,
                "filename_hr": hr,
            }
        )
        truth.append({"ecg_id": ecg_id, **{k: round(v, 1) for k, v in iv.items()}})
    pd.DataFrame(rows).reindex(columns=columns).to_csv(root / "ptbxl_database.csv", index=False)
    pd.DataFrame(truth).to_csv(root / PTBXL_TRUTH_CSV, index=False)
    return root


def make_ptbxl_plus_dir(
    root: str | Path,
    ecg_ids: Iterable[int],
    seed: int = 0,
    intervals: pd.DataFrame | None = None,
    n_nan: int = 0,
) -> Path:
    """Write a PTB-XL+ folder with ``features/12sl_features.csv`` for ``ecg_ids`` and return it.

    The columns are the real global 12SL ones (``RR_Mean_Global``, ``PR_Int_Global``,
    ``QRS_Dur_Global``, ``QT_Int_Global``, ``PQ_Int_Global``, ``P_Dur_Global``, ``T_Dur_Global``,
    ``QT_IntFramingham_Global``). ``intervals`` (``ecg_id, hr, pr, qrs, qt``, e.g. a
    :func:`make_ptbxl_dir` folder's ``synthetic_intervals.csv``) sets them to the waveforms' true
    values; otherwise they are drawn at random. The first ``n_nan`` rows get a NaN ``PR_Int_Global``.
    """
    root = Path(root)
    (root / "features").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [int(i) for i in ecg_ids]
    if intervals is None:
        drawn = [draw_intervals(rng) for _ in ids]
        intervals = pd.DataFrame({"ecg_id": ids, **{k: [d[k] for d in drawn] for k in TARGET_KEYS}})
    iv = intervals.set_index("ecg_id").loc[ids]
    table = pd.DataFrame(
        {
            "ecg_id": ids,
            "PQ_Int_Global": (iv["pr"] - 10).round().to_numpy(),
            "PR_Int_Global": iv["pr"].round().to_numpy(),
            "P_Dur_Global": np.full(len(ids), 100.0),
            "QRS_Dur_Global": iv["qrs"].round().to_numpy(),
            "QT_Int_Global": iv["qt"].round().to_numpy(),
            "QT_IntFramingham_Global": (iv["qt"] + 0.154 * (1000 - 60000 / iv["hr"])).round().to_numpy(),
            "RR_Mean_Global": (60000 / iv["hr"]).round().to_numpy(),
            "T_Dur_Global": (iv["qt"] - iv["qrs"] - 80).round().to_numpy(),
        }
    )
    table.loc[: n_nan - 1, "PR_Int_Global"] = np.nan
    table.to_csv(root / "features" / "12sl_features.csv", index=False)
    return root


def make_long_wfdb(folder: str | Path, name: str = "holter", hours: float = 2.0, fs: int = 250) -> Path:
    """A long 2-lead (II, V5) WFDB record in format 16: a 75 bpm spike train whose R amplitude is
    1 mV, except 2 mV in lead II during the record's second hour (so an overview can be checked).
    Written in pieces, so a day-long record needs no day of memory. Returns the header."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = int(hours * 3600 * fs)
    piece = 600 * fs
    with open(folder / f"{name}.dat", "wb") as out:
        for start in range(0, n, piece):
            t = np.arange(start, min(n, start + piece)) / fs
            spike = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.012**2))
            lead_ii = spike * np.where((t >= 3600) & (t < 7200), 2.0, 1.0)
            digital = np.round(np.stack([lead_ii, 0.8 * spike - 0.1], axis=1) * 200).astype("<i2")
            out.write(digital.tobytes())
    (folder / f"{name}.hea").write_text(
        f"{name} 2 {fs} {n}\n{name}.dat 16 200/mV 16 0 0 0 0 II\n{name}.dat 16 200/mV 16 0 0 0 0 V5\n"
    )
    return folder / f"{name}.hea"
