"""Solvers with typed results: implicit differentiation of any solver, bilevel hyperparameter learning
(MAID), target-based surrogates (SSO), gradient-regularized Newton and greedy block coordinate descent.

Every solver returns a :class:`SolverResult` (or a subclass): the solution, ``n_iter``, ``converged``
and the objective and error histories.
"""

from regkit.solvers.block_coordinate_descent import (
    BlockCoordinateDescentResult,
    block_coordinate_descent,
    partition_blocks,
)
from regkit.solvers.implicit import custom_fixed_point, custom_root, root_vjp
from regkit.solvers.linear import conjugate_gradient
from regkit.solvers.maid import MAIDResult, maid
from regkit.solvers.result import SolverResult

__all__ = [
    "BlockCoordinateDescentResult",
    "MAIDResult",
    "SolverResult",
    "block_coordinate_descent",
    "conjugate_gradient",
    "custom_fixed_point",
    "custom_root",
    "maid",
    "partition_blocks",
    "root_vjp",
]
