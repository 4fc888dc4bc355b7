r"""Exact optimal transport between two uniform clouds of the same size: an assignment.

For :math:`a = b = \mathbf 1/n`, an optimal plan of :math:`\min_{P\in U(a,b)}\langle P, C\rangle` is a
permutation matrix divided by :math:`n` (Birkhoff), found by the Hungarian-type solver
``scipy.optimize.linear_sum_assignment``. The limit :math:`\varepsilon \to 0` of entropic OT and
the :math:`k = 1` case of sparsity-constrained OT are checked against it.

Dtypes: the assignment is solved in float64 whatever the cost's floating dtype (half precision
included, read exactly), so nothing is lost to rounding; the result's ``plan`` is float64.

Replicated in ``notebooks/monge_gap.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regkit._checks import check_finite, check_tensor

__all__ = ["ExactOTResult", "exact_ot"]


@dataclass(frozen=True)
class ExactOTResult:
    """``assignment[i]`` is the column matched to row ``i``; ``cost`` is ⟨P, C⟩ with P = perm / n."""

    assignment: torch.Tensor
    cost: float
    n: int

    @property
    def plan(self) -> torch.Tensor:
        """The optimal plan, ``(n, n)`` float64."""
        plan = torch.zeros(self.n, self.n, dtype=torch.float64)
        plan[torch.arange(self.n), self.assignment] = 1.0 / self.n
        return plan


def exact_ot(cost: torch.Tensor) -> ExactOTResult:
    """Exact OT between uniform measures for a square ``(n, n)`` cost, ``n ≥ 1``.

    Any floating dtype is accepted (half precision included): the assignment is solved in
    float64 by scipy, ``cost`` of the result is a Python float and ``plan`` float64. Not
    differentiable. Raises ``ValueError`` naming ``cost`` when it is not square, empty or finite.
    """
    from scipy.optimize import linear_sum_assignment

    check_tensor("cost", cost, ndim=2, floating=True)
    if cost.shape[0] != cost.shape[1] or cost.shape[0] == 0:
        raise ValueError(
            f"cost must be square and non-empty (uniform measures of equal size), got shape {tuple(cost.shape)}"
        )
    check_finite("cost", cost)
    matrix = cost.detach().cpu().double().numpy()
    rows, cols = linear_sum_assignment(matrix)
    return ExactOTResult(torch.as_tensor(cols), float(matrix[rows, cols].mean()), cost.shape[0])
