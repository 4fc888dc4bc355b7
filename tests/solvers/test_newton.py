"""Gradient-regularized Newton (regkit.solvers.newton) against hand-written Newton steps, closed forms,
scikit-learn's LogisticRegression and scipy's trust-region Newton-CG."""

import math

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from regkit.solvers import (
    NewtonResult,
    diagonal_hessian,
    exact_hessian,
    gradient_regularized_newton,
    nystrom_diagonal_hessian,
    subsampled_hessian,
)

C = 0.5  # sklearn's inverse penalty: it minimizes C Σ log-loss + ½‖w‖²


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x[:200]), torch.tensor(y[:200], dtype=torch.float64)


def _logistic(features, labels):
    """Mean logistic loss + ½‖w‖²/(C n) (sklearn's objective divided by C n), and its subset version."""
    n = features.shape[0]

    def on(w, indices):
        logits = features[indices] @ w
        return torch.nn.functional.softplus(logits).mean() - (labels[indices] * logits).mean() + w @ w / (2 * C * n)

    return (lambda w: on(w, torch.arange(n))), on


def _logistic_by_hand(features, labels, w):
    """Gradient and Hessian of the same objective, written out: Xᵀ(σ − y)/n + w/(Cn), XᵀDX/n + I/(Cn)."""
    n, d = features.shape
    p = torch.sigmoid(features @ w)
    gradient = features.T @ (p - labels) / n + w / (C * n)
    hessian = features.T @ (features * (p * (1 - p))[:, None]) / n + torch.eye(d, dtype=w.dtype) / (C * n)
    return gradient, hessian


def test_zero_regularization_is_plain_newton_step_for_step(cancer):
    features, labels = cancer
    objective, _ = _logistic(features, labels)
    x0 = torch.full((features.shape[1],), 0.05, dtype=torch.float64)
    result = gradient_regularized_newton(objective, x0, gamma=math.inf, adaptive=False, tol=0.0, max_iter=6)
    w = x0.clone()
    for k in range(6):
        gradient, hessian = _logistic_by_hand(features, labels, w)
        assert result.errors[k] == pytest.approx(float(gradient.norm()), rel=1e-10)
        w = w - torch.linalg.solve(hessian, gradient)
    assert result.regularizations == [0.0] * 6 and result.n_trials == 6
    torch.testing.assert_close(result.solution, w, rtol=1e-10, atol=1e-12)


def test_one_undamped_step_solves_a_strongly_convex_quadratic():
    gen = torch.Generator().manual_seed(0)
    factor = torch.randn(7, 7, generator=gen, dtype=torch.float64)
    a = factor @ factor.T + torch.eye(7, dtype=torch.float64)
    b = torch.randn(7, generator=gen, dtype=torch.float64)
    result = gradient_regularized_newton(
        lambda x: 0.5 * x @ a @ x - b @ x,
        torch.randn(7, generator=gen, dtype=torch.float64),
        gamma=math.inf,
        adaptive=False,
        tol=1e-9,
    )
    assert result.n_iter == 1 and result.converged
    np.testing.assert_allclose(result.solution.numpy(), np.linalg.solve(a.numpy(), b.numpy()), rtol=1e-10)


def test_regularized_step_solves_the_damped_system():
    a = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    x0 = torch.tensor([2.0, -1.0], dtype=torch.float64)
    result = gradient_regularized_newton(
        lambda x: 0.5 * x @ a @ x, x0, gamma=0.5, power=0.5, adaptive=False, max_iter=1
    )
    gradient = a @ x0
    lam = float(gradient.norm()) ** 0.5 / (0.5 + 1e-8)  # the official code's eps in the denominator
    assert result.regularizations == [pytest.approx(lam)]
    torch.testing.assert_close(
        result.solution, x0 - torch.linalg.solve(a + lam * torch.eye(2, dtype=a.dtype), gradient)
    )


@pytest.mark.parametrize("variant", ["exact", "diagonal", "subsampled", "nystrom"])
def test_converges_to_sklearn_logistic_regression_from_a_far_start(cancer, variant):
    features, labels = cancer
    objective, on = _logistic(features, labels)
    gen = torch.Generator().manual_seed(1)
    hessian = {
        "exact": None,
        "diagonal": diagonal_hessian(objective),
        "subsampled": subsampled_hessian(on, features.shape[0], 0.1, gen),
        "nystrom": nystrom_diagonal_hessian(objective, 5, gen),
    }[variant]
    x0 = 10 * torch.randn(features.shape[1], generator=gen, dtype=torch.float64)
    result = gradient_regularized_newton(objective, x0, hessian=hessian, tol=1e-9, max_iter=500)
    assert isinstance(result, NewtonResult) and result.converged
    reference = LogisticRegression(C=C, fit_intercept=False, tol=1e-12, max_iter=10_000, solver="newton-cg")
    reference.fit(features.numpy(), labels.numpy())
    # ‖w − w*‖ ≤ ‖∇f‖ / μ with μ ≥ 1/(C n) = 10⁻²
    np.testing.assert_allclose(result.solution.numpy(), reference.coef_[0], rtol=0, atol=2e-7)
    # Algorithm 1's acceptance test holds at every step while f's decrease is above its rounding error
    f, g, lam = result.objectives, result.errors, result.regularizations
    early = [k for k in range(result.n_iter) if g[k + 1] > 1e-5]
    assert len(early) >= 3 and all(f[k] - f[k + 1] >= g[k + 1] ** 2 / (8 * lam[k]) for k in early)


