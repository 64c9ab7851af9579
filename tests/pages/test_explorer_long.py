"""The Explorer on a long upload: an overview of the whole record and a window on ECG paper, moved by the user."""

from __future__ import annotations

import base64
import json

import numpy as np

from tests.factories import make_long_wfdb
from tests.pages.test_pages import app


def _figures(at) -> list[dict]:
    return [json.loads(f.proto.spec) for f in at.get("plotly_chart")]


def _values(array) -> np.ndarray:
    """A figure array from its JSON: a list, or plotly's typed array (``{"dtype", "bdata"}``)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array, dtype=float)


def test_a_two_hour_upload_shows_an_overview_and_a_window_that_moves(tmp_path):
    header = make_long_wfdb(tmp_path, hours=2.0)
    at = app("explorer")
    at.selectbox(key="explorer_source").set_value("Upload a record").run()
    at.file_uploader(key="explorer_files").set_value(
        [(p.name, p.read_bytes(), "application/octet-stream") for p in (header, header.with_suffix(".dat"))]
    ).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    overview, paper, *_ = _figures(at)
    assert overview["layout"]["xaxis"]["range"] == [0.0, 7200.0]  # the whole record
    bins = [t for t in overview["data"] if t["mode"] == "markers"]
    assert [len(_values(t["x"])) for t in bins] == [2000, 2000]  # a fixed number of points, not 1.8 million
    assert paper["layout"]["yaxis"]["scaleratio"] == 0.4  # the window is on ECG paper
    assert paper["layout"]["xaxis"]["range"][1] == 10.0  # the first 10 s
    assert any("2:00:00 (7,200 s) at 250 Hz" in c.value for c in at.caption)

    start = next(n for n in at.number_input if n.label == "Start at (s)")
    start.set_value(3600).run()  # into the second hour, where lead II's R waves are 2 mV
    assert not at.exception
    overview, paper, *_ = _figures(at)
    x0, x1 = paper["layout"]["xaxis"]["range"]
    assert 3599.6 < x0 < 3600 and x1 == 3610.0
    assert next(t for t in paper["layout"]["xaxis"]["ticktext"] if t) == "1:00:00"
    assert "1:00:00–1:00:10 of 2:00:00" in paper["layout"]["title"]["text"]
    assert all(s["x0"] == 3600 for s in overview["layout"]["shapes"] if s["type"] == "rect")
    lead_ii = next(t for t in paper["data"] if t.get("name") == "II" and t["mode"] == "lines")
    assert np.ptp(_values(lead_ii["y"])) > 1.9  # 2 mV spikes: the second hour was read
    assert next(s for s in at.slider if s.label.startswith("Window start")).value == 3600

    at.button(key="long_next").click().run()
    paper = _figures(at)[1]
    assert paper["layout"]["xaxis"]["range"][1] == 3620.0


def test_a_long_csv_upload_is_drawn_as_an_overview_and_a_window_without_reading_it_whole(monkeypatch):
    from ecgcore import io

    def whole(path, fs):
        raise AssertionError(f"{path} read whole")

    monkeypatch.setitem(io._READERS, "csv", whole)  # only the chunked reader may touch a long CSV
    counted = []
    count = io._CsvRows.count
    monkeypatch.setattr(io._CsvRows, "count", lambda self: counted.append(1) or count(self))
    t = np.arange(0, 90, 1 / 250)
    spike = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.012**2))
    text = "I,II\n" + "\n".join(f"{0.5 * v:.3f},{v:.3f}" for v in spike)
    at = app("explorer")
    at.selectbox(key="explorer_source").set_value("Upload a record").run()
    at.file_uploader(key="explorer_files").set_value(("long.csv", text.encode(), "text/csv")).run()
    at.number_input(key="explorer_fs").set_value(250.0).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _figures(at)[0]["layout"]["xaxis"]["range"] == [0.0, 90.0]
    counted.clear()
    next(n for n in at.number_input if n.label == "Start at (s)").set_value(60).run()
    x0, x1 = _figures(at)[1]["layout"]["xaxis"]["range"]
    assert 59.6 < x0 < 60 and x1 == 70.0
    assert "1:00–1:10 of 1:30" in _figures(at)[1]["layout"]["title"]["text"]
    assert not counted  # moving the window counts its rows no more (a window is read in one pass)


def test_a_long_edf_upload_is_kept_on_disk_and_read_window_by_window(tmp_path):
    from dashboard import common
    from ecgcore.io import RecordInfo
    from tests.test_io_edf import write_edf

    t = np.arange(0, 600, 1 / 250)
    lead_ii = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.012**2)) * np.where(t >= 300, 2.0, 1.0)
    edf = write_edf(tmp_path / "tape.edf", np.stack([0.5 * lead_ii, lead_ii]), labels=("I", "II"))
    at = app("explorer")
    at.selectbox(key="explorer_source").set_value("Upload a record").run()
    at.file_uploader(key="explorer_files").set_value(
        ("tape.edf", edf.read_bytes(), "application/octet-stream")
    ).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    overview, paper, *_ = _figures(at)
    assert overview["layout"]["xaxis"]["range"] == [0.0, 600.0]
    assert paper["layout"]["xaxis"]["range"][1] == 10.0
    next(n for n in at.number_input if n.label == "Start at (s)").set_value(300).run()
    paper = _figures(at)[1]
    lead = next(t for t in paper["data"] if t.get("name") == "II" and t["mode"] == "lines")
    assert np.ptp(_values(lead["y"])) > 1.9  # the second half's 2 mV spikes: that window was read
    # the upload is kept on disk and described by its header (read window by window), as a long WFDB upload
    kept = common.staged_record([("tape.edf", edf.read_bytes())], None)
    assert isinstance(kept, RecordInfo) and kept.format == "edf+" and kept.path.is_file()
    assert kept.n_samples == t.size and kept.leads == ("I", "II")


def test_a_short_upload_is_written_once_and_read_from_where_it_is_kept(tmp_path, monkeypatch):
    from dashboard import common
    from ecgcore import io
    from ecgcore.io import Record

    header = make_long_wfdb(tmp_path, "short", hours=20 / 3600)  # 20 s: drawn whole
    written = []
    real = io.atomic_write_bytes
    monkeypatch.setattr(
        io, "atomic_write_bytes", lambda path, data: (written.append(path.name), real(path, data))
    )
    files = [(p.name, p.read_bytes()) for p in (header, header.with_suffix(".dat"))]

    class Upload:
        def __init__(self, name, data):
            self.name, self._data = name, data

        def getvalue(self) -> bytes:
            return self._data

    [(_, rec)] = common.uploads_to_records([Upload(*f) for f in files], None, long_ok=True)
    assert isinstance(rec, Record) and rec.duration == 20.0 and str(rec.path) == "short.hea"
    assert sorted(n for n in written if not n.startswith(".")) == ["short.dat", "short.hea"]  # once each


def test_a_long_csv_upload_with_a_blank_cell_is_named_in_an_error_not_a_traceback():
    """A blank cell passes the row count (it is no text) but not the overview: the page says which file."""
    t = np.arange(0, 90, 1 / 250)
    rows = [f"{0.5 * np.sin(v):.3f},{np.sin(v):.3f}" for v in t]
    rows[20_000] = "0.1,"  # 80 s in: lead II blank
    at = app("explorer")
    at.selectbox(key="explorer_source").set_value("Upload a record").run()
    at.file_uploader(key="explorer_files").set_value(
        ("gap.csv", ("I,II\n" + "\n".join(rows)).encode(), "text/csv")
    )
    at.run()
    at.number_input(key="explorer_fs").set_value(250.0).run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error]
    assert "gap.csv" in error and "non-finite" in error and "II" in error, error
    assert "uploads" not in error  # the folder it was kept in is not named
