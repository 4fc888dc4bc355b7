"""AnyLoss against scikit-learn at hard 0/1 predictions, the paper's formulas at soft ones, its
gradients and its rejected inputs."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, fbeta_score, recall_score

from regkit.losses import ANYLOSS_METRICS, anyloss, anyloss_approximation, soft_confusion_matrix

METRICS = ["f1", "fbeta", "balanced_accuracy", "gmean", "accuracy"]


def sklearn_binary(metric, y, yhat, beta=1.0):
    """The metric of hard binary predictions by scikit-learn (zero_division=0)."""
    if metric == "f1":
        return f1_score(y, yhat, zero_division=0)
    if metric == "fbeta":
        return fbeta_score(y, yhat, beta=beta, zero_division=0)
    if metric == "balanced_accuracy":
        return balanced_accuracy_score(y, yhat)
    if metric == "gmean":
        return math.sqrt(recall_score(y, yhat, zero_division=0) * recall_score(y, yhat, pos_label=0, zero_division=0))
    return accuracy_score(y, yhat)


def hard_binary(seed, n=40, positives=0.2):
    """Labels with both classes present and hard predictions that are right about 70 % of the time."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(np.int64)
    y[:2] = [0, 1]
    yhat = np.where(rng.random(n) < 0.7, y, 1 - y)
    return y, yhat


def hard_multiclass(seed, n=60, k=4):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, n, p=[0.55, 0.25, 0.15, 0.05][:k] / np.sum([0.55, 0.25, 0.15, 0.05][:k]))
    y[:k] = np.arange(k)
    yhat = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    yhat[-k:] = np.arange(k)  # every class predicted at least once
    return y, yhat


# --- the approximation function and the soft confusion matrix -------------------------------------------------


def test_approximation_is_the_papers_sharpened_sigmoid():
    p = torch.tensor([0.0, 0.1, 0.4, 0.5, 0.6, 0.9, 1.0], dtype=torch.float64)
    for amplifier in (2.0, 10.0, 73.0):
        expected = 1 / (1 + np.exp(-amplifier * (p.numpy() - 0.5)))
        np.testing.assert_allclose(anyloss_approximation(p, amplifier).numpy(), expected, rtol=1e-14)
    a = anyloss_approximation(p)  # default L = 73, the authors' value
    assert a[3] == 0.5 and 1 - a[-1] < 1e-15 and a[0] < 1e-15
    assert (a.diff() > 0).all()


def test_soft_confusion_matrix_is_the_papers_sums():
    g = torch.Generator().manual_seed(1)
    p, y = torch.rand(30, generator=g, dtype=torch.float64), torch.randint(0, 2, (30,), generator=g)
    a = 1 / (1 + np.exp(-7.0 * (p.numpy() - 0.5)))
    yn = y.numpy()
    cm = soft_confusion_matrix(p, y, amplifier=7.0)
    np.testing.assert_allclose(cm.tp.numpy(), [np.sum(yn * a)])
    np.testing.assert_allclose(cm.fn.numpy(), [np.sum(yn * (1 - a))])
    np.testing.assert_allclose(cm.fp.numpy(), [np.sum((1 - yn) * a)])
    np.testing.assert_allclose(cm.tn.numpy(), [np.sum((1 - yn) * (1 - a))])
    # multi-class: one-vs-rest per class
    probs = torch.rand(30, 3, generator=g, dtype=torch.float64).softmax(1)
    labels = torch.randint(0, 3, (30,), generator=g)
    cm = soft_confusion_matrix(probs, labels, amplifier=7.0)
    for c in range(3):
        one = soft_confusion_matrix(probs[:, c], (labels == c).long(), amplifier=7.0)
        for field in ("tn", "fp", "fn", "tp"):
            torch.testing.assert_close(getattr(cm, field)[c : c + 1], getattr(one, field))
    torch.testing.assert_close(cm.tp + cm.fn, torch.bincount(labels, minlength=3).double())
    torch.testing.assert_close(cm.tn + cm.fp + cm.fn + cm.tp, torch.full((3,), 30.0, dtype=torch.float64))


