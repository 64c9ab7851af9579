"""ecgcore.io on hostile input: odd record names, lying headers, non-files, and long records read in windows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from ecgcore.io import ECGFormatError, iter_chunks, read_record, read_upload, record_info

FS = 250


def _write(folder: Path, name: str = "base", seconds: float = 8.0, fmt: str = "16") -> Path:
    """A 2-lead WFDB record (a sine and a ramp, in mV) written by wfdb itself; returns the header."""
    t = np.arange(int(seconds * FS)) / FS
    signal = np.stack([np.sin(2 * np.pi * 1.2 * t), (t % 1.0) - 0.5], axis=1)
    wfdb.wrsamp(
        name,
        fs=FS,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        p_signal=signal,
        fmt=[fmt, fmt],
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


def _rename(header: Path, new: str) -> Path:
    """Copy a record under a new name, its header and signal line naming it (as a user's tool would)."""
    old = header.name[: -len(".hea")]
    shutil.copy(header.with_suffix(".dat"), header.with_name(f"{new}.dat"))
    text = header.read_text().replace(f"{old}.dat", f"{new}.dat").replace(old, new, 1)
    target = header.with_name(f"{new}.hea")
    target.write_text(text, encoding="utf-8")
    return target


@pytest.mark.parametrize("name", ["my record", "rec.v2", "ЭКГ-тест"])
def test_record_names_with_spaces_dots_or_non_latin_letters_simply_work(tmp_path, name):
    original = read_record(_write(tmp_path))
    header = _rename(tmp_path / "base.hea", name)
    for path in (header, header.with_suffix(".dat"), tmp_path / name):
        record = read_record(path)
        assert record.record_id == name and record.leads == ("I", "II")
        np.testing.assert_array_equal(record.signal, original.signal)
    assert record_info(tmp_path / name).n_samples == original.signal.shape[1]


def _edit_header(header: Path, line: int, old: str, new: str) -> None:
    lines = header.read_text().splitlines()
    assert old in lines[line]
    lines[line] = lines[line].replace(old, new, 1)
    header.write_text("\n".join(lines) + "\n")


def test_a_header_whose_signal_count_disagrees_with_its_signal_lines_is_named(tmp_path):
    header = _write(tmp_path)
    _edit_header(header, 0, "base 2", "base 3")
    with pytest.raises(
        ECGFormatError, match=r"base.hea: the record line says 3 signal\(s\) but the header has 2"
    ):
        read_record(header)


def test_a_signal_format_wfdb_does_not_know_is_named(tmp_path):
    header = _write(tmp_path)
    _edit_header(header, 1, "base.dat 16", "base.dat 999")
    with pytest.raises(ECGFormatError, match=r"base.hea: signal format 999 is not a WFDB format"):
        read_record(header)


@pytest.mark.parametrize("rate", ["-500", "0", "abc", "nan"])
def test_a_sampling_rate_that_is_not_a_positive_number_is_refused(tmp_path, rate):
    header = _write(tmp_path)
    _edit_header(header, 0, f" {FS} ", f" {rate} ")  # wfdb itself reads "-500" as its default, 250 Hz
    with pytest.raises(
        ECGFormatError, match=rf"base.hea: the sampling rate '{rate}' .* not a (positive )?number"
    ):
        record_info(header)


def test_an_adc_gain_of_zero_is_refused_for_dat_and_mat(tmp_path):
    header = _write(tmp_path)
    gain = header.read_text().splitlines()[1].split()[2].split("(")[0]
    _edit_header(header, 1, f" {gain}(", " 0(")
    with pytest.raises(ECGFormatError, match=r"base.hea: an ADC gain of 0 for signal\(s\) I"):
        read_record(header)
    mat = tmp_path / "mat"
    mat.mkdir()
    scipy.io.savemat(mat / "m.mat", {"val": np.zeros((2, 100), np.int16)})
    (mat / "m.hea").write_text(
        "m 2 500 100\nm.mat 16+24 0/mV 16 0 0 0 0 I\nm.mat 16+24 1000/mV 16 0 0 0 0 II\n"
    )
    with pytest.raises(ECGFormatError, match=r"m.hea: an ADC gain of 0 for signal\(s\) I"):
        read_record(mat / "m.hea")


def test_a_csv_with_a_lead_column_twice_is_refused_not_half_read(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("I,II,II\n" + "0.1,0.2,0.3\n" * 1000)
    with pytest.raises(ECGFormatError, match=r"twice.csv: column\(s\) II appear more than once"):
        read_record(path, fs=500)


def test_a_signal_file_that_is_a_fifo_is_named_not_called_missing(tmp_path):
    header = _write(tmp_path)
    (tmp_path / "base.dat").unlink()
    os.mkfifo(tmp_path / "base.dat")
    with pytest.raises(ECGFormatError, match=r"base.dat: is not a regular file \(a FIFO"):
        read_record(header)  # never opened: it would block


def test_a_directory_a_fifo_or_a_link_loop_is_named_for_what_it_is(tmp_path):
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "loop.hea").symlink_to(tmp_path / "loop.hea")
    cases = {
        tmp_path / "folder": "is a directory",
        tmp_path / "pipe.csv": "not a regular file",
        tmp_path / "loop.hea": "cannot be opened as a record",
        tmp_path / "loop": "cannot be opened as a record",
    }
    for path, problem in cases.items():
        with pytest.raises(ECGFormatError, match=problem) as caught:
            read_record(path, fs=500)  # a FIFO opened for reading would block here
        assert str(path) in str(caught.value)


def test_windows_cover_the_record_exactly_with_their_overlap(tmp_path):
    header = _write(tmp_path, seconds=25.0, fmt="212")
    whole = read_record(header)
    chunks = list(iter_chunks(header, seconds=10, overlap_s=2))
    assert [c.start for c in chunks] == [0, 2000, 4000]  # every 8 s; the last one runs to the end
    assert [c.signal.shape[1] for c in chunks] == [2500, 2500, 2250]
    for chunk in chunks:
        assert chunk.total == whole.signal.shape[1] and chunk.fs == FS and chunk.start_s == chunk.start / FS
        np.testing.assert_array_equal(
            chunk.signal, whole.signal[:, chunk.start : chunk.start + chunk.signal.shape[1]]
        )
    derived = next(iter_chunks(header, seconds=4, leads=["aVF"]))
    np.testing.assert_allclose(derived.signal, whole.select(["aVF"]).signal[:, :1000], atol=1e-6)
    with pytest.raises(ValueError, match="overlap"):
        next(iter_chunks(header, seconds=5, overlap_s=5))


def test_record_info_reads_the_header_alone(tmp_path):
    header = _write(tmp_path, seconds=12.0)
    info = record_info(header)
    assert (info.fs, info.n_samples, info.leads, info.format) == (FS, 3000, ("I", "II"), "wfdb")
    header.with_suffix(".dat").write_bytes(header.with_suffix(".dat").read_bytes()[:100])
    with pytest.raises(ECGFormatError, match="truncated signal file"):
        record_info(header)


def test_a_long_record_is_read_window_by_window_in_memory_of_one_window(tmp_path):
    """One hour at 250 Hz, 2 leads (7 MB as float32): reading it in 60 s windows holds about one window."""
    hours = 1.0
    n = int(hours * 3600 * FS)
    rng = np.random.default_rng(0)
    digital = rng.integers(-2000, 2000, size=(n, 2), dtype=np.int16)
    wfdb.wrsamp(
        "long",
        fs=FS,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        d_signal=digital,
        fmt=["16", "16"],
        adc_gain=[200.0, 200.0],
        baseline=[0, 0],
        write_dir=str(tmp_path),
    )
    whole_bytes = n * 2 * 4
    window_bytes = 60 * FS * 2 * 4
    tracemalloc.start()
    try:
        seen, total = 0, 0.0
        for chunk in iter_chunks(tmp_path / "long", seconds=60):
            seen += chunk.signal.shape[1]
            total += float(chunk.signal.sum(dtype=np.float64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == n
    assert total == pytest.approx(digital.sum(dtype=np.float64) / 200.0, abs=1e-3 * n)
    assert peak < 20 * window_bytes < whole_bytes / 2, f"peak {peak / 1e6:.1f} MB while reading in windows"


def test_a_csv_value_beyond_float32_is_named_without_a_warning(tmp_path, recwarn):
    path = tmp_path / "big.csv"
    path.write_text("I,II\n0.1,0.2\n0.3,1e308\n")
    with pytest.raises(
        ECGFormatError, match=r"big.csv: value 1e\+308 in column II, data row 2, is beyond the float32"
    ):
        read_record(path, fs=500)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize(
    "name,problem",
    [
        ("..", "not a file name"),
        ("", "empty name"),
        ("a\0b.csv", "or NUL characters"),
        ("../../etc/passwd.csv", "may not hold '/'"),
        ("x" * 300 + ".csv", "a name of 304 characters is longer than a file name may be"),
        ("notes.txt", "unsupported type .txt; expected .hea, .dat, .mat, .asc, .csv"),
        (".csv", "the name is only an extension; name the file, e.g. record.csv"),
    ],
)
def test_a_bad_upload_name_gets_a_clear_message_without_server_paths(name, problem):
    with pytest.raises(ECGFormatError, match=re.escape(problem)) as caught:
        read_upload([(name, b"I,II\n0,1\n")], fs=500)
    assert "ecglab-upload-" not in str(caught.value) and "/tmp" not in str(caught.value)


def test_an_upload_with_a_non_latin_name_reads_with_its_signal_file(tmp_path):
    header = _rename(_write(tmp_path), "ЭКГ-тест")
    record = read_upload([(p.name, p.read_bytes()) for p in (header, header.with_suffix(".dat"))])
    assert record.record_id == "ЭКГ-тест" and record.path == Path("ЭКГ-тест.hea")
    np.testing.assert_array_equal(record.signal, read_record(tmp_path / "base").signal)
    with pytest.raises(
        ECGFormatError, match=r"^ЭКГ-тест.hea: the signal file ЭКГ-тест.dat named by the header is missing"
    ):
        read_upload([(header.name, header.read_bytes())])


def test_matplotlib_keeps_its_cache_under_the_data_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"}
    env.update(ECGLAB_HOME=str(tmp_path / "home"), HOME=str(tmp_path / "user"), XDG_CACHE_HOME="")
    script = "import ecgcore.explain.report, matplotlib; print(matplotlib.get_cachedir())"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == str(tmp_path / "home" / "matplotlib"), out.stderr
    assert not (tmp_path / "user" / ".cache").exists()


def test_measure_prints_a_line_per_window_of_a_long_record(tmp_path, capsys, monkeypatch):
    from ecgcore.cli import main
    from ecgcore.cli import measure as measure_cli

    header = _write(tmp_path, seconds=25.0)
    assert main(["measure", str(header), "--window", "10", "--brief"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["start_s"] for line in lines] == [0.0, 10.0, 20.0]
    monkeypatch.setattr(measure_cli, "LONG_RECORD_S", 20)  # longer than this: windows without asking
    assert main(["measure", str(header), "--brief"]) == 0
    (only,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # 25 s in 60 s windows: one
    assert only["start_s"] == 0.0
    assert main(["measure", str(header), "--window", "nan"]) == 2


@pytest.mark.parametrize("name", ["..", "", "a\0b.hea", "../up.hea", "x" * 300 + ".hea"])
def test_the_holter_upload_refuses_the_same_names(tmp_path, name):
    from ecgcore.beats.longrecord import save_upload

    with pytest.raises(ECGFormatError, match="upload|empty name"):
        save_upload([(name, b"r 1 250 10\n")], tmp_path / "uploads")
    assert not (tmp_path / "up.hea").exists()
