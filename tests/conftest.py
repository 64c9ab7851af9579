"""Fixtures shared by the whole suite: every test gets its own empty data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgcore.config import BUNDLED_PTBXL

#: Where tests write artefacts worth looking at (screenshots, reports); ignored by git.
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


@pytest.fixture(autouse=True)
def ecglab_home(tmp_path_factory, monkeypatch) -> Path:
    """A fresh, empty ``$ECGLAB_HOME`` for each test, so no test sees another's files."""
    home = tmp_path_factory.mktemp("ecglab_home")
    monkeypatch.setenv("ECGLAB_HOME", str(home))
    for env in ("ECGLAB_PTBXL", "ECGLAB_PTBXL_PLUS", "ECGLAB_DEEPFAKE"):
        monkeypatch.delenv(env, raising=False)
    return home


@pytest.fixture(scope="session")
def ptbxl_sample() -> Path:
    """The bundled real PTB-XL sample (11 records)."""
    assert (BUNDLED_PTBXL / "ptbxl_database.csv").exists(), "assets/ptbxl-sample is missing"
    return BUNDLED_PTBXL


@pytest.fixture(scope="session")
def test_output() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT
