"""CSV records read in chunks (record_info, iter_chunks, read_window, the overview) equal the whole read;
long .asc and .mat files are refused with the reason; an upload too large to use whole is refused."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.io

from ecgcore import io
from ecgcore.io import (
    ECGFormatError,
    iter_chunks,
    read_record,
    read_upload,
    read_window,
    record_envelope,
    record_info,
)


def _write_csv(path, n: int, seed: int = 0):
    """Leads I, II, V1 in mV and a 'time' column that is not a lead (dropped), ``n`` rows."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=(n, 3)), 4)
    frame = pd.DataFrame(values, columns=["I", "II", "V1"])
    frame.insert(1, "time", np.arange(n) / 250.0)
    frame.to_csv(path, index=False)
    return values.T


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(io, "CSV_CHUNK_ROWS", 97)  # chunk edges fall anywhere inside the windows


def test_chunked_csv_reads_equal_the_whole_read(tmp_path, small_chunks):
    path = tmp_path / "rec.csv"
    truth = _write_csv(path, 2_345)
    whole = read_record(path, fs=250.0)
    truth = truth.astype(np.float32)  # a Record holds float32
    assert np.array_equal(whole.signal, truth) and whole.leads == ("I", "II", "V1")
    info = record_info(path, fs=250.0)
    assert (info.n_samples, info.leads, info.format) == (2_345, ("I", "II", "V1"), "csv")
    for seconds, overlap in ((1.0, 0.0), (0.73, 0.3), (20.0, 0.0)):
        chunks = list(iter_chunks(path, seconds, overlap, fs=250.0))
        assert all(c.total == 2_345 and c.metadata["dropped_columns"] == ["time"] for c in chunks)
        for c in chunks:
            assert np.array_equal(c.signal, truth[:, c.start : c.start + c.signal.shape[1]]), (
                seconds,
                c.start,
            )
        assert chunks[-1].start + chunks[-1].signal.shape[1] == 2_345
        assert sum(c.signal.shape[1] for c in chunks) >= 2_345
    for start_s in (0.0, 3.1, 9.0, 2.0):  # later, then earlier again (a new pass through the file)
        window = read_window(path, start_s, 0.5, fs=250.0)
        assert np.array_equal(window.signal, truth[:, window.start : window.start + 125])
    assert window.start == 500
    rows = io._CsvRows(path, 250.0, chunk_rows=97)  # one reader: a later range, then an earlier one
    for start, stop in ((900, 1_000), (100, 200), (150, 400)):
        assert np.array_equal(rows.read(start, stop).signal, truth[:, start:stop]), (start, stop)
    overview = record_envelope(path, fs=250.0)
    assert np.array_equal(overview.high, record_envelope(whole).high)
    lead_v1 = next(iter_chunks(path, 2.0, fs=250.0, leads=["V1", "III"]))
    assert np.allclose(lead_v1.signal[1], truth[1, :500] - truth[0, :500])  # III derived from I and II


def test_a_bad_value_is_named_at_its_row_in_the_file_whichever_chunk_it_is_in(tmp_path, small_chunks):
    path = tmp_path / "bad.csv"
    _write_csv(path, 1_000)
    lines = path.read_text().splitlines()
    lines[1 + 612] = lines[1 + 612].replace(lines[1 + 612].split(",")[2], "x1", 1)  # data row 613, lead II
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ECGFormatError, match=r"non-numeric value 'x1' in column II, data row 613$") as whole:
        read_record(path, fs=250.0)
    with pytest.raises(ECGFormatError) as chunked:
        record_info(path, fs=250.0)
    assert str(chunked.value) == str(whole.value)
    for start_s in (
        0.0,
        2.0,
        3.5,
    ):  # row 613 (2.45 s) before, inside and after the window: one pass checks all
        with pytest.raises(ECGFormatError) as windowed:
            read_window(path, start_s, 0.5 if start_s else 1.0, fs=250.0)
        assert str(windowed.value) == str(whole.value) and "bad.csv" in str(windowed.value), start_s
    lines[1 + 612] = lines[1 + 612].replace("x1", "1e300")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ECGFormatError, match=r"value 1e\+300 in column II, data row 613, is beyond the float32"
    ):
        list(iter_chunks(path, 1.0, fs=250.0))
    lines[1 + 612] = lines[1 + 612].replace("1e300", "")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ECGFormatError, match=r"non-finite samples .* in lead\(s\) II \(1\)"):
        read_window(path, 2.0, 1.0, fs=250.0)
    with pytest.raises(ECGFormatError, match="give fs"):
        record_info(path)
    (tmp_path / "header-only.csv").write_text("I,II\n")
    with pytest.raises(ECGFormatError, match="a header but no samples"):
        record_info(tmp_path / "header-only.csv", fs=250.0)
    with pytest.raises(ECGFormatError, match="header-only.csv.*a header but no samples"):
        read_window(tmp_path / "header-only.csv", 0.0, 1.0, fs=250.0)


def test_a_long_csv_is_read_window_by_window_in_bounded_memory(tmp_path, monkeypatch):
    path = tmp_path / "long.csv"
    _write_csv(path, 300_000)  # 20 min at 250 Hz
    monkeypatch.setattr(io, "CSV_CHUNK_ROWS", 10_000)

    def peak(fn) -> int:
        tracemalloc.start()
        fn()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    whole = peak(lambda: read_record(path, fs=250.0))
    chunked = peak(lambda: [c.signal.sum() for c in iter_chunks(path, 10.0, fs=250.0)])
    info = peak(lambda: record_info(path, fs=250.0))
    assert whole > 7_000_000  # the 300,000 x 3 float64 values alone are 7.2 MB
    assert chunked < whole / 4 and info < whole / 4, (whole, chunked, info)


