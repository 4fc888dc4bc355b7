r"""Direct Coverage Optimization: a loss aligned with pass@N.

Chen, Ganguli, Druckmann et al., "Rethinking Fine-Tuning when Scaling Test-Time Compute:
Limiting Confidence Improves Mathematical Reasoning", arXiv:2502.07154.

With :math:`N` independent samples at test time, an example is solved with probability
:math:`1 - (1 - p)^N` where :math:`p = p_\theta(y \mid x)`. DCO maximizes its log:

.. math::

    \ell_{\mathrm{DCO}}^{N} = -\log\bigl(1 - (1 - p)^N\bigr), \qquad
    \nabla \ell_{\mathrm{DCO}}^{N} = F(N, p)\, \nabla \ell_{\mathrm{CE}}, \quad
    F(N, p) = \frac{N p (1 - p)^{N-1}}{1 - (1 - p)^N} .

:math:`F \to 0` as :math:`p \to 1`: solved examples stop pushing confidence up (an
overconfidence limiter); :math:`N = 1` is cross-entropy. Computed in log space from
:math:`\log p` with ``log1mexp(x) = log(1 - e^x)``:
:math:`\ell = -\operatorname{log1mexp}(N \operatorname{log1mexp}(\log p))`, with first-order forms
where :math:`p` or :math:`-N\log(1-p)` falls below :math:`e^{-20}` (there :math:`1 - p` rounds to 1).

Shapes: logits ``(B, C)``, labels ``(B,)``.
"""

from __future__ import annotations

import math

import torch

from regkit._checks import check_range, check_tensor

__all__ = ["coverage_gradient_factor", "log1mexp", "pass_at_n_loss"]


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 - e^{x})` for :math:`x < 0`, accurate at both ends (Mächler, 2012).

    Each branch sees only its own half-line, so the branch not taken has a finite gradient."""
    near, far = x.clamp(min=-math.log(2)), x.clamp(max=-math.log(2))
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(near)), torch.log1p(-torch.exp(far)))


def pass_at_n_loss(logits: torch.Tensor, labels: torch.Tensor, n: int, *, reduction: str = "mean") -> torch.Tensor:
    r"""The DCO loss :math:`-\log(1 - (1 - p_y)^N)` of a softmax classifier.

    Args:
        logits: ``(B, C)`` scores.
        labels: ``(B,)`` integer classes in ``[0, C)``.
        n: the test-time sample budget :math:`N \ge 1` (``n = 1`` is cross-entropy).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    check_tensor("logits", logits, ndim=2, floating=True)
    check_tensor("labels", labels, ndim=1, floating=False)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must have {logits.shape[0]} entries (rows of logits), got {labels.shape[0]}")
    check_range("labels", labels, 0, logits.shape[1])
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    log_p = logits.log_softmax(1).gather(1, labels[:, None]).squeeze(1)
    # p = 1 in floating point would make log(1 - p) = 0 and the loss's gradient NaN
    log_p = log_p.clamp(max=-torch.finfo(log_p.dtype).tiny ** 0.5)
    # log(-N log(1 - p)); for p < e^-20, -log(1 - p) = p to working precision (and 1 - p rounds to 1)
    log_neg_x = math.log(n) + torch.where(log_p < -20, log_p, torch.log(-log1mexp(log_p.clamp(min=-20))))
    # loss = -log(1 - e^x) with x = N log(1 - p); for |x| < e^-20 that is -log(-x)
    losses = -torch.where(log_neg_x < -20, log_neg_x, log1mexp(-torch.exp(log_neg_x.clamp(min=-20))))
    return {"mean": losses.mean, "sum": losses.sum, "none": lambda: losses}[reduction]()


def coverage_gradient_factor(p: torch.Tensor, n: int) -> torch.Tensor:
    r""":math:`F(N, p) = N p (1-p)^{N-1} / (1 - (1-p)^N)`, the factor DCO multiplies the
    cross-entropy gradient by (1 at :math:`N = 1`, → 0 as :math:`p \to 1`)."""
    log1m = torch.log1p(-p)
    return torch.exp(math.log(n) + p.log() + (n - 1) * log1m - log1mexp(n * log1m))
