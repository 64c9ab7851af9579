"""The S rule: premature N calls with a pause, narrow and shaped like the dominant beat, in a regular
rhythm, counted S and shown; irregular rhythms (AF) and wide beats left alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecgcore.beats import features as feat
from ecgcore.beats.aami import CLASS_INDEX
from ecgcore.beats.analysis import PROMOTED_S, analyse_record, promote_premature_n, recluster
from ecgcore.beats.classify import BeatClassifier
from ecgcore.cli import beats as beats_cli
from ecgcore.cli import main as cli_main
from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record
from tests.beats.test_cluster import _analysis

N, S, V = CLASS_INDEX["N"], CLASS_INDEX["S"], CLASS_INDEX["V"]


def _with_rr(a, gaps: np.ndarray):
    """``a`` with its beats placed ``gaps`` samples apart and its RR context recomputed."""
    a.samples = np.concatenate([[100], 100 + np.cumsum(gaps)]).astype(np.int64)
    a.rr = feat.rr_context(a.samples, a.fs)
    return a


def test_a_premature_narrow_n_call_with_a_pause_becomes_s_and_is_shown():
    a = _analysis()  # 60 narrow beats (N) then 6 wide ones (5 called V, the last N); 250 Hz
    gaps = np.full(a.samples.size - 1, 250.0)
    gaps[[9, 10]] = 150, 350  # beat 10: 40 % early, then a pause
    gaps[[29, 30]] = 150, 140  # beat 30 early, the next RR shorter still (no pause): stays N; beat 31
    # ends that short run with the usual RR after it: S
    gaps[[49, 50]] = 150, 350  # beat 50: early with a pause, but its QRS measured wide (set below)
    gaps[[63, 64]] = 150, 350  # beat 64 (wide, called V) and 65 (wide, called N): premature, wide
    a = _with_rr(a, gaps)
    a.qrs_ms[50] = 150.0
    recluster(a, n_clusters=6, merge_threshold=0.9)
    assert promote_premature_n(a) == 2
    assert np.flatnonzero(a.promoted).tolist() == [10, 31] and a.classes[10] == S
    assert a.classes[30] == N and a.classes[50] == N and a.classes[65] == N and a.classes[64] == V
    assert a.flags[10] == PROMOTED_S
    out = a.to_json()
    assert out["s_rule"] == "on" and out["n_promoted"] == 2 and out["counts"]["S"] == 2
    assert out["beats"][10]["class"] == "S" and out["beats"][10]["called"] == "N"
    assert [i for i, b in enumerate(out["beats"]) if "called" in b] == [10, 31]
    a.relabel_cluster(int(a.cluster[10]), "N")  # a reader puts them back: no longer flagged as promoted
    assert a.flags[10] != PROMOTED_S
    # the reader's call replaces the rule's: the beat is no longer reported as turned S
    out = a.to_json()
    assert not a.promoted[a.cluster == a.cluster[10]].any() and "called" not in out["beats"][10]


def test_an_irregular_rhythm_keeps_its_early_beats_n():
    rng = np.random.default_rng(0)
    a = _analysis()
    a = _with_rr(a, rng.uniform(150, 350, a.samples.size - 1))  # AF-like: every RR its own
    recluster(a, n_clusters=6, merge_threshold=0.9)
    early = (a.rr[:, 0] <= 0.8) & (a.classes == N)
    assert early.sum() > 5  # many early N calls, none of them an S beat
    assert promote_premature_n(a) == 0


class _AllN(BeatClassifier):
    """Calls every beat N."""

    def predict_proba(self, inputs, batch_size=2048):
        p = np.zeros((len(inputs), 5), dtype=np.float32)
        p[:, N] = 1.0
        return p


def _beat_train(folder, name: str, gaps_s: np.ndarray):
    """A 2-lead 250 Hz record of one synthetic beat repeated at the gaps ``gaps_s`` (s); path, R peaks."""
    fs = 250
    one = synthetic_ecg(hr=60, fs=fs, duration=3, leads=("II", "V1"), seed=0)
    r = int(one.fiducials["r_peak"][1])
    beat = one.signal[:, r - 100 : r + 120]  # P to T, 0.88 s
    peaks = (1.0 + np.concatenate([[0.0], np.cumsum(gaps_s)])) * fs
    signal = np.zeros((2, int(peaks[-1]) + 3 * fs))
    for p in peaks.astype(int):
        signal[:, p - 100 : p + 120] += beat
    return write_record(folder, name, signal, fs), peaks.astype(int)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("srule")
    gaps = np.full(240, 1.0)  # under one 300 s detection window
    gaps[9::20], gaps[10::20] = 0.65, 1.35  # an early beat with its pause every 20 beats: 12 of them
    af = np.random.default_rng(1).uniform(0.55, 1.25, 240)
    return _beat_train(folder, "ectopics", gaps)[0], _beat_train(folder, "af", af)[0]


def test_the_analysis_applies_the_rule_in_sinus_rhythm_not_in_af(records):
    ectopics, af = records
    kw = dict(n_clusters=2, artefact_model=None, intervals=False)
    on = analyse_record(ectopics, _AllN(torch.nn.Identity()), **kw)
    off = analyse_record(ectopics, _AllN(torch.nn.Identity()), s_rule=False, **kw)
    assert (off.classes == N).all() and off.promoted is None and off.to_json()["s_rule"] == "off"
    assert on.promoted.sum() == 12 and np.array_equal(on.classes == S, on.promoted)
    assert np.all(on.rr[on.promoted, 0] < 0.7)
    in_af = analyse_record(af, _AllN(torch.nn.Identity()), **kw)
    assert (in_af.rr[:, 0] <= 0.8).sum() > 20 and in_af.promoted.sum() == 0


def test_the_cli_switch_turns_the_rule_off(records, monkeypatch, capsys):
    monkeypatch.setattr(beats_cli, "_classifier", lambda args: _AllN(torch.nn.Identity()))
    reports = {}
    for switch in ([], ["--no-s-rule"]):
        argv = ["beats", str(records[0]), "--no-artefact-filter", "--no-intervals", "--no-beats", "--quiet"]
        assert cli_main(argv + switch) == 0
        reports[bool(switch)] = json.loads(capsys.readouterr().out)
    assert reports[True]["s_rule"] == "off" and reports[True]["n_promoted"] == 0
    assert reports[True]["counts"]["S"] == 0
    assert (
        reports[False]["s_rule"] == "on"
        and reports[False]["counts"]["S"] == reports[False]["n_promoted"] == 12
    )