def test_softmax_regression_matches_scipy_trust_ncg():
    gen = torch.Generator().manual_seed(2)
    features = torch.randn(120, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (120,), generator=gen)
    ridge = 1e-2

    def objective(w):
        return torch.nn.functional.cross_entropy(features @ w.reshape(5, 3), labels) + ridge / 2 * w @ w

    def fun(w):
        logits = features.numpy() @ w.reshape(5, 3)
        logits = logits - logits.max(1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return -log_p[np.arange(120), labels.numpy()].mean() + ridge / 2 * w @ w

    def jac(w):
        logits = features.numpy() @ w.reshape(5, 3)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(120), labels.numpy()] -= 1
        return (features.numpy().T @ p / 120).ravel() + ridge * w

    def hessp(w, v):
        logits = features.numpy() @ w.reshape(5, 3)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        u = features.numpy() @ v.reshape(5, 3)
        r = p * u - p * (p * u).sum(1, keepdims=True)
        return (features.numpy().T @ r / 120).ravel() + ridge * v

    reference = scipy.optimize.minimize(
        fun, np.zeros(15), jac=jac, hessp=hessp, method="trust-ncg", options={"gtol": 1e-8, "maxiter": 200}
    )
    assert np.linalg.norm(reference.jac) <= 1e-8
    x0 = 10 * torch.randn(15, generator=gen, dtype=torch.float64)
    result = gradient_regularized_newton(objective, x0, tol=1e-10)
    assert result.converged
    np.testing.assert_allclose(result.solution.numpy(), reference.x, atol=1e-6)


def test_hessian_approximations_against_autograd(cancer):
    features, labels = cancer
    objective, on = _logistic(features[:, :6], labels)
    w = torch.linspace(-1, 1, 6, dtype=torch.float64)
    full = torch.autograd.functional.hessian(objective, w)
    torch.testing.assert_close(exact_hessian(objective)(w), full)
    torch.testing.assert_close(diagonal_hessian(objective)(w), torch.diag(torch.diagonal(full)))
    gen = torch.Generator().manual_seed(0)
    torch.testing.assert_close(subsampled_hessian(on, 200, 1.0, gen)(w), full)
    # rank d: the Nyström part is already exact
    torch.testing.assert_close(nystrom_diagonal_hessian(objective, 6, gen)(w), full)
    low = nystrom_diagonal_hessian(objective, 2, gen)(w)
    torch.testing.assert_close(torch.diagonal(low), torch.diagonal(full))
    assert not torch.allclose(low, full)
    # a 10 % subsample: the Hessian of those 20 examples, a different one at each call
    subsample = subsampled_hessian(on, 200, 0.1, torch.Generator().manual_seed(3))
    first, second = subsample(w), subsample(w)
    indices = torch.randperm(200, generator=torch.Generator().manual_seed(3))[:20]
    torch.testing.assert_close(first, torch.autograd.functional.hessian(lambda z: on(z, indices), w))
    assert not torch.allclose(first, second)


