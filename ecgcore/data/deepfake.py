"""DeepFake ECG (Thambawita et al. 2021): the published layout, and generating more with its GAN.

Layout supported (as the published set on OSF, https://osf.io/6hved/, is organised)
-------------------------------------------------------------------------------------
* A ground-truth CSV in the folder itself, with at least ``patid, avgrrinterval, pr, qrs, qt``
  (ms). The published file is ``filtered_all_normals_121977_ground_truth.csv``; any CSV with a
  ``patid`` column is accepted, one whose name contains ``ground_truth`` preferred.
* ``{patid}.asc`` files (5000 x 8 integer microvolts, I, II, V1-V6, 500 Hz) in the folder or in any
  subfolder (the published set keeps them in ``from_006_chck_2500_150k_filtered_all_normals_121977/``).

HR = 60000 / ``avgrrinterval``. Rows whose ``.asc`` is absent are counted and skipped; empty
interval cells (a record whose interval could not be measured) are NaN.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcore import paths
from ecgcore.data.base import DatasetError, ECGDataset, hash_fold, require_dir, split_of, warn_missing
from ecgcore.data.sources import register_source
from ecgcore.io import ASC_FS, ASC_LEADS, ASC_SAMPLES
from ecgcore.measure import measure_many, measurement_version
from ecgcore.progress import ProgressFn, report

REQUIRED_COLUMNS = ("patid", "avgrrinterval", "pr", "qrs", "qt")
#: The ground-truth CSV that :func:`generate_deepfake` writes.
GROUND_TRUTH = "deepfake_ground_truth.csv"
#: Measurement columns written after the published ones (from ecgcore.measure.measure_many).
MEASURED_COLUMNS = ("hr", "qtc_bazett", "qtc_fridericia", "n_beats", "flags")
#: deepfakeecg scales the generator's tanh output by this to get integer microvolts.
GENERATOR_SCALE = 6000
DEMO_NAME = "deepfake-demo"


def find_ground_truth(root: Path) -> Path:
    """The folder's ground-truth CSV (a CSV with a ``patid`` column; ``*ground_truth*`` preferred)."""
    candidates = [p for p in sorted(root.glob("*.csv")) if "patid" in pd.read_csv(p, nrows=0).columns]
    if not candidates:
        raise DatasetError(
            f"{root} is not a DeepFake ECG folder: no ground-truth CSV with a 'patid' column in it"
        )
    preferred = [p for p in candidates if "ground_truth" in p.name.lower()] or candidates
    if len(preferred) > 1:
        raise DatasetError(
            f"{root}: several ground-truth CSVs ({', '.join(p.name for p in preferred)}); keep one"
        )
    return preferred[0]


def _record_id(patid: object) -> str:
    """``12``, ``12.0`` and ``"12"`` all name ``12.asc``."""
    if isinstance(patid, (int, np.integer)):
        return str(int(patid))
    if isinstance(patid, (float, np.floating)) and float(patid).is_integer():
        return str(int(patid))
    return str(patid).strip()


