"""Paths shown in the browser are relative to the data directory or the project, never absolute."""

from ecgcore.paths import BUNDLED_PTBXL, data_home, display_path, display_text


def test_paths_under_the_data_directory_or_the_project_are_shown_relative(tmp_path):
    store = data_home() / "runs" / "runs.sqlite"
    assert display_path(store) == "runs/runs.sqlite"
    assert display_path(BUNDLED_PTBXL / "ptbxl_database.csv") == "assets/ptbxl-sample/ptbxl_database.csv"
    assert display_path(tmp_path / "elsewhere" / "x.hea") == "x.hea"
    message = display_text(f"ptbxl {BUNDLED_PTBXL}: 1 of 11 records missing; see {store}")
    assert message == "ptbxl assets/ptbxl-sample: 1 of 11 records missing; see runs/runs.sqlite"
