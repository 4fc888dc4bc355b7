"""Implicit differentiation (regkit.solvers.implicit) against closed forms, finite differences, unrolled
gradient descent, scipy L-BFGS as a black-box solver and torch.autograd.gradcheck (float64)."""

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from regkit.solvers import SolverResult, custom_fixed_point, custom_root, root_vjp

DT = torch.float64
SOLVES = ("cg", "normal_cg", "dense")


def _ridge_data(n=40, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=DT)
    w_true = torch.randn(d, generator=g, dtype=DT)
    y = x @ w_true + 0.3 * torch.randn(n, generator=g, dtype=DT)
    return x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :]


def _ridge_closed(x, y, log_theta):
    """argmin_w ½‖Xw − y‖²/n + ½ Σ_j exp(θ_j) w_j², by a linear solve (differentiable by autograd)."""
    n = x.shape[0]
    return torch.linalg.solve(x.T @ x / n + torch.diag(log_theta.exp()), x.T @ y / n)


def _ridge_grad(w, log_theta, x, y):
    return x.T @ (x @ w - y) / x.shape[0] + log_theta.exp() * w


def _ridge_solver(solve):
    @custom_root(_ridge_grad, solve=solve)
    def solver(init, log_theta, x, y):
        return _ridge_closed(x, y, log_theta)

    return solver


def _val_mse(w, x_val, y_val):
    return torch.mean((x_val @ w - y_val) ** 2)


@pytest.mark.parametrize("solve", SOLVES)
def test_ridge_hypergradient_matches_closed_form_autograd(solve):
    x, y, xv, yv = _ridge_data()
    log_theta = torch.linspace(-2, 1, 6, dtype=DT).requires_grad_()
    w = _ridge_solver(solve)(None, log_theta, x, y)
    (implicit,) = torch.autograd.grad(_val_mse(w, xv, yv), log_theta)
    (reference,) = torch.autograd.grad(_val_mse(_ridge_closed(x, y, log_theta), xv, yv), log_theta)
    torch.testing.assert_close(implicit, reference, rtol=1e-8, atol=1e-12)


def test_ridge_hypergradient_matches_finite_differences():
    x, y, xv, yv = _ridge_data(seed=1)
    log_theta = torch.linspace(-1, 0.5, 6, dtype=DT).requires_grad_()
    (implicit,) = torch.autograd.grad(_val_mse(_ridge_solver("cg")(None, log_theta, x, y), xv, yv), log_theta)
    h = 1e-5
    fd = torch.stack(
        [
            (
                _val_mse(_ridge_closed(x, y, log_theta.detach() + h * e), xv, yv)
                - _val_mse(_ridge_closed(x, y, log_theta.detach() - h * e), xv, yv)
            )
            / (2 * h)
            for e in torch.eye(6, dtype=DT)
        ]
    )
    torch.testing.assert_close(implicit, fd, rtol=1e-6, atol=1e-12)


def test_ridge_hypergradient_matches_unrolled_gradient_descent():
    x, y, xv, yv = _ridge_data(seed=2)
    log_theta = torch.zeros(6, dtype=DT).requires_grad_()
    (implicit,) = torch.autograd.grad(_val_mse(_ridge_solver("cg")(None, log_theta, x, y), xv, yv), log_theta)
    lipschitz = float(torch.linalg.eigvalsh(x.T @ x / x.shape[0]).max()) + 1.0
    w = torch.zeros(6, dtype=DT)
    for _ in range(800):  # autograd through every step
        w = w - _ridge_grad(w, log_theta, x, y) / lipschitz
    (unrolled,) = torch.autograd.grad(_val_mse(w, xv, yv), log_theta)
    torch.testing.assert_close(implicit, unrolled, rtol=1e-6, atol=1e-12)


def _logistic_objective(w, log_lam, x, y):
    """Mean logistic loss with labels ±1 plus ½ exp(λ) ‖w‖²."""
    return torch.nn.functional.softplus(-y * (x @ w)).mean() + 0.5 * log_lam.exp() * (w @ w)


def _logistic_grad(w, log_lam, x, y):
    return x.T @ (-y * torch.sigmoid(-y * (x @ w))) / x.shape[0] + log_lam.exp() * w


