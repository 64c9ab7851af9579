"""SNOMED CT labels of the PhysioNet/CinC Challenge 2020/2021, and label sets over them.

The tables in ``tables/`` are the Challenge's own (physionetchallenges/evaluation-2021, commit
e2a75fc, BSD 2-Clause, ``challenge_LICENSE.txt``): the scored and unscored diagnoses with their
SNOMED CT code and abbreviation, and the metric's weights, whose header joins codes scored as one
class with ``|`` (``713427006|59118001`` = complete RBBB and RBBB). ``ptbxl_snomed_crosswalk.csv`` is
the project's reviewed crosswalk from PTB-XL SCP statements to SNOMED CT (its ``sources``,
``certainty`` and ``note`` columns say where each row comes from and what is uncertain).

Label sets: ``study18`` (the transfer study's 18 PTB-XL statements, each the crosswalk's single
SNOMED code, as the study counted them), ``scored`` (the Challenge's scored classes, equivalent codes
merged) or any comma list of classes, abbreviations, codes or SCP statements (equivalents merged).
A :class:`LabelSet` is a tuple of class names with, for each class, the SNOMED codes that make a
record positive (equivalent codes included) and the SCP statements that do so in PTB-XL. It turns
either kind of record label into the same 0/1 target matrix, so a model trained on PTB-XL and one
trained on a Challenge database predict the same classes.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

TABLES = Path(__file__).resolve().parent / "tables"
SCORED_CSV = TABLES / "challenge_dx_mapping_scored.csv"
UNSCORED_CSV = TABLES / "challenge_dx_mapping_unscored.csv"
WEIGHTS_CSV = TABLES / "challenge_weights.csv"
WEIGHTS_ABBREVIATIONS_CSV = TABLES / "challenge_weights_abbreviations.csv"
CROSSWALK_CSV = TABLES / "ptbxl_snomed_crosswalk.csv"
#: The study's 18 statements (PTB-XL SCP codes), in the order of its table.
STUDY_18: tuple[str, ...] = (
    "1AVB",
    "CRBBB",
    "IRBBB",
    "LAFB",
    "CLBBB",
    "IVCD",
    "LNGQT",
    "2AVB",
    "ISCAN",
    "ILBBB",
    "ISCIN",
    "ISCLA",
    "LAO/LAE",
    "LPFB",
    "LVH",
    "NDT",
    "RVH",
    "SEHYP",
)
#: Named label sets :func:`label_set` knows besides a comma-separated list of classes or codes.
LABEL_SET_NAMES: tuple[str, ...] = ("study18", "scored")
#: Fewer positives than this in a split and a class is reported as rare there (its AUC is unreliable).
RARE_MIN = 5


class LabelError(ValueError):
    """An unknown label, label set or malformed ``# Dx`` line; the message names it."""


@dataclass(frozen=True)
class Diagnosis:
    """One SNOMED CT code the Challenge lists: its name, abbreviation and whether it is scored."""

    code: str
    name: str
    abbreviation: str
    scored: bool


@dataclass(frozen=True)
class SnomedMap:
    """The Challenge's diagnoses and its scoring classes (equivalent codes merged).

    Attributes
    ----------
    diagnoses
        SNOMED code -> :class:`Diagnosis`, scored and unscored.
    class_of
        SNOMED code -> the class it is counted under: the weights file's abbreviation for scored codes
        (``CRBBB|RBBB`` for both 713427006 and 59118001), its own abbreviation otherwise.
    members
        class -> its SNOMED codes.
    scored_classes
        The Challenge's scored classes in its weights order.
    """

    diagnoses: Mapping[str, Diagnosis]
    class_of: Mapping[str, str]
    members: Mapping[str, tuple[str, ...]]
    scored_classes: tuple[str, ...]

    def decode(self, codes: Iterable[str]) -> list[dict]:
        """Name, abbreviation and class of each code (``None`` for codes the Challenge does not list)."""
        out = []
        for code in codes:
            dx = self.diagnoses.get(code)
            out.append(
                {
                    "code": code,
                    "abbreviation": dx.abbreviation if dx else None,
                    "name": dx.name if dx else None,
                    "class": self.class_of.get(code),
                    "scored": bool(dx and dx.scored),
                }
            )
        return out

    def count(self, code_lists: Iterable[Iterable[str]]) -> tuple[dict[str, int], dict[str, int]]:
        """Records per class (a record counts once per class) and per code that no table lists."""
        classes: Counter = Counter()
        unmapped: Counter = Counter()
        for codes in code_lists:
            codes = set(codes)
            classes.update({self.class_of[c] for c in codes if c in self.class_of})
            unmapped.update(c for c in codes if c not in self.class_of)
        return dict(classes.most_common()), dict(unmapped.most_common())