# --- hard predictions: the loss is 1 - the metric, as scikit-learn computes it ----------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", range(4))
def test_binary_hard_predictions_equal_sklearn(metric, seed):
    y, yhat = hard_binary(seed)
    beta = 2.0 if metric == "fbeta" else 1.0
    expected = sklearn_binary(metric, y, yhat, beta)
    for dtype in (torch.float64, torch.float32):
        value = anyloss(torch.tensor(yhat, dtype=dtype), torch.tensor(y), metric=metric, beta=beta)
        assert value.dtype == dtype
        assert 1 - float(value) == pytest.approx(expected, abs=1e-12 if dtype == torch.float64 else 1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_binary_soft_inputs_with_a_large_amplifier_equal_sklearn_at_threshold_half(metric):
    rng = np.random.default_rng(3)
    y, yhat = hard_binary(3, n=50)
    p = np.where(yhat == 1, rng.uniform(0.6, 1.0, 50), rng.uniform(0.0, 0.4, 50))  # away from 0.5
    value = anyloss(torch.tensor(p), torch.tensor(y), metric=metric, amplifier=1e4)
    assert 1 - float(value) == pytest.approx(sklearn_binary(metric, y, yhat), abs=1e-12)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_fbeta_equals_sklearn_for_each_beta(beta):
    y, yhat = hard_binary(7)
    value = anyloss(torch.tensor(yhat, dtype=torch.float64), torch.tensor(y), metric="fbeta", beta=beta)
    assert 1 - float(value) == pytest.approx(fbeta_score(y, yhat, beta=beta), abs=1e-12)
    f1 = anyloss(torch.tensor(yhat, dtype=torch.float64), torch.tensor(y), metric="f1")
    assert 1 - float(f1) == pytest.approx(f1_score(y, yhat), abs=1e-12)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", range(3))
def test_multiclass_hard_predictions_equal_the_macro_average_of_one_vs_rest_sklearn(metric, seed):
    y, yhat = hard_multiclass(seed)
    k = 4
    beta = 0.5 if metric == "fbeta" else 1.0
    probs = torch.nn.functional.one_hot(torch.tensor(yhat), k).double()
    per_class = anyloss(probs, torch.tensor(y), metric=metric, beta=beta, reduction="none")
    expected = [sklearn_binary(metric, (y == c).astype(int), (yhat == c).astype(int), beta) for c in range(k)]
    np.testing.assert_allclose(1 - per_class.numpy(), expected, atol=1e-12)
    macro = anyloss(probs, torch.tensor(y), metric=metric, beta=beta)
    assert 1 - float(macro) == pytest.approx(np.mean(expected), abs=1e-12)
    if metric == "f1":
        assert 1 - float(macro) == pytest.approx(f1_score(y, yhat, average="macro"), abs=1e-12)
    if metric == "fbeta":
        assert 1 - float(macro) == pytest.approx(fbeta_score(y, yhat, beta=beta, average="macro"), abs=1e-12)


def test_multiclass_one_vs_rest_thresholds_each_column_at_half_not_the_argmax():
    rng = np.random.default_rng(0)
    probs = torch.tensor(rng.dirichlet(np.ones(3) * 0.7, size=80))
    labels = torch.tensor(rng.integers(0, 3, 80))
    onehot = np.eye(3, dtype=int)[labels.numpy()]
    decided = (probs.numpy() > 0.5).astype(int)  # a multi-label indicator: rows with no column above 1/2
    value = anyloss(probs, labels, metric="f1", amplifier=1e5)
    assert 1 - float(value) == pytest.approx(f1_score(onehot, decided, average="macro", zero_division=0), abs=1e-9)


def test_degenerate_batches_follow_sklearn():
    y = np.zeros(10, dtype=np.int64)  # no positives at all
    yhat = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    p, labels = torch.tensor(yhat, dtype=torch.float64), torch.tensor(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ba = balanced_accuracy_score(y, yhat)  # the recall of the absent class is left out: 0.8
    assert 1 - float(anyloss(p, labels, metric="balanced_accuracy")) == pytest.approx(ba, abs=1e-12)
    assert 1 - float(anyloss(p, labels, metric="gmean")) == pytest.approx(0.8, abs=1e-12)
    assert 1 - float(anyloss(p, labels, metric="f1")) == pytest.approx(f1_score(y, yhat, zero_division=0))
    assert float(anyloss(torch.zeros(10, dtype=torch.float64), labels, metric="f1")) == 1.0  # 0/0 -> F1 = 0
    # only positives: the balanced accuracy is the recall of the positives, 2/10
    assert 1 - float(anyloss(p, 1 - labels, metric="balanced_accuracy")) == pytest.approx(0.2, abs=1e-12)


# --- soft inputs: the paper's (and the authors' code's) formulas -----------------------------------------------


def test_soft_inputs_follow_the_papers_metric_formulas():
    g = torch.Generator().manual_seed(11)
    p, y = torch.rand(25, generator=g, dtype=torch.float64), torch.randint(0, 2, (25,), generator=g)
    L, yn = 11.0, y.numpy().astype(float)
    a = 1 / (1 + np.exp(-L * (p.numpy() - 0.5)))
    n, y1 = len(yn), yn.sum()
    y0 = n - y1
    tp = np.sum(yn * a)
    tn = n - y1 - a.sum() + tp  # the authors' code: N - Σy - ΣA + Σ yA
    beta = 2.0
    expected = {
        "accuracy": (tp + tn) / n,
        "fbeta": (1 + beta**2) * tp / (beta**2 * y1 + a.sum()),  # (1+β²)TP / (β² Σy + ΣA)
        "f1": 2 * tp / (y1 + a.sum()),
        "balanced_accuracy": (y0 * tp + y1 * tn) / (2 * y1 * y0),
        "gmean": math.sqrt(tp * tn / (y1 * y0)),
    }
    for metric, value in expected.items():
        loss = anyloss(p, y, metric=metric, beta=beta if metric == "fbeta" else 1.0, amplifier=L)
        assert float(loss) == pytest.approx(1 - value, rel=1e-12)


@pytest.mark.parametrize("metric", METRICS)
def test_without_the_approximation_the_counts_are_the_raw_probabilities(metric):
    """amplifier=None: the soft metrics of earlier work (soft-F1 = 2 Σ y p / (Σ y + Σ p)), the paper's baseline."""
    g = torch.Generator().manual_seed(12)
    p, y = torch.rand(25, generator=g, dtype=torch.float64), torch.randint(0, 2, (25,), generator=g)
    yn, pn = y.numpy().astype(float), p.numpy()
    cm = soft_confusion_matrix(p, y, amplifier=None)
    np.testing.assert_allclose([float(cm.tp), float(cm.fn)], [np.sum(yn * pn), np.sum(yn * (1 - pn))], rtol=1e-14)
    np.testing.assert_allclose([float(cm.fp), float(cm.tn)], [np.sum((1 - yn) * pn), np.sum((1 - yn) * (1 - pn))])
    y1, y0 = yn.sum(), len(yn) - yn.sum()
    tp, tn = np.sum(yn * pn), np.sum((1 - yn) * (1 - pn))
    expected = {
        "accuracy": (tp + tn) / len(yn),
        "fbeta": 5 * tp / (4 * y1 + pn.sum()),
        "f1": 2 * tp / (y1 + pn.sum()),
        "balanced_accuracy": (tp / y1 + tn / y0) / 2,
        "gmean": math.sqrt(tp / y1 * tn / y0),
    }[metric]
    loss = anyloss(p, y, metric=metric, beta=2.0 if metric == "fbeta" else 1.0, amplifier=None)
    assert float(loss) == pytest.approx(1 - expected, rel=1e-12)
    # hard 0/1 inputs: exactly 1 - scikit-learn's metric; logits go through the sigmoid first
    y_hard, yhat = hard_binary(5)
    hard = anyloss(torch.tensor(yhat, dtype=torch.float64), torch.tensor(y_hard), metric=metric, amplifier=None)
    assert 1 - float(hard) == pytest.approx(sklearn_binary(metric, y_hard, yhat), abs=1e-15)
    z = torch.logit(p)
    torch.testing.assert_close(
        anyloss(z, y, metric=metric, amplifier=None, from_logits=True), anyloss(p, y, metric=metric, amplifier=None)
    )
    probs = torch.rand(12, 3, generator=g, dtype=torch.float64).softmax(1).requires_grad_()
    labels = torch.arange(12) % 3
    assert torch.autograd.gradcheck(
        lambda q: anyloss(q, labels, metric=metric, amplifier=None, reduction="none"), (probs,)
    )


def test_from_logits_applies_sigmoid_or_softmax():
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(20, generator=g, dtype=torch.float64), torch.randint(0, 2, (20,), generator=g)
    zz, yy = torch.randn(20, 4, generator=g, dtype=torch.float64), torch.randint(0, 4, (20,), generator=g)
    for metric in METRICS:
        torch.testing.assert_close(
            anyloss(z, y, metric=metric, from_logits=True, amplifier=5.0),
            anyloss(torch.sigmoid(z), y, metric=metric, amplifier=5.0),
        )
        torch.testing.assert_close(
            anyloss(zz, yy, metric=metric, from_logits=True, amplifier=5.0),
            anyloss(zz.softmax(1), yy, metric=metric, amplifier=5.0),
        )


# --- gradients ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_gradients_match_finite_differences(metric):
    g = torch.Generator().manual_seed(4)
    p = (0.2 + 0.6 * torch.rand(12, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.tensor([0, 1] * 6)
    beta = 2.0 if metric == "fbeta" else 1.0
    assert torch.autograd.gradcheck(lambda q: anyloss(q, y, metric=metric, beta=beta, amplifier=4.0), (p,))
    probs = torch.rand(12, 3, generator=g, dtype=torch.float64).softmax(1).requires_grad_()
    labels = torch.arange(12) % 3
    assert torch.autograd.gradcheck(
        lambda q: anyloss(q, labels, metric=metric, beta=beta, amplifier=4.0, reduction="none"), (probs,)
    )


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_are_finite_at_hard_and_saturated_inputs(metric, dtype):
    y = torch.tensor([0, 1, 1, 0, 0, 0, 1, 0])
    for p in (
        torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0], dtype=dtype),  # hard, some wrong
        torch.zeros(8, dtype=dtype),  # TP = 0: the geometric mean's product is 0
        torch.full((8,), 0.5, dtype=dtype),
    ):
        p = p.clone().requires_grad_()
        anyloss(p, y, metric=metric).backward()
        assert torch.isfinite(p.grad).all()
    z = (torch.tensor([-1e4, 1e4, -30.0, 30.0, -1e4, 1e4, 1e4, -1e4], dtype=dtype)).requires_grad_()
    anyloss(z, y, metric=metric, from_logits=True).backward()
    assert torch.isfinite(z.grad).all()
    zz = (torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=dtype) * 1e4).requires_grad_()
    anyloss(zz, y, metric=metric, from_logits=True).backward()
    assert torch.isfinite(zz.grad).all()


def test_the_loss_decreases_along_its_gradient():
    g = torch.Generator().manual_seed(9)
    y = (torch.rand(64, generator=g) < 0.15).long()
    y[0] = 1
    z = torch.randn(64, generator=g, dtype=torch.float64, requires_grad=True)
    for metric in METRICS:
        loss = anyloss(z, y, metric=metric, from_logits=True, amplifier=10.0)
        (grad,) = torch.autograd.grad(loss, z)
        stepped = z.detach() - 0.05 * grad / grad.norm()
        assert float(anyloss(stepped, y, metric=metric, from_logits=True, amplifier=10.0)) < float(loss.detach())


# --- reduction, dtypes -------------------------------------------------------------------------------------------


def test_reduction_is_over_the_scored_classes():
    g = torch.Generator().manual_seed(5)
    p, y = torch.rand(10, generator=g), torch.randint(0, 2, (10,), generator=g)
    none = anyloss(p, y, reduction="none")
    assert none.shape == (1,)
    torch.testing.assert_close(anyloss(p, y), none[0])
    probs, labels = torch.rand(10, 3, generator=g).softmax(1), torch.randint(0, 3, (10,), generator=g)
    none = anyloss(probs, labels, metric="gmean", reduction="none")
    assert none.shape == (3,)
    torch.testing.assert_close(anyloss(probs, labels, metric="gmean"), none.mean())
    torch.testing.assert_close(anyloss(probs, labels, metric="gmean", reduction="sum"), none.sum())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    g = torch.Generator().manual_seed(6)
    p, y = torch.rand(30, generator=g), torch.randint(0, 2, (30,), generator=g)
    for metric in METRICS:
        value = anyloss(p.to(dtype), y, metric=metric, amplifier=5.0)
        assert value.dtype == dtype
        expected = anyloss(p.to(dtype).double(), y, metric=metric, amplifier=5.0)
        assert float(value) == pytest.approx(float(expected), abs=1e-2)


def test_integer_label_dtypes_are_class_ids():
    p, y = torch.tensor([0.9, 0.2, 0.7, 0.1]), torch.tensor([1, 0, 0, 1])
    expected = anyloss(p, y)
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32):
        torch.testing.assert_close(anyloss(p, y.to(dtype)), expected)


