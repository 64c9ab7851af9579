import numpy as np
import pytest
from sklearn.metrics import f1_score

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
    assert qt["unit"] == "ms"
    # errors in different units are never averaged into one "MAE"
    assert "mae" not in m and "rmse" not in m


def test_the_run_level_error_is_unitless_mae_over_the_training_sd():
    y_train = np.array([[60.0, 400.0], [70.0, 420.0], [80.0, 440.0]])  # SDs 10 bpm and 20 ms
    truth = np.array([[65.0, 410.0], [75.0, 430.0]])
    pred = truth + np.array([[2.0, -8.0], [-4.0, 4.0]])  # MAE 3 bpm and 6 ms
    model = evaluate("regression", truth, pred, y_train, names=["hr", "qt"])["model"]
    assert model["per_target"]["hr"]["mae"] == pytest.approx(3.0)
    assert model["per_target"]["hr"]["mae_over_sd"] == pytest.approx(0.3)
    assert model["per_target"]["qt"]["mae_over_sd"] == pytest.approx(0.3)
    assert model["mae_over_sd"] == pytest.approx(0.3)  # not (3 + 6) / 2 = 4.5 "bpm-or-ms"


def test_baseline_is_the_training_median_for_mae_the_mean_for_rmse_and_the_class_prior():
    y_train = np.array([[10.0], [20.0], [90.0]])  # median 20, mean 40
    truth = np.array([[20.0], [30.0]])
    result = evaluate("regression", truth, truth, y_train, names=["hr"])
    assert result["model"]["per_target"]["hr"]["mae"] == 0
    base = result["baseline"]
    assert base["per_target"]["hr"]["mae"] == pytest.approx(5.0)  # |20-20|, |30-20|
    assert base["per_target"]["hr"]["rmse"] == pytest.approx(np.sqrt((20**2 + 10**2) / 2))  # from 40
    assert base["predictor"] == {"mae": "training median", "rmse": "training mean"}
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


def test_macro_auc_is_withheld_when_a_class_has_no_positives():
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.2, 0.1], [0.2, 0.8, 0.3], [0.7, 0.6, 0.2], [0.1, 0.3, 0.4]])
    m = classification_metrics(truth, probs, ["x", "y", "z"], multi_label=True)
    assert m["auc_per_class"]["x"] == 1.0 and m["auc_per_class"]["z"] is None
    assert m["auc"] is None  # not the mean over the 2 classes that happen to have positives
    assert (m["auc_classes"], m["n_classes"]) == (2, 3)
    assert "z" in m["auc_note"] and "no positives" in m["auc_note"]
    complete = classification_metrics(truth[:, :2], probs[:, :2], ["x", "y"], multi_label=True)
    assert complete["auc"] == pytest.approx(1.0) and complete["auc_note"] is None


def test_bootstrap_interval_matches_the_standard_error_of_a_mean_error():
    from ecgcore.train.metrics import bootstrap_interval, mae_of

    rng = np.random.default_rng(1)
    truth = np.zeros((400, 1))
    pred = rng.normal(0.0, 1.0, (400, 1))
    ci = bootstrap_interval(mae_of(0), truth, [pred], n_resamples=1000, seed=0)
    assert ci["point"] == pytest.approx(np.abs(pred).mean())
    se = np.abs(pred).std(ddof=1) / np.sqrt(400)  # ~0.030
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert ci["low"] < ci["point"] < ci["high"] and (ci["n_records"], ci["n_seeds"]) == (400, 1)


def test_bootstrap_over_seeds_widens_the_interval_by_the_seeds_spread():
    from ecgcore.train.metrics import bootstrap_interval, mae_of

    rng = np.random.default_rng(2)
    truth = np.zeros((200, 1))
    noise = rng.normal(0.0, 0.5, (200, 1))
    seeds = [noise + 1.0, noise + 2.0]  # two training seeds, MAE ~1 and ~2
    one = bootstrap_interval(mae_of(0), truth, seeds[:1])
    both = bootstrap_interval(mae_of(0), truth, seeds)
    assert both["point"] == pytest.approx(np.mean([np.abs(s).mean() for s in seeds]))
    assert both["high"] - both["low"] > 5 * (one["high"] - one["low"])
    assert both["n_seeds"] == 2


