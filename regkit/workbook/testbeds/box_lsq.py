r"""Least squares in a box: the testbed of ``lion_constrained``.

:math:`f(x) = \tfrac12\lVert Ax - b\rVert^2` with :math:`A \in \mathbb R^{200 \times 50}` (float64) whose
unconstrained optimum lies far outside the box :math:`\lVert x\rVert_\infty \le 1/\lambda`; the exact
box-constrained solution comes from ``scipy.optimize.lsq_linear`` (bounded-variable least squares), and
:func:`descend` runs an optimizer full-batch with a learning rate decaying linearly to 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from scipy.optimize import lsq_linear

__all__ = ["box_solution", "compare", "descend", "objective", "problem", "unconstrained_sup_norm"]


def problem(seed: int, rows: int = 200, dim: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` ``(rows, dim)`` standard normal and ``b = A x_true + 0.1 ε`` with ``x_true ~ 3 N(0, I)`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(rows, dim, generator=g, dtype=torch.float64)
    x_true = 3 * torch.randn(dim, generator=g, dtype=torch.float64)
    b = A @ x_true + 0.1 * torch.randn(rows, generator=g, dtype=torch.float64)
    return A, b


def objective(A: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> float:
    r""":math:`\tfrac12\lVert Ax - b\rVert^2` as a float."""
    return 0.5 * float(((A @ x - b) ** 2).sum())


def unconstrained_sup_norm(A: torch.Tensor, b: torch.Tensor) -> float:
    r""":math:`\lVert x^\star\rVert_\infty` of the unconstrained least-squares solution."""
    return float(torch.linalg.lstsq(A, b[:, None]).solution[:, 0].abs().max())


def box_solution(A: torch.Tensor, b: torch.Tensor, bound: float) -> torch.Tensor:
    r"""The exact minimizer of :math:`f` over :math:`\lVert x\rVert_\infty \le` ``bound`` (scipy's BVLS, tol 1e-12)."""
    return torch.from_numpy(lsq_linear(A.numpy(), b.numpy(), bounds=(-bound, bound), method="bvls", tol=1e-12).x)


def descend(
    A: torch.Tensor,
    b: torch.Tensor,
    make_optimizer: Callable[[list], torch.optim.Optimizer],
    steps: int,
    *,
    trace_every: int = 100,
) -> tuple[torch.Tensor, list[dict]]:
    """``steps`` full-batch steps from ``x = 0`` with the learning rate decaying linearly to 0.

    Returns the final iterate ``(dim,)`` and a trace of ``{"step", "objective" (before the step),
    "sup_norm" (after it)}`` every ``trace_every`` steps and at the last one.
    """
    x = torch.zeros(A.shape[1], dtype=A.dtype, requires_grad=True)
    opt = make_optimizer([x])
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / steps)
    trace = []
    for t in range(steps):
        opt.zero_grad()
        loss = 0.5 * ((A @ x - b) ** 2).sum()
        loss.backward()
        opt.step()
        schedule.step()
        if t % trace_every == 0 or t == steps - 1:
            trace.append({"step": t, "objective": float(loss.detach()), "sup_norm": float(x.detach().abs().max())})
    return x.detach(), trace


def compare(A: torch.Tensor, b: torch.Tensor, x: torch.Tensor, x_box: torch.Tensor) -> dict:
    """An iterate against the box solution: its ∞-norm, ∞-distance to ``x_box``, both objectives
    and the relative objective gap ``f(x) / f(x_box) − 1``."""
    row = {
        "sup_norm": float(x.abs().max()),
        "distance_to_box_solution": float((x - x_box).abs().max()),
        "objective": objective(A, b, x),
        "box_objective": objective(A, b, x_box),
    }
    return {**row, "objective_gap": row["objective"] / row["box_objective"] - 1}
