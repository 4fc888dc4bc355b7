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

Replicated in ``notebooks/pass_at_n_loss.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math

import torch

from regkit._checks import (
    apply_reduction,
    check_logits_and_labels,
    check_number,
    check_reduction,
    check_tensor,
    upcast_half,
)

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
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        the loss in the logits' dtype (float16/bfloat16 computed in float32; −inf logits mask classes).

    Raises:
        ValueError: naming the argument: logits/labels shapes and dtypes, NaN/+inf logits,
            labels outside ``[0, C)``, ``n`` not a positive integer, ``reduction``.
    """
    labels = check_logits_and_labels(logits, labels)
    n = check_number("n", n, low=1, integer=True)
    check_reduction(reduction)
    log_p = upcast_half(logits).log_softmax(1).gather(1, labels[:, None]).squeeze(1)
    # p = 1 in floating point would make log(1 - p) = 0 and the loss's gradient NaN
    log_p = log_p.clamp(max=-(torch.finfo(log_p.dtype).tiny ** 0.5))
    # log(-N log(1 - p)); for p < e^-20, -log(1 - p) = p to working precision (and 1 - p rounds to 1)
    log_neg_x = math.log(n) + torch.where(log_p < -20, log_p, torch.log(-log1mexp(log_p.clamp(min=-20))))
    # loss = -log(1 - e^x) with x = N log(1 - p); for |x| < e^-20 that is -log(-x)
    losses = -torch.where(log_neg_x < -20, log_neg_x, log1mexp(-torch.exp(log_neg_x.clamp(min=-20))))
    return apply_reduction(losses, reduction).to(logits.dtype)


def coverage_gradient_factor(p: torch.Tensor, n: int) -> torch.Tensor:
    r""":math:`F(N, p) = N p (1-p)^{N-1} / (1 - (1-p)^N)`, the factor DCO multiplies the
    cross-entropy gradient by (1 at :math:`N = 1`, → 0 as :math:`p \to 1`).

    Evaluated in log space; the ends take their limits: :math:`F(N, 0) = 1`,
    :math:`F(N, 1) = 0` for :math:`N > 1` and :math:`F(1, p) = 1`.

    Args:
        p: floating probabilities in ``[0, 1]``; n: integer :math:`N \ge 1`.

    Raises:
        ValueError: naming ``p`` (not floating, outside [0, 1]) or ``n``.
    """
    check_tensor("p", p, floating=True)
    n = check_number("n", n, low=1, integer=True)
    if bool(((p < 0) | (p > 1) | p.isnan()).any()):
        raise ValueError("p must hold probabilities in [0, 1]")
    inside = (p > 0) & (p < 1)
    safe = torch.where(inside, upcast_half(p), 0.5)
    log1m = torch.log1p(-safe)
    value = torch.exp(math.log(n) + safe.log() + (n - 1) * log1m - log1mexp(n * log1m))
    edge = torch.where(p == 0, 1.0, 1.0 if n == 1 else 0.0)
    return torch.where(inside, value, edge).to(p.dtype)
