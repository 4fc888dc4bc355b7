r"""Ground costs between point clouds, batched over leading dimensions.

Shapes: ``x`` ``(..., n, d)``, ``y`` ``(..., m, d)`` → cost ``(..., n, m)``, in the dtype that
``x`` and ``y`` promote to.

* :func:`sqeuclidean`: :math:`c(x, y) = \lVert x - y\rVert_2^2`
* :func:`euclidean`: :math:`c(x, y) = \lVert x - y\rVert_2`
* :func:`minkowski`: :math:`c(x, y) = \lVert x - y\rVert_p^{q}` (e.g. the ℓ¹ cost, or ``q = 1.5``)

Every cost depends only on the differences :math:`x_i - y_j`, and so do the values returned,
wherever the clouds sit: :func:`sqeuclidean` uses the fast expansion
:math:`\lVert x\rVert^2 + \lVert y\rVert^2 - 2\langle x, y\rangle` (one matrix product) only after
moving both clouds by a common shift (the midpoint of their means), which removes the
cancellation that made the expansion return 0 for nearby points far from the origin; the other
costs take the differences directly. Half precision: float16/bfloat16 points are computed in
float32 and the cost returned in the input dtype.
"""

from __future__ import annotations

import math

import torch

from regkit._checks import check_number, check_tensor

__all__ = ["euclidean", "minkowski", "sqeuclidean"]


def _check_clouds(x, y) -> torch.dtype:
    """Validate two point clouds; returns the dtype they promote to."""
    check_tensor("x", x, floating=True)
    check_tensor("y", y, floating=True)
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must be point clouds (..., n, d) and (..., m, d) with the same d, "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return torch.promote_types(x.dtype, y.dtype)


def _working(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` in the computing dtype: ``dtype``, or float32 for half precision."""
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    same = x is y
    x = x.to(work)
    return x, (x if same else y.to(work))


def sqeuclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(..., n, m)`` between ``x`` ``(..., n, d)`` and ``y``
    ``(..., m, d)`` (floating point; half precision is computed in float32).

    By the expansion ‖x‖² + ‖y‖² − 2⟨x, y⟩ on clouds centred by a common shift (the cost is
    translation invariant), clamped at 0; when ``y`` is ``x`` (the same tensor) the diagonal is
    exactly 0. Differentiable in ``x`` and ``y``. Raises ``TypeError``/``ValueError`` for
    non-tensors, integer tensors or mismatched shapes.
    """
    dtype = _check_clouds(x, y)
    same = x is y
    x, y = _working(x, y, dtype)
    with torch.no_grad():  # any shift gives the same cost: it carries no gradient
        shift = x.mean(-2, keepdim=True) if same else 0.5 * (x.mean(-2, keepdim=True) + y.mean(-2, keepdim=True))
    x = x - shift
    y = x if same else y - shift
    sq = (x * x).sum(-1, keepdim=True) + (y * y).sum(-1).unsqueeze(-2) - 2 * x @ y.transpose(-1, -2)
    sq = sq.clamp_min(0)
    if same:
        sq.diagonal(dim1=-2, dim2=-1).zero_()
    return sq.to(dtype)


def euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(..., n, m)`` (``torch.cdist`` on the differences, exact near zero,
    where its gradient is 0). Shapes, dtypes and errors as for :func:`sqeuclidean`."""
    dtype = _check_clouds(x, y)
    x, y = _working(x, y, dtype)
    return torch.cdist(x, y, p=2.0, compute_mode="donot_use_mm_for_euclid_dist").to(dtype)


def minkowski(x: torch.Tensor, y: torch.Tensor, p: float = 1.0, power: float = 1.0) -> torch.Tensor:
    """``‖x − y‖_p ** power`` ``(..., n, m)`` for ``1 ≤ p ≤ ∞`` and a finite ``power > 0``.

    Computed from the differences (also for ``p = 2``, where ``torch.cdist`` would otherwise
    switch to the cancelling matrix-product form). At zero distance the gradient is 0, also for
    ``power < 1`` where the derivative is unbounded. Shapes and dtypes as for
    :func:`sqeuclidean`; raises ``ValueError`` naming ``p`` or ``power`` when out of range.
    """
    dtype = _check_clouds(x, y)
    p = check_number("p", p, low=1, high=math.inf)
    power = check_number("power", power, low=0, low_open=True)
    x, y = _working(x, y, dtype)
    distance = torch.cdist(x, y, p=p, compute_mode="donot_use_mm_for_euclid_dist")
    if power == 1:
        return distance.to(dtype)
    if power < 1:  # d ** power has an infinite slope at 0: use the subgradient 0 there
        positive = distance > 0
        distance = torch.where(positive, distance, torch.ones_like(distance))
        return torch.where(positive, distance.pow(power), torch.zeros_like(distance)).to(dtype)
    return distance.pow(power).to(dtype)
