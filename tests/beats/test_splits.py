"""Patient-level splits: de Chazal's DS1/DS2 with QT Database aliases, stratified record folds."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.beats.splits import (
    DS1,
    DS2,
    PACED,
    de_chazal_split,
    mitbih_record,
    patient_of,
    shared_patients,
    stratified_folds,
)


def test_de_chazal_lists_are_two_disjoint_sets_of_22_without_paced_records():
    assert len(set(DS1)) == len(set(DS2)) == 22
    assert not set(DS1) & set(DS2) and not (set(DS1) | set(DS2)) & set(PACED)


def test_qtdb_excerpts_are_their_mitbih_patients():
    assert mitbih_record("sel232") == mitbih_record("232") == mitbih_record("data/mitdb/232") == "232"
    assert patient_of("sel100") == patient_of("100")
    assert mitbih_record("sel302") is None and mitbih_record("sel808") is None  # ST change, SVDB
    assert patient_of("202") == patient_of("201")  # one subject in the MIT-BIH directory


def test_de_chazal_split_has_no_patient_on_both_sides_with_qtdb_aliases():
    names = [*DS1, *DS2, *PACED, "sel232", "sel104", "sel231", "sele0106", "sel808"]
    split = de_chazal_split(names)
    assert not shared_patients(split)
    assert "sel232" in split["test"] and "sel231" in split["test"]
    assert {"sel104", "sele0106", "sel808", *PACED} <= set(split["excluded"])
    assert len(split["train"]) == 22 and "202" not in split["test"]  # 202 is 201's patient (DS1)
    published = de_chazal_split(names, strict=False)
    assert shared_patients(published) == {"mitdb:201"}


def test_a_split_that_puts_an_alias_on_the_other_side_is_caught():
    assert shared_patients({"train": ["sel100", "sel808"], "test": ["100"]}) == {"mitdb:100"}
    assert not shared_patients({"train": ["sel100"], "excluded": ["100"]})


def test_stratified_folds_spread_rare_classes_and_keep_patients_together():
    rng = np.random.default_rng(0)
    names = [f"r{i:02d}" for i in range(30)] + ["sel100", "100"]
    counts = {n: np.array([1000, 0, 0, 0, 0]) for n in names}
    for n in rng.choice(names[:30], 10, replace=False):
        counts[n] = np.array([900, 0, 40, 0, 0])  # V
    for n in ["r03", "r07", "r11", "r19", "r23"]:
        counts[n] = counts[n] + np.array([0, 50, 0, 0, 0])  # S
    folds = stratified_folds(names, counts, 5)
    assert sorted(n for fold in folds for n in fold) == sorted(names)
    for fold in folds:
        assert sum(counts[n][2] for n in fold) > 0 and sum(counts[n][1] for n in fold) > 0
    assert any({"sel100", "100"} <= set(f) for f in folds)
    with pytest.raises(ValueError):
        stratified_folds(names[:3], counts, 5)


def test_train_default_de_chazal_split_needs_both_sides_and_keeps_patients_apart():
    from ecgcore.beats.train_default import choose_split

    split = choose_split([*DS1, *DS2, "sel232", "sele0106"], "de-chazal")
    assert set(split["train"]) | set(split["val"]) == set(DS1)
    assert "sel232" in split["test"] and all("sele0106" not in part for part in split.values())
    assert not shared_patients(split)
    with pytest.raises(ValueError, match="DS1"):
        choose_split(["sel232", "sel231", "sele0106"], "de-chazal")  # the QT Database alone: no DS1 record
