"""The L2-SVM (squared hinge) head: one-vs-rest against a loop, Weston–Watkins against
``MultiMarginLoss(p=2)``, and the one-vs-rest objective against scikit-learn's ``LinearSVC``."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.svm import LinearSVC

from regkit.losses import l2_svm_objective, squared_hinge_loss


def problem(seed=0, b=7, k=4, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, generator=g, dtype=torch.float64) * scale, torch.randint(0, k, (b,), generator=g)


def one_vs_rest_loop(logits, labels, margin):
    """Per-example sum over classes of max(0, m - t s)^2 with t = +1 on the label, -1 elsewhere."""
    rows = []
    for i in range(logits.shape[0]):
        total = logits.new_zeros(())
        for k in range(logits.shape[1]):
            t = 1.0 if k == int(labels[i]) else -1.0
            total = total + torch.clamp(margin - t * logits[i, k], min=0) ** 2
        rows.append(total)
    return torch.stack(rows)


# ----------------------------------------------------------------------------------------------
# the formulas
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("seed", range(3))
def test_one_vs_rest_matches_a_loop_with_gradients(seed, margin):
    logits, labels = problem(seed)
    ours_x = logits.clone().requires_grad_()
    loop_x = logits.clone().requires_grad_()
    ours = squared_hinge_loss(ours_x, labels, margin=margin, reduction="none")
    loop = one_vs_rest_loop(loop_x, labels, margin)
    torch.testing.assert_close(ours, loop, rtol=1e-12, atol=1e-12)
    (ours * torch.arange(1.0, 8.0, dtype=torch.float64)).sum().backward()
    (loop * torch.arange(1.0, 8.0, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(ours_x.grad, loop_x.grad, rtol=1e-12, atol=1e-12)
    assert squared_hinge_loss(logits, labels, margin=margin) == pytest.approx(float(loop.detach().mean()), rel=1e-12)
    assert squared_hinge_loss(logits, labels, margin=margin, reduction="sum") == pytest.approx(
        float(loop.detach().sum())
    )


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
def test_weston_watkins_is_multi_margin_loss_p2_times_the_number_of_classes(margin, reduction):
    logits, labels = problem(1, b=9, k=5)
    k = logits.shape[1]
    ours_x, torch_x = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = squared_hinge_loss(ours_x, labels, margin=margin, formulation="weston_watkins", reduction=reduction)
    reference = k * F.multi_margin_loss(torch_x, labels, p=2, margin=margin, reduction=reduction)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    ours.sum().backward()
    reference.sum().backward()
    torch.testing.assert_close(ours_x.grad, torch_x.grad, rtol=1e-12, atol=1e-12)
    # and the module form, with its 1/K: not equal without the factor
    module = torch.nn.MultiMarginLoss(p=2, margin=margin, reduction="sum")(logits, labels)
    assert float(module) * k == pytest.approx(
        float(squared_hinge_loss(logits, labels, margin=margin, formulation="weston_watkins", reduction="sum"))
    )


def test_the_two_formulations_differ_and_vanish_beyond_the_margin():
    logits, labels = problem(2)
    assert not torch.allclose(
        squared_hinge_loss(logits, labels, reduction="none"),
        squared_hinge_loss(logits, labels, formulation="weston_watkins", reduction="none"),
    )
    separated = torch.full((3, 4), -1.5, dtype=torch.float64)
    labels = torch.tensor([0, 3, 1])
    separated[torch.arange(3), labels] = 1.5
    for formulation in ("one_vs_rest", "weston_watkins"):
        assert float(squared_hinge_loss(separated, labels, formulation=formulation, reduction="sum")) == 0.0
    # a single violated one-vs-rest margin: (1 - 0.25)^2 for a wrong class scored -0.25
    separated[0, 2] = -0.25
    assert float(squared_hinge_loss(separated, labels, reduction="sum")) == pytest.approx(0.75**2)
    # Weston–Watkins: that class is still 1.75 below the label's 1.5: no loss
    assert float(squared_hinge_loss(separated, labels, formulation="weston_watkins", reduction="sum")) == 0.0


def test_a_masked_class_is_a_removed_class():
    logits, labels = problem(3, k=5)
    labels = labels.clamp(max=2)
    masked = logits.clone()
    masked[:, 3:] = -math.inf
    for formulation in ("one_vs_rest", "weston_watkins"):
        x = masked.clone().requires_grad_()
        value = squared_hinge_loss(x, labels, formulation=formulation, reduction="sum")
        value.backward()
        kept = logits[:, :3].clone().requires_grad_()
        reduced = squared_hinge_loss(kept, labels, formulation=formulation, reduction="sum")
        reduced.backward()
        torch.testing.assert_close(value, reduced)
        torch.testing.assert_close(x.grad[:, :3], kept.grad)
        assert (x.grad[:, 3:] == 0).all()


def test_l2_svm_objective_is_half_the_squared_norm_plus_c_times_the_summed_loss():
    logits, labels = problem(4)
    w, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    data = squared_hinge_loss(logits, labels, reduction="sum")
    expected = 0.5 * (w.square().sum() + b.square().sum()) + 0.3 * data
    torch.testing.assert_close(l2_svm_objective(logits, labels, (w, b), C=0.3), expected)
    torch.testing.assert_close(l2_svm_objective(logits, labels, w), 0.5 * w.square().sum() + data)


# ----------------------------------------------------------------------------------------------
# against scikit-learn: LinearSVC(loss="squared_hinge") minimises the one-vs-rest objective
# ----------------------------------------------------------------------------------------------

C_SVM = 0.5


def separable(seed=0, k=3, d=4, n=20):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 6
    y = np.repeat(np.arange(k), n)
    return centres[y] + rng.normal(size=(k * n, d)), y


def fit_sklearn(X, y, fit_intercept):
    # the primal trust-region Newton solver reaches the optimum to ~1e-13 in a few iterations
    svc = LinearSVC(loss="squared_hinge", C=C_SVM, fit_intercept=fit_intercept, dual=False, tol=1e-12, max_iter=1000)
    return svc.fit(X, y)


def objective_and_gradient(X, y, coef, intercept, **kwargs):
    """Our objective at (coef, intercept) and its gradient; liblinear penalises the intercept
    as one more weight (intercept_scaling = 1)."""
    W = torch.tensor(coef, requires_grad=True)
    b = torch.tensor(intercept, requires_grad=True)
    logits = torch.from_numpy(X) @ W.T + b
    value = l2_svm_objective(logits, torch.from_numpy(y), (W, b), C=C_SVM, **kwargs)
    value.backward()
    return float(value.detach()), torch.cat([W.grad.reshape(-1), b.grad])


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_sklearn_solution_is_a_stationary_point_of_our_objective(fit_intercept):
    X, y = separable()
    svc = fit_sklearn(X, y, fit_intercept)
    assert svc.score(X, y) == 1.0  # separable, as intended
    intercept = svc.intercept_ if fit_intercept else np.zeros(3)
    _, grad = objective_and_gradient(X, y, svc.coef_, intercept)
    if not fit_intercept:
        grad = grad[:-3]  # the intercept is fixed at 0 then
    # strictly convex and differentiable: zero gradient <=> the unique minimiser
    assert float(grad.norm()) < 1e-6
    # the test can fail: the other formulation, or PyTorch's 1/K normalisation, is not stationary there
    _, ww = objective_and_gradient(X, y, svc.coef_, intercept, formulation="weston_watkins")
    assert float(ww[:-3].norm()) > 1e-1
    W = torch.tensor(svc.coef_, requires_grad=True)
    b = torch.tensor(intercept)
    per_k = (
        0.5 * W.square().sum()
        + C_SVM * squared_hinge_loss(torch.from_numpy(X) @ W.T + b, torch.from_numpy(y), reduction="sum") / 3
    )
    per_k.backward()
    assert float(W.grad.norm()) > 1e-1


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_sklearn_solution_beats_every_perturbation(fit_intercept):
    X, y = separable(1)
    svc = fit_sklearn(X, y, fit_intercept)
    intercept = svc.intercept_ if fit_intercept else np.zeros(3)
    best, _ = objective_and_gradient(X, y, svc.coef_, intercept)
    rng = np.random.default_rng(2)
    for scale in (1e-3, 1e-2, 1e-1):
        for _ in range(10):
            dW = rng.normal(size=svc.coef_.shape) * scale
            db = rng.normal(size=3) * scale if fit_intercept else np.zeros(3)
            worse, _ = objective_and_gradient(X, y, svc.coef_ + dW, intercept + db)
            assert worse > best


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_minimising_our_objective_recovers_sklearns_classifier(fit_intercept):
    X, y = separable(2)
    svc = fit_sklearn(X, y, fit_intercept)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    W = torch.zeros(3, X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=fit_intercept)
    params = [W, b] if fit_intercept else [W]
    optimizer = torch.optim.LBFGS(
        params, lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=0, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad()
        value = l2_svm_objective(Xt @ W.T + b, yt, params, C=C_SVM)
        value.backward()
        return value

    optimizer.step(closure)
    np.testing.assert_allclose(W.detach().numpy(), svc.coef_, rtol=1e-6, atol=1e-6)
    if fit_intercept:
        np.testing.assert_allclose(b.detach().numpy(), svc.intercept_, rtol=1e-6, atol=1e-6)
    grid = np.random.default_rng(3).normal(size=(500, X.shape[1])) * 8
    ours = (torch.from_numpy(grid) @ W.detach().T + b.detach()).argmax(1).numpy()
    np.testing.assert_array_equal(ours, svc.predict(grid))


# ----------------------------------------------------------------------------------------------
# rejected inputs: one test per kind, each naming the argument
# ----------------------------------------------------------------------------------------------

LOGITS, LABELS = torch.randn(3, 4), torch.tensor([0, 1, 3])


@pytest.mark.parametrize(
    "name, call",
    [
        ("margin", lambda: squared_hinge_loss(LOGITS, LABELS, margin=-1.0)),
        ("margin", lambda: squared_hinge_loss(LOGITS, LABELS, margin=math.nan)),
        ("margin", lambda: squared_hinge_loss(LOGITS, LABELS, margin=math.inf)),
        ("formulation", lambda: squared_hinge_loss(LOGITS, LABELS, formulation="crammer_singer")),
        ("reduction", lambda: squared_hinge_loss(LOGITS, LABELS, reduction="batchmean")),
        ("labels", lambda: squared_hinge_loss(LOGITS, torch.tensor([0, 1, 4]))),
        ("labels", lambda: squared_hinge_loss(LOGITS, torch.tensor([0.0, 1.0, 3.0]))),
        ("labels", lambda: squared_hinge_loss(LOGITS, torch.tensor([0, 1]))),
        ("logits", lambda: squared_hinge_loss(LOGITS[0], LABELS)),
        ("logits", lambda: squared_hinge_loss(torch.full((3, 4), math.nan), LABELS)),
        ("C", lambda: l2_svm_objective(LOGITS, LABELS, torch.eye(4), C=0.0)),
        ("C", lambda: l2_svm_objective(LOGITS, LABELS, torch.eye(4), C=math.inf)),
        ("weight", lambda: l2_svm_objective(LOGITS, LABELS, torch.eye(4, dtype=torch.int64))),
        ("weight", lambda: l2_svm_objective(LOGITS, LABELS, [])),
        ("weight[1]", lambda: l2_svm_objective(LOGITS, LABELS, [torch.eye(4), torch.tensor([math.nan])])),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(name, call):
    with pytest.raises(ValueError, match=name.replace("[", r"\[")):
        call()
