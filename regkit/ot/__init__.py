"""Optimal transport: costs, log-domain Sinkhorn, Sinkhorn–Newton–Sparse, sparsity-constrained
OT, the Monge gap, exact OT for small uniform problems, and map-quality metrics (L2-UVP).

Conventions shared by every solver (detailed in :mod:`regkit.ot.sinkhorn`): float16/bfloat16
inputs are solved in float32 and results returned in the input dtype, ``converged`` only when
the returned plan meets ``tol``; zero weights are allowed and get empty rows/columns (and finite
envelope gradients); costs do not depend on where the clouds sit; every numeric and enumerated
argument is validated with a ``ValueError`` naming it."""

from regkit.ot.costs import euclidean, minkowski, sqeuclidean
from regkit.ot.exact import ExactOTResult, exact_ot
from regkit.ot.geometry import PointCloud
from regkit.ot.metrics import gaussian_moment_errors, l2_uvp
from regkit.ot.monge_gap import ResidualMap, fit_map, monge_gap
from regkit.ot.newton import SNSResult, sinkhorn_newton_sparse
from regkit.ot.online import OnlineSinkhornResult, sinkhorn_online
from regkit.ot.sinkhorn import SinkhornResult, epsilon_schedule, sinkhorn, sinkhorn_divergence
from regkit.ot.sparse import (
    SparseOTResult,
    sparse_simplex_projection,
    sparsity_constrained_ot,
)

__all__ = [
    "ExactOTResult",
    "OnlineSinkhornResult",
    "PointCloud",
    "ResidualMap",
    "SNSResult",
    "SinkhornResult",
    "SparseOTResult",
    "epsilon_schedule",
    "euclidean",
    "exact_ot",
    "fit_map",
    "gaussian_moment_errors",
    "l2_uvp",
    "minkowski",
    "monge_gap",
    "sinkhorn",
    "sinkhorn_divergence",
    "sinkhorn_newton_sparse",
    "sinkhorn_online",
    "sparse_simplex_projection",
    "sparsity_constrained_ot",
    "sqeuclidean",
]
