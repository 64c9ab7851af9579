"""Fixtures shared by the whole suite: every test gets its own empty data directory, torch runs on one
thread, and the synthetic data folders are built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgcore.paths import BUNDLED_PTBXL

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


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Run torch on one thread: on a 2-core machine two OpenMP threads spin-waiting for a busy core made
    tiny models several times slower, and one thread keeps runs reproducible."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def deepfake_spec(tmp_path_factory) -> str:
    """60 synthetic DeepFake-layout records with true intervals."""
    from tests.factories import make_deepfake_dir

    return f"deepfake:{make_deepfake_dir(tmp_path_factory.mktemp('deepfake'), 60, seed=1)}"


@pytest.fixture(scope="session")
def ptbxl_spec(tmp_path_factory) -> str:
    """80 synthetic PTB-XL-layout records whose superclasses shape the waveforms."""
    from tests.factories import make_ptbxl_dir

    return f"ptbxl:{make_ptbxl_dir(tmp_path_factory.mktemp('ptbxl'), 80, seed=2)}"
