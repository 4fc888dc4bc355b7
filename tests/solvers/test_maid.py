"""MAID on ridge regression, whose lower-level solution and hypergradient have closed forms (float64)."""

import math

import pytest
import torch

from regkit.solvers.maid import MAIDResult, maid

DT = torch.float64


def _ridge(seed=0, n=60, n_val=40, d=8):
    """h(x, θ) = ½ mean((Ax − b)²) + ½ Σⱼ exp(θⱼ) xⱼ² (θ scalar or per feature), g = ½ mean((Aᵥx − bᵥ)²)."""
    gen = torch.Generator().manual_seed(seed)
    a, a_val = torch.randn(n, d, generator=gen, dtype=DT), torch.randn(n_val, d, generator=gen, dtype=DT)
    truth = torch.randn(d, generator=gen, dtype=DT)
    b = a @ truth + torch.randn(n, generator=gen, dtype=DT)
    b_val = a_val @ truth + torch.randn(n_val, generator=gen, dtype=DT)
    gram = a.T @ a / n
    eig = torch.linalg.eigvalsh(gram)

    def lower(x, theta):
        return 0.5 * ((a @ x - b) ** 2).mean() + 0.5 * torch.sum(torch.exp(theta) * x * x)

    def upper(x, theta):
        return 0.5 * ((a_val @ x - b_val) ** 2).mean()

    def x_hat(theta):  # closed form, differentiable by autograd
        return torch.linalg.solve(gram + torch.diag(torch.exp(theta).expand(d)), a.T @ b / n)

    def f(theta):
        return upper(x_hat(theta), theta)

    constants = dict(
        lower_strong_convexity=lambda t: float(eig.min() + torch.exp(t).min()),
        lower_smoothness=lambda t: float(eig.max() + torch.exp(t).max()),
        upper_smoothness=float(torch.linalg.eigvalsh(a_val.T @ a_val / n_val).max()),
        cross_lipschitz=lambda t: float(torch.exp(t).max()),
    )
    return lower, upper, x_hat, f, constants, d


def _closed_form_hypergradient(f, theta):
    theta = theta.clone().requires_grad_(True)
    return torch.autograd.grad(f(theta), theta)[0]


@pytest.mark.parametrize("per_feature", [False, True])
def test_hypergradient_at_tight_accuracy_matches_the_closed_form(per_feature):
    lower, upper, x_hat, f, constants, d = _ridge()
    theta0 = torch.linspace(-2.0, 0.5, d, dtype=DT) if per_feature else torch.tensor([-1.0], dtype=DT)
    step = 1e-3
    # one fixed step θ₁ = θ₀ − step·z reveals the inexact hypergradient z at θ₀
    result = maid(
        upper,
        lower,
        theta0,
        torch.zeros(d, dtype=DT),
        adaptive=False,
        step=step,
        epsilon=1e-11,
        delta=1e-11,
        max_iter=1,
        **constants,
    )
    z = (theta0 - result.thetas[1]) / step
    # reference: autograd through the closed-form x̂(θ) = (AᵀA/n + diag e^θ)⁻¹ Aᵀb/n
    torch.testing.assert_close(z, _closed_form_hypergradient(f, theta0), rtol=1e-7, atol=1e-10)
    # and the explicit implicit-function formula −B A⁻¹ ∇g with B = diag(e^θ x̂)
    x = x_hat(theta0)
    lower_hess = torch.autograd.functional.hessian(lambda v: lower(v, theta0), x)
    grad_g = torch.autograd.grad(upper(x.requires_grad_(True), theta0), x)[0]
    explicit = -(torch.exp(theta0) * x.detach() * torch.linalg.solve(lower_hess, grad_g))
    explicit = explicit if per_feature else explicit.sum().reshape(1)
    torch.testing.assert_close(z, explicit, rtol=1e-7, atol=1e-10)
    assert isinstance(result, MAIDResult) and result.bounds[0] < 1e-7


@pytest.mark.parametrize("accuracy", [1e-1, 1e-2, 1e-4])
def test_the_error_bound_covers_the_true_hypergradient_error(accuracy):
    lower, upper, x_hat, f, constants, d = _ridge(seed=5)
    theta0, step = torch.linspace(-1.5, 0.5, d, dtype=DT), 1e-3
    result = maid(
        upper,
        lower,
        theta0,
        torch.zeros(d, dtype=DT),
        adaptive=False,
        step=step,
        epsilon=accuracy,
        delta=accuracy,
        max_iter=1,
        **constants,
    )
    z = (theta0 - result.thetas[1]) / step
    error = float(torch.linalg.vector_norm(z - _closed_form_hypergradient(f, theta0)))
    assert error <= result.bounds[0]
    assert result.bounds[0] < 1e3 * accuracy  # and the bound is not vacuous


def test_converges_to_the_brute_force_optimum_over_a_grid():
    lower, upper, x_hat, f, constants, d = _ridge(seed=3)  # optimum inside the grid (seed 1's is at λ → 0)
    grid = torch.linspace(-8.0, 4.0, 6001, dtype=DT)
    with torch.no_grad():
        values = torch.stack([f(t.reshape(1)) for t in grid])
    best = int(values.argmin())
    result = maid(
        upper, lower, torch.tensor([0.0], dtype=DT), torch.zeros(d, dtype=DT), tol=1e-4, max_iter=300, **constants
    )
    assert result.converged
    assert abs(float(result.solution) - float(grid[best])) < 2e-2
    assert float(f(result.solution)) <= float(values[best]) + 1e-6
    assert len(result.objectives) == len(result.errors) == len(result.thetas) == result.n_iter + 1
    assert len(result.lower_iterations) == len(result.cg_iterations) == result.n_iter + 1
    assert len(result.step_sizes) == result.n_iter and result.total_lower_iterations > 0


