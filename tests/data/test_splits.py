"""PTB-XL-A / PTB-XL-B halves: patient-disjoint, complete, balanced, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.data import open_source, ptbxl_halves
from ecgcore.vocab import SUPERCLASSES
from tests.factories import make_ptbxl_dir


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return open_source(f"ptbxl:{make_ptbxl_dir(tmp_path_factory.mktemp('ptbxl'), 50, seed=5)}").index


def test_halves_are_patient_disjoint_and_complete(index):
    a, b = ptbxl_halves(index, seed=0)
    assert len(set(a) & set(b)) == 0 and set(a) | set(b) == set(index["record_id"])
    patients = index.set_index("record_id")["patient_id"]
    assert set(patients[a]).isdisjoint(set(patients[b]))
    assert index["patient_id"].value_counts().max() > 1  # the test means something: shared patients exist


def test_halves_are_balanced(index):
    a, b = ptbxl_halves(index, seed=0)
    by_id = index.set_index("record_id")
    assert abs(len(a) - len(b)) <= 0.15 * len(index)
    for cls in SUPERCLASSES:
        na, nb = by_id.loc[a, cls].sum(), by_id.loc[b, cls].sum()
        assert abs(na - nb) <= max(3, 0.3 * (na + nb)), (cls, na, nb)
    # each half keeps records of every official split that has at least two patients
    shared = {s for s, n in index.groupby("split")["patient_id"].nunique().items() if n >= 2}
    assert shared == {"train", "val", "test"}
    for half in (a, b):
        assert set(by_id.loc[half, "split"]) == shared


def test_halves_are_deterministic_for_a_seed(index):
    a1, b1 = ptbxl_halves(index, seed=7)
    a2, b2 = ptbxl_halves(index, seed=7)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert set(ptbxl_halves(index, seed=8)[0]) != set(a1)


def test_halves_on_the_real_sample(ptbxl_sample):
    index = open_source("ptbxl:bundled").index
    a, b = ptbxl_halves(index)
    assert len(a) + len(b) == 10 and len(a) >= 4 and len(b) >= 4


def test_halves_need_labels(index):
    with pytest.raises(ValueError, match="needs the superclass columns"):
        ptbxl_halves(index.drop(columns=list(SUPERCLASSES)))
