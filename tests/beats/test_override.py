"""The cross-check's override: V calls narrow and shaped like the dominant beat counted N, and shown."""

from __future__ import annotations

import json

import numpy as np
import torch

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

N, V = CLASS_INDEX["N"], CLASS_INDEX["V"]


def test_a_narrow_v_call_shaped_like_the_dominant_beat_is_counted_n_and_shown():
    a = _analysis()  # 60 narrow beats then 6 wide ones (the last called N)
    a.classes[3] = V  # the "model" calls one narrow, usual-looking beat V
    recluster(a, n_clusters=6, merge_threshold=0.9)
    assert a.flags[3] == CONTRADICTED_V
    assert override_contradicted_v(a) == 1
    assert a.classes[3] == N and np.flatnonzero(a.overridden).tolist() == [3]
    assert (a.classes[60:65] == V).all()  # wide V calls stay V
    assert a.flags[3] == OVERRIDDEN_V
    assert override_contradicted_v(a) == 0 and np.flatnonzero(a.overridden).tolist() == [3]  # kept
    out = a.to_json()
    assert out["v_override"] == "on" and out["n_overridden"] == 1 and out["counts"]["V"] == 5
    assert out["beats"][3]["class"] == "N" and out["beats"][3]["called"] == "V"
    assert [i for i, b in enumerate(out["beats"]) if "called" in b] == [3]
    a.relabel_cluster(int(a.cluster[3]), "V")  # a reader puts the beats back: the evidence is flagged again
    assert a.flags[3] == CONTRADICTED_V


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


def test_the_evaluation_scores_the_calls_it_says_it_scores(tmp_path, monkeypatch, capsys):
    import wfdb

    from ecgcore.data.synthetic import synthetic_ecg
    from tests.beats.conftest import write_record

    ecg = synthetic_ecg(hr=72, fs=250, duration=60, leads=("II", "V1"), seed=5)
    path = write_record(tmp_path, "ev", ecg.signal, ecg.fs)
    r = ecg.fiducials["r_peak"]
    wfdb.wrann("ev", "atr", np.asarray(r), symbol=["N"] * len(r), fs=250, write_dir=str(tmp_path))
    monkeypatch.setattr(beats_cli, "_classifier", lambda args: _AllV(torch.nn.Identity()))
    n_se = {}
    for switch in ([], ["--no-v-override"]):
        argv = ["beats", "--eval-annotations", "atr", "--no-artefact-filter", str(path)]
        assert cli_main(argv + switch) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert lines[0]["v_override"] == ("off" if switch else "on")
        n_se[bool(switch)] = next(x["se"] for x in lines if x["class"] == "N")
    assert n_se[True] == 0 and n_se[False] > 0.9  # every beat called V; the override turns them N