def _logistic_newton(x, y, log_lam, steps=30):
    w = torch.zeros(x.shape[1], dtype=DT)
    for _ in range(steps):
        p = torch.sigmoid(x @ w)
        hessian = (x.T * (p * (1 - p))) @ x / x.shape[0] + log_lam.exp() * torch.eye(x.shape[1], dtype=DT)
        w = w - torch.linalg.solve(hessian, _logistic_grad(w, log_lam, x, y))
    return w


def _logistic_data(seed=0, n=60, d=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=DT)
    y = torch.where(
        x @ torch.randn(d, generator=g, dtype=DT) + 0.5 * torch.randn(n, generator=g, dtype=DT) > 0, 1.0, -1.0
    )
    return x[: n // 2], y[: n // 2].to(DT), x[n // 2 :], y[n // 2 :].to(DT)


def _val_logistic(w, xv, yv):
    return torch.nn.functional.softplus(-yv * (xv @ w)).mean()


def test_logistic_black_box_lbfgs_matches_finite_differences():
    x, y, xv, yv = _logistic_data()

    @custom_root(_logistic_grad, solve="cg")
    def lbfgs(init, log_lam, x, y):  # a black box: numpy in, numpy out
        def fun(w):  # the solver runs under no_grad: a solver that uses autograd inside enables it itself
            wt = torch.from_numpy(w).requires_grad_()
            with torch.enable_grad():
                value = _logistic_objective(wt, log_lam, x, y)
                (grad,) = torch.autograd.grad(value, wt)
            return float(value), grad.numpy()

        opt = scipy.optimize.minimize(
            fun, init.numpy(), jac=True, method="L-BFGS-B", options={"gtol": 1e-13, "ftol": 0}
        )
        return torch.from_numpy(opt.x)

    log_lam = torch.tensor(-2.0, dtype=DT, requires_grad=True)
    w = lbfgs(torch.zeros(5, dtype=DT), log_lam, x, y)
    assert float(torch.linalg.vector_norm(_logistic_grad(w.detach(), log_lam.detach(), x, y))) < 1e-9
    (implicit,) = torch.autograd.grad(_val_logistic(w, xv, yv), log_lam)
    h = 1e-5
    fd = (
        _val_logistic(_logistic_newton(x, y, log_lam.detach() + h), xv, yv)
        - _val_logistic(_logistic_newton(x, y, log_lam.detach() - h), xv, yv)
    ) / (2 * h)
    assert math.isclose(float(implicit), float(fd), rel_tol=1e-6)


def _soft_threshold(z, t):
    return torch.sign(z) * torch.clamp(z.abs() - t, min=0)


def test_lasso_fixed_point_matches_closed_form_on_support():
    g = torch.Generator().manual_seed(3)
    n, d = 50, 8
    x = torch.randn(n, d, generator=g, dtype=DT)
    y = x @ torch.tensor([2.0, -1.5, 0, 0, 1.0, 0, 0, 0], dtype=DT) + 0.1 * torch.randn(n, generator=g, dtype=DT)
    gram = x.T @ x / n
    step = 1.0 / float(torch.linalg.eigvalsh(gram).max())

    def prox_grad_step(w, lam, y):  # T(w, λ, y) = prox_{ηλ‖·‖₁}(w − η∇g(w))
        return _soft_threshold(w - step * (x.T @ (x @ w - y) / n), step * lam)

    for solve in ("normal_cg", "dense"):

        @custom_fixed_point(prox_grad_step, solve=solve)
        def ista(init, lam, y):
            w = init
            for _ in range(1500):
                w = prox_grad_step(w, lam, y)
            return w

        lam = torch.tensor(0.3, dtype=DT, requires_grad=True)
        y_param = y.clone().requires_grad_()
        w = ista(torch.zeros(d, dtype=DT), lam, y_param)
        support = w.detach() != 0
        assert 0 < int(support.sum()) < d
        jac_lam, jac_y = [], []
        for j in range(d):
            g_lam, g_y = torch.autograd.grad(w[j], (lam, y_param), retain_graph=True)
            jac_lam.append(g_lam)
            jac_y.append(g_y)
        jac_lam, jac_y = torch.stack(jac_lam), torch.stack(jac_y)
        # On the support S: w_S = (X_Sᵀ X_S / n)⁻¹ (X_Sᵀ y / n − λ sign(w_S)); off it, w = 0 locally.
        xs = x[:, support]
        inv = torch.linalg.inv(xs.T @ xs / n)
        expected_lam = torch.zeros(d, dtype=DT)
        expected_lam[support] = -inv @ torch.sign(w.detach()[support])
        expected_y = torch.zeros(d, n, dtype=DT)
        expected_y[support] = inv @ xs.T / n
        torch.testing.assert_close(jac_lam, expected_lam, rtol=1e-6, atol=1e-10)
        torch.testing.assert_close(jac_y, expected_y, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("solve", SOLVES)
def test_gradcheck_ridge(solve):
    x, y, _, _ = _ridge_data(n=16, d=3)
    solver = _ridge_solver(solve)
    log_theta = torch.tensor([-1.0, 0.0, 0.5], dtype=DT, requires_grad=True)
    y_param = y.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t, yy: solver(None, t, x, yy), (log_theta, y_param))


def test_gradcheck_logistic_matrix_variable():
    """A matrix-shaped root (multinomial logistic regression weights, d × k) through a Newton black box."""
    g = torch.Generator().manual_seed(4)
    n, d, k = 30, 3, 3
    x = torch.randn(n, d, generator=g, dtype=DT)
    labels = torch.randint(0, k, (n,), generator=g)

    def grad_fn(w, log_lam):
        probs = torch.softmax(x @ w, dim=1)
        return x.T @ (probs - torch.nn.functional.one_hot(labels, k).to(DT)) / n + log_lam.exp() * w

    @custom_root(grad_fn, solve="dense")
    def newton(init, log_lam):
        w = init
        for _ in range(25):
            hessian = torch.func.jacrev(grad_fn)(w, log_lam).reshape(d * k, d * k)
            w = w - torch.linalg.solve(hessian, grad_fn(w, log_lam).reshape(-1)).reshape(d, k)
        return w

    log_lam = torch.tensor(-1.0, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: newton(torch.zeros(d, k, dtype=DT), t), (log_lam,))


def test_solver_result_is_returned_with_a_differentiable_solution_and_init_gets_no_gradient():
    x, y, xv, yv = _ridge_data()

    @custom_root(_ridge_grad)
    def solver(init, log_theta, x, y):
        return SolverResult(_ridge_closed(x, y, log_theta), 3, True, [1.0, 0.5], [2.0, 1.0])

    log_theta = torch.zeros(6, dtype=DT, requires_grad=True)
    init = torch.zeros(6, dtype=DT, requires_grad=True)
    result = solver(init, log_theta, x, y)
    assert isinstance(result, SolverResult)
    assert (result.n_iter, result.converged, result.objectives, result.errors) == (3, True, [1.0, 0.5], [2.0, 1.0])
    grads = torch.autograd.grad(_val_mse(result.solution, xv, yv), (log_theta, init), allow_unused=True)
    (reference,) = torch.autograd.grad(_val_mse(_ridge_closed(x, y, log_theta), xv, yv), log_theta)
    torch.testing.assert_close(grads[0], reference, rtol=1e-8, atol=1e-12)
    assert grads[1] is None


def test_non_tensor_and_integer_params_pass_through():
    x, y, _, _ = _ridge_data()

    def grad_fn(w, log_theta, scale, idx):
        return _ridge_grad(w, log_theta, x, y) * scale + 0 * idx.sum()

    @custom_root(grad_fn)
    def solver(init, log_theta, scale, idx):
        assert not log_theta.requires_grad and not torch.is_grad_enabled()
        return _ridge_closed(x, y, log_theta)

    log_theta = torch.zeros(6, dtype=DT, requires_grad=True)
    w = solver(None, log_theta, 2.0, torch.arange(3))
    (grad,) = torch.autograd.grad(w.sum(), log_theta)
    (reference,) = torch.autograd.grad(_ridge_closed(x, y, log_theta).sum(), log_theta)
    torch.testing.assert_close(grad, reference, rtol=1e-8, atol=1e-12)


def test_root_vjp_matches_dense_implicit_function_theorem():
    """uᵀB with Aᵀu = v (Eq. (2)) against the explicit −v ᵀ(∂₁F)⁻¹∂₂F on a non-symmetric root."""
    g = torch.Generator().manual_seed(5)
    m = torch.randn(4, 4, generator=g, dtype=DT) + 4 * torch.eye(4, dtype=DT)  # non-symmetric, invertible
    theta = torch.randn(4, generator=g, dtype=DT)

    def fn(x, theta):
        return m @ x + torch.tanh(x) - theta**2

    x_star = torch.from_numpy(
        scipy.optimize.fsolve(lambda z: fn(torch.from_numpy(z), theta).numpy(), np.zeros(4), xtol=1e-14)
    )
    v = torch.randn(4, generator=g, dtype=DT)
    d1 = torch.func.jacrev(fn, argnums=0)(x_star, theta)
    d2 = torch.func.jacrev(fn, argnums=1)(x_star, theta)
    expected = -v @ torch.linalg.solve(d1, d2)
    for solve in ("normal_cg", "dense"):
        (got,) = root_vjp(fn, x_star, (theta,), v, solve=solve)
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


# ----------------------------------------------------------------------------- rejected input


def test_rejects_non_callables():
    with pytest.raises(TypeError, match="optimality_fn must be callable"):
        custom_root(3.0)
    with pytest.raises(TypeError, match="fixed_point_fn must be callable"):
        custom_fixed_point("T")
    with pytest.raises(TypeError, match="solver must be callable"):
        custom_root(_ridge_grad)(None)


def test_rejects_bad_solve_name():
    with pytest.raises(ValueError, match="solve must be one of.*'gmres'.*cg, dense, normal_cg"):
        custom_root(_ridge_grad, solve="gmres")


@pytest.mark.parametrize("tol", [1.0, -1e-3, float("nan")])
def test_rejects_tol_out_of_range(tol):
    with pytest.raises(ValueError, match=r"tol must be a number in \[0, 1\)"):
        custom_root(_ridge_grad, tol=tol)


def test_rejects_bad_max_iter():
    with pytest.raises(ValueError, match="max_iter must be an integer"):
        custom_fixed_point(lambda x: x, max_iter=0)


def test_rejects_optimality_output_of_another_shape():
    @custom_root(lambda w, t: w[:-1] * t)
    def solver(init, t):
        return torch.ones(3, dtype=DT)

    with pytest.raises(
        ValueError, match=r"optimality_fn must return a tensor of the solution's shape \(3,\), got \(2,\)"
    ):
        solver(None, torch.ones(1, dtype=DT, requires_grad=True))


def test_rejects_solver_returning_a_non_tensor():
    @custom_root(lambda w, t: w - t)
    def solver(init, t):
        return [1.0]

    with pytest.raises(TypeError, match="solver must return a floating-point torch.Tensor or a SolverResult"):
        solver(None, torch.ones(1, dtype=DT))


def test_root_vjp_rejects_cotangent_of_another_shape():
    with pytest.raises(ValueError, match="cotangent must have solution's shape"):
        root_vjp(lambda x, t: x - t, torch.zeros(3, dtype=DT), (torch.zeros(3, dtype=DT),), torch.ones(2, dtype=DT))


def test_cg_rejects_an_indefinite_jacobian_and_dense_a_singular_one():
    t = torch.ones(3, dtype=DT, requires_grad=True)
    # F(x) = T(x) − x with T(x) = x/2 + t: ∂₁F = −I/2 is negative definite, CG's premise fails.
    negative = custom_fixed_point(lambda x, t: 0.5 * x + t, solve="cg")(lambda init, t: 2 * t)
    with pytest.raises(ValueError, match="not positive definite"):
        negative(None, t).sum().backward()
    singular = custom_root(lambda x, t: torch.stack([x[0] - t[0], x[0] - t[1]]), solve="dense")(
        lambda i, t: t[:2].clone()
    )
    with pytest.raises(ValueError, match="singular"):
        singular(None, t).sum().backward()


def test_warns_when_conjugate_gradient_stops_early():
    x, y, _, _ = _ridge_data()

    @custom_root(_ridge_grad, solve="normal_cg", max_iter=1)
    def solver(init, log_theta, x, y):
        return _ridge_closed(x, y, log_theta)

    log_theta = torch.linspace(-2, 1, 6, dtype=DT).requires_grad_()
    with pytest.warns(RuntimeWarning, match="conjugate gradient \\(normal_cg\\) stopped after 1 steps"):
        solver(None, log_theta, x, y).sum().backward()
