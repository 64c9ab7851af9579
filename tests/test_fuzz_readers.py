"""Property-based fuzzing of every reader and the upload path (hypothesis).

Generated files, valid and broken (WFDB header + .dat, Challenge header + .mat, DeepFake .asc, CSV,
uploads with any name): each must either read correctly or raise :class:`ecgcore.io.ECGFormatError`
whose message names the file; never another exception, never a hang (each example has a deadline,
and the whole file stays within about a minute).
"""

from __future__ import annotations

import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ecgcore.io import ECGFormatError, Record, RecordInfo, iter_chunks, read_record, read_upload, record_info

FUZZ = settings(
    max_examples=60,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples each run: a failure is reproducible, the suite's time stable
)
#: Seconds after which one example counts as a hang.
HANG_S = 10

LEAD_NAMES = ["I", "II", "III", "aVR", "AVL", "V1", "V5", "MLII", "ECG", "", "foo bar", "Ж", "V1"]
FORMATS = ["16", "212", "80", "8", "24", "32", "61", "310", "311", "160", "0", "999", "abc"]
NUMBERS = ["500", "250", "0", "-500", "abc", "nan", "inf", "1e3", "500/10", "", "0.001", "1e400"]


@contextmanager
def no_hang(seconds: int = HANG_S):
    """Fail (instead of waiting forever) if the block runs longer than ``seconds``."""

    def hang(*_):
        raise AssertionError(f"no answer after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(read, named: str):
    """Run a reader: a Record (or RecordInfo) with sane contents, or ECGFormatError naming ``named``."""
    with no_hang():
        try:
            result = read()
        except ECGFormatError as exc:
            assert named in str(exc), f"the message does not name {named!r}: {exc}"
            event("refused")
            return None
    event("read")
    if isinstance(result, RecordInfo):
        assert result.fs > 0 and result.n_samples > 0 and result.leads
        return result
    records = result if isinstance(result, list) else [result]
    for record in records:
        assert isinstance(record, Record) and record.signal.ndim == 2
        assert record.signal.shape[0] == len(record.leads) and record.fs > 0
        assert np.isfinite(record.signal).all()
    return records[0] if records else None


def names() -> st.SearchStrategy[str]:
    plain = st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=8)
    odd = st.sampled_from(["my record", "rec.v2", "ЭКГ-тест", "a b.c", "x" * 40])
    return st.one_of(plain, odd)


#: What a generated WFDB record lies about ("none": a coherent record that must read).
LIES = ["none"] * 6 + ["n_sig", "fs", "length", "gain", "unit", "lead", "file", "size", "fmt", "comment"]


@st.composite
def wfdb_files(draw) -> tuple[str, str, bytes]:
    """A record name, header text and .dat bytes: coherent, or lying about one thing."""
    lie = draw(st.sampled_from(LIES))
    name = draw(names())
    n_sig = draw(st.integers(1, 4))
    n_samples = draw(st.integers(1, 400))
    fmt = draw(st.sampled_from(FORMATS if lie == "fmt" else ["16", "212", "80"]))
    declared_sig = draw(st.sampled_from([str(n_sig + 1), "x", "-1", "0"])) if lie == "n_sig" else str(n_sig)
    fs = draw(st.sampled_from(NUMBERS)) if lie == "fs" else draw(st.sampled_from(["500", "250", "360"]))
    length = draw(st.sampled_from(["", "0", "99999", "-3"])) if lie == "length" else str(n_samples)
    lines = [f"{name} {declared_sig} {fs} {length}".rstrip()]
    leads = draw(st.permutations(["I", "II", "V1", "V2", "aVR"]))[:n_sig]
    for i in range(n_sig):
        gain = (
            draw(st.sampled_from(["0", "-0", "abc", "1e400", ""])) if lie == "gain" and i == 0 else "200(0)"
        )
        unit = draw(st.sampled_from(["furlong", "mmHg", "%"])) if lie == "unit" and i == 0 else "mV"
        lead = draw(st.sampled_from(LEAD_NAMES)) if lie == "lead" else leads[i]
        file_name = "other.dat" if lie == "file" and i == 0 else f"{name}.dat"
        lines.append(f"{file_name} {fmt} {gain}/{unit} 16 0 0 0 0 {lead}".rstrip())
    if lie == "comment":
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["# a comment", "", "#", "   "])))
    size = int(np.ceil(n_sig * n_samples * {"16": 2, "212": 1.5, "80": 1}.get(fmt, 2)))
    if lie == "size":
        size = draw(st.sampled_from([0, max(size - 3, 0), size + 7, size * 2 + 9]))
    data = draw(st.binary(min_size=size, max_size=size)) if size < 4096 else bytes(size)
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "\r\n", ""]))
    return name, text, data