@register_source("deepfake")
class DeepFake(ECGDataset):
    """A DeepFake ECG folder (see the module docstring for the layout)."""

    signal_suffixes = ("",)  # the index path is the .asc file itself

    def __init__(self, root: str | Path):
        root = require_dir("DeepFake ECG", root)
        csv = find_ground_truth(root)
        table = pd.read_csv(csv)
        absent = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if absent:
            raise DatasetError(
                f"{csv}: missing columns {', '.join(absent)} (a DeepFake ground truth has {', '.join(REQUIRED_COLUMNS)})"
            )
        asc = {p.stem: p for p in root.rglob("*.asc")}
        ids = [_record_id(p) for p in table["patid"]]
        if len(set(ids)) != len(ids):
            raise DatasetError(f"{csv}: duplicated patid values")
        index = pd.DataFrame({"record_id": ids, "patient_id": ids})
        index["fold"] = [hash_fold(i) for i in ids]
        index["split"] = split_of(index["fold"])
        rr = pd.to_numeric(table["avgrrinterval"], errors="coerce")
        index["hr"] = 60_000.0 / rr.where(rr > 0)
        for key in ("pr", "qrs", "qt"):
            index[key] = pd.to_numeric(table[key], errors="coerce").to_numpy()
        index["path"] = [asc[i].relative_to(root).as_posix() if i in asc else "" for i in ids]
        extra = [c for c in table.columns if c not in REQUIRED_COLUMNS and c not in index.columns]
        for col in extra:
            index[col] = table[col].to_numpy()
        available = index["path"] != ""
        missing = index.loc[~available, "record_id"].tolist()
        warn_missing("DeepFake", root, [f"{m}.asc" for m in missing], len(index))
        if not available.any():
            raise DatasetError(f"{root}: none of the {len(index)} records in {csv.name} has its .asc file")
        self.ground_truth = csv
        super().__init__(root, ASC_FS, ASC_LEADS, index[available], missing)

    def table_files(self) -> list[Path]:
        return [self.ground_truth]


@lru_cache(maxsize=1)
def _generator(device: str):
    """The deepfake-ecg package's Pulse2Pulse generator with its bundled weights, in eval mode (loaded once)."""
    import deepfakeecg
    import torch

    checkpoint = Path(deepfakeecg.__file__).resolve().parent / "checkpoints" / "g_stat.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"the deepfake-ecg package has no generator weights at {checkpoint}")
    with warnings.catch_warnings():  # the package's init code uses a deprecated torch alias
        warnings.simplefilter("ignore", FutureWarning)
        net = deepfakeecg.Generator()
    state = torch.load(checkpoint, map_location=device, weights_only=True)
    net.load_state_dict(state["stat_dict"])
    return net.to(device).eval()


def _put_intervals(table: pd.DataFrame, intervals: pd.DataFrame) -> None:
    """Write measured intervals into ground-truth rows (``avgrrinterval`` from the measured HR)."""
    intervals = intervals.reset_index(drop=True)
    table["avgrrinterval"] = 60_000.0 / intervals["hr"].astype(float)
    for col in ("pr", "qrs", "qt", *MEASURED_COLUMNS):
        if col in intervals.columns:
            table[col] = intervals[col].to_numpy()


def _tidy(truth: pd.DataFrame) -> pd.DataFrame:
    """The ground-truth columns in order, rates rounded to 0.01."""
    truth = truth.reindex(columns=[*REQUIRED_COLUMNS, *MEASURED_COLUMNS])
    for col in ("avgrrinterval", "hr", "qtc_bazett", "qtc_fridericia"):
        truth[col] = pd.to_numeric(truth[col], errors="coerce").round(2)
    return truth


def _measure(signals_mv: np.ndarray) -> pd.DataFrame:
    """Intervals of a batch ``[B, 8, 5000]`` (mV) with :func:`ecgcore.measure.measure_many`."""
    return measure_many(signals_mv, ASC_FS, ASC_LEADS, n_jobs=min(2, os.cpu_count() or 1))


def remeasure_if_stale(root: str | Path, progress: ProgressFn | None = None, batch_size: int = 64) -> bool:
    """Measure a generated set's intervals again when the measurement code changed since; True if it did.

    Only sets this module generated (a ``generation.json`` whose intervals ``ecgcore.measure`` wrote)
    are touched; their ground-truth CSV is rewritten atomically with the current measurement and the
    version recorded. A published set's labels are never changed.
    """
    root = Path(root)
    info_path = root / "generation.json"
    if not info_path.is_file():
        return False
    info = json.loads(info_path.read_text())
    if (
        info.get("intervals") != "ecgcore.measure.measure_many"
        or info.get("measure_version") == measurement_version()
    ):
        return False
    truth = pd.read_csv(root / GROUND_TRUTH)
    parts = []
    for first in range(0, len(truth), batch_size):
        table = truth.iloc[first : first + batch_size][["patid"]].reset_index(drop=True)
        batch = np.stack([np.loadtxt(root / f"{pid}.asc", dtype=np.float32).T for pid in table["patid"]])
        _put_intervals(table, _measure(batch / 1000.0))
        parts.append(table)
        report(progress, min(first + batch_size, len(truth)), len(truth), "measuring the intervals again")
    paths.atomic_write_text(
        root / GROUND_TRUTH, _tidy(pd.concat(parts, ignore_index=True)).to_csv(index=False)
    )
    paths.atomic_write_json(info_path, {**info, "measure_version": measurement_version()})
    return True