@lru_cache(maxsize=1)
def challenge_map() -> SnomedMap:
    """The Challenge's SNOMED mapping, read from the tables shipped in the package."""
    diagnoses: dict[str, Diagnosis] = {}
    for path, scored in ((SCORED_CSV, True), (UNSCORED_CSV, False)):
        table = pd.read_csv(path, dtype=str)
        for row in table.itertuples(index=False):
            code = str(row.SNOMEDCTCode).strip()
            diagnoses[code] = Diagnosis(code, str(row.Dx).strip(), str(row.Abbreviation).strip(), scored)
    codes_header = _header(WEIGHTS_CSV)
    abbreviation_header = _header(WEIGHTS_ABBREVIATIONS_CSV)
    if len(codes_header) != len(abbreviation_header):
        raise LabelError(f"{WEIGHTS_CSV} and {WEIGHTS_ABBREVIATIONS_CSV} list different numbers of classes")
    class_of = {code: dx.abbreviation for code, dx in diagnoses.items()}
    members: dict[str, tuple[str, ...]] = {}
    for joined, label in zip(codes_header, abbreviation_header):
        group = tuple(c.strip() for c in joined.split("|"))
        members[label] = group
        for code in group:
            class_of[code] = label
    for code, label in class_of.items():
        members.setdefault(label, (code,))
    return SnomedMap(diagnoses, class_of, members, tuple(abbreviation_header))


def _header(path: Path) -> list[str]:
    return [c.strip() for c in path.read_text().splitlines()[0].split(",")[1:]]


def parse_dx(text: str, where: str | Path = "") -> tuple[str, ...]:
    """The SNOMED codes of a header's ``# Dx:`` value (``"164934002,426783006"``), in order, once each."""
    codes = [c.strip() for c in str(text).split(",") if c.strip()]
    bad = [c for c in codes if not c.isdigit()]
    if bad:
        raise LabelError(f"{where}: # Dx has {bad} where SNOMED CT codes (digits) are expected")
    return tuple(dict.fromkeys(codes))


@lru_cache(maxsize=1)
def crosswalk() -> pd.DataFrame:
    """The reviewed PTB-XL SCP -> SNOMED CT crosswalk (one row per SCP statement)."""
    table = pd.read_csv(CROSSWALK_CSV, dtype=str, keep_default_na=False)
    table["in_study"] = table["in_study"] == "yes"
    return table


@dataclass(frozen=True)
class LabelSet:
    """Classes with the SNOMED codes (and PTB-XL SCP statements) that make a record positive for each."""

    name: str
    classes: tuple[str, ...]
    snomed: Mapping[str, frozenset[str]]
    scp: Mapping[str, frozenset[str]]

    def from_snomed(self, code_lists: Iterable[Iterable[str]]) -> np.ndarray:
        """``[N, C]`` 0/1 targets from each record's SNOMED codes."""
        return self._targets(code_lists, self.snomed)

    def from_scp(self, scp_codes: Iterable[Mapping[str, float] | str], strict: bool = True) -> np.ndarray:
        """``[N, C]`` 0/1 targets from PTB-XL ``scp_codes`` (dicts or their text; likelihood not thresholded,
        as the Challenge did when it coded PTB-XL). A class no PTB-XL statement maps to is an error, or
        with ``strict=False`` a NaN column."""
        dicts = [ast.literal_eval(c) if isinstance(c, str) else c for c in scp_codes]
        missing = [c for c in self.classes if not self.scp[c]]
        if missing and strict:
            raise LabelError(
                f"label set {self.name!r}: no PTB-XL statement maps to {missing} in {CROSSWALK_CSV.name}"
            )
        y = self._targets(dicts, self.scp)
        y[:, [self.classes.index(c) for c in missing]] = np.nan
        return y

    def _targets(self, lists: Iterable[Iterable[str]], codes: Mapping[str, frozenset[str]]) -> np.ndarray:
        rows = [set(item) for item in lists]
        y = np.zeros((len(rows), len(self.classes)), dtype=np.float32)
        for j, cls in enumerate(self.classes):
            wanted = codes[cls]
            y[:, j] = [bool(wanted & row) for row in rows]
        return y


