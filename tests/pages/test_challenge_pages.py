"""The Explorer on a Challenge folder (decoded SNOMED labels) and the dataset comparison page."""

from __future__ import annotations

import json

from tests.challenge_samples import shared_dir
from tests.pages.test_pages import app


def _with_challenge(monkeypatch):
    cinc = shared_dir("cinc-sample")
    monkeypatch.setenv("ECGLAB_CHALLENGE", str(cinc))
    return cinc


def test_explorer_browses_challenge_records_with_decoded_labels(monkeypatch):
    cinc = _with_challenge(monkeypatch)
    at = app("explorer")
    at.selectbox(key="explorer_source").select(f"Challenge ({cinc})").run()
    assert not at.exception and not at.error
    table = at.dataframe(key="explorer_table").value
    first = table.set_index("record_id").loc["E07500"]
    assert first["database"] == "Georgia" and first["diagnoses"] == "LAE, SB"  # 67741000119109, 426177001
    dx = next(d.value for d in at.dataframe if "abbreviation" in d.value.columns)
    assert set(dx["abbreviation"]) == {"LAE", "SB"} and "left atrial enlargement" in dx["name"].tolist()
    at.multiselect(key="f_superclass").set_value(["IRBBB"]).run()
    assert not at.exception
    assert at.dataframe(key="explorer_table").value["record_id"].tolist() == ["HR06002"]


def test_compare_page_shows_two_sources_over_the_study_labels(monkeypatch):
    cinc = _with_challenge(monkeypatch)
    at = app("compare")
    assert not at.exception and not at.error
    assert at.multiselect(key="compare_sources").value == [
        "PTB-XL sample (bundled, real records)",
        f"Challenge ({cinc})",
    ]
    figures = at.get("plotly_chart")
    assert len(figures) == 2
    heatmap = json.loads(figures[0].proto.spec)["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["y"][0] == "1AVB" and len(heatmap["y"]) == 18
    column = heatmap["x"].index(f"Challenge ({cinc}) (n=30)")
    assert heatmap["text"][heatmap["y"].index("IRBBB")][column] == "1 (3.3%)"
    at.selectbox(key="compare_labels").select("custom").run()
    at.text_input(key="compare_custom").input("AF,NSR").run()
    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert heatmap["y"] == ["AF", "NSR"] and heatmap["text"][0][0] == "n/a"  # PTB-XL cannot say AF


def test_results_page_offers_the_study_and_says_which_folders_it_needs(monkeypatch):
    _with_challenge(monkeypatch)  # the 10 Georgia records of the sample: too few, and no PTB-XL given
    at = app("results")
    at.selectbox(key="r_exp").select("g12ec-transfer").run()
    assert not at.exception and not at.error
    shown = " ".join(i.value for i in at.info)
    assert "needs the user's PTB-XL and G12EC" in shown and "--data challenge:DIR" in shown


def test_settings_validates_a_challenge_folder(tmp_path):
    from ecgcore.paths import load_settings

    at = app("settings")
    at.text_input(key="setting_challenge_dir").input(str(tmp_path))  # a folder without Challenge records
    at.button[0].click().run()
    assert "holds no Challenge records" in " ".join(e.value for e in at.error) and load_settings() == {}
    cinc = shared_dir("cinc-sample")
    at.text_input(key="setting_challenge_dir").input(str(cinc))
    at.button[0].click().run()
    assert not at.error and load_settings() == {"challenge_dir": str(cinc)}
