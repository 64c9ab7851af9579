"""The cross-check's override: V calls narrow and shaped like the dominant beat counted N, and shown."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch
import wfdb

from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.analysis import (
    CONTRADICTED_V,
    OVERRIDDEN_V,
    analyse_record,
    override_contradicted_v,
    recluster,
)
from ecgcore.beats.classify import BeatClassifier
from ecgcore.cli import beats as beats_cli
from ecgcore.cli import main as cli_main
from tests.beats.test_cluster import _analysis

N, S, V = CLASS_INDEX["N"], CLASS_INDEX["S"], CLASS_INDEX["V"]


def test_a_narrow_v_call_shaped_like_the_dominant_beat_is_counted_n_and_shown():
    a = _analysis()  # 60 narrow beats then 6 wide ones (the last called N)
    a.classes[3] = V  # the "model" calls one narrow, usual-looking beat V
    a.classes[10], a.rr[10, 0] = S, 1.2  # other flags (a late S, a premature N) are not the override's
    a.rr[20, 0] = 0.7
    recluster(a, n_clusters=6, merge_threshold=0.9)
    assert a.flags[3] == CONTRADICTED_V and a.flags[10] and a.flags[20]
    assert override_contradicted_v(a) == 1
    assert a.classes[3] == N and np.flatnonzero(a.overridden).tolist() == [3]
    assert (a.classes[60:65] == V).all() and a.classes[10] == S  # wide V calls and the late S stay
    assert a.flags[3] == OVERRIDDEN_V and a.flags[10] != OVERRIDDEN_V
    assert override_contradicted_v(a) == 0 and np.flatnonzero(a.overridden).tolist() == [3]  # a second pass
    out = a.to_json()
    assert out["v_override"] == "on" and out["n_overridden"] == 1 and out["counts"]["V"] == 5
    assert out["beats"][3]["class"] == "N" and out["beats"][3]["called"] == "V"
    assert [i for i, b in enumerate(out["beats"]) if "called" in b] == [3]
    a.relabel_cluster(int(a.cluster[3]), "V")  # a reader puts the beats back: the evidence is flagged again
    assert a.flags[3] == CONTRADICTED_V
    # the reader's call replaces the override: the beat is no longer reported as counted N
    out = a.to_json()
    assert not a.overridden.any() and out["n_overridden"] == 0 and "called" not in out["beats"][3]


class _AllV(BeatClassifier):
    """Calls every beat V."""

    def predict_proba(self, inputs, batch_size=2048):
        p = np.zeros((len(inputs), 5), dtype=np.float32)
        p[:, V] = 1.0
        return p


def test_the_analysis_overrides_unless_told_not_to(long_record):
    path, _ = long_record  # a synthetic record of narrow, identical-looking beats
    kw = dict(n_clusters=2, artefact_model=None, intervals=False)
    on = analyse_record(path, _AllV(torch.nn.Identity()), **kw)
    off = analyse_record(path, _AllV(torch.nn.Identity()), override_v=False, **kw)
    assert (off.classes == V).all() and off.overridden is None and off.to_json()["v_override"] == "off"
    assert on.overridden.mean() > 0.9 and np.array_equal(on.classes == N, on.overridden)
    assert np.array_equal(on.samples, off.samples)
    assert on.clusters[0].label == "N" and off.clusters[0].label == "V"  # the clusters are described anew


def test_the_cli_switch_turns_the_override_off(long_record, monkeypatch, capsys):
    path, _ = long_record
    monkeypatch.setattr(beats_cli, "_classifier", lambda args: _AllV(torch.nn.Identity()))
    reports = {}
    for switch in ([], ["--no-v-override"]):
        argv = ["beats", str(path), "--no-artefact-filter", "--no-intervals", "--no-beats", "--quiet"]
        assert cli_main(argv + switch) == 0
        reports[bool(switch)] = json.loads(capsys.readouterr().out)
    assert reports[True]["v_override"] == "off" and reports[True]["n_overridden"] == 0
    assert reports[False]["v_override"] == "on" and reports[False]["n_overridden"] > 0
    assert reports[False]["counts"]["V"] < reports[True]["counts"]["V"] == reports[True]["n_beats"]


def test_the_evaluation_scores_the_overridden_calls_unless_told_not_to(
    long_record, tmp_path, monkeypatch, capsys
):
    shared, peaks = long_record  # every beat is N; the classifier calls them all V
    for file in shared.parent.glob(f"{shared.name}.*"):  # a copy: the fixture is shared by the session
        shutil.copy(file, tmp_path)
    path = tmp_path / shared.name
    wfdb.wrann(path.name, "atr", peaks, symbol=["N"] * peaks.size, fs=250, write_dir=str(path.parent))
    monkeypatch.setattr(beats_cli, "_classifier", lambda args: _AllV(torch.nn.Identity()))
    lines = {}
    for switch in ([], ["--no-v-override"]):
        argv = ["beats", "--eval-annotations", "atr", "--no-artefact-filter", "--quiet", str(path)]
        assert cli_main(argv + switch) == 0
        lines[bool(switch)] = {x["class"]: x for x in map(json.loads, capsys.readouterr().out.splitlines())}
    assert lines[True]["beat"]["v_override"] == "off" and lines[False]["beat"]["v_override"] == "on"
    assert lines[True]["N"]["n_detected"] == 0 and lines[True]["V"]["n_detected"] > 0.9 * peaks.size
    assert lines[False]["N"]["n_detected"] > 0.9 * peaks.size > 0 and lines[False]["N"]["se"] > 0.9
