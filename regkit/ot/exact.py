r"""Exact optimal transport between two uniform clouds of the same size: an assignment.

For :math:`a = b = \mathbf 1/n`, an optimal plan of :math:`\min_{P\in U(a,b)}\langle P, C\rangle` is a
permutation matrix divided by :math:`n` (Birkhoff), found by the Hungarian-type solver
``scipy.optimize.linear_sum_assignment``. The limit :math:`\varepsilon \to 0` of entropic OT and
the :math:`k = 1` case of sparsity-constrained OT are checked against it.

Dtypes: the assignment is solved in float64 whatever the cost's floating dtype (half precision
included, read exactly), so nothing is lost to rounding; the result's ``plan``,
``transport_cost`` and ``marginal_error`` are tensors in the cost's dtype on its device.

Replicated in ``notebooks/monge_gap.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regkit._checks import check_finite, check_tensor

__all__ = ["ExactOTResult", "exact_ot"]


@dataclass(frozen=True)
class ExactOTResult:
    """Exact OT between uniform measures of ``n`` points.

    ``assignment`` ``(n,)`` int64, on the cost's device: ``assignment[i]`` is the column matched
    to row ``i``. ``cost`` is the ``(n, n)`` cost as given (detached). The properties follow the
    convention of every :mod:`regkit.ot` result: tensors on the cost's device, in its dtype.
    """

    assignment: torch.Tensor
    cost: torch.Tensor
    n: int

    @property
    def plan(self) -> torch.Tensor:
        """The optimal plan :math:`P = \\Pi / n` (``Π`` the permutation matrix), ``(n, n)``, in
        the cost's dtype and on its device."""
        plan = torch.zeros(self.n, self.n, dtype=self.cost.dtype, device=self.cost.device)
        plan[torch.arange(self.n, device=self.cost.device), self.assignment] = 1.0 / self.n
        return plan

    @property
    def transport_cost(self) -> torch.Tensor:
        """:math:`\\langle P, C\\rangle = \\frac1n \\sum_i C_{i, \\sigma(i)}`, a 0-dim tensor in the
        cost's dtype (summed in float64, then rounded once)."""
        rows = torch.arange(self.n, device=self.cost.device)
        return self.cost[rows, self.assignment].double().mean().to(self.cost.dtype)

    @property
    def marginal_error(self) -> torch.Tensor:
        """:math:`\\lVert P1 - a\\rVert_1 + \\lVert P^\\top 1 - b\\rVert_1`: 0 (a 0-dim tensor in the
        cost's dtype), since a permutation meets both uniform marginals exactly."""
        return self.cost.new_zeros(())


def exact_ot(cost: torch.Tensor) -> ExactOTResult:
    """Exact OT between uniform measures for a square ``(n, n)`` cost, ``n ≥ 1``.

    Any floating dtype and device are accepted (half precision included): the assignment is
    solved in float64 on the CPU by scipy's ``linear_sum_assignment`` (Jonker–Volgenant), and the
    result's tensors are on the cost's device in its dtype. Not differentiable.

    Returns:
        an :class:`ExactOTResult`.

    Raises:
        TypeError: ``cost`` is not a tensor.
        ValueError: naming ``cost`` when it is not floating, square, non-empty or finite.
    """
    from scipy.optimize import linear_sum_assignment

    check_tensor("cost", cost, ndim=2, floating=True)
    if cost.shape[0] != cost.shape[1] or cost.shape[0] == 0:
        raise ValueError(
            f"cost must be square and non-empty (uniform measures of equal size), got shape {tuple(cost.shape)}"
        )
    check_finite("cost", cost)
    _, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
    return ExactOTResult(torch.as_tensor(cols, dtype=torch.long, device=cost.device), cost.detach(), cost.shape[0])