def generate_deepfake(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    progress: ProgressFn | None = None,
) -> Path:
    """Generate ``n`` DeepFake ECGs into ``out_dir`` in the published layout and return it.

    The generator runs in batches on ``device`` (``"auto"``: CUDA when present). The noise is drawn
    on the CPU from a ``torch.Generator`` seeded with ``seed``, so a seed gives the same noise on
    every device. Each output is ``int(G(noise) * 6000)`` microvolts, transposed to 5000 x 8, as
    ``deepfakeecg.generate`` writes it. The ground-truth CSV's intervals come from
    :func:`ecgcore.measure.measure_many` on the written (integer) signals. Everything is written into a temporary folder
    that is renamed to ``out_dir`` at the end; an existing non-empty ``out_dir`` is refused.
    """
    import torch

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists and is not empty; choose a new folder")
    if n < 1 or batch_size < 1:
        raise ValueError(f"n ({n}) and batch_size ({batch_size}) must be positive")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        start = time.perf_counter()
        net = _generator(device)
        noise_rng = torch.Generator().manual_seed(int(seed))
        rows: list[pd.DataFrame] = []
        for first in range(0, n, batch_size):
            b = min(batch_size, n - first)
            noise = torch.empty(b, len(ASC_LEADS), ASC_SAMPLES).uniform_(-1, 1, generator=noise_rng)
            with torch.inference_mode():
                batch = (net(noise.to(device)) * GENERATOR_SCALE).int().cpu().numpy()
            for i, ecg in enumerate(batch):
                np.savetxt(tmp / f"{first + i}.asc", ecg.T, fmt="%i")
            table = pd.DataFrame({"patid": np.arange(first, first + b)})
            _put_intervals(table, _measure(batch.astype(np.float32) / 1000.0))
            rows.append(table)
            report(progress, first + b, n, f"generated {first + b} ECGs on {device}")
        truth = _tidy(pd.concat(rows, ignore_index=True))
        truth.to_csv(tmp / GROUND_TRUTH, index=False)
        info: dict[str, Any] = {
            "n": n,
            "seed": seed,
            "batch_size": batch_size,
            "device": device,
            "generator": f"deepfake-ecg {metadata.version('deepfake-ecg')} (Pulse2Pulse, checkpoints/g_stat.pt)",
            "intervals": "ecgcore.measure.measure_many",
            "measure_version": measurement_version(),
            "seconds": round(time.perf_counter() - start, 2),
        }
        paths.atomic_write_json(tmp / "generation.json", info)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_demo_set(n: int = 300, progress: ProgressFn | None = None) -> Path:
    """The DeepFake demo set under ``paths.generated_dir()``: generated once (seed 0), reused after."""
    target = paths.generated_dir() / DEMO_NAME
    info = target / "generation.json"
    if info.is_file() and json.loads(info.read_text()).get("n", 0) >= n:
        return target
    if target.exists():  # a smaller demo set from before: replace it
        shutil.rmtree(target)
    try:
        return generate_deepfake(target, n, seed=0, progress=progress)
    except (ValueError, OSError):
        if info.is_file():  # another session finished the same demo set first
            return target
        raise
