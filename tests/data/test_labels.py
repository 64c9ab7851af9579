"""The Challenge's SNOMED classes, the PTB-XL crosswalk and label sets, checked against their sources."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest

from ecgcore.data.challenge import read_header
from ecgcore.data.labels import (
    STUDY_18,
    LabelError,
    challenge_map,
    class_counts,
    crosswalk,
    label_set,
    parse_dx,
    rare_classes,
)
from ecgcore.data.labels.snomed import SCORED_CSV, UNSCORED_CSV
from tests.challenge_samples import shared_dir

#: The study's record counts (PTB-XL, G12EC) per statement, from its table (issue 17's text).
STUDY_COUNTS = {
    "1AVB": (797, 769),
    "CRBBB": (542, 28),
    "IRBBB": (1118, 407),
    "LAFB": (1626, 180),
    "CLBBB": (536, 231),
    "IVCD": (789, 203),
    "LNGQT": (118, 1391),
    "2AVB": (14, 23),
    "ISCAN": (44, 281),
    "ILBBB": (77, 86),
    "ISCIN": (219, 451),
    "ISCLA": (142, 903),
    "LAO/LAE": (427, 870),
    "LPFB": (177, 25),
    "LVH": (2359, 1232),
    "NDT": (381, 1883),
    "RVH": (126, 86),
    "SEHYP": (30, 71),
}


def test_equivalent_codes_are_one_class_and_counted_once():
    snomed = challenge_map()
    assert snomed.class_of["713427006"] == snomed.class_of["59118001"] == "CRBBB|RBBB"
    assert snomed.class_of["284470004"] == snomed.class_of["63593006"] == "PAC|SVPB"
    assert (
        snomed.class_of["164889003"] == "AF" and snomed.class_of["251120003"] == "ILBBB"
    )  # unscored keeps its own
    counts, unmapped = snomed.count(
        [["713427006"], ["59118001"], ["59118001", "713427006"], ["1", "164889003"]]
    )
    assert counts["CRBBB|RBBB"] == 3 and counts["AF"] == 1 and unmapped == {"1": 1}
    assert len(snomed.scored_classes) == 26  # 30 scored codes, four pairs merged


def test_every_weights_code_is_a_listed_diagnosis():
    snomed = challenge_map()
    for cls in snomed.scored_classes:
        for code in snomed.members[cls]:
            assert snomed.diagnoses[code].scored, code


def test_crosswalk_covers_the_study_and_agrees_with_the_challenge_counts():
    table = crosswalk().set_index("scp_code")
    assert set(STUDY_18) == set(table.index[table["in_study"]])
    counts = pd.concat([pd.read_csv(SCORED_CSV, dtype=str), pd.read_csv(UNSCORED_CSV, dtype=str)])
    counts = counts.set_index("SNOMEDCTCode")
    for scp, (ptbxl, g12ec) in STUDY_COUNTS.items():
        row = table.loc[scp]
        assert row["sources"] and row["certainty"] in ("confirmed", "uncertain")
        code = row["snomed_ct"]
        assert counts.loc[code, "Abbreviation"] == row["challenge_abbreviation"]
        assert (int(counts.loc[code, "PTB_XL"]), int(counts.loc[code, "Georgia"])) == (ptbxl, g12ec), scp
    uncertain = set(table.index[table["certainty"] == "uncertain"])
    assert {"NDT", "SEHYP"} <= uncertain and all(table.loc[sorted(uncertain), "note"] != "")


def test_crosswalk_statements_exist_in_ptbxl():
    statements = pd.read_csv(shared_dir("ptbxl-sample") / "scp_statements.csv", index_col=0)
    table = crosswalk()
    missing = set(table["scp_code"]) - set(statements.index)
    assert not missing
    descriptions = statements.loc[table["scp_code"], "description"].str.lower().tolist()
    assert descriptions == table["scp_description"].str.lower().tolist()


def _paired():
    """(PTB-XL scp_codes dict, Challenge Dx codes) for HR06000-HR06009 and PTB-XL 6000-6009."""
    cinc, ptbxl = shared_dir("cinc-sample"), shared_dir("ptbxl-sample")
    db = pd.read_csv(ptbxl / "ptbxl_database.csv", index_col="ecg_id")
    pairs = []
    for ecg_id in range(6000, 6010):
        header = read_header(cinc / f"HR{ecg_id:05d}.hea")
        scp = ast.literal_eval(db.loc[ecg_id, "scp_codes"])
        sex = {0: "Male", 1: "Female"}[int(db.loc[ecg_id, "sex"])]
        assert header.sex == sex and header.age == db.loc[ecg_id, "age"]  # the same patient
        pairs.append((scp, header.dx))
    return pairs


def test_crosswalk_on_the_paired_ptbxl_records():
    pairs = _paired()
    table = crosswalk()
    # every crosswalk row: the SCP statement in PTB-XL => its SNOMED code in the Challenge header
    hits = 0
    for scp, dx in pairs:
        for row in table.itertuples():
            if row.scp_code in scp:
                assert row.snomed_ct in dx, (row.scp_code, dx)
                hits += 1
    assert hits >= 20  # the sample exercises the crosswalk, it is not vacuous
    # the study's label set gives the same targets from either side
    study = label_set("study18")
    from_scp = study.from_scp([p[0] for p in pairs])
    from_snomed = study.from_snomed([p[1] for p in pairs])
    np.testing.assert_array_equal(from_scp, from_snomed)
    assert from_scp[:, STUDY_18.index("IRBBB")].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]  # PTB-XL 6002
    # and every code of the paired headers is explained by a statement of its PTB-XL record
    rhythm = label_set("NSR,TAb,STC,SB,STach,IRBBB")
    np.testing.assert_array_equal(
        rhythm.from_scp([p[0] for p in pairs]), rhythm.from_snomed([p[1] for p in pairs])
    )


def test_study18_uses_the_single_codes_and_lists_merge_equivalents():
    study = label_set("study18")
    assert study.classes == STUDY_18
    assert study.snomed["CRBBB"] == {"713427006"}  # the study's G12EC CRBBB count (28) excludes RBBB
    merged = label_set("CRBBB,1AVB,164889003")
    assert merged.snomed["CRBBB"] == {"713427006", "59118001"} and merged.snomed["164889003"] == {"164889003"}
    assert merged.scp["1AVB"] == {"1AVB"} and merged.scp["CRBBB"] == {"CRBBB"}
    y = merged.from_snomed([["59118001"], ["270492004", "164889003"], []])
    assert y.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    with pytest.raises(LabelError, match="no PTB-XL statement maps to"):
        merged.from_scp([{"NORM": 100.0}])  # AF has no crosswalk row
    with pytest.raises(LabelError, match="unknown label 'XYZ'"):
        label_set("AF,XYZ")


def test_parse_dx_rejects_text():
    assert parse_dx(" 164934002, 426783006,164934002") == ("164934002", "426783006")
    with pytest.raises(LabelError, match=r"f\.hea: # Dx has \['LVH'\]"):
        parse_dx("164934002,LVH", "f.hea")


def test_rare_classes_are_reported_not_dropped():
    y = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float32)
    splits = np.array(["train", "train", "train", "test"])
    counts = class_counts(y, splits, ("A", "B"))
    assert counts == {"train": {"A": 2, "B": 1}, "test": {"A": 1, "B": 0}}
    assert rare_classes(counts, minimum=2) == {"train": {"B": 1}, "test": {"A": 1, "B": 0}}