def test_matrix_free_approximations_against_the_hand_written_hessian(cancer):
    features, labels = cancer
    objective, _ = _logistic(features[:, :8], labels)
    w = torch.linspace(-1, 1, 8, dtype=torch.float64)
    _, full = _logistic_by_hand(features[:, :8], labels, w)
    # probes on a diagonal Hessian (a separable objective): v ⊙ Hv = H_ii v_i² = H_ii exactly
    scales = torch.arange(1.0, 9.0, dtype=torch.float64)
    separable = lambda x: (scales * torch.exp(x)).sum()  # noqa: E731
    estimate = diagonal_hessian(separable, probes=1, generator=torch.Generator().manual_seed(0))(w)
    torch.testing.assert_close(estimate, torch.diag(scales * torch.exp(w)))
    # unbiased on a dense Hessian: many probes approach the diagonal, few do not
    many = diagonal_hessian(objective, probes=20000, generator=torch.Generator().manual_seed(1))(w)
    torch.testing.assert_close(torch.diagonal(many), torch.diagonal(full), rtol=0.05, atol=0)
    assert torch.count_nonzero(many - torch.diag(torch.diagonal(many))) == 0
    few = diagonal_hessian(objective, probes=2, generator=torch.Generator().manual_seed(1))(w)
    assert not torch.allclose(torch.diagonal(few), torch.diagonal(full), rtol=0.05)
    # the sketch's products are Hessian-vector products: the same N as from the formed Hessian, and with
    # rank = d the residual diagonal vanishes, so that probes change nothing
    exact_diag = nystrom_diagonal_hessian(objective, 3, torch.Generator().manual_seed(2))(w)
    sketch = torch.randn(8, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    product = full @ sketch
    nystrom = product @ torch.linalg.pinv(sketch.T @ product, hermitian=True) @ product.T
    torch.testing.assert_close(
        exact_diag - torch.diag(torch.diagonal(exact_diag)), nystrom - torch.diag(torch.diagonal(nystrom))
    )
    torch.testing.assert_close(torch.diagonal(exact_diag), torch.diagonal(full))
    complete = nystrom_diagonal_hessian(objective, 8, torch.Generator().manual_seed(2), probes=3)(w)
    torch.testing.assert_close(complete, full)
    estimated = nystrom_diagonal_hessian(objective, 3, torch.Generator().manual_seed(2), probes=20000)(w)
    torch.testing.assert_close(torch.diagonal(estimated), torch.diagonal(full), rtol=0.05, atol=0)


def test_subsampled_runs_are_reproducible_from_the_seed(cancer):
    features, labels = cancer
    objective, on = _logistic(features, labels)
    x0 = torch.ones(features.shape[1], dtype=torch.float64)

    def run(seed):
        hessian = subsampled_hessian(on, features.shape[0], 0.1, torch.Generator().manual_seed(seed))
        return gradient_regularized_newton(objective, x0, hessian=hessian, max_iter=5, tol=0.0).objectives

    assert run(4) == run(4) and run(4) != run(5)


def test_undamped_newton_stops_on_divergence():
    # f(x) = sqrt(1 + x²): Newton's step is x ↦ −x³, which diverges from |x| > 1
    result = gradient_regularized_newton(
        lambda x: torch.sqrt(1 + x @ x), torch.tensor([1.5], dtype=torch.float64), gamma=math.inf, adaptive=False
    )
    assert not result.converged and abs(float(result.solution)) > 1e10 or not math.isfinite(result.objectives[-1])
    adaptive = gradient_regularized_newton(lambda x: torch.sqrt(1 + x @ x), torch.tensor([1.5], dtype=torch.float64))
    assert adaptive.converged and abs(float(adaptive.solution)) < 1e-7


def test_float32_follows_input():
    result = gradient_regularized_newton(lambda x: (x * x).sum(), torch.ones(3), tol=1e-5)
    assert result.solution.dtype == torch.float32 and result.converged


def _quadratic(x):
    return (x * x).sum()


def test_rejects_bad_x0():
    with pytest.raises(TypeError, match="x0"):
        gradient_regularized_newton(_quadratic, [1.0, 2.0])
    with pytest.raises(ValueError, match="x0 must have 1 dimensions"):
        gradient_regularized_newton(_quadratic, torch.ones(2, 2))
    with pytest.raises(ValueError, match="x0 must be a floating-point"):
        gradient_regularized_newton(_quadratic, torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="x0 has 1 non-finite"):
        gradient_regularized_newton(_quadratic, torch.tensor([1.0, math.nan]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 0.0}, "gamma must be a number in"),
        ({"gamma": math.inf}, "gamma must be finite when adaptive"),
        ({"power": -1.0}, "power must be a number in"),
        ({"tol": -1.0}, "tol must be a number in"),
        ({"max_iter": 0}, "max_iter must be an integer in"),
        ({"max_iter": 2.5}, "max_iter must be an integer in"),
    ],
)
def test_rejects_bad_numbers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradient_regularized_newton(_quadratic, torch.ones(2), **kwargs)


def test_rejects_bad_objective_and_hessian():
    with pytest.raises(ValueError, match="objective must return a scalar tensor, got \\(2,\\)"):
        gradient_regularized_newton(lambda x: x * x, torch.ones(2))
    with pytest.raises(ValueError, match="objective must be finite at x0"):
        gradient_regularized_newton(lambda x: torch.log(x).sum(), -torch.ones(2))
    with pytest.raises(ValueError, match="hessian must return a \\(2, 2\\) matrix, got \\(2,\\)"):
        gradient_regularized_newton(_quadratic, torch.ones(2), hessian=lambda x: x)


def test_factories_reject_bad_arguments():
    on = lambda x, indices: (x * x).sum()  # noqa: E731
    gen = torch.Generator()
    with pytest.raises(ValueError, match="fraction must be a number in \\(0, 1\\]"):
        subsampled_hessian(on, 10, 0.0, gen)
    with pytest.raises(ValueError, match="n_examples must be an integer"):
        subsampled_hessian(on, 0, 0.5, gen)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        subsampled_hessian(on, 10, 0.5, 0)
    with pytest.raises(ValueError, match="rank must be an integer"):
        nystrom_diagonal_hessian(_quadratic, 0, gen)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        nystrom_diagonal_hessian(_quadratic, 2, None)
    with pytest.raises(ValueError, match="probes must be an integer"):
        nystrom_diagonal_hessian(_quadratic, 2, gen, probes=0)
    with pytest.raises(ValueError, match="probes must be an integer"):
        diagonal_hessian(_quadratic, probes=0.5, generator=gen)
    with pytest.raises(TypeError, match="generator must be a torch.Generator when probes is set"):
        diagonal_hessian(_quadratic, probes=4)
