"""Long records in bounded memory: the overview (a fixed-size min/max envelope read in chunks), windows read
alone, uploads kept on disk for window-by-window viewing, and their drawing on ECG paper."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from ecgcore import io, viz
from ecgcore.io import Record, bin_edges, envelope, iter_chunks, read_record, read_window, record_envelope
from tests.factories import make_long_wfdb


def _direct(signal: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The envelope the slow, obvious way: each bin's slice, min and max."""
    low = np.stack([signal[:, a:b].min(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    high = np.stack([signal[:, a:b].max(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    return low, high


def test_the_envelope_of_chunks_equals_the_one_pass_envelope_whatever_the_chunk_size():
    rng = np.random.default_rng(3)
    rec = Record(rng.normal(size=(3, 100_003)), 250.0, ("I", "II", "V1"), "r")
    one_pass = envelope(iter_chunks(rec, seconds=10_000), n_bins=700)
    low, high = _direct(rec.signal, bin_edges(100_003, 700))
    assert np.array_equal(one_pass.low, low) and np.array_equal(one_pass.high, high)
    for seconds in (0.5, 7.3, 41.0, 399.99):  # chunk edges falling anywhere inside bins
        chunked = envelope(iter_chunks(rec, seconds=seconds), n_bins=700)
        assert np.array_equal(chunked.low, one_pass.low), seconds
        assert np.array_equal(chunked.high, one_pass.high), seconds
    short = envelope(iter_chunks(Record(rec.signal[:, :50], 250.0, rec.leads, "s"), seconds=0.1), n_bins=700)
    assert short.low.shape == (3, 50) and np.array_equal(short.low, rec.signal[:, :50])  # a bin per sample


def test_a_long_record_file_has_a_fixed_size_overview_read_in_bounded_memory(tmp_path, monkeypatch):
    header = make_long_wfdb(tmp_path, hours=1.0)
    monkeypatch.setattr(io, "OVERVIEW_CHUNK_SAMPLES", 100_000)  # 200 s of 2 leads per read
    tracemalloc.start()
    try:
        env = record_envelope(header)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole_bytes = 900_000 * 2 * 4  # the record as float32
    assert peak < whole_bytes / 2, f"peak {peak / 1e6:.1f} MB: the record was read whole"
    assert env.low.shape == env.high.shape == (2, io.OVERVIEW_BINS)
    assert env.duration == 3600 and env.leads == ("II", "V5")
    assert np.allclose(env.high[0], 1.0, atol=0.01) and np.allclose(env.high[1], 0.7, atol=0.01)
    assert np.allclose(env.low[1], -0.1, atol=0.01)
    day = record_envelope(make_long_wfdb(tmp_path / "two", hours=2.0))
    assert day.low.shape == env.low.shape  # twice as long, the same number of points
    second_hour = day.starts_s >= 3600
    assert np.allclose(day.high[0][second_hour], 2.0, atol=0.01)
    assert np.allclose(day.high[0][~second_hour], 1.0, atol=0.01)


def test_a_window_is_read_alone_and_kept_inside_the_record(tmp_path):
    header = make_long_wfdb(tmp_path, hours=0.5)
    whole = read_record(header)
    window = read_window(header, 600.0, 10.0)
    assert (window.start, window.start_s, window.total) == (150_000, 600.0, 450_000)
    assert np.array_equal(window.signal, whole.signal[:, 150_000:152_500])
    last = read_window(header, 1e9, 10.0)  # past the end: the last 10 s
    assert last.start == 450_000 - 2500 and last.signal.shape[1] == 2500
    assert read_window(whole, -5.0, 10.0).start == 0  # a record in memory is cut the same way
    with pytest.raises(ValueError, match="positive length"):
        read_window(header, 0.0, float("nan"))


def test_a_window_is_drawn_on_paper_at_its_time_in_the_record(tmp_path):
    window = read_window(make_long_wfdb(tmp_path, hours=1.5), 3600.0, 10.0)
    fig = viz.ecg_paper(window.signal, window.fs, window.leads, layout="rows", start_s=window.start_s)
    x0, x1 = fig.layout.xaxis.range
    assert 3599.6 < x0 < 3600 and x1 == pytest.approx(3610.0)
    labels = [t for t in fig.layout.xaxis.ticktext if t]
    assert labels[0] == "1:00:00" and labels[-1] == "1:00:10" and "h:mm:ss" in fig.layout.xaxis.title.text
    lines = [t for t in fig.data if t.mode == "lines" and t.name in window.leads]
    assert all(min(t.x) >= 3600 and max(t.x) < 3610 for t in lines)
    short = viz.ecg_paper(window.signal, window.fs, window.leads, layout="rows")  # today's view: from 0 s
    assert [t for t in short.layout.xaxis.ticktext if t][:2] == ["0", "1"]


def test_the_overview_has_one_point_per_bin_and_marks_the_window(tmp_path):
    env = record_envelope(make_long_wfdb(tmp_path, hours=2.0))
    fig = viz.record_overview(env, (5400.0, 5410.0))
    targets = [t for t in fig.data if t.mode == "markers"]
    assert len(targets) == 2 and all(len(t.x) == io.OVERVIEW_BINS for t in targets)
    assert fig.layout.xaxis.range == (0.0, 7200.0) and "2:00:00" in fig.layout.xaxis.ticktext
    shades = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(shades) == 2 and all(s.x0 == 5400.0 and s.x1 > s.x0 for s in shades)  # on each lead


def test_an_upload_is_staged_once_and_old_uploads_are_pruned(tmp_path):
    files = [("a.hea", b"a 1 250 10\na.dat 16 200 16 0 0 0 0 II\n"), ("a.dat", b"\0" * 20)]
    first = io.stage_upload(files, tmp_path)
    assert first.name == "a.hea" and first.read_bytes() == files[0][1]
    assert io.stage_upload(files, tmp_path) == first  # the same files: the same folder, not written again
    for i in range(5):
        io.stage_upload([(f"r{i}.csv", b"I\n1\n")], tmp_path)
    assert not first.exists() and len(list(tmp_path.iterdir())) == 4
    with pytest.raises(io.ECGFormatError, match="'..'"):
        io.stage_upload([("..", b"")], tmp_path)
