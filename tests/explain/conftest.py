"""Fixtures of the explanation tests: small models trained once per session by the real trainer."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory) -> dict:
    """A tiny CNN trained by the real trainer to regress intervals on 60 synthetic DeepFake-layout records.

    Returns ``{"runs_dir", "run_id", "data"}``. Built once, in its own data home.
    """
    from ecgcore.runs import run_training
    from tests.factories import make_deepfake_dir
    from tests.train.helpers import tiny_config

    home = tmp_path_factory.mktemp("explain_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECGLAB_HOME", str(home))
        data = make_deepfake_dir(home / "deepfake", 60, seed=4)
        summary = run_training(tiny_config(f"deepfake:{data}", epochs=8), runs_dir=home / "runs")
    return {"runs_dir": home / "runs", "run_id": summary["id"], "data": data, "summary": summary}


@pytest.fixture(scope="session")
def classification_run(tmp_path_factory) -> dict:
    """A tiny CNN trained by the real trainer on 80 synthetic PTB-XL-layout records (single-label superclasses)."""
    from ecgcore.runs import run_training
    from tests.factories import make_ptbxl_dir
    from tests.train.helpers import tiny_config

    home = tmp_path_factory.mktemp("explain_cls_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECGLAB_HOME", str(home))
        data = make_ptbxl_dir(home / "ptbxl", 80, seed=2)
        summary = run_training(
            tiny_config(f"ptbxl:{data}", task="classification", epochs=4), runs_dir=home / "runs"
        )
    return {
        "runs_dir": home / "runs",
        "run_id": summary["id"],
        "data": data,
        "home": home,
        "summary": summary,
    }
