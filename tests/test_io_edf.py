"""ecgcore.io on EDF/EDF+ files the tests write with pyedflib: values, units, rates, chunks, bad files."""

from __future__ import annotations

import numpy as np
import pyedflib
import pytest

from ecgcore.io import (
    ECGFormatError,
    iter_chunks,
    read_record,
    read_window,
    record_envelope,
    record_info,
)

FS = 250
SECONDS = 30
#: Physical range of the test channels, and the step of one digital unit in it (16-bit EDF).
RANGE_UV = 5000.0
STEP_MV = 2 * RANGE_UV / 65535 / 1000


def _channel(label: str, unit: str, fs: float, span: float) -> dict:
    return {
        "label": label,
        "dimension": unit,
        "sample_frequency": fs,
        "physical_max": span,
        "physical_min": -span,
        "digital_max": 32767,
        "digital_min": -32768,
    }


def _source(seconds: int = SECONDS) -> np.ndarray:
    """Two leads in mV: a slow wave and spikes (not symmetric, so a mix-up of leads shows)."""
    t = np.arange(seconds * FS) / FS
    first = 0.8 * np.sin(2 * np.pi * 1.1 * t) + 0.3 * (np.mod(t, 0.8) < 0.02)
    second = -0.5 * np.cos(2 * np.pi * 0.7 * t) + 0.1 * t / seconds
    return np.stack([first, second])


