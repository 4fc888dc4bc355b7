r"""StableMax: a softmax that cannot collapse.

Prieto, Barsbey, Mediano & Birdal, "Grokking at the Edge of Numerical Stability",
ICLR 2025, arXiv:2501.04697.

Softmax cross-entropy keeps pushing the logits of a fitted example apart; once
:math:`\exp(z_y)` absorbs every other term of :math:`\sum_j \exp(z_j)` in floating point,
the loss and its gradient become exactly zero ("Softmax Collapse") and learning stops.
StableMax replaces :math:`\exp` by a function that grows only linearly:

.. math::

    s(x) = \begin{cases} x + 1 & x \ge 0 \\ \dfrac{1}{1 - x} & x < 0 \end{cases}, \qquad
    \operatorname{StableMax}(z)_i = \frac{s(z_i)}{\sum_j s(z_j)}, \qquad
    \ell = -\log \operatorname{StableMax}(z)_y .

:math:`s` is positive, increasing and :math:`C^1` at 0. ``log s`` is computed as
``log1p(x)`` or ``-log1p(-x)``; like the authors' ``stablemax_cross_entropy`` the loss is
evaluated in float64 by default.

Shapes: logits ``(N, C)``, labels ``(N,)``.

Replicated in ``notebooks/stablemax_grokking.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import torch

from regkit._checks import apply_reduction, check_logits_and_labels, check_reduction, upcast_half

__all__ = ["log_stablemax", "stablemax", "stablemax_cross_entropy"]


def _log_s(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, torch.log1p(x.clamp(min=0)), -torch.log1p(-x.clamp(max=0)))


def log_stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log StableMax(logits)`` along ``dim``."""
    log_s = _log_s(logits)
    return log_s - torch.logsumexp(log_s, dim=dim, keepdim=True)


def stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """StableMax probabilities along ``dim`` (positive, summing to one, monotone in each logit)."""
    return log_stablemax(logits, dim).exp()


def stablemax_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    reduction: str = "mean",
    compute_dtype: torch.dtype | None = torch.float64,
) -> torch.Tensor:
    r"""Cross-entropy with StableMax in place of softmax: :math:`-\log \operatorname{StableMax}(z)_y`.

    Args:
        logits: ``(N, C)`` scores.
        labels: ``(N,)`` integer classes in ``[0, C)``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        compute_dtype: a floating dtype for the computation (the authors use float64);
            ``None`` keeps the logits' dtype (float16/bfloat16 are computed in float32). The
            result is cast back to the logits' dtype.

    Raises:
        ValueError: naming the argument: shapes/dtypes, NaN/+inf logits (−inf masks a
            class), labels outside ``[0, C)``, ``reduction``, a non-floating ``compute_dtype``.
    """
    labels = check_logits_and_labels(logits, labels)
    check_reduction(reduction)
    if compute_dtype is not None and not (isinstance(compute_dtype, torch.dtype) and compute_dtype.is_floating_point):
        raise ValueError(f"compute_dtype must be a floating torch.dtype or None, got {compute_dtype!r}")
    z = upcast_half(logits) if compute_dtype is None else logits.to(compute_dtype)
    losses = -log_stablemax(z).gather(1, labels[:, None]).squeeze(1)
    return apply_reduction(losses, reduction).to(logits.dtype)
