"""Every dashboard page in Streamlit's AppTest: loads on a fresh data directory, main widgets there, bad input
shown as an error, a started run lands in the run store."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.common import upload_to_record, uploads_to_records
from ecgcore.io import ECGFormatError
from ecgcore.paths import load_settings
from ecgcore.runs import worker
from ecgcore.runs.store import RunStore
from ecgcore.train.config import TrainConfig
from tests.factories import make_deepfake_dir

TIMEOUT = 90
APP = Path(__file__).resolve().parents[2] / "app.py"


def app(page: str | None = None) -> AppTest:
    """The app, switched to ``dashboard/<page>.py`` if given, after one run."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(f"dashboard/{page}.py")
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def labels(elements) -> list[str]:
    return [e.label for e in elements]


def test_home_describes_data_and_offers_the_demo_build():
    at = app()
    assert at.title[0].value == "ECG Lab"
    assert "Build the demo set" in labels(at.button)
    table = at.dataframe[0].value
    assert table["spec"].tolist() == ["ptbxl:bundled"] and table["records"].tolist() == [10]
    assert any("10 records at 500 Hz" in c.value and "ecg_id 1" in c.value for c in at.caption)


def test_settings_rejects_a_bad_folder_and_saves_a_good_one(tmp_path, ptbxl_sample):
    at = app("settings")
    at.text_input(key="setting_ptbxl_dir").input(str(tmp_path / "nowhere"))
    at.text_input(key="setting_deepfake_dir").input(str(tmp_path))  # exists, but no ground-truth CSV
    at.button[0].click().run()
    errors = " ".join(e.value for e in at.error)
    assert "nowhere" in errors and "is not a directory" in errors
    assert "no ground-truth CSV" in errors
    assert load_settings() == {}
    at.text_input(key="setting_ptbxl_dir").input(str(ptbxl_sample))
    at.text_input(key="setting_deepfake_dir").input("")
    at.button[0].click().run()
    assert not at.error and not at.exception
    assert load_settings() == {"ptbxl_dir": str(ptbxl_sample)}


def test_explorer_draws_a_ptbxl_record_with_its_intervals():
    at = app("explorer")
    assert at.selectbox(key="explorer_source").value.startswith("PTB-XL sample")
    assert "Record 6000" in [h.value for h in at.subheader]
    assert not any("skipped" in c.value for c in at.caption)  # the missing 500 Hz file is said once, on Home
    figures = at.get("plotly_chart")
    assert len(figures) >= 1
    spec = figures[0].proto.spec
    assert '"scaleratio":0.4' in spec.replace(" ", "")  # 10 mm/mV against 25 mm/s
    assert {"Heart rate", "PR interval", "QRS duration", "QT interval"} <= set(labels(at.metric))
    hr = next(m for m in at.metric if m.label == "Heart rate").value
    assert hr.endswith("bpm") and 30 < float(hr.split()[0]) < 200
    assert any("Measured from the ECG" in c.value for c in at.caption)  # which numbers are which
    table = at.dataframe[0].value
    assert set(table["HR label (bpm)"]) == {"—"}  # the sample has no PTB-XL+ labels: a dash, never None
    beats = next(e for e in at.expander if e.label.startswith("Representative beats"))
    assert len(beats.get("plotly_chart")) == 1
    at.radio(key="layout").set_value("one lead per row").run()
    assert not at.exception


def test_explorer_filters_to_nothing_without_error():
    at = app("explorer")
    at.multiselect(key="f_superclass").set_value(["HYP"]).run()
    assert not at.exception
    assert any("No record matches" in i.value for i in at.info)


class Upload:
    """What st.file_uploader returns, as far as the pages use it."""

    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_upload_of_a_bad_file_is_a_format_error_and_a_good_csv_reads():
    with pytest.raises(ECGFormatError, match="^broken.hea: "):  # the file as the user named it
        upload_to_record([Upload("broken.hea", b"this is not a header\n")], None)
    with pytest.raises(ECGFormatError, match="no record among the uploaded files"):
        upload_to_record([Upload("a.dat", b"\x00" * 64)], None)
    signal = np.sin(np.linspace(0, 20, 1000))[:, None] * [1.0, 0.5]
    buffer = io.StringIO()
    pd.DataFrame(signal, columns=["I", "II"]).to_csv(buffer, index=False)
    rec = upload_to_record([Upload("ecg.csv", buffer.getvalue().encode())], fs=100.0)
    assert rec.leads == ("I", "II") and rec.signal.shape == (2, 1000) and rec.fs == 100.0