@FUZZ
@given(wfdb_files())
def test_wfdb_header_and_signal(files):
    name, text, data = files
    with tempfile.TemporaryDirectory() as tmp:
        header = Path(tmp) / f"{name}.hea"
        header.write_text(text, encoding="utf-8")
        (Path(tmp) / f"{name}.dat").write_bytes(data)
        record = check(lambda: read_record(header), name)
        info = check(lambda: record_info(header), name)
        chunks = check(lambda: list(iter_chunks(header, seconds=0.5)), name)
        if record is not None:  # the three agree on a record that reads
            assert info is not None and (info.n_samples, info.fs, info.leads) == (
                record.signal.shape[1],
                record.fs,
                record.leads,
            )
            assert chunks is not None
            joined = np.concatenate([c.signal for c in iter_chunks(header, seconds=0.5)], axis=1)
            np.testing.assert_array_equal(joined, record.signal)


@FUZZ
@given(
    st.integers(1, 3),
    st.integers(1, 50),
    st.sampled_from(["int16", "int32", "float64", "garbage"]),
    st.sampled_from(["match", "more_leads", "fewer_samples", "no_val"]),
    st.sampled_from(["500", "0", "-1", "abc"]),
    st.sampled_from(["1000", "0", "200(5)"]),
)
def test_challenge_mat(n_sig, n_samples, dtype, lie, fs, gain):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        leads = ["I", "II", "V1"][:n_sig]
        lines = [f"A0001 {n_sig} {fs} {n_samples}"]
        lines += [f"A0001.mat 16+24 {gain}/mV 16 0 0 0 0 {lead}" for lead in leads]
        (folder / "A0001.hea").write_text("\n".join(lines) + "\n")
        if dtype == "garbage":
            (folder / "A0001.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 2)
        else:
            rows = n_sig + (lie == "more_leads")
            cols = n_samples - (lie == "fewer_samples")
            key = "other" if lie == "no_val" else "val"
            scipy.io.savemat(folder / "A0001.mat", {key: np.ones((rows, max(cols, 0)), dtype=dtype)})
        check(lambda: read_record(folder / "A0001.hea"), "A0001")
        check(lambda: record_info(folder / "A0001"), "A0001")


@FUZZ
@given(
    st.sampled_from([8, 8, 8, 0, 1, 7, 9]),
    st.sampled_from([5000, 5000, 4999, 3]),
    st.sampled_from(["1", "-12", "1e308", "nan", "x", ""]),
    st.booleans(),
)
def test_deepfake_asc(n_cols, n_rows, cell, binary):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rec.asc"
        if binary:
            path.write_bytes(bytes(range(256)) * 3)
        else:
            row = " ".join(["10"] * max(n_cols - 1, 0) + [cell] * (n_cols > 0))
            path.write_text("\n".join([row] * n_rows) + "\n")
        check(lambda: read_record(path), "rec.asc")


csv_cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "1e308", "-1e309", "abc", "1,5", '"', "0x10"]),
)


@st.composite
def csv_text(draw) -> str:
    """CSV text: a lead per column with numbers (half the time), else any header and any cells."""
    if draw(st.booleans()):
        columns = draw(
            st.lists(st.sampled_from(["I", "II", "V1", "V2", "aVF"]), min_size=1, max_size=4, unique=True)
        )
        number = st.floats(-50, 50, allow_nan=False).map(lambda v: f"{v:.4f}")
        rows = draw(
            st.lists(st.lists(number, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=8)
        )
    else:
        columns = draw(st.lists(st.sampled_from(LEAD_NAMES + ["time", "V2", "ii"]), min_size=0, max_size=4))
        rows = draw(st.lists(st.lists(csv_cells, min_size=0, max_size=5), min_size=0, max_size=6))
    return ",".join(columns) + "\n" + "\n".join(",".join(r) for r in rows)


@FUZZ
@given(csv_text(), st.sampled_from([500.0, 500.0, 0.5]))
def test_csv(text, fs):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ecg.csv"
        path.write_text(text)
        check(lambda: read_record(path, fs=fs), "ecg.csv")


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.text(max_size=30),
                st.sampled_from(
                    ["..", ".", "", "a.csv", "ЭКГ.hea", "x" * 300 + ".csv", "a\0.csv", "../a.csv"]
                ),
            ),
            st.binary(max_size=200),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_upload(files):
    shown = [name[:60] for name, _ in files]
    with no_hang():
        try:
            record = read_upload(files, fs=500.0)
        except ECGFormatError as exc:
            message = str(exc)
            assert "ecglab-upload-" not in message and tempfile.gettempdir() + "/" not in message
            assert (
                any(name in message or repr(name)[1:-1] in message for name in shown)
                or "empty name" in message
            )
            return
    assert np.isfinite(record.signal).all()


def test_the_fuzzer_reads_a_valid_wfdb_record(tmp_path):
    """The generators do produce readable records (else the properties above would hold vacuously)."""
    text = "r 2 500 100\nr.dat 16 200/mV 16 0 0 0 0 I\nr.dat 16 200/mV 16 0 0 0 0 II\n"
    (tmp_path / "r.hea").write_text(text)
    (tmp_path / "r.dat").write_bytes(np.arange(200, dtype="<i2").tobytes())
    record = read_record(tmp_path / "r.hea")
    assert record.signal.shape == (2, 100) and record.signal[1, 0] == pytest.approx(1 / 200)
    assert read_upload([("a.csv", b"I,II\n0.1,0.2\n")], fs=250.0).signal.shape == (2, 1)
