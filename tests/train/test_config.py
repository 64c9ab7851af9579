import json

import pytest

from ecgcore.train.config import TrainConfig


def test_round_trip_through_json_and_stable_key():
    config = TrainConfig(
        task="classification", data="ptbxl:bundled", targets="qt,hr", leads="12", model_kwargs={"depth": 3}
    )
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.targets == ("hr", "qt")  # canonical order
    assert again.key() == config.key()


def test_key_tracks_what_is_learned_not_where():
    base = TrainConfig(data="deepfake:x")
    assert TrainConfig(data="deepfake:x", device="cpu", compile=True).key() == base.key()
    assert TrainConfig(data="deepfake:x", seed=1).key() != base.key()
    assert TrainConfig(data="deepfake:x", lr=2e-3).key() != base.key()


@pytest.mark.parametrize(
    "field, value",
    [
        ("task", "segmentation"),
        ("schedule", "cosine"),
        ("optimizer", "lbfgs"),
        ("train_fraction", 0.0),
        ("epochs", 0),
        ("subset", "C"),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_unknown_field_is_an_error():
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"epochz": 3})
