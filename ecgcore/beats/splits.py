"""Patient-level splits of beat records: de Chazal's MIT-BIH DS1/DS2, and stratified record folds.

A beat model is judged inter-patient: no patient's beats on both sides of a split. Records are
grouped by patient (:func:`patient_of`) before any split is drawn:

* the QT Database's ``selNNN`` records (NNN 100-234) are 15-minute excerpts of MIT-BIH Arrhythmia
  record NNN, the same patient: ``sel232`` and MIT-BIH ``232`` are one patient;
* MIT-BIH records 201 and 202 come from one subject (the database's own directory says so), which
  de Chazal's split puts on both sides: :func:`de_chazal_split` keeps 202 out of DS2 by default for
  that reason (``strict=False`` restores the published lists, for comparison with the literature).

Other databases' records count as one patient each (the QT Database does not say which of its
European ST-T or ST Change excerpts share a subject).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG morphology and
# heartbeat interval features. IEEE Trans Biomed Eng 51(7):1196-1206 (2004), doi:10.1109/TBME.2004.827359.
# Lists checked against the paper's split as transcribed in a public MIT-BIH loader
# (mitbih_processor/datasets.py, CHAZAL_TRAIN_DATASET / CHAZAL_TEST_DATASET): 22 records each.
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)  # fmt: skip
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)  # fmt: skip
#: Paced records, left out of both sides (as de Chazal did).
PACED: tuple[str, ...] = ("102", "104", "107", "217")
#: MIT-BIH records from one subject (the first name stands for the patient).
SAME_PATIENT: Mapping[str, str] = {"202": "201"}

_MITBIH = re.compile(r"^(?:sel)?([12]\d\d)$")


def mitbih_record(name: str) -> str | None:
    """The MIT-BIH Arrhythmia record a record name stands for (``"100"``, ``"sel100"``, ``"mitdb/100"``
    -> ``"100"``), or None for a record of another database."""
    m = _MITBIH.match(name.replace("\\", "/").rsplit("/", 1)[-1])
    if m is None or not 100 <= int(m.group(1)) <= 234:
        return None
    return m.group(1)


def patient_of(name: str) -> str:
    """A key shared by every record of one patient (MIT-BIH excerpts and aliases map to their record)."""
    record = mitbih_record(name)
    if record is None:
        return f"record:{name}"
    return f"mitdb:{SAME_PATIENT.get(record, record)}"


def de_chazal_split(names: Iterable[str], strict: bool = True) -> dict[str, list[str]]:
    """``{"train": DS1 records present, "test": DS2 records present, "excluded": the rest}``.

    Paced records and records of other databases are excluded. With ``strict`` a DS2 record whose
    patient also has a DS1 record (202, with 201) is excluded too, so no patient is on both sides.
    """
    out: dict[str, list[str]] = {"train": [], "test": [], "excluded": []}
    for name in sorted(names):
        record = mitbih_record(name)
        if record in DS1:
            out["train"].append(name)
        elif record in DS2 and not (strict and SAME_PATIENT.get(record) in DS1):
            out["test"].append(name)
        else:
            out["excluded"].append(name)
    return out


def shared_patients(split: Mapping[str, Sequence[str]]) -> set[str]:
    """Patients with records in more than one part of ``split`` (``excluded`` does not count)."""
    seen: dict[str, str] = {}
    shared = set()
    for part, names in split.items():
        if part == "excluded":
            continue
        for name in names:
            key = patient_of(name)
            if seen.setdefault(key, part) != part:
                shared.add(key)
    return shared


def stratified_folds(
    names: Sequence[str], counts: Mapping[str, Sequence[int]], k: int, seed: int = 0
) -> list[list[str]]:
    """``k`` folds of record names, whole patients per fold, each rare class spread over the folds.

    ``counts[name]`` is the record's beats per class (rarest classes weigh most). Patients are placed
    in decreasing order of their share of the rare beats, each into the fold holding the least of
    that weight so far (ties: fewest beats), so that every fold gets some V and S beats where the
    records allow; the seed only breaks ties among patients with the same weight.
    """
    if k < 2:
        raise ValueError(f"k={k}: a cross-validation needs at least 2 folds")
    patients: dict[str, list[str]] = {}
    for name in sorted(names):
        patients.setdefault(patient_of(name), []).append(name)
    if len(patients) < k:
        raise ValueError(f"{len(patients)} patients cannot fill {k} folds")
    table = np.array([np.sum([counts[n] for n in group], axis=0) for group in patients.values()], float)
    totals = table.sum(axis=0)
    share = table / np.where(totals > 0, totals, 1.0)
    rare = share[:, 1:].sum(axis=1)  # every class but the first (N)
    order = np.lexsort((np.random.default_rng(seed).random(len(patients)), -rare))
    weight, beats = np.zeros((k, table.shape[1])), np.zeros(k)
    folds: list[list[str]] = [[] for _ in range(k)]
    groups = list(patients.values())
    for i in order:
        cls = int(np.argmax(share[i, 1:])) + 1 if rare[i] > 0 else 0
        fold = int(np.lexsort((beats, weight[:, cls]))[0])
        folds[fold].extend(groups[i])
        weight[fold] += share[i]
        beats[fold] += table[i].sum()
    return [sorted(f) for f in folds]
