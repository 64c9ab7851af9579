"""The Images & studies page: a record drawn as images, a study's Optuna figures, no errors on a fresh home."""

from __future__ import annotations

from pathlib import Path

import optuna
from streamlit.testing.v1 import AppTest

from ecgcore.tune.study import default_storage

APP = Path(__file__).resolve().parents[2] / "app.py"


def test_images_page_draws_the_record_and_shows_a_study():
    storage = default_storage()
    for stage in ("head", "full"):
        study = optuna.create_study(study_name=f"demo.{stage}", storage=storage)
        for x in (0.1, 0.2, 0.3):
            study.add_trial(
                optuna.trial.create_trial(
                    params={"lr": x},
                    distributions={"lr": optuna.distributions.FloatDistribution(0, 1)},
                    value=x,
                )
            )
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("dashboard/images.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="img_study").value == "demo"
    assert sorted(s.value for s in at.subheader) == ["demo.full", "demo.head"]
    # the record's representation figure, and two Optuna figures (history, parallel) per stage
    assert len(at.get("plotly_chart")) >= 5