def label_set(spec: str) -> LabelSet:
    """A label set by name (``study18``, ``scored``) or as a comma list of Challenge classes,
    abbreviations, SNOMED codes or PTB-XL SCP statements of the crosswalk (``"AF,IAVB,LVH"``)."""
    spec = str(spec).strip()
    if spec == "study18":
        return _study18()
    if spec == "scored":
        return _scored()
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise LabelError(f"empty label set {spec!r}; give {' or '.join(LABEL_SET_NAMES)} or a comma list")
    return _custom(spec, tuple(items))


def _equivalent(codes: Iterable[str]) -> frozenset[str]:
    """``codes`` plus every code scored in the same Challenge class."""
    snomed = challenge_map()
    out = set()
    for code in codes:
        out.update(snomed.members.get(snomed.class_of.get(code, ""), (code,)))
    return frozenset(out)


def _scp_of(snomed_codes: frozenset[str]) -> frozenset[str]:
    table = crosswalk()
    return frozenset(table.loc[table["snomed_ct"].isin(snomed_codes), "scp_code"])


@lru_cache(maxsize=1)
def _study18() -> LabelSet:
    table = crosswalk().set_index("scp_code")
    # the crosswalk's own code, no equivalents: the study's G12EC counts are those of the single codes
    # (CRBBB 28 is 713427006 alone; with 59118001 merged in, Georgia would have 570)
    snomed = {scp: frozenset([table.loc[scp, "snomed_ct"]]) for scp in STUDY_18}
    return LabelSet("study18", STUDY_18, snomed, {scp: frozenset([scp]) for scp in STUDY_18})


@lru_cache(maxsize=1)
def _scored() -> LabelSet:
    snomed_map = challenge_map()
    classes = snomed_map.scored_classes
    snomed = {c: frozenset(snomed_map.members[c]) for c in classes}
    return LabelSet("scored", classes, snomed, {c: _scp_of(snomed[c]) for c in classes})


def _custom(name: str, items: tuple[str, ...]) -> LabelSet:
    snomed_map = challenge_map()
    table = crosswalk().set_index("scp_code")
    by_abbreviation = {dx.abbreviation: code for code, dx in snomed_map.diagnoses.items()}
    snomed: dict[str, frozenset[str]] = {}
    scp: dict[str, frozenset[str]] = {}
    for item in items:
        if item in snomed_map.members:
            codes = _equivalent(snomed_map.members[item])
        elif item in by_abbreviation:
            codes = _equivalent([by_abbreviation[item]])
        elif item.isdigit():
            codes = _equivalent([item])
        elif item in table.index:
            codes = _equivalent([table.loc[item, "snomed_ct"]])
            scp[item] = frozenset([item])
        else:
            raise LabelError(
                f"unknown label {item!r}: not a Challenge class or abbreviation, a SNOMED CT code, "
                f"or a PTB-XL statement of {CROSSWALK_CSV.name}"
            )
        snomed[item] = codes
        scp.setdefault(item, _scp_of(codes))
    return LabelSet(name, items, snomed, scp)


def class_counts(y: np.ndarray, splits: np.ndarray, classes: Iterable[str]) -> dict[str, dict[str, int]]:
    """Positives per class in each split (``{"train": {"1AVB": 12, ...}, ...}``)."""
    splits = np.asarray(splits)
    classes = list(classes)
    return {
        s: {c: int(y[splits == s, j].sum()) for j, c in enumerate(classes)}
        for s in ("train", "val", "test")
        if (splits == s).any()
    }


def rare_classes(
    counts: Mapping[str, Mapping[str, int]], minimum: int = RARE_MIN
) -> dict[str, dict[str, int]]:
    """The classes with fewer than ``minimum`` positives in each split; they are kept and reported, never
    dropped, and a split where a class has no positive gives it no AUC."""
    return {
        split: {c: n for c, n in per_class.items() if n < minimum}
        for split, per_class in counts.items()
        if any(n < minimum for n in per_class.values())
    }
