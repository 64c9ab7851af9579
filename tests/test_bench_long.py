"""The long-record benchmark: the record it builds from real-layout records, and its measurement."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgcore.bench import bench_long_record, build_long_record, format_long_record
from ecgcore.data.synthetic import synthetic_ecg
from tests.beats.conftest import write_record


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    for i, hr in enumerate((60, 90)):
        ecg = synthetic_ecg(hr=hr, fs=250, duration=20, leads=("II", "V1"), seed=i)
        write_record(folder, f"r{i}", ecg.signal, ecg.fs)
    write_record(folder, "one_lead", ecg.signal[:1], ecg.fs, leads=("II",))  # not 2-lead: left out
    return folder


def test_long_record_is_the_records_repeated_to_length(source):
    path = build_long_record(source, hours=70 / 3600)
    rec = wfdb.rdrecord(str(path))
    assert rec.fs == 250 and rec.sig_len == 70 * 250 and rec.n_sig == 2
    parts = [wfdb.rdrecord(str(source / n)).p_signal for n in ("r0", "r1")]
    expected = np.concatenate([parts[0], parts[1], parts[0], parts[1]])[: 70 * 250]
    assert np.allclose(rec.p_signal, expected, atol=0.005 + 1e-9)  # 1/200 mV steps
    assert build_long_record(source, hours=70 / 3600) == path  # built once, reused


@pytest.mark.slow
def test_bench_long_record_reports_time_memory_and_beats(source):
    result = bench_long_record(source, hours=70 / 3600)
    assert result["n_beats"] == pytest.approx(70 * 75 / 60, abs=4)  # 20 s at 60 and 90 bpm alternating
    assert result["seconds"] > 0 and 50 < result["peak_rss_mb"] < 4096 and result["cpu_seconds"] > 0
    # every stage was timed, and the stages ran inside the child's CPU time
    stages = result["stages"]
    assert set(stages) == {"read", "detect", "features", "artefact", "classify", "cluster", "delineate"}
    assert all(v is not None and v > 0 for v in stages.values())
    assert sum(stages.values()) <= result["cpu_seconds"]
    text = format_long_record(result)
    assert "classify" in text and f"{result['n_beats']:,} beats" in text