def test_several_uploads_are_each_a_record_and_a_stray_file_is_named():
    def csv(scale: float) -> bytes:
        buffer = io.StringIO()
        pd.DataFrame(
            scale * np.sin(np.linspace(0, 20, 1000))[:, None] * [1.0, 0.5], columns=["I", "II"]
        ).to_csv(buffer, index=False)
        return buffer.getvalue().encode()

    found = uploads_to_records(
        [Upload("a.csv", csv(1.0)), Upload("b.csv", csv(2.0)), Upload("c.dat", b"x")], 100.0
    )
    names = [name for name, _ in found]
    assert names == ["a.csv", "b.csv", "c.dat"]
    a, b, stray = (rec for _, rec in found)
    assert np.allclose(b.signal, 2 * a.signal)  # two records, each its own file
    assert isinstance(stray, ECGFormatError) and str(stray).startswith("c.dat: no record")


def test_metrics_are_named_with_their_units():
    from dashboard.common import metric_label, metric_text

    assert metric_label("test_mae_pr") == ("test MAE PR interval (ms)", "ms")
    assert metric_label("baseline_test_mae_hr") == ("baseline test MAE Heart rate (bpm)", "bpm")
    assert (
        metric_label("val_mae_over_sd")[0] == "val MAE / SD"
        and "unitless" in metric_label("val_mae_over_sd")[1]
    )
    assert (
        metric_label("val_mae")[1] == "averaged over targets of different units"
    )  # an old run's mixed MAE, said so
    assert metric_label("epoch") == ("epoch", "")
    assert metric_text("test_mae_qrs", 9.534) == "test MAE QRS duration 9.5 ms"
    assert metric_text("val_auc", 0.87123) == "val macro AUC 0.871"


def test_train_form_starts_a_run_in_the_store(tmp_path, monkeypatch):
    folder = make_deepfake_dir(tmp_path / "deepfake", 24, seed=3)
    monkeypatch.setenv("ECGLAB_DEEPFAKE", str(folder))
    at = app("train")
    assert any("No runs yet" in i.value for i in at.info)
    at.selectbox(key="t_data").select(f"DeepFake ({folder})")
    at.selectbox(key="t_model").select("cnn")
    at.selectbox(key="t_fs").select(100.0)
    at.number_input(key="t_epochs").set_value(1)
    at.number_input(key="t_batch").set_value(8)
    at.number_input(key="t_max_records").set_value(20).run()  # a value entered (Enter): no run starts
    assert not len(RunStore().list_runs())
    at.button(key="t_start").click().run()
    assert not at.exception and not at.error
    runs = RunStore().list_runs()
    try:
        assert len(runs) == 1
        at.button(key="t_start").click().run()  # the same settings again: a warning, not a second run
        assert len(RunStore().list_runs()) == 1
        assert any(runs["id"][0] in w.value and "exactly these settings" in w.value for w in at.warning)
        at.button(key="t_open_same").click().run()
        assert at.selectbox(key="t_live_run").value == runs["id"][0] and not at.warning
        config = RunStore().get_run(runs["id"][0])["config"]
        assert (config["data"], config["model"], config["fs"], config["epochs"], config["max_records"]) == (
            f"deepfake:{folder}",
            "cnn",
            100.0,
            1,
            20,
        )
        assert at.selectbox(key="t_live_run").value == runs["id"][0]
    finally:
        worker.cancel(runs["id"][0])  # the test checks the launch, not the training: free the CPU


