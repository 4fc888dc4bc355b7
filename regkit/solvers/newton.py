"""Gradient-regularized Newton with approximate Hessians and an adaptive gradient-normalized smoothness.

Semenov, Jaggi & Doikov, *Gradient-Normalized Smoothness for Optimization with Approximate Hessians*
(arXiv:2506.13710, 2025), Algorithm 1. For a twice-differentiable objective :math:`f:\\mathbb{R}^d\\to\\mathbb{R}`
and an approximate Hessian :math:`B_k \\approx \\nabla^2 f(x_k)` (exact, diagonal, subsampled over examples,
low rank plus diagonal), each iteration takes the regularized Newton step

.. math::
    x_{k+1} = x_k - \\bigl(B_k + \\lambda_k I\\bigr)^{-1} \\nabla f(x_k),\\qquad
    \\lambda_k = \\frac{\\lVert \\nabla f(x_k) \\rVert^{\\alpha}}{\\gamma_k},

with :math:`\\alpha = 1` in the paper: :math:`\\gamma_k` estimates the *gradient-normalized smoothness*, the
radius of the ball around :math:`x_k` in which :math:`B_k` linearizes the gradient field well. The adaptive
search of Algorithm 1 accepts a trial point when

.. math::
    f(x_k) - f(x_{k+1}) \\ge \\frac{\\lVert \\nabla f(x_{k+1}) \\rVert^2}{8 \\lambda_k},

then doubles :math:`\\gamma` for the next iteration; otherwise it halves :math:`\\gamma` (doubles
:math:`\\lambda_k`) and tries again. ``power`` = :math:`\\alpha` = 1/2 with a fixed :math:`\\gamma = H^{-1/2}`
gives the gradient regularization :math:`\\lambda_k = \\sqrt{H \\lVert\\nabla f(x_k)\\rVert}` of Mishchenko (2023)
and Doikov & Nesterov (2023); ``gamma=math.inf`` without search gives :math:`\\lambda_k = 0`, the undamped
Newton step with the same :math:`B_k` (the baseline that diverges from far starting points).

Shapes: the variable ``x`` is a 1-D tensor of ``d`` entries; an approximate Hessian is a callable returning a
symmetric ``(d, d)`` matrix at ``x``. Dtype and device follow ``x0``; float64 works.

Checked against the official code, ``epfml/grad-norm-smooth``: ``src/methods.py`` (``grad_norm_smooth``:
``lambda_k = g_k_norm / (gamma_k + eps)``, the acceptance test ``f_k - f_new >= g_new_norm_sqr /
(8 * lambda_k)``, ``gamma *= 2`` on acceptance and ``gamma *= 0.5`` on rejection, at most 40 trials, after
which the last trial step is taken) and ``src/approximations.py`` (its Hessian approximations are
problem-specific Gauss-Newton/Fisher terms; the generic diagonal, subsampled and Nyström variants here are
ours). Followed there too: ``λ_k = ‖∇f(x_k)‖^α / (γ_k + 10⁻⁸)`` and ``γ ← max(2γ, 10⁻⁹)`` on acceptance (the
official ``eps`` and ``gamma_min``; without them ``γ`` underflows to 0 near the solution, where the
acceptance test compares differences of ``f`` below its rounding error and every trial is rejected).
Difference: the official code solves by Cholesky and stops the search on a factorization error; here the
step is solved by ``torch.linalg.solve`` (``B_k + λ_k I`` may be indefinite) and a singular system or a
non-finite trial counts as a rejection, so that ``λ`` grows until the step is defined.

Replicated in notebooks/gradient_regularized_newton.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from regkit._checks import check_finite, check_number, check_tensor
from regkit.solvers.result import SolverResult

__all__ = [
    "NewtonResult",
    "diagonal_hessian",
    "exact_hessian",
    "gradient_regularized_newton",
    "nystrom_diagonal_hessian",
    "subsampled_hessian",
]

#: Trials of the adaptive search per iteration (the official code's ``adaptive_search_max_iter``).
_MAX_TRIALS = 40
#: Added to ``γ`` in ``λ = ‖∇f‖^α / (γ + ε)``, and the floor of ``γ`` after doubling (official ``eps``, ``gamma_min``).
_GAMMA_EPS, _GAMMA_MIN = 1e-8, 1e-9


@dataclass(frozen=True)
class NewtonResult(SolverResult):
    """A :class:`~regkit.solvers.SolverResult` of :func:`gradient_regularized_newton`.

    ``objectives``: ``f(x_k)``; ``errors``: ``‖∇f(x_k)‖₂`` (``n_iter + 1`` floats each). Added:
    ``regularizations`` the accepted ``λ_k`` (``n_iter`` floats) and ``n_trials`` the number of trial
    points evaluated (linear solves, each costing one objective and one gradient evaluation), ``n_iter``
    without the adaptive search.
    """

    regularizations: list[float] = field(default_factory=list)
    n_trials: int = 0


def _value_and_gradient(objective, x):
    """``f(x)`` and ``∇f(x)`` (detached), with ``f(x)`` checked to be a scalar tensor."""
    with torch.enable_grad():
        point = x.detach().requires_grad_(True)
        value = objective(point)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"objective must return a scalar tensor, got {got}")
        (gradient,) = torch.autograd.grad(value.reshape(()), point)
    return value.detach().reshape(()), gradient.detach()


def _hessian(function, x):
    """``∇²function(x)`` by ``torch.autograd.functional.hessian`` (vectorized: one batched double backward)."""
    with torch.enable_grad():
        return torch.autograd.functional.hessian(lambda z: function(z).reshape(()), x.detach(), vectorize=True)


def exact_hessian(objective: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The exact Hessian ``x ↦ ∇²f(x)`` (``(d,) → (d, d)``) of a scalar ``objective`` (autograd, vectorized)."""
    return lambda x: _hessian(objective, x)


