"""The imbalanced binary tasks (sizes, positive rates, stratified splits, standardization, the seed's draw),
the metrics at a threshold against hand counts, and the tuned threshold."""

import numpy as np
import pytest
import torch

from regkit.workbook.testbeds import imbalanced_binary as testbed

SIZES = {
    "digits9": (1005, 252, 540, 0.100),
    "synthetic": (2240, 560, 1200, 0.0555),
    "breast_cancer": (221, 56, 120, 0.1008),
}


@pytest.mark.parametrize("name", testbed.DATASETS)
def test_splits_are_stratified_standardized_and_drawn_by_the_seed(name):
    data = testbed.load(name, seed=3)
    n_train, n_val, n_test, rate = SIZES[name]
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (n_train, n_val, n_test)
    assert data.positive_rate == pytest.approx(rate, abs=5e-4)
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)):
        assert x.dtype == torch.float32 and x.shape == (len(y), data.num_features)
        assert y.dtype == torch.int64 and set(y.tolist()) == {0, 1}
        assert float(y.float().mean()) == pytest.approx(rate, abs=0.01)  # stratified
    varying = data.x_train.std(0) > 0
    torch.testing.assert_close(data.x_train.mean(0), torch.zeros(data.num_features), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.x_train[:, varying].std(0, unbiased=False), torch.ones(int(varying.sum())))
    again, other = testbed.load(name, seed=3), testbed.load(name, seed=4)
    assert torch.equal(data.x_test, again.x_test) and torch.equal(data.y_train, again.y_train)
    assert not torch.equal(data.x_test, other.x_test)
    moved = data.to("cpu")
    assert moved.positive_rate == data.positive_rate and torch.equal(moved.x_val, data.x_val)


def test_breast_cancer_keeps_every_benign_tumour_and_a_seeded_tenth_of_malignant_ones():
    from sklearn.datasets import load_breast_cancer

    x, target = load_breast_cancer(return_X_y=True)
    counts = []
    for seed in (0, 1):
        xs, ys = testbed._task("breast_cancer", seed)
        counts.append((int((ys == 0).sum()), int(ys.sum())))
        malignant = {tuple(row) for row in xs[ys == 1]}
        assert malignant <= {tuple(row) for row in x[target == 0]}
    assert counts == [(357, 40), (357, 40)]
    assert not np.array_equal(testbed._task("breast_cancer", 0)[0], testbed._task("breast_cancer", 1)[0])
    _, digits = testbed._task("digits9", 0)
    assert int(digits.sum()) == 180 and len(digits) == 1797


def test_binary_metrics_count_predictions_at_the_threshold():
    probs = torch.tensor([0.9, 0.6, 0.5, 0.4, 0.2, 0.1, 0.7, 0.05])
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0])
    # at 0.5 (>=): predicted 1 for 0.9, 0.6, 0.5, 0.7: TP 3, FP 1, FN 0, TN 4
    metrics = testbed.binary_metrics(probs, labels)
    assert metrics["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1))
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 3 + 4 / 5) / 2)
    # at 0.65: predicted 1 for 0.9, 0.7: TP 1, FP 1, FN 2, TN 4
    metrics = testbed.binary_metrics(probs.numpy(), labels.numpy(), 0.65)
    assert metrics["f1"] == pytest.approx(2 / (2 + 1 + 2))
    assert metrics["balanced_accuracy"] == pytest.approx((1 / 3 + 4 / 5) / 2)
    assert testbed.binary_metrics(probs, labels, 1.0)["f1"] == 0.0  # no positive predicted: zero_division=0


def test_tune_threshold_lies_midway_in_the_best_interval():
    probs = np.array([0.9, 0.8, 0.35, 0.3, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    # F1 = 1 exactly for thresholds in (0.30, 0.35]: the midpoint 0.325
    assert testbed.tune_threshold(probs, labels) == pytest.approx(0.325)
    assert testbed.binary_metrics(probs, labels, testbed.tune_threshold(probs, labels))["f1"] == 1.0
    logits = np.log(probs / (1 - probs))  # the same ranking in other units: the same predictions
    assert testbed.tune_threshold(logits, labels) == pytest.approx((logits[2] + logits[3]) / 2)


def test_tune_threshold_maximizes_sklearns_f1_over_every_threshold():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    labels = (rng.random(80) < 0.15).astype(np.int64)
    scores = 0.3 * labels + rng.random(80) * 0.7
    saturated = 1 - 1e-3 * rng.random(80) * (1 - 0.5 * labels)  # every score above 0.99
    for s in (scores, saturated):
        brute = max(f1_score(labels, s >= t, zero_division=0) for t in np.unique(s))
        assert f1_score(labels, s >= testbed.tune_threshold(s, labels)) == pytest.approx(brute, abs=1e-12)
    assert testbed.tune_threshold(np.full(4, 0.2), np.zeros(4, dtype=np.int64)) == pytest.approx(1.2)  # none positive
    assert testbed.tune_threshold(np.array([0.4, 0.6]), np.array([1, 1])) == 0.4  # everything positive: the lowest


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: testbed.load("mnist"), "name"),
        (lambda: testbed.load("digits9", test_size=1.0), "test_size"),
        (lambda: testbed.load("digits9", val_size=0.0), "val_size"),
        (lambda: testbed.load("digits9", seed=-1), "seed"),
        (lambda: testbed.load("digits9", dtype=torch.int64), "dtype"),
        (lambda: testbed.binary_metrics([0.2, 0.8], [0, 1], threshold=1.5), "threshold"),
        (lambda: testbed.binary_metrics([0.2, 0.8], [0, 1, 1]), "same shape"),
        (lambda: testbed.binary_metrics(np.zeros((2, 2)), [0, 1]), "probs"),
        (lambda: testbed.tune_threshold([0.2, 0.8], [0, 1, 1]), "same shape"),
        (lambda: testbed.tune_threshold([0.2, float("nan")], [0, 1]), "NaN"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()