def test_a_long_asc_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "long.asc"
    np.savetxt(path, np.zeros((6_000, 8), dtype=int), fmt="%d")
    with path.open("a") as handle:  # past row 5001: parsed only if the file were read whole
        handle.write("not a number\n")
    with pytest.raises(ECGFormatError, match=r"expected 5000 rows \(10 s at 500 Hz\), found more"):
        read_record(path)
    np.savetxt(path, np.zeros((4_000, 8), dtype=int), fmt="%d")
    with pytest.raises(ECGFormatError, match="found 4000: truncated"):
        read_record(path)


def test_a_mat_record_too_long_to_read_whole_says_why(tmp_path, monkeypatch):
    signal = np.zeros((2, 5_000), dtype=np.int16)
    scipy.io.savemat(tmp_path / "A1.mat", {"val": signal})
    (tmp_path / "A1.hea").write_text(
        "A1 2 500 5000\nA1.mat 16+24 1000/mV 16 0 0 0 0 I\nA1.mat 16+24 1000/mV 16 0 0 0 0 II\n"
    )
    assert read_record(tmp_path / "A1.hea").signal.shape == (2, 5_000)
    monkeypatch.setattr(io, "MAT_MAX_VALUES", 9_999)
    for read in (read_record, record_info, lambda p: next(iter_chunks(p, 1.0))):
        with pytest.raises(
            ECGFormatError,
            match=r"A1.mat: about 10,\d{3} samples .* than the 9,999 .* cannot be read in parts",
        ):
            read(tmp_path / "A1.hea")


def test_an_upload_too_large_to_use_whole_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.csv"
    _write_csv(path, 5_000)
    data = path.read_bytes()
    assert read_upload([("big.csv", data)], fs=250.0, max_bytes=len(data)).signal.shape == (3, 5_000)
    with pytest.raises(ECGFormatError, match=r"^big.csv: 0.1\d* MB, more than the 0.0954 MB read whole here"):
        read_upload([("big.csv", data)], fs=250.0, max_bytes=100_000)


def test_the_pages_that_use_a_record_whole_refuse_a_large_upload_and_the_explorer_does_not(
    monkeypatch, tmp_path
):
    from dashboard import common

    path = tmp_path / "big.csv"
    _write_csv(path, 5_000)

    class Upload:
        name = "big.csv"

        def getvalue(self) -> bytes:
            return path.read_bytes()

    monkeypatch.setattr(common, "UPLOAD_WHOLE_MAX_BYTES", 100_000)
    [(_, refused)] = common.uploads_to_records([Upload()], 250.0)
    assert isinstance(refused, ECGFormatError) and "more than the 0.0954 MB read whole here" in str(refused)
    [(_, read)] = common.uploads_to_records([Upload()], 250.0, long_ok=True)
    assert read.signal.shape == (3, 5_000)


def test_a_csv_window_is_read_in_one_pass_and_kept_inside_the_file(tmp_path, small_chunks, monkeypatch):
    path = tmp_path / "rec.csv"
    truth = _write_csv(path, 1_000).astype(np.float32)
    passes = []
    real = io._csv_frames

    def counted(path, layout, chunk_rows):
        passes.append(chunk_rows)
        yield from real(path, layout, chunk_rows)

    monkeypatch.setattr(io, "_csv_frames", counted)
    for start_s, seconds, first, n in (
        (1.0, 0.5, 250, 125),  # inside
        (3.9, 0.5, 875, 125),  # past the end: moved back to end at the last row
        (9.0, 0.2, 950, 50),  # wholly past the end
        (1.0, 10.0, 0, 1_000),  # longer than the file: all of it
        (0.0, 4.0, 0, 1_000),  # exactly the file
    ):
        passes.clear()
        window = read_window(path, start_s, seconds, fs=250.0)
        assert (window.start, window.signal.shape[1], window.total) == (first, n, 1_000), start_s
        assert np.array_equal(window.signal, truth[:, first : first + n]), start_s
        assert passes == [97], start_s  # one pass through the file, in chunks


def test_every_record_of_one_upload_stays_staged_however_many_there_are(tmp_path):
    """With ``long_ok`` each record is kept on disk: a later record of the same upload must not evict an
    earlier one (a long one is read window by window from its folder while it is viewed)."""
    from dashboard import common
    from ecgcore import paths

    class Upload:
        def __init__(self, name: str, data: bytes) -> None:
            self.name, self.data = name, data

        def getvalue(self) -> bytes:
            return self.data

    uploads = []
    for i in range(6):  # more than the 4 folders stage_upload keeps by default
        _write_csv(tmp_path / f"r{i}.csv", 50, seed=i)
        uploads.append(Upload(f"r{i}.csv", (tmp_path / f"r{i}.csv").read_bytes()))
    found = common.uploads_to_records(uploads, 250.0, long_ok=True)
    assert [name for name, _ in found] == [f"r{i}.csv" for i in range(6)]
    staged = [p for p in paths.subdir("uploads").iterdir() if (p / ".complete").is_file()]
    assert sorted(f.name for p in staged for f in p.glob("*.csv")) == [f"r{i}.csv" for i in range(6)]