def test_an_interval_clears_the_baseline_only_without_overlap():
    from ecgcore.train.metrics import clears

    assert clears({"low": 1.0, "high": 2.0}, {"low": 3.0, "high": 4.0}, higher_is_better=False) is True
    assert clears({"low": 1.0, "high": 3.5}, {"low": 3.0, "high": 4.0}, higher_is_better=False) is False
    assert clears({"low": 0.8, "high": 0.9}, {"low": 0.5, "high": 0.5}, higher_is_better=True) is True
    assert clears({"low": None, "high": 0.9}, {"low": 0.5, "high": 0.5}, higher_is_better=True) is None


def test_class_aucs_equal_sklearn_with_ties_and_say_none_without_positives():
    """The rank-sum AUC used on every bootstrap resample must be sklearn's AUC, ties included."""
    from sklearn.metrics import roc_auc_score

    from ecgcore.train.metrics import class_aucs

    rng = np.random.default_rng(3)
    onehot = (rng.random((200, 3)) < 0.3).astype(np.int64)
    onehot[:, 2] = 0  # no positives: no AUC
    probs = np.round(rng.random((200, 3)), 1)  # coarse scores: many ties
    aucs = class_aucs(onehot, probs)
    for j in range(2):
        assert aucs[j] == pytest.approx(roc_auc_score(onehot[:, j], probs[:, j]), abs=1e-12)
    assert aucs[2] is None


@pytest.mark.parametrize("multi_label", [False, True])
def test_macro_and_per_class_rates_agree_with_sklearn_and_the_confusion_matrix(multi_label):
    from sklearn.metrics import precision_score, recall_score

    from ecgcore.train.metrics import class_counts, predicted, rate_of, rate_value

    rng = np.random.default_rng(3)
    classes = ["A", "B", "C", "D"]
    probs = rng.dirichlet(np.ones(4), 300)
    if multi_label:
        truth = (rng.random((300, 4)) < 0.4).astype(np.int64)
        probs = np.clip(truth * 0.35 + rng.random((300, 4)) * 0.6, 0, 1)
        onehot, pred = truth, (probs >= 0.5).astype(np.int64)
        y = truth
    else:
        y = rng.integers(0, 4, 300)
        probs[np.arange(300), y] += rng.random(300)  # mostly right, not always
        onehot, pred = np.eye(4, dtype=np.int64)[y], np.eye(4, dtype=np.int64)[probs.argmax(1)]
    assert np.array_equal(predicted(probs, multi_label), pred)
    counts = class_counts(classes, onehot, pred)
    assert rate_value(counts, "sensitivity") == pytest.approx(recall_score(onehot, pred, average="macro"))
    assert rate_value(counts, "precision") == pytest.approx(
        precision_score(onehot, pred, average="macro", zero_division=0)
    )
    assert rate_value(counts, "f1") == pytest.approx(f1_score(onehot, pred, average="macro", zero_division=0))
    per_class_f1 = f1_score(onehot, pred, average=None, zero_division=0)
    assert [rate_value(counts, f"f1:{c}") for c in classes] == pytest.approx(list(per_class_f1))
    negatives = onehot == 0
    specificity = [((pred[:, j] == 0) & negatives[:, j]).sum() / negatives[:, j].sum() for j in range(4)]
    assert rate_value(counts, "specificity") == pytest.approx(np.mean(specificity))
    summary = classification_metrics(y, probs, classes, multi_label)
    assert summary["per_class"] == counts  # the summary keeps the same counts (old runs' tables read them)
    assert rate_of(classes, multi_label, "f1")(y, probs) == pytest.approx(summary["f1_macro"])


def test_a_rate_is_withheld_when_a_class_has_no_positives_and_precision_is_zero_when_never_predicted():
    from ecgcore.train.metrics import class_counts, rate_value

    onehot = np.array([[1, 0], [1, 0], [1, 0]])
    counts = class_counts(["A", "B"], onehot, np.array([[1, 0], [1, 0], [1, 0]]))
    assert (
        rate_value(counts, "sensitivity") is None and rate_value(counts, "f1") is None
    )  # B has no positives
    assert rate_value(counts, "sensitivity:A") == 1.0 and rate_value(counts, "precision:B") == 0.0
    assert rate_value(counts, "specificity:A") is None  # A has no negatives
    with pytest.raises(ValueError, match="unknown rate 'recall'"):
        rate_value(counts, "recall")