# --- rejected inputs ---------------------------------------------------------------------------------------------

P, Y = torch.tensor([0.9, 0.2, 0.7, 0.1]), torch.tensor([1, 0, 0, 1])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"metric": "mcc"}, "metric"),
        ({"metric": "F1"}, "metric"),
        ({"metric": "fbeta", "beta": 0.0}, "beta"),
        ({"metric": "fbeta", "beta": -1.0}, "beta"),
        ({"metric": "fbeta", "beta": math.nan}, "beta"),
        ({"metric": "fbeta", "beta": math.inf}, "beta"),
        ({"metric": "f1", "beta": 2.0}, "beta"),
        ({"amplifier": 0.0}, "amplifier"),
        ({"amplifier": -73.0}, "amplifier"),
        ({"amplifier": math.inf}, "amplifier"),
        ({"amplifier": math.nan}, "amplifier"),
        ({"reduction": "macro"}, "reduction"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        anyloss(P, Y, **kwargs)


@pytest.mark.parametrize(
    "probs, labels, name",
    [
        (P, torch.tensor([1, 0, 2, 1]), "labels"),  # binary labels must be 0/1
        (P, torch.tensor([1, 0, -1, 1]), "labels"),
        (P, torch.tensor([True, False, True, False]), "labels"),
        (P, Y.double(), "labels"),
        (P, Y[:3], "labels"),
        (torch.rand(4, 3), torch.tensor([0, 1, 3, 2]), "labels"),
        (torch.tensor([0.9, 1.2, 0.7, 0.1]), Y, "probs"),
        (torch.tensor([0.9, -0.1, 0.7, 0.1]), Y, "probs"),
        (torch.tensor([0.9, math.nan, 0.7, 0.1]), Y, "probs"),
        (torch.tensor([1, 0, 1, 0]), Y, "probs"),
        (torch.rand(4, 1), Y, "probs"),
        (torch.rand(4, 2, 2), Y, "probs"),
        (torch.zeros(0), torch.zeros(0, dtype=torch.int64), "probs"),
    ],
)
def test_bad_inputs_are_value_errors_naming_them(probs, labels, name):
    with pytest.raises(ValueError, match=name):
        anyloss(probs, labels)


def test_from_logits_must_be_a_bool_and_logits_must_be_finite():
    with pytest.raises(TypeError, match="from_logits"):
        anyloss(P, Y, from_logits=1)
    with pytest.raises(ValueError, match="probs"):
        anyloss(torch.tensor([1.0, math.inf, 0.0, 2.0]), Y, from_logits=True)
    assert ANYLOSS_METRICS == tuple(METRICS)
