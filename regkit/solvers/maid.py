"""MAID: the method of adaptive inexact descent for bilevel problems (hyperparameter learning).

Salehi, Mukherjee, Roberts, Ehrhardt, *An adaptively inexact first-order method for bilevel optimization
with application to hyperparameter learning*, arXiv:2308.10098 (SIAM J. Math. Data Sci., 2025).
Replicated in ``notebooks/maid_bilevel.ipynb``.

The bilevel problem is

.. math::
    \\min_\\theta f(\\theta) := g(\\hat x(\\theta), \\theta)
    \\quad\\text{s.t.}\\quad \\hat x(\\theta) = \\arg\\min_x h(x, \\theta),

with :math:`h(\\cdot, \\theta)` :math:`\\mu`-strongly convex and :math:`L`-smooth in :math:`x`. By the implicit
function theorem the hypergradient is

.. math::
    \\nabla f(\\theta) = \\partial_\\theta g - B(\\hat x, \\theta) A(\\hat x, \\theta)^{-1} \\nabla_x g(\\hat x),
    \\qquad A = \\partial^2_{xx} h,\\ B = \\partial^2_{\\theta x} h,

and MAID replaces every exact quantity by an inexact one: (i) the lower level is solved (strongly convex
FISTA, warm-started) until :math:`\\lVert \\nabla_x h(\\tilde x, \\theta) \\rVert \\le \\mu\\varepsilon`, so
that :math:`\\lVert \\tilde x - \\hat x \\rVert \\le \\varepsilon`; (ii) :math:`A(\\tilde x) q = \\nabla_x g(\\tilde x)`
is solved by :func:`regkit.solvers.conjugate_gradient` to residual :math:`\\le \\delta`; (iii) the inexact
hypergradient is :math:`z = \\partial_\\theta g(\\tilde x) - B(\\tilde x) q`. Its error is bounded by

.. math::
    \\lVert z - \\nabla f(\\theta) \\rVert \\le \\omega(\\varepsilon, \\delta) =
    \\frac{\\lVert B \\rVert}{\\mu}\\delta
    + \\Big(\\frac{\\lVert B \\rVert L_{\\nabla g}}{\\mu}
    + \\frac{\\lVert B \\rVert L_A \\lVert\\nabla g\\rVert}{\\mu^2}
    + \\frac{L_B \\lVert \\nabla g \\rVert}{\\mu} [+ L_{\\nabla g}]\\Big)\\varepsilon
    + \\frac{L_B L_{\\nabla g}}{\\mu}\\varepsilon^2

(:math:`L_A, L_B, L_{\\nabla g}` the Lipschitz constants in :math:`x` of :math:`A`, :math:`B`, :math:`\\nabla g`;
norms at :math:`\\tilde x`; the bracketed term only when :math:`g` depends on :math:`\\theta` directly) —
the form of the official ``MAID.bound`` (constant × ε + ‖B‖/μ · δ + L_B/μ · ε²), re-derived here with the
constants written out. Each outer step of the adaptive method (``adaptive=True``):

1. *accuracy check* — while :math:`\\omega(\\varepsilon, \\delta) > (1 - \\eta)\\lVert z \\rVert`, tighten
   :math:`\\varepsilon \\leftarrow \\tau\\varepsilon,\\ \\delta \\leftarrow \\tau\\delta` and recompute :math:`z`;
2. *inexact backtracking* — try :math:`\\alpha = \\beta\\rho^i`, :math:`\\theta^+ = \\theta - \\alpha z`, solve the
   lower level at :math:`\\theta^+` to :math:`\\varepsilon` and accept when the upper bound on :math:`f(\\theta^+)`
   minus the lower bound on :math:`f(\\theta)` is a sufficient decrease,

   .. math::
       g(\\tilde x^+) + \\lVert\\nabla g(\\tilde x^+)\\rVert\\varepsilon + \\tfrac{L_{\\nabla g}}{2}\\varepsilon^2
       - g(\\tilde x) + \\lVert\\nabla g(\\tilde x)\\rVert\\varepsilon \\le -\\eta^2 \\alpha \\lVert z \\rVert^2

   (the lower bound uses convexity of :math:`g` in :math:`x`, as the official code does); if ``max_backtrack``
   trials fail, tighten :math:`\\varepsilon, \\delta` by :math:`\\tau`, recompute :math:`z` and backtrack again
   (``max_backtrack + j`` trials on the j-th retry, at most 3 retries, each from the same β);
3. *loosen* — after an accepted step, :math:`\\beta \\leftarrow \\alpha / \\rho` and
   :math:`\\varepsilon \\leftarrow \\nu\\varepsilon,\\ \\delta \\leftarrow \\nu\\delta` (:math:`\\nu \\ge 1`).

With ``adaptive=False`` the same function is the baseline the paper compares against (HOAG-like, Pedregosa
2016, with an a-priori accuracy sequence): no accuracy check, no line search, the fixed step
:math:`\\theta \\leftarrow \\theta - \\beta z` and :math:`\\varepsilon_{k+1} = \\text{accuracy\\_decay}\\cdot
\\varepsilon_k` (1: fixed accuracy; < 1: the "geometric" sequence).

**Checked against** the official code, ``MohammadSadeghSalehi/MAID``: ``MAID.py`` (``inexact_gradient``: the
accuracy loop ``omega/‖p‖ > 1 - eta`` with ``tau``; ``backtrack``: the test above with ``eta*eta``, step
``beta*rho**i``, ``max_iter = 10 + j`` trials; ``main``: up to 3 backtracking retries, ``epsilon *= nu``,
``delta *= nu``, ``beta *= 10/9`` on success; ``bound``; ``CG`` stopping at an absolute residual
``delta``; defaults ``epsilon = delta = 0.1, eta = 1e-4, rho = 0.9, tau = 0.5, nu = 1.05``) and
``MultiClassRegression.py`` (``FISTA`` stopping at ``‖∇h‖/mu < epsilon``, the lower level
``CE + ½ Σ exp(theta)·w²``, the HOAG baseline with ``accuracy_type`` fixed/geometric). The parameter names
are the code's. Differences, and what is followed: the code grows the step by the literal ``10/9``
(= 1/ρ for its ρ = 0.9), here by ``1/rho``; as in the code a failed search leaves β unchanged, so
a step that grew too large can make every later search fail (``step_sizes`` 0, θ kept) until the budget ends;
the code estimates ‖B‖, L_A, L_B by one-shot random probes,
here ‖B̃‖ is a power iteration on :math:`B^\\top B` (autograd double-backward products) and
:math:`L_{\\nabla g}, L_A, L_B, \\mu, L` are given by the caller; the code compares with the loss stored at
the last accepted step even after a tightening re-solve, here :math:`g(\\tilde x)` is recomputed at the
current accuracy; CG is warm-started from the previous :math:`q`. The paper's text itself could not be
read here beyond its abstract; the equations above follow the code and the derivation of :math:`\\omega`.

Shapes: ``theta`` and ``x`` are floating tensors of any shapes (float64 recommended); ``upper(x, theta)``
and ``lower(x, theta)`` return scalar tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from regkit._checks import check_finite, check_number, check_tensor
from regkit.solvers.linear import conjugate_gradient
from regkit.solvers.result import SolverResult

__all__ = ["MAIDResult", "maid"]

Constant = float | Callable[[torch.Tensor], float]

_POWER_STEPS = 10  # power iterations for ‖B̃‖ (exact after one when theta is a scalar)
_MAX_TIGHTEN = 30  # accuracy tightenings per hypergradient (tau**30 ≈ 1e-9 for tau = 0.5)
_MAX_RETRIES = 3  # backtracking retries after a tightening (the official max_bt_loop)


@dataclass(frozen=True)
class MAIDResult(SolverResult):
    """The result of :func:`maid`: a :class:`~regkit.solvers.SolverResult` plus the work and the accuracies.

    ``solution`` the final θ; ``n_iter`` outer steps; ``converged`` whether ``‖z‖ <= tol`` was reached;
    ``objectives`` the upper-level value g(x̃_k, θ_k) at the start and after each outer step;
    ``errors`` the inexact hypergradient norms ‖z_k‖ (both ``n_iter + 1`` floats). Per outer step
    (``n_iter + 1`` entries, the first for the initial hypergradient): ``lower_iterations`` the lower-level
    iterations (FISTA gradient steps, line-search trials and re-solves included), ``cg_iterations`` the
    Hessian-vector products of CG, ``epsilons`` and ``deltas`` the accuracies of the hypergradient
    ``errors[k]`` came from, ``bounds`` its error bound ω(ε, δ), ``thetas`` the iterates θ_k. ``step_sizes``
    the accepted step α of each outer step (``n_iter`` floats, 0 when the line search failed).
    """

    lower_iterations: list[int]
    cg_iterations: list[int]
    epsilons: list[float]
    deltas: list[float]
    bounds: list[float]
    step_sizes: list[float]
    thetas: list[torch.Tensor]

    @property
    def total_lower_iterations(self) -> int:
        """All lower-level iterations spent."""
        return sum(self.lower_iterations)

    @property
    def total_cg_iterations(self) -> int:
        """All CG iterations (Hessian-vector products) spent."""
        return sum(self.cg_iterations)


def maid(
    upper: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lower: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    theta0: torch.Tensor,
    x0: torch.Tensor,
    *,
    lower_strong_convexity: Constant,
    lower_smoothness: Constant,
    upper_smoothness: Constant,
    hessian_lipschitz: Constant = 0.0,
    cross_lipschitz: Constant = 0.0,
    epsilon: float = 0.1,
    delta: float = 0.1,
    step: float = 1.0,
    rho: float = 0.9,
    tau: float = 0.5,
    nu: float = 1.05,
    eta: float = 1e-4,
    adaptive: bool = True,
    accuracy_decay: float = 1.0,
    max_iter: int = 100,
    max_backtrack: int = 10,
    max_lower_iter: int = 10_000,
    lower_budget: int | None = None,
    tol: float = 1e-8,
) -> MAIDResult:
    """Minimize ``f(θ) = upper(x̂(θ), θ)``, ``x̂(θ) = argmin_x lower(x, θ)``, by MAID (adaptive) or the fixed baseline.

    ``upper(x, theta)`` (g) and ``lower(x, theta)`` (h) are callables of tensors returning scalar tensors,
    differentiable by autograd (h twice); g convex in ``x`` for the line search's bound. ``theta0``
    (any shape) and ``x0`` (any shape: the lower-level warm start) floating tensors; the result's dtype
    and device are ``theta0``'s. The constants of the error bound ω (module docstring) are floats or
    callables of θ returning floats: ``lower_strong_convexity`` μ > 0 and ``lower_smoothness`` L ≥ μ of
    h(·, θ) (FISTA's step 1/L and momentum, the stopping test ‖∇ₓh‖ ≤ μ ε), ``upper_smoothness`` L_∇g ≥ 0,
    ``hessian_lipschitz`` L_A ≥ 0 (0: h quadratic in x) and ``cross_lipschitz`` L_B ≥ 0 (0: ∂²_θx h
    independent of x).

    MAID's parameters (official ``MAID.py`` names): initial accuracies ``epsilon`` (lower level,
    ‖x̃ − x̂‖ ≤ ε) and ``delta`` (CG residual ≤ δ) > 0; ``step`` β > 0 the initial (adaptive) or fixed
    (``adaptive=False``) step; ``rho`` ∈ (0, 1) backtracking factor; ``tau`` ∈ (0, 1) the factor that
    tightens ε, δ; ``nu`` ≥ 1 the factor that loosens them after a success; ``eta`` ∈ (0, 1) the
    accuracy/sufficient-decrease constant; ``accuracy_decay`` ∈ (0, 1] the a-priori ε, δ sequence of the
    baseline (ignored when adaptive). Stops when ‖z‖ ≤ ``tol``, after ``max_iter`` outer steps, when the
    total lower-level iterations exceed ``lower_budget`` (``None``: no budget), when the hypergradient
    is not finite (a diverging fixed step) or when a lower-level solve reaches ``max_lower_iter`` iterations
    without its accuracy (ε too small for the arithmetic, or θ made h ill-conditioned): ``converged`` is
    then False.

    Returns a :class:`MAIDResult`. Raises ``TypeError`` for a non-callable ``upper``/``lower``/constant or
    a non-tensor ``theta0``/``x0``, ``ValueError`` for a non-floating or non-finite ``theta0``/``x0`` or a
    parameter outside the ranges above (naming it and its range).
    """
    for name, function in (("upper", upper), ("lower", lower)):
        if not callable(function):
            raise TypeError(f"{name} must be a callable (x, theta) -> scalar tensor, got {type(function).__name__}")
    for name, tensor in (("theta0", theta0), ("x0", x0)):
        check_tensor(name, tensor, floating=True)
        check_finite(name, tensor)
    constants = {
        "lower_strong_convexity": _constant("lower_strong_convexity", lower_strong_convexity, positive=True),
        "lower_smoothness": _constant("lower_smoothness", lower_smoothness, positive=True),
        "upper_smoothness": _constant("upper_smoothness", upper_smoothness),
        "hessian_lipschitz": _constant("hessian_lipschitz", hessian_lipschitz),
        "cross_lipschitz": _constant("cross_lipschitz", cross_lipschitz),
    }
    epsilon = check_number("epsilon", epsilon, low=0, low_open=True, high=math.inf)
    delta = check_number("delta", delta, low=0, low_open=True, high=math.inf)
    step = check_number("step", step, low=0, low_open=True, high=math.inf)
    rho = check_number("rho", rho, low=0, high=1, low_open=True, high_open=True)
    tau = check_number("tau", tau, low=0, high=1, low_open=True, high_open=True)
    nu = check_number("nu", nu, low=1, high=math.inf)
    eta = check_number("eta", eta, low=0, high=1, low_open=True, high_open=True)
    accuracy_decay = check_number("accuracy_decay", accuracy_decay, low=0, high=1, low_open=True)
    max_iter = check_number("max_iter", max_iter, low=0, integer=True)
    max_backtrack = check_number("max_backtrack", max_backtrack, low=1, integer=True)
    max_lower_iter = check_number("max_lower_iter", max_lower_iter, low=1, integer=True)
    budget = math.inf if lower_budget is None else check_number("lower_budget", lower_budget, low=1, integer=True)
    tol = check_number("tol", tol, low=0)
    if not isinstance(adaptive, bool):
        raise TypeError(f"adaptive must be a bool, got {adaptive!r}")

    problem = _Problem(upper, lower, constants, max_lower_iter)
    theta = theta0.detach().clone()
    point = problem.hypergradient(theta, x0.detach().to(theta.dtype), None, epsilon, delta)
    if adaptive:
        point, epsilon, delta = problem.accurate_enough(point, theta, epsilon, delta, eta, tau)
    record = _Record(theta, point, epsilon, delta, problem.work, problem.cg_work)
    converged = point.norm <= tol
    while (
        not converged
        and len(record.step_sizes) < max_iter
        and problem.work <= budget
        and point.finite
        and not problem.exhausted
    ):
        work_before = (problem.work, problem.cg_work)
        if adaptive:
            accepted = None
            for retry in range(_MAX_RETRIES):
                accepted = problem.backtrack(point, theta, epsilon, step, rho, eta, max_backtrack + retry)
                if accepted is not None or problem.exhausted:
                    break
                epsilon, delta = tau * epsilon, tau * delta
                point = problem.hypergradient(theta, point.x, point.q, epsilon, delta)
                point, epsilon, delta = problem.accurate_enough(point, theta, epsilon, delta, eta, tau)
            alpha = 0.0
            if accepted is not None:
                alpha, theta, x_new = accepted
                step = alpha / rho
                epsilon, delta = nu * epsilon, nu * delta
                point = problem.hypergradient(theta, x_new, point.q, epsilon, delta)
                point, epsilon, delta = problem.accurate_enough(point, theta, epsilon, delta, eta, tau)
        else:
            alpha, theta = step, theta - step * point.z
            epsilon, delta = accuracy_decay * epsilon, accuracy_decay * delta
            point = problem.hypergradient(theta, point.x, point.q, epsilon, delta)
        record.add(theta, point, epsilon, delta, alpha, problem.work - work_before[0], problem.cg_work - work_before[1])
        converged = point.norm <= tol
    return MAIDResult(
        theta,
        len(record.step_sizes),
        bool(converged),
        record.objectives,
        record.errors,
        record.lower_iterations,
        record.cg_iterations,
        record.epsilons,
        record.deltas,
        record.bounds,
        record.step_sizes,
        record.thetas,
    )


def _constant(name: str, value, *, positive: bool = False) -> Callable[[torch.Tensor], float]:
    """A constant of the bound as a function of θ (a float is checked here, a callable's value when used)."""
    if callable(value):
        return lambda theta: check_number(f"{name}(theta)", value(theta), low=0, low_open=positive, high=math.inf)
    number = check_number(name, value, low=0, low_open=positive, high=math.inf)
    return lambda theta: number


@dataclass(frozen=True)
class _Point:
    """The inexact quantities at one θ: x̃, q, z = ∂θg − B̃q, g(x̃), ‖∇ₓg(x̃)‖ and the bound ω(ε, δ)."""

    x: torch.Tensor
    q: torch.Tensor
    z: torch.Tensor
    value: float
    grad_norm: float
    bound: float

    @property
    def norm(self) -> float:
        return float(torch.linalg.vector_norm(self.z))

    @property
    def finite(self) -> bool:
        return math.isfinite(self.norm) and math.isfinite(self.value)


class _Problem:
    """The bilevel problem's oracles (lower solve, upper value, hypergradient, line search) and the work counters."""

    def __init__(self, upper, lower, constants, max_lower_iter):
        self.upper, self.lower, self.constants, self.max_lower_iter = upper, lower, constants, max_lower_iter
        self.work = 0
        self.cg_work = 0
        self.exhausted = False  # a lower solve hit max_lower_iter: its accuracy is not certified

    def _lower_grad(self, x, theta):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            return torch.autograd.grad(self.lower(x, theta), x)[0]

    def solve_lower(self, theta, x, epsilon):
        """Strongly convex FISTA from ``x`` until ‖∇ₓh(y)‖ ≤ μ ε (then ‖y − x̂(θ)‖ ≤ ε); counts its steps."""
        mu = self.constants["lower_strong_convexity"](theta)
        smooth = max(self.constants["lower_smoothness"](theta), mu)
        momentum = (math.sqrt(smooth) - math.sqrt(mu)) / (math.sqrt(smooth) + math.sqrt(mu))
        previous, y = x, x
        for _ in range(self.max_lower_iter):
            gradient = self._lower_grad(y, theta)
            if not float(torch.linalg.vector_norm(gradient)) > mu * epsilon:  # NaN stops too
                return y
            current = y - gradient / smooth
            y = current + momentum * (current - previous)
            previous = current
            self.work += 1
        self.exhausted = True
        return y

    def upper_value_and_grad(self, x, theta):
        """g(x, θ) and ‖∇ₓg(x, θ)‖ as floats."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            value = self.upper(x, theta)
            (grad_x,) = torch.autograd.grad(value, x)
        return float(value.detach()), float(torch.linalg.vector_norm(grad_x))

    def hypergradient(self, theta, x, q, epsilon, delta):
        """x̃ to accuracy ε, q by CG to residual δ, z = ∂θg − B̃q and ω(ε, δ) at θ."""
        x_tilde = self.solve_lower(theta, x, epsilon)
        with torch.enable_grad():
            xr = x_tilde.detach().requires_grad_(True)
            tr = theta.detach().requires_grad_(True)
            h = self.lower(xr, tr)
            h_x, h_theta = torch.autograd.grad(h, (xr, tr), create_graph=True, allow_unused=True)
            g = self.upper(xr, tr)
            g_x, g_theta = torch.autograd.grad(g, (xr, tr), allow_unused=True)
            g_x = torch.zeros_like(xr) if g_x is None else g_x
            if h_theta is None:
                raise ValueError("lower(x, theta) must depend on theta (its gradient in theta is None)")

            def hessian(v):
                return torch.autograd.grad(h_x, xr, v, retain_graph=True)[0]

            def cross(v):  # B v: x-shaped → θ-shaped
                out = torch.autograd.grad(h_x, tr, v, retain_graph=True, allow_unused=True)[0]
                return torch.zeros_like(tr) if out is None else out

            def cross_t(u):  # Bᵀ u: θ-shaped → x-shaped
                out = torch.autograd.grad(h_theta, xr, u, retain_graph=True, allow_unused=True)[0]
                return torch.zeros_like(xr) if out is None else out

            g_norm = float(torch.linalg.vector_norm(g_x))
            if g_norm <= delta:  # q = 0 already has residual ‖∇ₓg‖ ≤ δ
                q_new = torch.zeros_like(xr)
            else:
                tol = min(delta / g_norm, 0.5)  # CG's test is relative: ‖r‖ ≤ tol·‖∇ₓg‖ ≤ δ
                solve = conjugate_gradient(hessian, g_x.detach(), x0=q, tol=tol, max_iter=10 * xr.numel())
                q_new = solve.solution
                self.cg_work += solve.n_iter
            z = -cross(q_new).detach()
            if g_theta is not None:
                z = z + g_theta
            b_norm = _operator_norm(cross, cross_t, torch.ones_like(tr))
        theta_c = {name: constant(theta) for name, constant in self.constants.items()}
        mu, lg = theta_c["lower_strong_convexity"], theta_c["upper_smoothness"]
        la, lb = theta_c["hessian_lipschitz"], theta_c["cross_lipschitz"]
        eps_factor = b_norm * lg / mu + b_norm * la * g_norm / mu**2 + lb * g_norm / mu
        eps_factor += lg if g_theta is not None else 0.0  # ‖∂θg(x̃) − ∂θg(x̂)‖ ≤ L_∇g ε
        bound = b_norm / mu * delta + eps_factor * epsilon + lb * lg / mu * epsilon**2
        return _Point(x_tilde.detach(), q_new.detach(), z, float(g.detach()), g_norm, bound)

    def accurate_enough(self, point, theta, epsilon, delta, eta, tau):
        """The accuracy loop: tighten ε, δ by τ while ω(ε, δ) > (1 − η)‖z‖ (at most ``_MAX_TIGHTEN`` times)."""
        for _ in range(_MAX_TIGHTEN):
            if point.bound <= (1 - eta) * point.norm or not point.finite or self.exhausted:
                break
            epsilon, delta = tau * epsilon, tau * delta
            point = self.hypergradient(theta, point.x, point.q, epsilon, delta)
        return point, epsilon, delta

    def backtrack(self, point, theta, epsilon, step, rho, eta, trials):
        """The inexact Armijo search: the first α = step·ρⁱ passing the bound test, with θ⁺ and x̃⁺, or None."""
        lg = self.constants["upper_smoothness"](theta)
        lower_bound_now = point.value - point.grad_norm * epsilon
        z_sq = float(torch.sum(point.z * point.z))
        for i in range(trials):
            alpha = step * rho**i
            theta_new = theta - alpha * point.z
            x_new = self.solve_lower(theta_new, point.x, epsilon)
            value, grad_norm = self.upper_value_and_grad(x_new, theta_new)
            upper_bound_new = value + grad_norm * epsilon + lg * epsilon**2 / 2
            if upper_bound_new - lower_bound_now <= -(eta**2) * alpha * z_sq:
                return alpha, theta_new, x_new
            if self.exhausted:
                break
        return None


def _operator_norm(apply, apply_t, start):
    """‖B‖₂ by power iteration on BᵀB from Bᵀ·start (a lower estimate; exact for a one-row B)."""
    v = apply_t(start)
    norm = 0.0
    for _ in range(_POWER_STEPS):
        v_norm = float(torch.linalg.vector_norm(v))
        if v_norm == 0.0:
            return norm
        v = v / v_norm
        image = apply(v)
        norm = max(norm, float(torch.linalg.vector_norm(image)))
        v = apply_t(image)
    return norm


class _Record:
    """The per-step histories of :class:`MAIDResult`."""

    def __init__(self, theta, point, epsilon, delta, lower_work, cg_work):
        self.objectives, self.errors, self.thetas = [point.value], [point.norm], [theta.clone()]
        self.epsilons, self.deltas, self.bounds = [epsilon], [delta], [point.bound]
        self.lower_iterations, self.cg_iterations, self.step_sizes = [lower_work], [cg_work], []

    def add(self, theta, point, epsilon, delta, alpha, lower_work, cg_work):
        self.objectives.append(point.value)
        self.errors.append(point.norm)
        self.thetas.append(theta.clone())
        self.epsilons.append(epsilon)
        self.deltas.append(delta)
        self.bounds.append(point.bound)
        self.step_sizes.append(float(alpha))
        self.lower_iterations.append(lower_work)
        self.cg_iterations.append(cg_work)
