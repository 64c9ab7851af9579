"""reproduce vision / representations / representations-deepfake: definitions, data checks, tables."""

from __future__ import annotations

import math

import pytest

from ecgcore.experiments import DataRequired, DataSources, build_table, check_data, get_experiment, get_preset
from ecgcore.experiments.vision import VISION_TEST
from tests.images.test_chapman import make_chapman


def test_vision_refuses_without_chapman_and_names_where_to_get_it(tmp_path):
    with pytest.raises(DataRequired, match=r"figshare.*--data chapman:DIR"):
        check_data("vision", DataSources())
    with pytest.raises(DataRequired, match="Diagnostics"):
        check_data("vision", DataSources(chapman=tmp_path))


def test_vision_plan_and_table_carry_the_published_test_numbers(tmp_path):
    root = tmp_path / "chapman"
    root.mkdir()
    make_chapman(root)
    sources = DataSources(chapman=root)
    check_data("vision", sources)
    specs = get_experiment("vision").build(get_preset("quick"), sources)
    assert [s.row["representation"] for s in specs].count("chart2") == 1 and len(specs) == 9
    assert {s.config.task for s in specs} == {"classification"} and {len(s.config.leads) for s in specs} == {
        12
    }
    paper = get_experiment("vision").build(get_preset("paper"), sources)
    assert all(s.config.model_kwargs.get("pretrained") == "imagenet" for s in paper)
    table = build_table("vision", "quick", sources, runs_dir=tmp_path / "runs")
    row = table[(table["model"] == "resnet18") & (table["metric"] == "auc")].iloc[0]
    assert row["published_test"] == VISION_TEST["resnet18"]["auc"] and math.isnan(row["ours_test"])
    chart2 = table[(table["representation"] == "chart2")]
    assert chart2["published_test"].isna().all()


def test_representation_experiments_cover_every_representation(tmp_path):
    specs = get_experiment("representations-deepfake").build(get_preset("tiny"), DataSources())
    reps = [s.config.representation for s in specs]
    assert reps == ["signal", "signal", "chart", "gaf", "mtf", "rp", "gaf+mtf"]
    fusion = specs[-1].config.model_kwargs
    assert [b["channels"] for b in fusion["branches"]] == [3, 3]
    with pytest.raises(DataRequired):
        check_data("representations", DataSources())


@pytest.mark.slow
def test_representations_deepfake_tiny_runs_end_to_end(tmp_path):
    from ecgcore.experiments import reproduce

    result = reproduce(
        "representations-deepfake", "tiny", DataSources(), runs_dir=tmp_path / "runs", out_dir=tmp_path
    )
    assert not result.failed and len(result.trained) == 7
    assert result.table["ours_val"].notna().all()