def _hessian_products(function, x, vectors):
    """``∇²function(x) @ vectors`` (``(d, r)``) from ``r`` Hessian-vector products, without forming the Hessian.

    One double backward per column, batched by ``torch.autograd.grad(..., is_grads_batched=True)``.
    """
    with torch.enable_grad():
        point = x.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(function(point).reshape(()), point, create_graph=True)
        (products,) = torch.autograd.grad(gradient, point, grad_outputs=vectors.T.contiguous(), is_grads_batched=True)
    return products.T.detach()


def _check_probes(probes, generator):
    """``probes`` is ``None`` (exact diagonal) or a positive integer drawn with a ``torch.Generator``."""
    if probes is None:
        return None
    probes = int(check_number("probes", probes, low=1, integer=True))
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator when probes is set, got {type(generator).__name__}")
    return probes


def _rademacher(d, count, generator, like):
    """A ``(d, count)`` matrix of independent ±1 entries drawn from ``generator`` (on the CPU, then moved)."""
    signs = torch.randint(0, 2, (d, count), generator=generator, dtype=torch.int64)
    return (2 * signs - 1).to(like.device, like.dtype)


def diagonal_hessian(
    objective: Callable[[torch.Tensor], torch.Tensor],
    probes: int | None = None,
    generator: torch.Generator | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The diagonal approximation ``x ↦ Diag(∇²f(x))`` (``(d,) → (d, d)``, off-diagonal entries zero).

    ``probes=None`` (default): the exact diagonal, read from the exact Hessian (``d`` Hessian-vector products).
    ``probes=k``: the matrix-free estimate of Bekas, Kokiopoulou & Saad (2007),
    :math:`\\operatorname{diag}(H) \\approx \\sum_j v_j \\odot H v_j / \\sum_j v_j \\odot v_j` with ``k`` Rademacher
    probes :math:`v_j` drawn from ``generator`` at each call: ``k`` Hessian-vector products, unbiased, and exact
    when ``∇²f(x)`` is diagonal. Raises ``ValueError`` for ``probes < 1`` and ``TypeError`` when ``probes`` is
    set without a ``torch.Generator``.
    """
    probes = _check_probes(probes, generator)
    if probes is None:
        hessian = exact_hessian(objective)
        return lambda x: torch.diag(torch.diagonal(hessian(x)))

    def estimate(x):
        vectors = _rademacher(x.numel(), probes, generator, x)
        return torch.diag((vectors * _hessian_products(objective, x, vectors)).mean(1))

    return estimate


def subsampled_hessian(
    subset_objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    n_examples: int,
    fraction: float,
    generator: torch.Generator,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The subsampled Hessian ``x ↦ ∇²f_S(x)`` over a fresh random subset ``S`` of the examples at each call.

    ``subset_objective(x, indices)`` is the objective restricted to the examples ``indices`` (an int64
    tensor), normalized like the full objective (e.g. the mean loss over ``indices`` plus the penalty), so
    that ``E ∇²f_S = ∇²f``. ``S`` has ``ceil(fraction · n_examples)`` indices drawn without replacement
    by ``torch.randperm`` from ``generator`` (a CPU ``torch.Generator``: the same seed gives the same
    subsets). Raises ``ValueError`` for ``n_examples < 1`` or ``fraction`` outside ``(0, 1]``, ``TypeError``
    for a ``generator`` that is not a ``torch.Generator``.
    """
    n_examples = int(check_number("n_examples", n_examples, low=1, integer=True))
    fraction = check_number("fraction", fraction, low=0, high=1, low_open=True)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    size = max(1, math.ceil(fraction * n_examples))

    def hessian(x):
        indices = torch.randperm(n_examples, generator=generator)[:size].to(x.device)
        return _hessian(lambda z: subset_objective(z, indices), x)

    return hessian


def nystrom_diagonal_hessian(
    objective: Callable[[torch.Tensor], torch.Tensor],
    rank: int,
    generator: torch.Generator,
    probes: int | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Low rank plus diagonal: a rank-``rank`` Nyström approximation of ``∇²f(x)`` plus the diagonal it misses.

    With a Gaussian sketch ``Ω`` (``(d, rank)``, drawn from ``generator`` at each call) and ``Y = ∇²f(x) Ω``
    (``rank`` Hessian-vector products; the Hessian itself is not formed), ``N = Y (Ωᵀ Y)⁺ Yᵀ`` and the
    returned ``(d, d)`` matrix is ``N + Diag(r)`` with ``r`` the diagonal of the residual ``∇²f(x) − N``:
    ``probes=None`` (default) reads it exactly (``d`` more products, so the result is exact on the diagonal and
    on the sketched subspace); ``probes=k`` estimates it from ``k`` Rademacher probes as :func:`diagonal_hessian`
    does, so that one call costs ``rank + k`` Hessian-vector products whatever ``d``. Raises ``ValueError`` for
    ``rank < 1`` or ``probes < 1`` and ``TypeError`` for a ``generator`` that is not a ``torch.Generator``.
    """
    rank = int(check_number("rank", rank, low=1, integer=True))
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    probes = _check_probes(probes, generator)

    def approximate(x):
        sketch = torch.randn(x.numel(), rank, generator=generator, dtype=torch.float64).to(x.device, x.dtype)
        product = _hessian_products(objective, x, sketch)
        core = torch.linalg.pinv(sketch.T @ product, hermitian=True)
        nystrom = product @ core @ product.T
        nystrom = (nystrom + nystrom.T) / 2
        if probes is None:
            residual = torch.diagonal(_hessian(objective, x)) - torch.diagonal(nystrom)
        else:
            vectors = _rademacher(x.numel(), probes, generator, x)
            residual = (vectors * (_hessian_products(objective, x, vectors) - nystrom @ vectors)).mean(1)
        return nystrom + torch.diag(residual)

    return approximate


def gradient_regularized_newton(
    objective: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    hessian: Callable[[torch.Tensor], torch.Tensor] | None = None,
    gamma: float = 1.0,
    power: float = 1.0,
    adaptive: bool = True,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> NewtonResult:
    """Minimize ``objective`` by gradient-regularized Newton steps with an (approximate) Hessian (Algorithm 1).

    ``objective`` maps a 1-D tensor ``x`` (``d`` entries) to a scalar tensor, differentiable by autograd;
    ``x0`` the starting point, 1-D floating point (its dtype and device are the solver's). ``hessian``
    maps ``x`` to a symmetric ``(d, d)`` matrix ``B_k`` (:func:`exact_hessian` when ``None``;
    :func:`diagonal_hessian`, :func:`subsampled_hessian`, :func:`nystrom_diagonal_hessian` or any callable).
    Step ``x_{k+1} = x_k − (B_k + λ_k I)⁻¹ ∇f(x_k)`` with ``λ_k = ‖∇f(x_k)‖^power / (γ_k + 10⁻⁸)``; ``gamma`` is
    ``γ_0`` in ``(0, ∞]`` (``∞``: ``λ = 0``, undamped Newton, only with ``adaptive=False``). With
    ``adaptive`` the search of Algorithm 1 sets ``γ_k`` (accept when ``f(x_k) − f(x_{k+1}) ≥
    ‖∇f(x_{k+1})‖² / (8 λ_k)``, then ``γ ← max(2γ, 10⁻⁹)``; else ``γ ← γ/2`` and retry, at most 40 trials, the last
    one taken); without it ``γ`` stays fixed and every step is taken. Stops when ``‖∇f(x_k)‖₂ ≤ tol`` or
    after ``max_iter`` steps, or when an iterate's objective or gradient is not finite (a diverged
    undamped run; that value ends the histories and ``converged`` is ``False``).

    Returns a :class:`NewtonResult`: ``solution`` (``(d,)``), ``n_iter``, ``converged``, ``objectives``
    (``f(x_k)``), ``errors`` (``‖∇f(x_k)‖₂``), ``regularizations`` (``λ_k``) and ``n_trials``.

    Raises ``TypeError`` for a non-tensor ``x0`` or non-numeric scalars; ``ValueError`` for an ``x0``
    that is not 1-D floating point or not finite, ``gamma`` ≤ 0, ``gamma = ∞`` with ``adaptive``,
    ``power`` < 0, ``tol`` < 0, ``max_iter`` < 1, an ``objective`` that is not scalar or not finite at
    ``x0``, or a ``hessian`` that is not ``(d, d)``.
    """
    check_tensor("x0", x0, ndim=1, floating=True)
    check_finite("x0", x0)
    gamma = check_number("gamma", gamma, low=0, high=math.inf, low_open=True)
    if adaptive and math.isinf(gamma):
        raise ValueError("gamma must be finite when adaptive=True (the search halves and doubles it), got inf")
    power = check_number("power", power, low=0)
    tol = check_number("tol", tol, low=0)
    max_iter = int(check_number("max_iter", max_iter, low=1, integer=True))
    if hessian is None:
        hessian = exact_hessian(objective)
    size = x0.numel()
    identity = torch.eye(size, dtype=x0.dtype, device=x0.device)

    x = x0.detach().clone()
    value, gradient = _value_and_gradient(objective, x)
    if not bool(torch.isfinite(value)):
        raise ValueError(f"objective must be finite at x0, got {float(value)}")
    objectives, errors, regularizations = [float(value)], [float(torch.linalg.vector_norm(gradient))], []
    n_trials = 0
    while errors[-1] > tol and len(regularizations) < max_iter:
        matrix = hessian(x)
        if not isinstance(matrix, torch.Tensor) or matrix.shape != (size, size):
            got = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
            raise ValueError(f"hessian must return a ({size}, {size}) matrix, got {got}")
        matrix = matrix.detach().to(x.dtype)
        for trial in range(_MAX_TRIALS):
            regularization = errors[-1] ** power / (gamma + _GAMMA_EPS)
            n_trials += 1
            step, info = torch.linalg.solve_ex(matrix + regularization * identity, gradient)
            candidate = x - step
            if int(info) == 0 and bool(torch.isfinite(candidate).all()):
                new_value, new_gradient = _value_and_gradient(objective, candidate)
            else:
                new_value, new_gradient = torch.tensor(math.nan), torch.full_like(gradient, math.nan)
            new_error = float(torch.linalg.vector_norm(new_gradient))
            if not adaptive:
                break
            decrease = float(value - new_value)
            if 8 * regularization * decrease >= new_error**2:  # False for a NaN trial
                gamma = max(2.0 * gamma, _GAMMA_MIN)
                break
            if trial < _MAX_TRIALS - 1:
                gamma *= 0.5
        x, value, gradient = candidate, new_value, new_gradient
        objectives.append(float(value))
        errors.append(new_error)
        regularizations.append(regularization)
        if not (math.isfinite(objectives[-1]) and math.isfinite(new_error)):
            break
    converged = errors[-1] <= tol
    return NewtonResult(x, len(regularizations), converged, objectives, errors, regularizations, n_trials)
