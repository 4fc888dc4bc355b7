r"""Sinkhorn–Newton–Sparse (SNS): Sinkhorn warm-up, then Newton steps with a sparsified Hessian.

Tang, Shavlovsky, Rahmanian, Tardini, Thekumparampil, Xiao & Ying, "Accelerating Sinkhorn
Algorithm with Sparse Newton Iterations", ICLR 2024, arXiv:2401.12253.

With the notation of :mod:`regkit.ot.sinkhorn`, the entropic dual

.. math::

    F(f, g) = \langle f, a\rangle + \langle g, b\rangle - \varepsilon \sum_{ij} P_{ij},
    \qquad P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\varepsilon}

is concave with :math:`\nabla_f F = a - P\mathbf 1`, :math:`\nabla_g F = b - P^\top \mathbf 1` and
:math:`\nabla^2 F = -\tfrac1\varepsilon \begin{pmatrix} \operatorname{diag}(P\mathbf 1) & P \\ P^\top
& \operatorname{diag}(P^\top\mathbf 1)\end{pmatrix}`. Sinkhorn is alternating exact
maximization of :math:`F`; near the optimum the plan concentrates on few entries, so SNS keeps
the :math:`\lceil \rho\, nm\rceil` largest entries of :math:`P` in the off-diagonal blocks (the
diagonal blocks stay exact, which keeps the matrix diagonally dominant and positive
semi-definite), solves the Newton system with Jacobi-preconditioned conjugate gradient in
:math:`O(\rho nm)` per iteration, and takes a backtracking (Armijo) line search on :math:`F`.
Per Newton step the cost is :math:`O(nm)`, as for a Sinkhorn step; the number of steps is far
smaller when :math:`\varepsilon` is small. Shapes as in :func:`regkit.ot.sinkhorn` (no batch).

Replicated in ``notebooks/sinkhorn_newton_sparse.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch

from regkit._checks import check_number
from regkit.ot.sinkhorn import (
    _HALF,
    SinkhornResult,
    _rounded_plan_error,
    check_problem,
    sinkhorn,
)

__all__ = ["SNSResult", "sinkhorn_newton_sparse"]


@dataclass(frozen=True)
class SNSResult(SinkhornResult):
    """A :class:`SinkhornResult` plus the Newton stage's record: ``n_sinkhorn`` warm-up and
    ``n_newton`` Newton iterations (``n_iter`` is their sum), the fraction of plan entries kept
    in the Hessian, and the conjugate-gradient iterations and step sizes of each Newton step."""

    n_sinkhorn: int
    n_newton: int
    hessian_density: float
    cg_iterations: list[int]
    step_sizes: list[float]


def _sparse_hessian(plan: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, keep: int) -> torch.Tensor:
    """``[[diag(rows), P̃], [P̃ᵀ, diag(cols)]]`` in CSR, P̃ the ``keep`` largest entries of ``plan``."""
    n, m = plan.shape
    values, flat = plan.flatten().topk(keep, sorted=False)
    r, c = flat // m, flat % m + n
    diagonal = torch.arange(n + m, device=plan.device)
    index = torch.stack([torch.cat([r, c, diagonal]), torch.cat([c, r, diagonal])])
    entries = torch.cat([values, values, rows, cols])
    coo = torch.sparse_coo_tensor(index, entries, (n + m, n + m), check_invariants=False).coalesce()
    with warnings.catch_warnings():  # CSR is "beta" in torch, and its matrix-vector product 3-4× faster than COO's
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


def _conjugate_gradient(matvec, rhs, diagonal, *, rtol: float, max_iter: int) -> tuple[torch.Tensor, int]:
    """Jacobi-preconditioned CG for ``matvec(x) = rhs`` (symmetric positive semi-definite)."""
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    inv_diag = 1.0 / diagonal.clamp_min(torch.finfo(rhs.dtype).tiny)
    z = inv_diag * residual
    direction = z.clone()
    rz = residual @ z
    stop = rtol * rhs.norm()
    for iteration in range(1, max_iter + 1):
        product = matvec(direction)
        curvature = direction @ product
        if curvature <= 0:
            return x, iteration
        step = rz / curvature
        x += step * direction
        residual -= step * product
        if residual.norm() <= stop:
            return x, iteration
        z = inv_diag * residual
        rz_next = residual @ z
        direction = z + (rz_next / rz) * direction
        rz = rz_next
    return x, max_iter


def sinkhorn_newton_sparse(
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    cost: torch.Tensor,
    eps: float,
    *,
    tol: float = 1e-8,
    warmup: int = 20,
    max_newton: int = 200,
    density: float | None = None,
    cg_rtol: float | None = None,
    cg_max_iter: int = 200,
    armijo: float = 1e-4,
) -> SNSResult:
    """Solve entropic OT to an L1 marginal error below ``tol`` with SNS.

    Args:
        a, b, cost, eps: the problem, as for :func:`regkit.ot.sinkhorn` (``None`` = uniform).
        tol: target L1 marginal error :math:`\\lVert P1-a\\rVert_1 + \\lVert P^\\top 1-b\\rVert_1`.
        warmup: Sinkhorn iterations before the Newton stage (it stops earlier at ``tol``).
        max_newton: most Newton iterations.
        density: fraction :math:`\\rho` of plan entries kept in the Hessian's off-diagonal
            blocks; default ``min(1, 50 / min(n, m))``, about fifty entries per row (too few
            and the Newton steps degrade to slow linear convergence).
        cg_rtol, cg_max_iter: conjugate-gradient stopping rule (relative residual); the
            default ``cg_rtol`` is the inexact-Newton forcing term ``min(0.1, sqrt(error))``.
        armijo: sufficient-increase constant of the backtracking line search.

    Use float64 for tolerances below about 1e-6. Half-precision costs are solved in float32
    and zero weights are allowed, as for :func:`regkit.ot.sinkhorn` (see :mod:`regkit.ot.sinkhorn`);
    ``converged`` says the returned plan meets ``tol``.

    Returns:
        An :class:`SNSResult`.

    Raises:
        ValueError: naming the argument: any problem :func:`regkit.ot.sinkhorn` rejects, a batched
            cost, ``tol < 0``, ``warmup``/``max_newton`` not integers ≥ 0, ``density`` outside
            (0, 1], ``cg_rtol`` outside [0, 1), ``cg_max_iter`` not an integer ≥ 1, ``armijo``
            outside (0, 1).
    """
    a, b, cost = check_problem(a, b, cost, eps)
    if cost.ndim != 2:
        raise ValueError(f"cost must be a single (n, m) matrix for SNS, got shape {tuple(cost.shape)}")
    eps = check_number("eps", eps, low=0, low_open=True)
    tol = check_number("tol", tol, low=0, high=math.inf)
    warmup = check_number("warmup", warmup, low=0, integer=True)
    max_newton = check_number("max_newton", max_newton, low=0, integer=True)
    if density is not None:
        density = check_number("density", density, low=0, high=1, low_open=True)
    if cg_rtol is not None:
        cg_rtol = check_number("cg_rtol", cg_rtol, low=0, high=1, high_open=True)
    cg_max_iter = check_number("cg_max_iter", cg_max_iter, low=1, integer=True)
    armijo = check_number("armijo", armijo, low=0, high=1, low_open=True, high_open=True)
    n, m = cost.shape
    density = min(1.0, 50.0 / min(n, m)) if density is None else density
    keep = max(1, math.ceil(density * n * m))
    half = cost.dtype in _HALF
    target = tol / 2 if half else tol  # the returned plan is rounded: leave room (see sinkhorn)

    start = time.perf_counter()
    times: list[float] = []
    errors: list[float] = []
    with torch.no_grad():
        C = cost.detach().to(a.dtype)  # float32 for half precision
        log_ab = a.log().unsqueeze(1) + b.log().unsqueeze(0)
        if warmup:
            warm = sinkhorn(a, b, C, eps, max_iter=warmup, tol=target)
            f, g = warm.f.clone(), warm.g.clone()
            errors += warm.errors
            times += warm.times
        else:
            f, g = torch.zeros(n, dtype=C.dtype, device=C.device), torch.zeros(m, dtype=C.dtype, device=C.device)
        n_sinkhorn = len(errors)

        def plan_of(f, g):
            return ((f.unsqueeze(1) + g.unsqueeze(0) - C) / eps + log_ab).exp()

        def dual(f, g, plan):
            return f @ a + g @ b - eps * plan.sum()

        plan = plan_of(f, g)
        value = dual(f, g, plan)
        cg_iterations: list[int] = []
        step_sizes: list[float] = []
        converged = bool(errors) and errors[-1] < target
        for _ in range(max_newton if not converged else 0):
            rows, cols = plan.sum(1), plan.sum(0)
            grad = torch.cat([a - rows, b - cols])
            error = float(grad.abs().sum())
            if error < target:
                converged = True
                break
            hessian = _sparse_hessian(plan, rows, cols, keep)
            rtol = min(0.1, math.sqrt(error)) if cg_rtol is None else cg_rtol  # inexact Newton forcing term
            solution, iterations = _conjugate_gradient(
                hessian.__matmul__, grad, torch.cat([rows, cols]), rtol=rtol, max_iter=cg_max_iter
            )
            direction = eps * solution  # ascent direction: -(∇²F)⁻¹ ∇F with the sparsified Hessian
            slope = float(grad @ direction)
            step = 1.0
            while step > 1e-10:
                f_try, g_try = f + step * direction[:n], g + step * direction[n:]
                plan_try = plan_of(f_try, g_try)
                value_try = dual(f_try, g_try, plan_try)
                if torch.isfinite(value_try) and value_try >= value + armijo * step * slope:
                    break
                step /= 2
            else:  # no ascent along the direction: the sparsified Hessian is too coarse
                break
            f, g, plan, value = f_try, g_try, plan_try, value_try
            cg_iterations.append(iterations)
            step_sizes.append(step)
            errors.append(float((plan.sum(1) - a).abs().sum() + (plan.sum(0) - b).abs().sum()))
            times.append(time.perf_counter() - start)
            if errors[-1] < target:
                converged = True
                break
        if bool((a == 0).any()) or bool((b == 0).any()):
            # a zero weight's potential is free: take the c-transform of the other side, which makes
            # the gradient of the regularized cost with respect to that weight the envelope gradient
            f = torch.where(a > 0, f, -eps * torch.logsumexp((g.unsqueeze(0) - C) / eps + b.log().unsqueeze(0), dim=1))
            g = torch.where(b > 0, g, -eps * torch.logsumexp((f.unsqueeze(1) - C) / eps + a.log().unsqueeze(1), dim=0))
        if converged and half:
            converged = _rounded_plan_error(f, g, a, b, cost, eps) < tol
    return SNSResult(
        f,
        g,
        a,
        b,
        cost,
        eps,
        len(errors),
        converged,
        errors,
        times,
        n_sinkhorn=n_sinkhorn,
        n_newton=len(errors) - n_sinkhorn,
        hessian_density=keep / (n * m),
        cg_iterations=cg_iterations,
        step_sizes=step_sizes,
    )