def write_edf(path, mv: np.ndarray, labels=("ECG1", "ECG2"), units=("uV", "mV"), extra=True, plus=True):
    """An EDF(+) file holding ``mv`` (``[2, n]`` mV) under ``labels`` in ``units``, and, with ``extra``, an
    accelerometer channel at a tenth of the rate (as Holter files carry)."""
    headers = [
        _channel(label, unit, FS, RANGE_UV if unit == "uV" else RANGE_UV / 1000)
        for label, unit in zip(labels, units)
    ]
    data = [row * (1000.0 if unit == "uV" else 1.0) for row, unit in zip(mv, units)]
    if extra:
        headers.append(_channel("Accel X", "g", FS / 10, 2.0))
        data.append(np.zeros(mv.shape[1] // 10))
    writer = pyedflib.EdfWriter(
        str(path), len(headers), file_type=pyedflib.FILETYPE_EDFPLUS if plus else pyedflib.FILETYPE_EDF
    )
    writer.setSignalHeaders(headers)
    writer.writeSamples(data)
    writer.close()
    return path


def test_values_units_rate_and_skipped_channels(tmp_path):
    mv = _source()
    path = write_edf(tmp_path / "holter.edf", mv, labels=("I", "II"))
    record = read_record(path.with_suffix(""))  # found without its extension too
    assert record.fs == FS and record.signal.shape == (2, SECONDS * FS)
    assert record.signal.dtype == np.float32
    # both channels in mV whatever the file's unit (uV and mV), within one digital step of the source
    assert np.abs(record.signal - mv).max() <= STEP_MV
    assert record.metadata["format"] == "edf+" and record.metadata["units"] == "mV"
    assert record.metadata["skipped_channels"] == ["Accel X (unit 'g' is not a voltage)"]
    assert record.leads == ("I", "II")


def test_standard_and_holter_channel_names(tmp_path):
    mv = _source()
    standard = write_edf(tmp_path / "std.edf", mv, labels=("ECG II", "EKG V1"), extra=False, plus=False)
    record = read_record(standard)
    assert record.leads == ("II", "V1") and record.metadata["format"] == "edf"
    holter = write_edf(tmp_path / "holter.edf", mv)
    with pytest.raises(ECGFormatError, match=r"holter\.edf: no ECG channel to read: ECG1 \(not a standard"):
        read_record(holter)
    info = record_info(holter, channels="any")
    assert info.leads == ("ECG1", "ECG2") and info.fs == FS and info.n_samples == SECONDS * FS


def test_other_rate_voltage_channel_is_skipped_by_name(tmp_path):
    path = tmp_path / "mixed.edf"
    headers = [
        _channel("II", "mV", FS, 5.0),
        _channel("V1", "mV", FS, 5.0),
        _channel("V2", "mV", FS / 2, 5.0),
    ]
    writer = pyedflib.EdfWriter(str(path), 3, file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders(headers)
    mv = _source()
    writer.writeSamples([mv[0], mv[1], np.ascontiguousarray(mv[1, ::2])])
    writer.close()
    record = read_record(path)
    assert record.leads == ("II", "V1") and record.fs == FS
    assert record.metadata["skipped_channels"] == ["V2 (125 Hz, not the ECG channels' 250 Hz)"]


def test_chunks_window_and_overview_equal_one_pass(tmp_path):
    mv = _source(SECONDS)
    path = write_edf(tmp_path / "long.edf", mv)
    whole = np.concatenate([c.signal for c in iter_chunks(path, SECONDS, channels="any")], axis=1)
    assert whole.shape == mv.shape and np.abs(whole - mv).max() <= STEP_MV
    chunks = list(iter_chunks(path, 7.0, 2.0, channels="any"))
    assert [c.start for c in chunks] == list(range(0, SECONDS * FS - 2 * FS, 5 * FS))[: len(chunks)]
    assert chunks[-1].start + chunks[-1].signal.shape[1] == SECONDS * FS
    for c in chunks:
        assert c.total == SECONDS * FS
        np.testing.assert_array_equal(c.signal, whole[:, c.start : c.start + c.signal.shape[1]])
    late = next(iter_chunks(path, 3.0, channels="any", start_s=12.0))
    np.testing.assert_array_equal(late.signal, whole[:, 12 * FS : 15 * FS])
    std = write_edf(tmp_path / "std.edf", mv, labels=("I", "II"), extra=False)
    window = read_window(std, 20.0, 4.0)
    np.testing.assert_array_equal(window.signal, read_record(std).signal[:, 20 * FS : 24 * FS])
    env = record_envelope(std, n_bins=10)
    one = read_record(std).signal
    np.testing.assert_array_equal(env.high[:, 0], one[:, : SECONDS * FS // 10].max(axis=1))


def test_bad_files_are_named(tmp_path):
    garbage = tmp_path / "garbage.edf"
    garbage.write_bytes(b"not an edf file" * 40)
    with pytest.raises(ECGFormatError, match=r"garbage\.edf: not a readable EDF file"):
        read_record(garbage)
    good = write_edf(tmp_path / "good.edf", _source())
    data = good.read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(data[:-1000])
    with pytest.raises(ECGFormatError, match=r"cut\.edf: not a readable EDF file"):
        record_info(cut, channels="any")
    discontinuous = tmp_path / "gaps.edf"
    discontinuous.write_bytes(data[:192] + b"EDF+D".ljust(44) + data[236:])
    with pytest.raises(ECGFormatError, match=r"gaps\.edf: an EDF\+D file \(discontinuous"):
        list(iter_chunks(discontinuous, 10, channels="any"))
    accel = tmp_path / "accel.edf"
    writer = pyedflib.EdfWriter(str(accel), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders([_channel("Accel", "g", 25, 2.0)])
    writer.writeSamples([np.zeros(250)])
    writer.close()
    with pytest.raises(ECGFormatError, match=r"accel\.edf: no ECG channel to read: Accel \(unit 'g'"):
        record_info(accel, channels="any")


def test_on_a_tie_of_rates_the_higher_rate_is_kept(tmp_path):
    path = tmp_path / "tie.edf"
    headers = [_channel("II", "mV", FS, 5.0), _channel("V1", "mV", FS / 2, 5.0)]
    writer = pyedflib.EdfWriter(str(path), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders(headers)
    mv = _source()
    writer.writeSamples([mv[0], np.ascontiguousarray(mv[1, ::2])])
    writer.close()
    record = read_record(path)
    assert record.leads == ("II",) and record.fs == FS
    assert record.metadata["skipped_channels"] == ["V1 (125 Hz, not the ECG channels' 250 Hz)"]


def test_a_windowed_read_opens_the_file_once_and_closes_it_after_and_on_error(tmp_path, monkeypatch):
    from ecgcore import io

    path = write_edf(tmp_path / "long.edf", _source(SECONDS))
    opened = []

    class Counted(pyedflib.EdfReader):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pyedflib, "EdfReader", Counted)
    assert len(list(iter_chunks(path, 1.0, channels="any"))) == SECONDS
    assert len(opened) == 2  # the header, then one reader for the 30 windows
    assert not io._EDF_OPEN  # closed after the read

    chunks = iter_chunks(path, 1.0, channels="any")
    next(chunks)
    chunks.close()  # a read left half way (a page that moved on)
    assert not io._EDF_OPEN

    real = Counted.readSignal
    calls = []

    def failing(self, channel, start, n, *args, **kwargs):
        calls.append(start)
        return real(self, channel, start, n if len(calls) < 5 else n - 1, *args, **kwargs)

    monkeypatch.setattr(Counted, "readSignal", failing)
    with pytest.raises(ECGFormatError, match="fewer samples than its header says"):
        list(iter_chunks(path, 1.0, channels="any"))
    assert not io._EDF_OPEN
    pyedflib.EdfReader(str(path)).close()  # edflib holds it no more ("file has already been opened")


def test_threads_reading_one_edf_at_once_each_get_its_samples(tmp_path):
    import threading

    mv = _source(SECONDS)
    path = write_edf(tmp_path / "shared.edf", mv)
    got, errors = {}, []

    def read(i: int) -> None:
        try:
            got[i] = np.concatenate(
                [c.signal for c in iter_chunks(path, 0.5 + i / 4, channels="any")], axis=1
            )
        except Exception as exc:  # collected, and shown by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.abs(got[i] - mv).max() <= STEP_MV for i in range(4))


def test_a_file_replaced_while_a_reader_of_it_is_open_is_refused_not_read_stale(tmp_path):
    from ecgcore import io

    path = write_edf(tmp_path / "tape.edf", _source(SECONDS))
    chunks = iter_chunks(path, 1.0, channels="any")
    first = next(chunks)  # a read under way holds the file's reader
    newer = write_edf(tmp_path / "newer.edf", 2 * _source(SECONDS // 2))
    newer.replace(path)  # the file replaced on disk (another length, other samples)
    with pytest.raises(ECGFormatError, match="tape.edf: the file changed on disk while a read of it is open"):
        next(iter_chunks(path, 1.0, channels="any"))
    assert np.array_equal(next(chunks).signal.shape, first.signal.shape)  # the read under way goes on
    chunks.close()
    assert not io._EDF_OPEN
    assert len(list(iter_chunks(path, 1.0, channels="any"))) == SECONDS // 2  # the new file, after
