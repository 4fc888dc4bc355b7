"""Optimal transport: costs, log-domain Sinkhorn, Sinkhorn–Newton–Sparse, exact OT."""

from regkit.ot.costs import euclidean, minkowski, sqeuclidean
from regkit.ot.newton import SNSResult, sinkhorn_newton_sparse
from regkit.ot.sinkhorn import SinkhornResult, sinkhorn, sinkhorn_divergence

__all__ = [
    "SNSResult",
    "SinkhornResult",
    "euclidean",
    "minkowski",
    "sinkhorn",
    "sinkhorn_divergence",
    "sinkhorn_newton_sparse",
    "sqeuclidean",
]
