"""Fixed classification heads: Equiangular Basis Vectors, the simplex ETF and a parameter-free
cosine head with its loss."""

from regkit.heads.equiangular import (
    EBVResult,
    FixedHead,
    ebv_loss,
    equiangular_basis_vectors,
    max_abs_cosine,
    simplex_etf,
    welch_bound,
)

__all__ = [
    "EBVResult",
    "FixedHead",
    "ebv_loss",
    "equiangular_basis_vectors",
    "max_abs_cosine",
    "simplex_etf",
    "welch_bound",
]
