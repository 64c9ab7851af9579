"""Prepare an experiment's data: check that the user's data can support it, then make what its runs read.

"Prepare" means one thing in this package: making the datasets an experiment's runs will read exist
on disk (a generated DeepFake set, measured PTB-XL-A interval labels in PTB-XL+ layout). It trains
nothing and is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecgcore.data import Preprocessing, format_spec, generate_deepfake, load_cached, open_source, parse_spec
from ecgcore.data.splits import ptbxl_halves
from ecgcore.experiments.definitions import (
    DataSources,
    Experiment,
    Preset,
    build_specs,
    get_experiment,
    get_preset,
)
from ecgcore.measure import measure_many
from ecgcore.paths import BUNDLED_PTBXL, atomic_write_text, load_settings
from ecgcore.progress import ProgressFn
from ecgcore.vocab import SUPERCLASSES

PTBXL_URL = "https://physionet.org/content/ptb-xl/1.0.3/"
PTBXL_PLUS_URL = "https://physionet.org/content/ptb-xl-plus/"
#: The source kinds ``--data`` takes (``challenge``: a Challenge folder holding G12EC; option ``db=``).
DATA_KINDS: tuple[str, ...] = ("ptbxl", "deepfake", "challenge", "chapman")


class DataRequired(ValueError):
    """The experiment needs data the user has not given (the message says what and where to get it)."""


def data_sources(specs: Sequence[str] = (), plus: str | Path | None = None) -> DataSources:
    """Read ``--data`` specs (``ptbxl:DIR``, ``deepfake:DIR``, ``challenge:DIR[;db=...]``) and ``--plus DIR``
    into :class:`DataSources`.

    Where no PTB-XL / PTB-XL+ / Challenge folder is given, the user's saved settings (``ECGLAB_PTBXL``,
    ``ECGLAB_CHALLENGE`` ...) fill it in.
    A DeepFake folder is only used when given here: without one, table1 generates a set of the
    preset's size (a saved full DeepFake download would make ``--preset quick`` anything but quick).
    """
    found: dict[str, Path] = {}
    g12ec_db = "Georgia"
    for spec in specs:
        parsed = parse_spec(spec)
        if parsed.kind == "challenge" and set(parsed.options) <= {"db"}:
            g12ec_db = str(parsed.options.get("db", g12ec_db))
        elif parsed.kind not in DATA_KINDS or parsed.options:
            raise ValueError(
                f"bad --data {spec!r}; expected ptbxl:DIR, deepfake:DIR, chapman:DIR (no options) or challenge:DIR[;db=...]"
            )
        bundled = (parsed.kind, parsed.path) == ("ptbxl", "bundled")
        found[parsed.kind] = BUNDLED_PTBXL if bundled else Path(parsed.path).expanduser()
    settings = load_settings()
    ptbxl = found.get("ptbxl") or (Path(settings["ptbxl_dir"]) if settings.get("ptbxl_dir") else None)
    plus = plus or settings.get("ptbxl_plus_dir")
    challenge = found.get("challenge") or (
        Path(settings["challenge_dir"]) if settings.get("challenge_dir") else None
    )
    return DataSources(
        ptbxl=ptbxl,
        ptbxl_plus=Path(plus) if plus else None,
        deepfake=found.get("deepfake"),
        g12ec=challenge,
        g12ec_db=g12ec_db,
        chapman=found.get("chapman"),
    )


def _needs_message(experiment: Experiment, problem: str) -> str:
    return (
        f"{experiment.name} needs the full PTB-XL: {problem}\n"
        f"  Get PTB-XL 1.0.3 from PhysioNet: {PTBXL_URL} (its records100/ folder is enough for "
        f"--preset quick; --preset paper needs records500/).\n"
        f"  Unzip it and pass the folder that holds ptbxl_database.csv: --data ptbxl:DIR\n"
        f"  Optional, for interval labels on PTB-XL (transfer within PTB-XL): PTB-XL+ from "
        f"{PTBXL_PLUS_URL}, passed as --plus DIR (without it the intervals are measured by ecgcore.measure).\n"
        f"  Nothing was run."
    )


def _bundled_ids() -> set[str]:
    return set(pd.read_csv(BUNDLED_PTBXL / "ptbxl_database.csv", usecols=["ecg_id"])["ecg_id"].astype(str))


def check_data(experiment: Experiment | str, sources: DataSources) -> None:
    """Refuse to start an experiment whose data is missing or cannot support it.

    Raises
    ------
    DataRequired
        No PTB-XL given to a classification experiment, a folder that is not PTB-XL, the bundled
        11-record sample (or a copy of it), or a PTB-XL folder in which some superclass has no
        single-label record in the training, validation or test split (a macro AUC needs every class).
    """
    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    if experiment.check is not None:
        experiment.check(sources)
    if not experiment.needs_ptbxl:
        return
    if sources.ptbxl is None:
        raise DataRequired(_needs_message(experiment, "no PTB-XL folder was given."))
    root = Path(sources.ptbxl)
    database = root / "ptbxl_database.csv"
    if not root.is_dir():
        raise DataRequired(_needs_message(experiment, f"{root} is not a directory."))
    if not database.is_file():
        raise DataRequired(
            _needs_message(experiment, f"{root} has no ptbxl_database.csv (not a PTB-XL folder).")
        )
    plus_table = Path(sources.ptbxl_plus or ".") / "features" / "12sl_features.csv"
    if sources.ptbxl_plus and not plus_table.is_file():
        raise DataRequired(
            f"--plus {sources.ptbxl_plus}: no {plus_table} (expected the PTB-XL+ folder from "
            f"{PTBXL_PLUS_URL}). Nothing was run."
        )
    ids = set(pd.read_csv(database, usecols=["ecg_id"])["ecg_id"].astype(str))
    if root.resolve() == BUNDLED_PTBXL.resolve() or ids <= _bundled_ids():
        raise DataRequired(
            _needs_message(
                experiment,
                f"{root} is the bundled {len(ids)}-record PTB-XL sample, which is for browsing only: "
                "too small to train or evaluate a 5-class model.",
            )
        )
    index = open_source(format_spec("ptbxl", root)).index
    single = index[index["superclass"] != ""]
    absent = [
        f"{c} in {split}"
        for split in ("train", "val", "test")
        for c in SUPERCLASSES
        if not ((single["split"] == split) & (single["superclass"] == c)).any()
    ]
    if absent:
        raise DataRequired(
            _needs_message(
                experiment,
                f"{root} has {len(index)} records but no single-label record of "
                f"{', '.join(absent)} (strat_fold 1-8 train, 9 validation, 10 test); it is not the full PTB-XL.",
            )
        )


def prepare_data(
    experiment: Experiment | str,
    preset: Preset | str,
    sources: DataSources,
    progress: ProgressFn | None = None,
) -> None:
    """Make the data the experiment's runs read: generate the DeepFake set, measure PTB-XL-A intervals.

    Idempotent: an existing DeepFake folder or measured-label table is left as it is.
    """
    experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
    preset = get_preset(preset)
    check_data(experiment, sources)
    datas = [parse_spec(spec.config.data) for spec in build_specs(experiment, preset, sources)]
    deepfake = sources.deepfake_dir(preset)
    wanted = any(d.kind == "deepfake" and Path(d.path) == deepfake for d in datas)
    if sources.deepfake is None and wanted and not deepfake.exists():
        generate_deepfake(deepfake, preset.deepfake_n, seed=preset.seed, progress=progress)
    measured = sources.measured_dir(preset)
    if measured is not None and any(d.options.get("plus_dir") == measured for d in datas):
        measure_ptbxl_labels(sources, preset, measured, progress)


def measure_ptbxl_labels(
    sources: DataSources, preset: Preset, out: Path, progress: ProgressFn | None = None
) -> None:
    """Measure HR/PR/QRS/QT of the PTB-XL-A records with ecgcore.measure and store them in PTB-XL+ layout.

    The folder is read through the data layer's PTB-XL+ reader (``ptbxl:DIR;plus_dir=OUT``). Its
    README says the values are our measurement, not the 12SL values PTB-XL+ publishes. Nothing is
    done when the table is already there.
    """
    table = out / "features" / "12sl_features.csv"
    if table.is_file():
        return
    dataset = open_source(sources.ptbxl_spec())
    halves = ptbxl_halves(dataset.index, seed=preset.seed)
    cached = load_cached(
        dataset, Preprocessing(leads=preset.leads, fs=preset.fs, normalize="none"), progress=progress
    )
    rows = np.flatnonzero(cached.index["record_id"].astype(str).isin(set(halves[0])).to_numpy())
    signals = (cached.signals[r] for r in rows)  # memmap rows, one at a time (all of A may not fit in RAM)
    measured = measure_many(signals, preset.fs, preset.leads, progress=progress)
    hr = measured["hr"].to_numpy(float)
    features = pd.DataFrame(
        {
            "ecg_id": cached.index["record_id"].to_numpy()[rows].astype(int),
            "RR_Mean_Global": np.where(hr > 0, 60_000.0 / hr, np.nan),
            "PR_Int_Global": measured["pr"].to_numpy(float),
            "QRS_Dur_Global": measured["qrs"].to_numpy(float),
            "QT_Int_Global": measured["qt"].to_numpy(float),
        }
    )
    atomic_write_text(
        out / "README.txt",
        (
            "Interval labels of the PTB-XL-A records MEASURED by ecgcore.measure (measure_many) on "
            f"{sources.ptbxl} at {preset.fs:g} Hz, leads {','.join(preset.leads)}, band-passed, not normalised.\n"
            "They are stored in the PTB-XL+ file layout only so that the PTB-XL+ reader can attach them;\n"
            "they are NOT the GE 12SL values that PTB-XL+ publishes.\n"
        ),
    )
    atomic_write_text(table, features.to_csv(index=False))