def test_train_defaults_to_data_that_can_train_the_task_and_says_when_there_is_none(tmp_path, monkeypatch):
    at = app("train")  # only the bundled PTB-XL sample: no interval labels
    assert at.button(key="t_start").disabled
    assert any("Home" in w.value and "interval labels" in w.value for w in at.warning)
    folder = make_deepfake_dir(tmp_path / "deepfake", 12, seed=4)
    monkeypatch.setenv("ECGLAB_DEEPFAKE", str(folder))
    at = app("train")
    assert (
        at.selectbox(key="t_data").value == f"DeepFake ({folder})" and not at.button(key="t_start").disabled
    )


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_train_page_checks_settings_as_the_command_line_does(tmp_path, monkeypatch):
    folder = make_deepfake_dir(tmp_path / "deepfake", 6, seed=3)
    monkeypatch.setenv("ECGLAB_DEEPFAKE", str(folder))
    at = app("train")
    at.selectbox(key="t_data").select(f"DeepFake ({folder})")
    at.selectbox(key="t_device").select("cuda")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("--device cuda: no CUDA device: use --device cpu or auto" in e.value for e in at.error)
    assert len(RunStore().list_runs()) == 0  # nothing was launched


def test_results_and_record_pages_without_runs():
    at = app("results")
    assert any("No runs yet" in i.value for i in at.info)
    at.selectbox(key="r_exp").select("table2").run()
    assert any("needs the full PTB-XL" in i.value for i in at.info)  # says what it needs, runs nothing
    at = app("record")
    assert any("No finished run yet" in i.value for i in at.info)


def test_results_and_record_pages_show_a_finished_run(tmp_path):
    import torch

    from ecgcore.runs import run_training
    from ecgcore.train.config import TrainConfig

    folder = make_deepfake_dir(tmp_path / "deepfake", 30, seed=4)
    torch.set_num_threads(1)
    summary = run_training(
        TrainConfig(
            data=f"deepfake:{folder}",
            model="cnn",
            fs=100.0,
            epochs=2,
            batch_size=8,
            model_kwargs={"widths": [8, 8, 16], "head_hidden": 16},
        )
    )
    at = app("results")
    table = at.dataframe[0].value
    assert table["id"].tolist() == [summary["id"]] and table["status"].tolist() == ["done"]
    assert table["epoch"].tolist() == ["2/2"]  # as the Train page counts: epochs trained / planned
    columns = json.loads(at.dataframe[0].proto.columns)
    metrics = {k: v["label"] for k, v in columns.items() if k.startswith(("val_", "test_", "baseline_"))}
    assert metrics and all(label != key and " " in label for key, label in metrics.items())  # friendly names
    at.text_input(key=f"r_name_{summary['id']}").input("tiny cnn")
    at.multiselect(key=f"r_tags_{summary['id']}").select("smoke")
    next(b for b in at.button if b.label == "Save").click().run()
    assert at.dataframe[0].value[["name", "tags"]].values.tolist() == [["tiny cnn", "smoke"]]
    at.text_input(key="r_search").input("no such run").run()
    assert len(at.dataframe[0].value) == 0
    at.text_input(key="r_search").input("TINY").run()  # the name, any case
    assert len(at.dataframe[0].value) == 1
    at.toggle(key="r_predict").set_value(True).run()
    assert not at.exception and not at.error
    titles = " ".join(f.proto.spec for f in at.get("plotly_chart"))
    assert "Bland-Altman" in titles and "predicted vs reference" in titles
    at = app("record")
    assert at.selectbox(key="s_run").value == summary["id"]
    picker = at.selectbox(key="s_run")
    assert re.fullmatch(
        r"tiny cnn · regression · DeepFake \(deepfake\) · val MAE( / SD)? \d+\.\d+",
        picker.format_func(picker.value),
    )
    assert not at.error
    spec = " ".join(f.proto.spec for f in at.get("plotly_chart"))
    assert '"type":"heatmap"' in spec.replace(" ", "")
    assert "Importance per lead" in spec
    assert "|attr|" not in spec and "attribution (share of the largest" in spec  # the colour map's key
    words = " ".join(m.value for m in at.markdown)
    assert re.search(r"\*\*Heart rate\*\* \d+ bpm \(model\) · \d+ bpm \(measured from the ECG\)", words)
    assert "ecgcore.measure" not in words and "dataset label: None" not in words
    assert any(e.label == "Technical detail (for researchers)" for e in at.expander)
    assert at.selectbox(key="s_output").format_func(at.selectbox(key="s_output").value) == "Heart rate"
    assert {"Report (PDF)", "Report (PNG)"} <= {b.label for b in at.get("download_button")}
    at.toggle(key="s_faithful").set_value(True).run()
    assert not at.exception and not at.error
    deletion = {m.label: m.value for m in at.metric}
    assert np.isfinite(float(deletion["Deletion area (attribution order)"]))  # a number, not "—"
    assert "Rank correlation with a randomised model" in deletion


