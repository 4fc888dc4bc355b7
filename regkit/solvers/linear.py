"""Conjugate gradient for symmetric positive-definite systems given only as a matrix-vector product.

Solves :math:`A x = b` for an SPD operator :math:`A` known through ``matvec(v) = A v`` (a Hessian-vector
product, a Gram matrix, a damped Jacobian product) — the linear solve at the heart of implicit
differentiation, MAID's hypergradient and Newton-CG. Hestenes & Stiefel (1952); Nocedal & Wright,
*Numerical Optimization*, Algorithm 5.2:

.. math::
    r_0 = b - A x_0,\\ p_0 = r_0;\\quad
    \\alpha_k = \\frac{r_k^\\top r_k}{p_k^\\top A p_k},\\ x_{k+1} = x_k + \\alpha_k p_k,\\
    r_{k+1} = r_k - \\alpha_k A p_k,\\ p_{k+1} = r_{k+1} + \\frac{r_{k+1}^\\top r_{k+1}}{r_k^\\top r_k} p_k,

stopped when :math:`\\lVert r_k \\rVert_2 \\le \\text{tol}\\cdot\\lVert b \\rVert_2` (relative residual) or after
``max_iter`` products. Tensors of any shape are treated as flat vectors; dtype and device follow ``rhs``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from regkit._checks import check_finite, check_number, check_tensor
from regkit.solvers.result import SolverResult

__all__ = ["conjugate_gradient"]


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    *,
    x0: torch.Tensor | None = None,
    tol: float = 1e-10,
    max_iter: int | None = None,
) -> SolverResult:
    """Solve ``matvec(x) = rhs`` for a symmetric positive-definite linear operator by conjugate gradient.

    ``matvec`` maps a tensor shaped like ``rhs`` to one of the same shape and dtype; ``rhs`` any shape,
    floating point; ``x0`` the starting point (zeros when ``None``), shaped like ``rhs``. Stops when the
    residual's 2-norm is at most ``tol`` times ``rhs``'s (``tol`` in ``[0, 1)``) or after ``max_iter``
    products (default: the number of entries of ``rhs``, where exact arithmetic would have converged).

    Returns a :class:`~regkit.solvers.SolverResult`: ``solution`` shaped like ``rhs``, ``n_iter`` the
    number of ``matvec`` calls made in the loop, ``converged``, ``errors`` the relative residual norms
    ``‖b − A x_k‖ / ‖b‖`` (from the recursion) for ``k = 0 … n_iter``; ``objectives`` is empty. Runs
    without building a graph through the iterations (wrap the result in an autograd rule to
    differentiate it, as :mod:`regkit.solvers.implicit` does).

    Raises ``ValueError`` for a non-floating or non-finite ``rhs``, an ``x0`` of another shape,
    ``tol`` outside ``[0, 1)``, ``max_iter`` < 1, a ``matvec`` output of the wrong shape, or a
    direction with ``pᵀAp ≤ 0`` (the operator is not positive definite).
    """
    check_tensor("rhs", rhs, floating=True)
    check_finite("rhs", rhs)
    tol = check_number("tol", tol, low=0, high=1, high_open=True)
    if max_iter is None:
        max_iter = max(rhs.numel(), 1)
    max_iter = int(check_number("max_iter", max_iter, low=1, integer=True))
    if x0 is not None:
        check_tensor("x0", x0, floating=True)
        if x0.shape != rhs.shape:
            raise ValueError(f"x0 must have rhs's shape {tuple(rhs.shape)}, got {tuple(x0.shape)}")
    with torch.no_grad():
        x = torch.zeros_like(rhs) if x0 is None else x0.detach().to(rhs.dtype).clone()
        rhs_norm = float(torch.linalg.vector_norm(rhs))
        if rhs_norm == 0.0:
            return SolverResult(torch.zeros_like(rhs), 0, True, [], [0.0])
        residual = rhs - _apply(matvec, x, rhs) if x0 is not None else rhs.clone()
        direction = residual.clone()
        rr = torch.sum(residual * residual)
        errors = [float(rr.sqrt()) / rhs_norm]
        n_iter = 0
        while errors[-1] > tol and n_iter < max_iter:
            product = _apply(matvec, direction, rhs)
            curvature = torch.sum(direction * product)
            if not curvature > 0:
                raise ValueError(
                    f"matvec is not positive definite: a conjugate direction has pᵀAp = {float(curvature):.3g} <= 0"
                )
            step = rr / curvature
            x.add_(direction, alpha=float(step))
            residual.sub_(product, alpha=float(step))
            rr_next = torch.sum(residual * residual)
            direction.mul_(rr_next / rr).add_(residual)
            rr = rr_next
            n_iter += 1
            errors.append(float(rr.sqrt()) / rhs_norm)
    return SolverResult(x, n_iter, errors[-1] <= tol, [], errors)


def _apply(matvec, vector, rhs):
    """``matvec(vector)``, checked to return a tensor shaped like ``rhs``."""
    out = matvec(vector)
    if not isinstance(out, torch.Tensor) or out.shape != rhs.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"matvec must return a tensor of rhs's shape {tuple(rhs.shape)}, got {got}")
    return out.to(rhs.dtype)
