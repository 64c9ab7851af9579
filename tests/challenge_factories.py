"""Challenge-layout fixtures: ``.hea`` + MATLAB v4 ``.mat`` records with the labels a test assigns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from ecgcore.vocab import LEADS_12

GAIN = 1000.0  # ADC units per mV, as the Challenge's records


@dataclass(frozen=True)
class FakeRecord:
    """One record to write: its Challenge name, rate, length, SNOMED codes, age and sex."""

    name: str
    dx: tuple[str, ...]
    fs: float = 500.0
    seconds: float = 10.0
    age: str = "60"
    sex: str = "Female"
    folder: str = ""


def write_challenge_record(root: Path, rec: FakeRecord, seed: int = 0) -> Path:
    """Write ``rec`` under ``root/rec.folder``; the signal is a seeded sum of sines per lead (mV)."""
    folder = Path(root) / rec.folder
    folder.mkdir(parents=True, exist_ok=True)
    n = int(round(rec.fs * rec.seconds))
    t = np.arange(n) / rec.fs
    rng = np.random.default_rng(seed)
    mv = np.stack([np.sin(2 * np.pi * (1 + 0.1 * i) * t) + 0.05 * rng.standard_normal(n) for i in range(12)])
    scipy.io.savemat(folder / f"{rec.name}.mat", {"val": np.round(mv * GAIN).astype(np.int16)}, format="4")
    lines = [f"{rec.name} 12 {rec.fs:g} {n}"]
    lines += [f"{rec.name}.mat 16x1+24 {GAIN:g}(0)/mV 16 0 0 0 0 {lead}" for lead in LEADS_12]
    lines += [f"# Age: {rec.age}", f"# Sex: {rec.sex}", f"# Dx: {','.join(rec.dx)}", "# Rx: Unknown"]
    (folder / f"{rec.name}.hea").write_text("\n".join(lines) + "\n")
    return folder / rec.name


def make_challenge_dir(root: str | Path, records: list[FakeRecord]) -> Path:
    """A Challenge folder holding ``records`` (each with its own seed)."""
    root = Path(root)
    for i, rec in enumerate(records):
        write_challenge_record(root, rec, seed=i)
    return root


def toy_database(
    prefix: str, n: int, classes: list[str], seed: int = 0, start: int = 1, **kw
) -> list[FakeRecord]:
    """``n`` records ``<prefix><number>`` whose ``# Dx`` draws from ``classes`` (SNOMED codes), each with >= 1."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        picked = [c for c in classes if rng.random() < 0.3] or [classes[i % len(classes)]]
        out.append(FakeRecord(f"{prefix}{start + i:05d}", tuple(picked), **kw))
    return out


#: The study statements the toy folders use (frequent enough that a 40-record split has positives).
TOY_STATEMENTS: tuple[str, ...] = ("1AVB", "IRBBB", "LVH", "NDT")


def make_toy_ptbxl(root: Path, n: int = 40, seed: int = 3) -> Path:
    """A PTB-XL-layout folder (100 Hz) whose records carry the study's statements (some none)."""
    import pandas as pd

    from tests.factories import make_ptbxl_dir

    make_ptbxl_dir(root, n, seed=seed, fs=100)
    db = pd.read_csv(root / "ptbxl_database.csv")
    rng = np.random.default_rng(seed)
    db["scp_codes"] = [
        repr({**{s: 100.0 for s in TOY_STATEMENTS if rng.random() < 0.35}, "SR": 0.0}) for _ in range(len(db))
    ]
    db.to_csv(root / "ptbxl_database.csv", index=False)
    return root


def make_toy_g12ec(root: Path, n: int = 40, seed: int = 4, hr_ids: tuple[int, ...] = ()) -> Path:
    """A Challenge-layout folder of ``n`` Georgia records (``E*``) with the SNOMED codes of the toy statements,
    plus PTB-XL records ``HR<id>`` for ``hr_ids`` (to put the same PTB-XL record on both sides)."""
    from ecgcore.data.labels import crosswalk

    codes = crosswalk().set_index("scp_code").loc[list(TOY_STATEMENTS), "snomed_ct"].tolist()
    records = toy_database("E", n, codes, seed=seed)
    records += [FakeRecord(f"HR{i:05d}", (codes[0],)) for i in hr_ids]
    return make_challenge_dir(root, records)