def test_reproduce_button_prepares_the_data_and_starts_the_missing_runs():
    at = app("results")
    at.selectbox(key="r_exp").select("table1")
    at.selectbox(key="r_preset").select("tiny").run()
    assert at.markdown and "HR (bpm) published" in " ".join(m.value for m in at.markdown)  # beside ours
    next(b for b in at.button if b.label.startswith("Reproduce")).click().run()
    assert not at.exception and not at.error
    runs = RunStore().list_runs()
    try:
        assert len(runs) == 1  # one run at once, as asked; the others start as it finishes
        assert runs["status"].iloc[0] in ("queued", "running", "done")
        assert runs["data"].iloc[0].startswith("deepfake:")
    finally:
        for run_id in runs["id"]:
            worker.cancel(run_id)


def test_explorer_shows_an_8_lead_deepfake_record_with_derived_limb_leads(tmp_path, monkeypatch):
    folder = make_deepfake_dir(tmp_path / "deepfake", 3, seed=5)
    monkeypatch.setenv("ECGLAB_DEEPFAKE", str(folder))
    at = app("explorer")
    at.selectbox(key="explorer_source").select(f"DeepFake ({folder})").run()
    assert not at.exception and not at.error
    assert any("III, aVF, aVL, aVR derived from I and II" in c.value for c in at.caption)
    assert {"Heart rate", "QRS duration"} <= set(labels(at.metric))


def test_a_classification_run_gets_confusion_roc_calibration_and_probabilities(tmp_path):
    import torch

    from ecgcore.runs import run_training
    from ecgcore.train.config import TrainConfig
    from tests.factories import make_ptbxl_dir

    folder = make_ptbxl_dir(tmp_path / "ptbxl", 60, seed=6)
    torch.set_num_threads(1)
    summary = run_training(
        TrainConfig(
            task="classification",
            data=f"ptbxl:{folder}",
            model="cnn",
            fs=100.0,
            epochs=2,
            batch_size=16,
            model_kwargs={"widths": [8, 8, 16], "head_hidden": 16},
        )
    )
    at = app("results")
    assert at.selectbox(key="r_plot_run").value == summary["id"]
    next(b for b in at.button if b.label == "Calibrate this run").click().run()
    assert not at.exception and not at.error
    assert any("before" in c.value and "after" in c.value for c in at.caption)
    at.toggle(key="r_predict").set_value(True).run()
    assert not at.exception and not at.error
    spec = " ".join(f.proto.spec for f in at.get("plotly_chart"))
    assert "Confusion matrix" in spec and "ROC per class" in spec and "reliability" in spec
    at = app("record")
    spec = " ".join(f.proto.spec for f in at.get("plotly_chart"))
    assert "Class probabilities" in spec and "Calibrated (temperature)" in spec
    assert any(m.value.startswith("**Predicted:**") for m in at.markdown)


def test_a_damaged_run_store_is_rebuilt_and_the_app_says_so_once(ecglab_home):
    store = RunStore()
    store.create_run(TrainConfig(data="deepfake:/x"), run_id="kept")
    store.update("kept", status="done", summary={"status": "done", "headline": {"val_mae": 3.5}})
    (ecglab_home / "runs" / "runs.sqlite").write_bytes(b"garbage" * 100)
    at = app()
    warnings = " ".join(w.value for w in at.warning)
    assert "Run store repaired" in warnings and "1 run(s) recovered" in warnings
    assert str(ecglab_home) not in warnings, "no absolute server path in the browser"
    assert RunStore().get_run("kept")["summary"]["headline"]["val_mae"] == 3.5
    assert "Run store repaired" not in " ".join(w.value for w in app().warning), "a new session: said once"