def test_line_search_never_accepts_an_increase_of_the_true_upper_objective():
    lower, upper, x_hat, f, constants, d = _ridge(seed=3)
    theta0 = torch.tensor([-5.0], dtype=DT)
    # a large step and loose accuracies: some searches fail (α = 0 recorded, θ kept), the others must decrease f
    result = maid(
        upper, lower, theta0, torch.zeros(d, dtype=DT), step=100.0, epsilon=1.0, delta=1.0, max_iter=8, **constants
    )
    with torch.no_grad():
        true = [float(f(t)) for t in result.thetas]
    accepted = [k for k, alpha in enumerate(result.step_sizes) if alpha > 0]
    rejected = [k for k, alpha in enumerate(result.step_sizes) if alpha == 0]
    assert len(accepted) >= 5 and len(rejected) >= 1
    for k in accepted:  # the certified test implies f(θₖ₊₁) − f(θₖ) ≤ −η²α‖z‖² < 0 for the true f
        assert true[k + 1] < true[k]
    for k in rejected:
        assert true[k + 1] == true[k]
    assert true[-1] < true[0] - 1e-3


def test_accuracies_adapt_as_documented():
    lower, upper, x_hat, f, constants, d = _ridge(seed=3)
    tau, nu = 0.5, 1.05
    result = maid(
        upper,
        lower,
        torch.tensor([2.0], dtype=DT),
        torch.zeros(d, dtype=DT),
        epsilon=0.5,
        delta=0.2,
        tau=tau,
        nu=nu,
        max_iter=12,
        **constants,
    )
    powers = []
    for k in range(result.n_iter):
        ratio = result.epsilons[k + 1] / result.epsilons[k]
        # after an accepted step: loosened by ν, then tightened by τ^m (m ≥ 0) until ω ≤ (1 − η)‖z‖
        m = math.log(ratio / (nu if result.step_sizes[k] > 0 else 1.0)) / math.log(tau)
        assert abs(m - round(m)) < 1e-9 and round(m) >= 0
        powers.append(round(m))
        assert result.deltas[k] / result.epsilons[k] == pytest.approx(0.2 / 0.5)
        assert result.bounds[k + 1] <= (1 - 1e-4) * result.errors[k + 1]
    assert 0 in powers and max(powers) >= 1  # both loosening and tightening happened
    # the step grows by 1/ρ after each success: the next trial starts at α/ρ
    fixed = maid(
        upper,
        lower,
        torch.tensor([2.0], dtype=DT),
        torch.zeros(d, dtype=DT),
        adaptive=False,
        step=0.5,
        epsilon=1e-2,
        delta=1e-3,
        accuracy_decay=0.8,
        max_iter=6,
        **constants,
    )
    assert fixed.step_sizes == [0.5] * 6
    torch.testing.assert_close(torch.tensor(fixed.epsilons, dtype=DT), 1e-2 * 0.8 ** torch.arange(7.0, dtype=DT))
    torch.testing.assert_close(torch.tensor(fixed.deltas, dtype=DT), 1e-3 * 0.8 ** torch.arange(7.0, dtype=DT))


def _call(**overrides):
    lower, upper, x_hat, f, constants, d = _ridge()
    args = dict(upper=upper, lower=lower, theta0=torch.tensor([0.0], dtype=DT), x0=torch.zeros(d, dtype=DT))
    args.update(constants)
    args.update(overrides)
    return maid(args.pop("upper"), args.pop("lower"), args.pop("theta0"), args.pop("x0"), max_iter=1, **args)


@pytest.mark.parametrize("name", ["epsilon", "delta", "step"])
@pytest.mark.parametrize("value", [0.0, -1e-3])
def test_rejects_non_positive_accuracies_and_steps(name, value):
    with pytest.raises(ValueError, match=name):
        _call(**{name: value})


@pytest.mark.parametrize("name", ["rho", "tau", "eta"])
@pytest.mark.parametrize("value", [0.0, 1.0, 1.5])
def test_rejects_factors_outside_the_open_unit_interval(name, value):
    with pytest.raises(ValueError, match=name):
        _call(**{name: value})


def test_rejects_a_loosening_factor_below_one_and_a_bad_decay():
    with pytest.raises(ValueError, match="nu"):
        _call(nu=0.9)
    with pytest.raises(ValueError, match="accuracy_decay"):
        _call(adaptive=False, accuracy_decay=1.5)


@pytest.mark.parametrize("name", ["upper", "lower"])
def test_rejects_non_callables(name):
    with pytest.raises(TypeError, match=name):
        _call(**{name: 3.0})


def test_rejects_bad_constants_and_tensors():
    with pytest.raises(TypeError, match="upper_smoothness"):
        _call(upper_smoothness="big")
    with pytest.raises(ValueError, match="lower_strong_convexity"):
        _call(lower_strong_convexity=0.0)
    with pytest.raises(ValueError, match=r"lower_strong_convexity\(theta\)"):
        _call(lower_strong_convexity=lambda t: -1.0)
    with pytest.raises(TypeError, match="theta0"):
        _call(theta0=[0.0])
    with pytest.raises(ValueError, match="theta0"):
        _call(theta0=torch.tensor([0]))
    with pytest.raises(ValueError, match="x0"):
        _call(x0=torch.full((8,), float("nan"), dtype=DT))
    with pytest.raises(TypeError, match="adaptive"):
        _call(adaptive=1)
