"""Dataset profiles for the comparison view, and their figures."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore import viz
from ecgcore.data import open_source
from ecgcore.data.compare import profile, profiles_table
from tests.challenge_factories import FakeRecord, make_challenge_dir
from tests.challenge_samples import shared_dir


def test_profiles_count_records_not_windows_and_mark_what_a_source_cannot_say(tmp_path):
    folder = make_challenge_dir(
        tmp_path,
        [
            FakeRecord("I00001", ("164889003",), fs=257, seconds=125, sex="Male", age="70"),
            FakeRecord("E00001", ("270492004", "164889003"), seconds=5, age="NaN"),
        ],
    )
    ch = profile(open_source(f"challenge:{folder}"), "AF,1AVB", "toy")
    assert ch.records == 2 and ch.label_counts == {"AF": 2, "1AVB": 1}
    assert ch.rates == {257.0: 1, 500.0: 1} and sorted(ch.durations_s) == pytest.approx([5.0, 125.0])
    assert ch.sex == {"female": 1, "male": 1} and ch.ages.tolist() == [70.0]
    with pytest.warns(UserWarning):
        ptbxl = profile(open_source(f"ptbxl:{shared_dir('ptbxl-sample')};fs=500"), "AF,1AVB,IRBBB", "PTB-XL")
    assert ptbxl.label_counts == {"AF": None, "1AVB": 0, "IRBBB": 1} and ptbxl.durations_nominal
    assert ptbxl.sex == {"female": 7, "male": 3}
    table = profiles_table([ch, ptbxl])
    assert table.loc["IRBBB"].tolist()[1] == 1 and np.isnan(table.loc["IRBBB", "toy"])


def test_heatmap_and_panels(tmp_path):
    folder = make_challenge_dir(tmp_path, [FakeRecord("E00001", ("164889003",)), FakeRecord("E00002", ())])
    a = profile(open_source(f"challenge:{folder}"), "AF,IAVB", "A")
    b = profile(open_source(f"challenge:{folder}"), "AF,IAVB", "B")
    b.label_counts["IAVB"] = None
    heat = viz.label_heatmap([a, b]).data[0]
    assert heat.z[0].tolist() == [50.0, 50.0] and list(heat.text[1]) == ["0 (0.0%)", "n/a"]
    assert np.isnan(heat.z[1][1]) and list(heat.y) == ["AF", "IAVB"]
    assert viz.label_heatmap([a, b], share=False).data[0].z[0].tolist() == [1.0, 1.0]
    panels = viz.dataset_comparison([a, b])
    assert len(panels.data) == 8 and panels.data[0].y == (2,)
