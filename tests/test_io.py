"""ecgcore.io: every reader on real and synthetic records, lead handling, and each bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.io import ECGFormatError, Record, RecordNotFoundError, read_record
from ecgcore.vocab import LEADS_8, LEADS_12

REAL_500 = "records500/06000/06000_hr"
REAL_100 = "records100/00000/00001_lr"


def _raw_mv(dat: Path, n_leads: int = 12) -> np.ndarray:
    """Decode a PTB-XL format-16 file by hand (gain 1000/mV, baseline 0) as an independent check."""
    return np.fromfile(dat, dtype="<i2").reshape(-1, n_leads).T / 1000.0


@pytest.mark.parametrize("name,fs", [(REAL_500, 500.0), (REAL_100, 100.0)])
def test_reads_real_ptbxl_wfdb(ptbxl_sample, name, fs):
    record = read_record(ptbxl_sample / name)
    assert record.fs == fs and record.leads == LEADS_12  # "AVR" in the header -> "aVR"
    assert record.signal.dtype == np.float32 and record.signal.shape == (12, int(10 * fs))
    np.testing.assert_allclose(record.signal, _raw_mv(ptbxl_sample / f"{name}.dat"), atol=1e-6)
    assert record.record_id == Path(name).name and record.duration == pytest.approx(10.0)
    # the same record by header or signal file name
    for suffix in (".hea", ".dat"):
        np.testing.assert_array_equal(read_record(ptbxl_sample / f"{name}{suffix}").signal, record.signal)


def test_derived_limb_leads_match_the_recorded_ones(ptbxl_sample):
    record = read_record(ptbxl_sample / REAL_500)
    only_i_ii = record.select(["I", "II", "V1"])
    derived = only_i_ii.select(["III", "aVR", "aVL", "aVF"])
    assert derived.metadata["derived"] == ["III", "aVF", "aVL", "aVR"]
    recorded = record.select(["III", "aVR", "aVL", "aVF"], derive=False).signal
    # the recorded limb leads were computed from I and II and rounded to 1 uV by the device
    assert np.abs(derived.signal - recorded).max() < 0.01
    assert np.corrcoef(derived.signal[0], recorded[0])[0, 1] > 0.999


def test_select_orders_and_names_missing_leads(ptbxl_sample):
    record = read_record(ptbxl_sample / REAL_500, leads=["v1", "AVR", "I"])
    assert record.leads == ("V1", "aVR", "I")
    lead_only = read_record(ptbxl_sample / REAL_500, leads=["V1", "V2"])
    with pytest.raises(ECGFormatError, match=r"missing lead aVF; the record has V1, V2"):
        lead_only.select(["aVF"])
    with pytest.raises(ECGFormatError, match="missing lead III"):
        read_record(ptbxl_sample / REAL_500, leads=["I", "II"]).select(["III"], derive=False)


def test_resample_polyphase_keeps_the_waveform(ptbxl_sample):
    record = read_record(ptbxl_sample / REAL_500)
    down = record.resample(100)
    assert down.fs == 100 and down.signal.shape == (12, 1000)
    lr = read_record(ptbxl_sample / REAL_500, target_fs=250).resample(500)
    # band-limited content survives 500 -> 250 -> 500 Hz
    assert np.corrcoef(lr.signal[1], record.signal[1])[0, 1] > 0.97
    assert record.resample(500) is record


def _write_challenge(
    tmp_path: Path, signal_uv: np.ndarray, name: str = "A0001", mat_format: str = "4"
) -> Path:
    """Write a Challenge-style record: a MATLAB 'val' matrix and a header naming the .mat file."""
    scipy.io.savemat(tmp_path / f"{name}.mat", {"val": signal_uv.astype(np.int16)}, format=mat_format)
    offset = "+24" if mat_format == "4" else ""
    lines = [f"{name} {signal_uv.shape[0]} 500 {signal_uv.shape[1]} 05-Feb-2020 11:39:16"]
    lines += [
        f"{name}.mat 16{offset} 1000/mV 16 0 {int(signal_uv[i, 0])} 0 0 {lead.upper()}"
        for i, lead in enumerate(LEADS_12[: signal_uv.shape[0]])
    ]
    lines += ["#Age: 74", "#Sex: Male", "#Dx: 59118001"]
    (tmp_path / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return tmp_path / f"{name}.hea"


@pytest.mark.parametrize("mat_format", ["4", "5"])
def test_reads_challenge_mat(tmp_path, mat_format):
    syn = synthetic_ecg(hr=72, fs=500, leads=LEADS_12, seed=1)
    uv = np.round(syn.signal * 1000)
    header = _write_challenge(tmp_path, uv, mat_format=mat_format)
    record = read_record(header)
    assert record.metadata["format"] == "wfdb-mat" and "Dx: 59118001" in record.metadata["comments"]
    assert record.leads == LEADS_12 and record.fs == 500
    np.testing.assert_allclose(record.signal, uv / 1000, atol=1e-6)
    np.testing.assert_array_equal(read_record(tmp_path / "A0001.mat").signal, record.signal)


def test_reads_real_record_rewritten_as_challenge_mat(ptbxl_sample, tmp_path):
    real = read_record(ptbxl_sample / REAL_500)
    header = _write_challenge(tmp_path, np.round(real.signal * 1000), name="HR06000")
    np.testing.assert_allclose(read_record(header).signal, real.signal, atol=1e-6)


def _write_asc(path: Path, signal_mv: np.ndarray) -> Path:
    np.savetxt(path, np.round(signal_mv.T * 1000).astype(int), fmt="%i")  # as deepfakeecg.generate does
    return path


def test_reads_deepfake_asc(tmp_path):
    syn = synthetic_ecg(hr=60, fs=500, leads=LEADS_8, seed=2)
    path = _write_asc(tmp_path / "17.asc", syn.signal)
    record = read_record(tmp_path / "17")  # without extension
    assert record.leads == LEADS_8 and record.fs == 500 and record.record_id == "17"
    np.testing.assert_allclose(record.signal, np.round(syn.signal * 1000) / 1000, atol=1e-6)
    assert read_record(path, leads=["aVF"]).signal.shape == (1, 5000)


def test_reads_real_record_as_asc_and_csv(ptbxl_sample, tmp_path):
    real = read_record(ptbxl_sample / REAL_500, leads=LEADS_8)
    np.testing.assert_allclose(
        read_record(_write_asc(tmp_path / "r.asc", real.signal)).signal, real.signal, atol=1e-6
    )
    import pandas as pd

    pd.DataFrame(real.signal.T, columns=["i", "II", "v1", "V2", "V3", "V4", "V5", "V6"]).to_csv(
        tmp_path / "r.csv", index=False
    )
    record = read_record(tmp_path / "r.csv", fs=500)
    assert record.leads == LEADS_8
    np.testing.assert_allclose(record.signal, real.signal, atol=1e-6)


def test_reads_csv_with_aliases_and_extra_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("time,AVR,lead ii\n0.0,0.5,1.0\n0.002,-0.25,2.0\n")
    record = read_record(path, fs=500)
    assert record.leads == ("aVR", "II") and record.metadata["dropped_columns"] == ["time"]
    np.testing.assert_allclose(record.signal, [[0.5, -0.25], [1.0, 2.0]])
    with pytest.raises(ECGFormatError, match="carries no sampling rate"):
        read_record(path)


def test_reads_ludb_lowercase_leads():
    ludb = (
        Path(__file__).parent / "measure" / "data" / "ludb" / "1.hea"
    )  # LUDB record 1, shipped with the tests
    record = read_record(ludb)
    assert record.leads == LEADS_12
    np.testing.assert_allclose(record.signal, wfdb.rdrecord(str(ludb.with_suffix(""))).p_signal.T, atol=1e-5)


# --- bad input: each gets a specific error naming the file -------------------------------------------------


@pytest.fixture
def real_copy(ptbxl_sample, tmp_path) -> Path:
    for ext in (".hea", ".dat"):
        shutil.copy(ptbxl_sample / f"{REAL_500}{ext}", tmp_path / f"06000_hr{ext}")
    return tmp_path / "06000_hr"


def test_truncated_dat(real_copy):
    dat = real_copy.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:60_000])
    with pytest.raises(
        ECGFormatError, match=r"06000_hr\.dat: truncated signal file: 60000 bytes.*need 120000"
    ):
        read_record(real_copy)


def test_header_disagrees_with_data_length(real_copy):
    dat = real_copy.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes() * 2)
    with pytest.raises(ECGFormatError, match=r"06000_hr\.dat: the header says 5000 samples .* holds 10000"):
        read_record(real_copy)


def test_mat_shape_disagrees_with_header(tmp_path):
    header = _write_challenge(tmp_path, np.zeros((12, 5000)))
    header.write_text(header.read_text().replace("A0001 12 500 5000", "A0001 12 500 6000"))
    with pytest.raises(ECGFormatError, match=r"A0001\.mat: the header says 6000 samples .* holds 5000"):
        read_record(header)


def test_truncated_mat(tmp_path):
    header = _write_challenge(tmp_path, np.ones((12, 5000)))
    mat = tmp_path / "A0001.mat"
    mat.write_bytes(mat.read_bytes()[:5000])
    with pytest.raises(ECGFormatError, match=r"A0001\.mat: truncated or unreadable MATLAB file"):
        read_record(header)


def test_missing_signal_file(real_copy):
    real_copy.with_suffix(".dat").unlink()
    with pytest.raises(
        ECGFormatError, match=r"06000_hr\.hea: the signal file 06000_hr\.dat named by the header is missing"
    ):
        read_record(real_copy)


def test_non_finite_samples(tmp_path, real_copy):
    csv = tmp_path / "nan.csv"
    csv.write_text("I,II\n0.1,0.2\n0.1,\n0.3,inf\n")
    with pytest.raises(ECGFormatError, match=r"nan\.csv: non-finite samples .* lead\(s\) II \(2\)"):
        read_record(csv, fs=500)
    # WFDB marks missing samples with the format's invalid value (-32768 for format 16)
    raw = np.fromfile(real_copy.with_suffix(".dat"), dtype="<i2").reshape(-1, 12)
    raw[100:110, 6] = -32768
    raw.tofile(real_copy.with_suffix(".dat"))
    with pytest.raises(ECGFormatError, match=r"non-finite samples .* V1 \(10\)"):
        read_record(real_copy)


def test_unknown_format_and_missing_record(tmp_path):
    (tmp_path / "x.xml").write_bytes(b"<ecg/>")  # e.g. an HL7 aECG export, which is not read
    with pytest.raises(ECGFormatError, match=r"x\.xml: unknown ECG format '\.xml'"):
        read_record(tmp_path / "x.xml")
    with pytest.raises(RecordNotFoundError, match="nothere: no such record"):
        read_record(tmp_path / "nothere")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for callers that catch that
        read_record(tmp_path / "nothere")


def test_too_short(ptbxl_sample):
    with pytest.raises(ECGFormatError, match=r"record is 10\.00 s long, shorter than the 12 s asked for"):
        read_record(ptbxl_sample / REAL_500, min_duration=12)
    assert read_record(ptbxl_sample / REAL_500, min_duration=10).duration == 10


def test_empty_csv(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ECGFormatError, match=r"empty\.csv: empty CSV file"):
        read_record(tmp_path / "empty.csv", fs=500)
    (tmp_path / "header.csv").write_text("I,II,V1\n")
    with pytest.raises(ECGFormatError, match=r"header\.csv: empty CSV: a header but no samples"):
        read_record(tmp_path / "header.csv", fs=500)


def test_csv_without_lead_columns_and_with_text(tmp_path):
    (tmp_path / "a.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(ECGFormatError, match=r"a\.csv: no standard ECG lead among the channels foo, bar"):
        read_record(tmp_path / "a.csv", fs=500)
    (tmp_path / "b.csv").write_text("I,II\n1,2\n1,x\n")
    with pytest.raises(ECGFormatError, match=r"non-numeric value 'x' in column II, data row 2"):
        read_record(tmp_path / "b.csv", fs=500)


def test_bad_asc(tmp_path):
    (tmp_path / "short.asc").write_text("\n".join(["1 2 3 4 5 6 7 8"] * 100))
    with pytest.raises(ECGFormatError, match=r"short\.asc: expected 5000 rows .* found 100"):
        read_record(tmp_path / "short.asc")
    (tmp_path / "cols.asc").write_text("\n".join(["1 2 3"] * 5000))
    with pytest.raises(ECGFormatError, match="expected 8 columns"):
        read_record(tmp_path / "cols.asc")
    (tmp_path / "empty.asc").write_text("")
    with pytest.raises(ECGFormatError, match=r"empty\.asc: empty \.asc file"):
        read_record(tmp_path / "empty.asc")
    (tmp_path / "text.asc").write_text("1 2 a\n")
    with pytest.raises(ECGFormatError, match=r"text\.asc: not a DeepFake \.asc file"):
        read_record(tmp_path / "text.asc")


def test_fs_contradicting_the_file(ptbxl_sample):
    with pytest.raises(ECGFormatError, match="sampled at 500 Hz, not the 100 Hz given"):
        read_record(ptbxl_sample / REAL_500, fs=100)


def test_record_checks_its_shape():
    with pytest.raises(ECGFormatError, match="does not match 2 leads"):
        Record(signal=np.zeros((3, 10)), fs=100, leads=("I", "II"), record_id="x")
