r"""Ground costs between point clouds, batched over leading dimensions.

Shapes: ``x`` ``(..., n, d)``, ``y`` ``(..., m, d)`` → cost ``(..., n, m)``.

* :func:`sqeuclidean`: :math:`c(x, y) = \lVert x - y\rVert_2^2`
* :func:`euclidean`: :math:`c(x, y) = \lVert x - y\rVert_2`
* :func:`minkowski`: :math:`c(x, y) = \lVert x - y\rVert_p^{q}` (e.g. the ℓ¹ cost, or ``q = 1.5``)
"""

from __future__ import annotations

import torch

from regkit._checks import check_tensor

__all__ = ["sqeuclidean", "euclidean", "minkowski"]


def _check_clouds(x, y) -> None:
    check_tensor("x", x, floating=True)
    check_tensor("y", y, floating=True)
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must be point clouds (..., n, d) and (..., m, d) with the same d, "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )


def sqeuclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances, by the expansion ‖x‖² + ‖y‖² − 2⟨x, y⟩ (clamped at 0)."""
    _check_clouds(x, y)
    sq = (x * x).sum(-1, keepdim=True) + (y * y).sum(-1).unsqueeze(-2) - 2 * x @ y.transpose(-1, -2)
    return sq.clamp_min(0)


def euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (``torch.cdist``, exact near zero)."""
    _check_clouds(x, y)
    return torch.cdist(x, y, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")


def minkowski(x: torch.Tensor, y: torch.Tensor, p: float = 1.0, power: float = 1.0) -> torch.Tensor:
    """``‖x − y‖_p ** power`` for ``p ≥ 1`` and ``power > 0``."""
    _check_clouds(x, y)
    if p < 1:
        raise ValueError(f"p must be at least 1, got {p}")
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    distance = torch.cdist(x, y, p=float(p))
    return distance if power == 1 else distance.pow(power)
