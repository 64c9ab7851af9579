"""Beat analysis reads EDF Holter files as it reads WFDB records: same channels, same beats."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.beats.detect import detect_record
from ecgcore.beats.longrecord import open_record, read_span, records_in, save_upload
from ecgcore.io import ECGFormatError
from tests.test_io_edf import STEP_MV, write_edf


def test_edf_holter_file_gives_the_beats_of_its_wfdb_twin(long_record, tmp_path):
    path, _ = long_record
    wfdb_info = open_record(path)
    signal = read_span(wfdb_info, 0, wfdb_info.n_samples).astype(np.float64)
    edf = write_edf(tmp_path / "holter.edf", signal, labels=("ECG1", "CM5"))  # + an accelerometer
    info = open_record(edf)
    assert info.leads == ("ECG1", "CM5") and info.fs == wfdb_info.fs and info.n_samples == wfdb_info.n_samples
    assert np.abs(read_span(info, 0, info.n_samples) - signal).max() <= STEP_MV
    edf_beats, wfdb_beats = detect_record(info, window_s=60, margin_s=10), detect_record(wfdb_info, 60, 10)
    assert edf_beats.size == wfdb_beats.size and np.abs(edf_beats - wfdb_beats).max() <= 1


def test_folder_listing_and_upload_take_edf(long_record, tmp_path):
    path, _ = long_record
    for suffix in (".hea", ".dat"):
        (tmp_path / f"a{suffix}").write_bytes(path.with_suffix(suffix).read_bytes())
    signal = read_span(open_record(path), 0, 250 * 30).astype(np.float64)
    write_edf(tmp_path / "b.edf", signal)
    assert [p.name for p in records_in(tmp_path)] == ["a", "b.edf"]
    uploaded = save_upload([("b.edf", (tmp_path / "b.edf").read_bytes())], tmp_path / "up")
    assert uploaded == tmp_path / "up" / "b.edf" and open_record(uploaded).leads == ("ECG1", "ECG2")
    with pytest.raises(ECGFormatError, match=r"x\.csv: no WFDB header \(\.hea\) or EDF file"):
        save_upload([("x.csv", b"I\n1\n")], tmp_path / "up2")
    with pytest.raises(ECGFormatError, match="not a readable EDF"):  # an EDF upload is opened before use
        save_upload([("bad.edf", b"0       junk")], tmp_path / "up3")
