"""The typed result every solver of :mod:`regkit.solvers` returns.

Like the OT solvers' :class:`~regkit.ot.SinkhornResult` (and OTT-JAX's solver outputs), a solver returns
a frozen dataclass rather than a bare tensor: the solution together with how it was reached, so that
a caller can check ``converged`` instead of trusting an iteration budget, and plot ``objectives`` or
``errors`` without re-running. A solver with more to report subclasses :class:`SolverResult` and adds
fields after these.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SolverResult"]


@dataclass(frozen=True)
class SolverResult:
    """A solution and the record of the iterations that produced it.

    ``solution``: the final iterate, shape and dtype as the solver's variable. ``n_iter``: iterations
    taken (an iteration is what the solver's docstring calls one: a step, a block update, an outer
    step). ``converged``: whether the stopping test (``errors[-1] <= tol``) held before the
    iteration budget ran out. ``objectives``: the objective at the start and after each iteration
    (``n_iter + 1`` floats; empty when the solver has no objective). ``errors``: the stopping measure
    (a gradient norm, a fixed-point residual, a relative change, as the solver documents) at the
    start and after each iteration (``n_iter + 1`` floats).
    """

    solution: torch.Tensor
    n_iter: int
    converged: bool
    objectives: list[float]
    errors: list[float]

    @property
    def objective(self) -> float:
        """The objective at the solution (``objectives[-1]``); NaN when the solver records none."""
        return self.objectives[-1] if self.objectives else float("nan")

    @property
    def error(self) -> float:
        """The stopping measure at the solution (``errors[-1]``)."""
        return self.errors[-1]
