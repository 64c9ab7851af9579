"""The Holter page in Streamlit's AppTest: a folder record analysed, overview, clusters, strip, ectopic list."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ecgcore.beats import classify
from ecgcore.data.synthetic import synthetic_ecg
from ecgcore.models import create_model
from ecgcore.train.checkpoint import save_checkpoint
from tests.beats.conftest import write_record
from tests.pages.test_pages import APP, TIMEOUT


@pytest.fixture
def tiny_classifier(tmp_path, monkeypatch):
    """An untrained small beat classifier in place of the shipped one (the page's wiring is under test)."""
    model = create_model(
        "cnn_bilstm_attention_beat", 4, 5, channels=8, lstm_hidden=8, attention_hidden=8, head_hidden=8
    )
    path = save_checkpoint(tmp_path / "beats-default", model, {"beats": classify.describe()})
    monkeypatch.setattr(classify, "DEFAULT_MODEL", path)
    return path


def _holter(folder: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("dashboard/holter.py")
    at.run()
    at.radio[0].set_value("a folder").run()
    at.text_input[0].set_value(folder).run()
    return at


def test_holter_page_analyses_a_folder_record(tmp_path, tiny_classifier):
    ecg = synthetic_ecg(
        hr=75, fs=250, duration=150, leads=("II", "V1"), rr_jitter=0.05, noise_mv=0.02, seed=4
    )
    write_record(tmp_path, "holter1", ecg.signal, ecg.fs)
    at = _holter(str(tmp_path))
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox[0].value.name == "holter1"
    next(b for b in at.button if b.label == "Analyse").click().run()
    assert not at.exception, [e.message for e in at.exception]
    beats = next(m for m in at.metric if m.label == "beats")
    assert int(beats.value.replace(",", "")) == len(ecg.fiducials["r_peak"])
    assert [t.label for t in at.tabs] == [
        "Summary",
        "Events",
        "Overview",
        "Intervals",
        "Clusters",
        "Strip",
        "Ectopic beats",
    ]
    assert at.number_input[0].label == "Start (s)"
    # per-beat intervals: the medians of the N beats (the tiny untrained model may call none N) and the
    # strip's table of the beats in view with their PR, QRS and QT
    assert [m.label for m in at.metric if m.label.startswith("median")] == [
        "median PR of N beats",
        "median QRS of N beats",
        "median QT of N beats",
    ]
    table = [d.value for d in at.dataframe if "QT (ms)" in d.value.columns][-1]  # the Strip tab's (last)
    assert list(table.columns) == ["time (s)", "class", "cluster", "PR (ms)", "QRS (ms)", "QT (ms)"]
    assert len(table) == np.sum(ecg.fiducials["r_peak"] < 10 * ecg.fs)  # the first 10 s strip
    assert table["QT (ms)"].median() == pytest.approx(400, abs=24)  # synthetic_ecg's QT


def test_holter_page_opens_the_example_record(tiny_classifier):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("dashboard/holter.py")
    at.run()
    next(b for b in at.button if b.label == "Open the example record").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.radio[0].value == "the example record"
    assert any("**sel853**: 0.25 h, 250 Hz, leads ECG1, ECG2" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Analyse").click().run()
    assert not at.exception, [e.message for e in at.exception]
    beats = int(next(m for m in at.metric if m.label == "beats").value.replace(",", ""))
    assert abs(beats - 1118) <= 25  # the record's .atr labels 1,113 beats and 5 artefacts


def test_holter_page_lists_edf_files_of_a_folder(tmp_path, tiny_classifier):
    from tests.test_io_edf import write_edf

    ecg = synthetic_ecg(hr=70, fs=250, duration=70, leads=("II", "V1"), seed=2)
    write_edf(tmp_path / "tape.edf", ecg.signal.astype(np.float64), labels=("ECG1", "ECG2"))
    at = _holter(str(tmp_path))
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox[0].value.name == "tape.edf"
    assert any("**tape**: 0.02 h, 250 Hz, leads ECG1, ECG2" in m.value for m in at.markdown)


def test_holter_page_names_a_missing_folder(tmp_path, tiny_classifier):
    at = _holter(str(tmp_path / "nowhere"))
    assert not at.exception
    assert any("no such folder" in e.value for e in at.error)


def test_holter_page_relabels_a_cluster(tmp_path, tiny_classifier):
    ecg = synthetic_ecg(hr=75, fs=250, duration=90, leads=("II", "V1"), rr_jitter=0.05, noise_mv=0.02, seed=6)
    write_record(tmp_path, "holter2", ecg.signal, ecg.fs)
    at = _holter(str(tmp_path))
    next(b for b in at.button if b.label == "Analyse").click().run()
    first = next(s for s in at.selectbox if s.key == "label0")
    target = "V" if first.value != "V" else "S"
    first.set_value(target).run()
    next(b for b in at.button if b.key == "relabel0").click().run()
    assert not at.exception, [e.message for e in at.exception]
    result = at.session_state[f"holter:{tmp_path / 'holter2'}"]
    assert result.clusters[0].label == target
    assert np.all(result.classes[result.cluster == 0] == ["N", "S", "V", "F", "Q"].index(target))


def test_holter_page_marks_rejected_detections_on_the_strip(tmp_path, tiny_classifier):
    ecg = synthetic_ecg(hr=70, fs=250, duration=70, leads=("II", "V1"), seed=7)
    write_record(tmp_path, "holter3", ecg.signal, ecg.fs)
    at = _holter(str(tmp_path))
    next(b for b in at.button if b.label == "Analyse").click().run()
    assert next(m for m in at.metric if m.label == "rejected").value == "0"
    # what the artefact filter leaves in BeatAnalysis.rejected (helper "artefact"): two in the first strip
    result = at.session_state[f"holter:{tmp_path / 'holter3'}"]
    result.rejected = np.array([300, 1900, 9000])
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert next(m for m in at.metric if m.label == "rejected").value == "3"
    labels = [
        [a.get("text") for a in json.loads(c.proto.spec)["layout"].get("annotations", [])]
        for c in at.get("plotly_chart")
    ]
    strip = labels[-1]  # the Strip tab's chart (the Events tab may draw an event's strip before it)
    assert strip.count("<b>~</b>") == 2


def test_holter_summary_tab_gives_the_example_records_counts():
    """The shipped classifier on the bundled example (sel853): the Summary tab's counts are those the
    reference labels (.atr) give, within a few beats, and follow a relabelled cluster."""
    from ecgcore.beats.evaluate import read_reference
    from ecgcore.beats.events import holter_events
    from ecgcore.beats.holter_report import summary_sections
    from ecgcore.beats.longrecord import EXAMPLE_RECORD

    ref = read_reference(EXAMPLE_RECORD, "atr")
    expected = holter_events(ref.samples, ref.classes, ref.fs, 225_000).summary  # 15 min at 250 Hz
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("dashboard/holter.py")
    at.run()
    next(b for b in at.button if b.label == "Open the example record").click().run()
    next(b for b in at.button if b.label == "Analyse").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.label for t in at.tabs][:2] == ["Summary", "Events"]
    tables = {t.value.index.name: t.value.iloc[:, 0].to_dict() for t in at.table}
    result = at.session_state[f"holter:{EXAMPLE_RECORD}"]
    assert tables == {h: dict(rows) for h, rows in summary_sections(result.events.summary)}
    v = tables["Ventricular ectopy (V)"]
    assert v["Couplets"] == str(expected["ventricular"]["couplets"]) == "1"
    assert abs(int(v["Isolated"]) - expected["ventricular"]["isolated"]) <= 3
    assert tables["Pauses"]["Pauses (RR > 2 s)"] == "0" and expected["pauses"]["count"] == 0
    hr = next(m for m in at.metric if m.label == "HR mean").value
    assert abs(int(hr.split()[0]) - expected["heart_rate"]["mean_bpm"]) <= 1
    assert [b.proto.label for b in at.get("download_button")] == ["Download the report (HTML, printable)"]
    # the events tab: the couplet's strip on ECG paper, with its two V labels
    assert next(s for s in at.selectbox if s.key == "holter_event").options[0].endswith("V couplet · 2 beats")
    strips = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    event_strip = next(f for f in strips if "V couplet at 0:06:54" in f["layout"]["title"]["text"])
    assert event_strip["layout"]["title"]["text"].endswith("from 409.6 s")
    assert [a["text"] for a in event_strip["layout"]["annotations"]].count("<b>V</b>") >= 2
    # a relabelled cluster changes the summary at once
    v_cluster = next(c for c in result.clusters if c.label == "V")
    next(s for s in at.selectbox if s.key == f"label{v_cluster.id}").set_value("N").run()
    next(b for b in at.button if b.key == f"relabel{v_cluster.id}").click().run()
    after = next(t.value for t in at.table if t.value.index.name == "Ventricular ectopy (V)").iloc[:, 0]
    assert int(after["V beats"].split()[0]) == result.counts()["V"] < 26
