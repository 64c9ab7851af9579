import numpy as np
import pytest

from ecgcore.train.metrics import classification_metrics, evaluate, regression_metrics


def test_regression_metrics_match_their_definitions():
    rng = np.random.default_rng(0)
    truth = rng.normal(100, 20, size=(50, 2))
    pred = truth + rng.normal(3, 5, size=(50, 2))
    m = regression_metrics(truth, pred, ["pr", "qt"])
    diff = pred[:, 1] - truth[:, 1]
    qt = m["per_target"]["qt"]
    assert qt["mae"] == pytest.approx(np.abs(diff).mean())
    assert qt["rmse"] == pytest.approx(np.sqrt((diff**2).mean()))
    assert qt["bias"] == pytest.approx(diff.mean())
    assert qt["loa_high"] - qt["loa_low"] == pytest.approx(2 * 1.96 * diff.std(ddof=1))
    assert qt["r"] == pytest.approx(np.corrcoef(truth[:, 1], pred[:, 1])[0, 1])
    assert m["mae"] == pytest.approx((m["per_target"]["pr"]["mae"] + qt["mae"]) / 2)


def test_baseline_is_the_training_mean_and_the_class_prior():
    y_train = np.array([[10.0], [20.0], [30.0]])
    result = evaluate(
        "regression", np.array([[20.0], [40.0]]), np.array([[20.0], [40.0]]), y_train, names=["hr"]
    )
    assert result["model"]["mae"] == 0
    assert result["baseline"]["mae"] == pytest.approx(10.0)  # predicts 20 for both
    labels = np.array([0, 1, 1, 2])
    probs = np.eye(3)[labels] * 0.9 + 0.05
    result = evaluate("classification", labels, probs, np.array([0, 1, 1, 1]), names=["a", "b", "c"])
    assert result["model"]["auc"] == 1.0 and result["model"]["accuracy"] == 1.0
    assert result["baseline"]["auc"] == 0.5
    assert result["baseline"]["accuracy"] == 0.5  # always predicts the majority class "b"


def test_single_label_counts_agree_with_the_confusion_matrix():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0, 2])
    m = classification_metrics(labels, np.eye(3)[pred], ["a", "b", "c"], multi_label=False)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert m["per_class"]["a"] == {"tp": 1, "fn": 1, "fp": 1, "tn": 4}
    assert m["accuracy"] == pytest.approx(5 / 7)


def test_multi_label_per_class_counts_and_undefined_auc():
    truth = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    probs = np.array([[0.9, 0.2], [0.8, 0.7], [0.6, 0.1], [0.3, 0.4]])
    m = classification_metrics(truth, probs, ["x", "y"], multi_label=True)
    assert m["per_class"]["x"] == {"tp": 2, "fn": 1, "fp": 1, "tn": 0}
    assert m["per_class"]["y"] == {"tp": 1, "fn": 0, "fp": 0, "tn": 3}
    only_ones = classification_metrics(np.ones((3, 1)), np.full((3, 1), 0.7), ["z"], multi_label=True)
    assert only_ones["auc_per_class"]["z"] is None and only_ones["auc"] is None
