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
from regkit.solvers.newton import (
    NewtonResult,
    diagonal_hessian,
    exact_hessian,
    gradient_regularized_newton,
    nystrom_diagonal_hessian,
    subsampled_hessian,
)
from regkit.solvers.result import SolverResult
from regkit.solvers.sso import sso, target_surrogate

__all__ = [
    "BlockCoordinateDescentResult",
    "MAIDResult",
    "NewtonResult",
    "SolverResult",
    "block_coordinate_descent",
    "conjugate_gradient",
    "custom_fixed_point",
    "custom_root",
    "diagonal_hessian",
    "exact_hessian",
    "gradient_regularized_newton",
    "maid",
    "nystrom_diagonal_hessian",
    "partition_blocks",
    "root_vjp",
    "sso",
    "subsampled_hessian",
    "target_surrogate",
]
