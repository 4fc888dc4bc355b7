r"""Label-distributionally robust losses: LDR-KL and its adaptive version ALDR-KL.

Zhu, Ying & Yang, "Label Distributionally Robust Losses for Multi-class Classification:
Consistency, Robustness and Adaptivity", ICML 2023, arXiv:2112.14869 (authors' code in LibAUC).

The loss is the worst case, over distributions :math:`q` on the labels regularized toward
uniform, of the margin-shifted score differences
:math:`\delta_k = s_k - s_y + c\,\mathbb 1[k \ne y]`:

.. math::

    \mathcal L_{\mathrm{LDR\text{-}KL}}^{\lambda}(s, y) = \max_{q \in \Delta_K} \sum_k q_k \delta_k - \lambda\,
        \mathrm{KL}(q \,\|\, \tfrac1K \mathbf 1) = \lambda \log \frac1K \sum_k e^{\delta_k / \lambda}.

Large :math:`\lambda` tends to the mean of :math:`\delta` over labels (symmetric, noise robust),
small :math:`\lambda` to :math:`\max_k \delta_k` (the Crammer–Singer hinge). As in the authors'
code the scores are normalized,
:math:`s = \operatorname{softplus}(z) / \operatorname{mean}_k \operatorname{softplus}(z_k)`, which bounds the loss.

**ALDR-KL** gives each example its own :math:`\lambda_i`, regularized toward :math:`\lambda_0` by
:math:`-\frac{\alpha \log K}{2 \lambda_0}(\lambda_i - \lambda_0)^2`; its closed-form update from the
authors' code is

.. math:: \lambda_i \leftarrow
    \lambda_0 \Big(1 - \frac{\mathrm{KL}(\hat q_i \,\|\, \tfrac1K \mathbf 1)}{\alpha \log K}\Big), \qquad
    \hat q_i = \operatorname{softmax}(s_i / \lambda_i^{\mathrm{old}}),

so confident (possibly memorized) examples get a smaller :math:`\lambda_i`. The ALDR scores are
normalized by the mean absolute score, :math:`s = z / (\lVert z\rVert_1 / K)`, as in that code.

Numerics: :math:`\lambda(\log\frac1K\sum_k e^{x_k})` with :math:`x = \delta/\lambda` is evaluated as
:math:`\lambda\,(m + \operatorname{log1p}(\operatorname{mean}_k \operatorname{expm1}(x_k - m)))`,
:math:`m = \max_k x_k`, so it neither overflows as :math:`\lambda \to 0` (limit :math:`\max_k \delta_k`) nor cancels as
:math:`\lambda \to \infty` (limit :math:`\operatorname{mean}_k \delta_k`). The softplus scores are formed as
:math:`K \operatorname{softmax}_k(\log \operatorname{softplus}(z_k))`, finite for any finite or masked (−inf)
logits, and an all-zero ALDR row gets scores 0 (not 0/0). float16/bfloat16 logits are
computed in float32.

Replicated in ``notebooks/ldr_losses.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import (
    apply_reduction,
    as_labels,
    check_finite,
    check_logits_and_labels,
    check_number,
    check_range,
    check_reduction,
    upcast_half,
)
from regkit.distributed import sync_rows

__all__ = ["ALDRKLLoss", "ldr_kl_loss"]


def _margins(scores: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """:math:`\\delta_k = s_k - s_y + c\\,[k \\ne y]`, shape ``(B, K)``."""
    not_label = 1 - F.one_hot(labels, scores.shape[1]).to(scores.dtype)
    return scores - scores.gather(1, labels[:, None]) + margin * not_label


def _log_mean_exp_scaled(delta: torch.Tensor, lam) -> torch.Tensor:
    """:math:`\\lambda \\log \\frac1K \\sum_k \\exp(\\delta_k / \\lambda)` per row, stable at both ends of λ."""
    x = delta / lam
    m = x.amax(1, keepdim=True).detach()
    return (lam * (m + torch.log1p(torch.expm1(x - m).mean(1, keepdim=True)))).squeeze(1)


def _softplus_scores(logits: torch.Tensor) -> torch.Tensor:
    """:math:`\\operatorname{softplus}(z) / \\operatorname{mean}_k \\operatorname{softplus}(z_k)` without underflow."""
    log_softplus = torch.where(logits < -50, logits, torch.log(F.softplus(logits.clamp(min=-50))))
    return logits.shape[1] * torch.softmax(log_softplus, 1)


def ldr_kl_loss(
    logits, labels, *, lam: float = 1.0, margin: float = 2.0, normalize: bool = True, reduction: str = "mean"
) -> torch.Tensor:
    r""":math:`\lambda \log \frac1K \sum_k \exp(\delta_k / \lambda)` on (normalized) scores.

    Args:
        logits: ``(B, K)`` floating scores (−inf masks a class); labels: ``(B,)`` integer classes.
        lam: the KL weight :math:`\lambda > 0` (finite).
        margin: :math:`c`, the margin added to every wrong label (2 in the authors' defaults).
        normalize: use ``softplus(z) / mean(softplus(z))`` as scores (the authors' choice).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        the loss, in the logits' dtype: ``(B,)`` for ``"none"``, else a scalar.

    Raises:
        ValueError: naming the argument, for bad logits/labels, ``lam``, ``margin`` or ``reduction``.
        TypeError: ``normalize`` is not a bool.
    """
    labels = check_logits_and_labels(logits, labels)
    lam = check_number("lam", lam, low=0, low_open=True)
    margin = check_number("margin", margin)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    check_reduction(reduction)
    scores = upcast_half(logits)
    if normalize:
        scores = _softplus_scores(scores)
    delta = _margins(scores, labels, margin)
    losses = _log_mean_exp_scaled(delta, lam)
    return apply_reduction(losses, reduction).to(logits.dtype)


class ALDRKLLoss(nn.Module):
    """ALDR-KL with one adaptive :math:`\\lambda_i` per training example.

    Args:
        num_examples: size of the training set (batches pass each example's index).
        num_classes: K ≥ 2.
        lam0: the reference :math:`\\lambda_0 > 0`.
        alpha: strength :math:`\\alpha > 1` of the pull toward :math:`\\lambda_0`; since the
            KL of the smoothed :math:`\\hat q` to uniform stays below :math:`\\log K`, every
            :math:`\\lambda_i` then stays above :math:`\\lambda_0 (1 - 1/\\alpha) > 0`.
        margin: :math:`c` (finite).
        reduction: ``"none"``, ``"mean"`` or ``"sum"`` of the batch losses.

    ``forward(logits (B, K), labels (B,), index (B,))``: logits must be finite (a NaN or an
    infinite logit is rejected before the state is touched); an all-zero row has scores 0
    and leaves :math:`\\lambda_i = \\lambda_0`. A :math:`\\lambda_i` update that is not finite
    and positive is never stored, so one bad batch cannot poison the state.

    Under ``torch.distributed`` the updated :math:`\\lambda_i` are exchanged between the ranks
    (:func:`regkit.distributed.sync_rows`), so every rank holds every example's value.
    """

    def __init__(
        self,
        num_examples: int,
        num_classes: int,
        *,
        lam0: float = 1.0,
        alpha: float = 2.0,
        margin: float = 1.0,
        reduction: str = "mean",
    ):
        super().__init__()
        num_examples = check_number("num_examples", num_examples, low=1, integer=True)
        num_classes = check_number("num_classes", num_classes, low=2, integer=True)
        lam0 = check_number("lam0", lam0, low=0, low_open=True)
        alpha = check_number("alpha", alpha, low=1, low_open=True)
        margin = check_number("margin", margin)
        self.reduction = check_reduction(reduction)
        self.lam0, self.alpha, self.margin, self.num_classes = lam0, alpha, margin, num_classes
        self.register_buffer("lam", torch.full((num_examples,), float(lam0)))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        labels = check_logits_and_labels(logits, labels)
        check_finite("logits", logits)
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"logits must have num_classes={self.num_classes} columns, got {tuple(logits.shape)}")
        index = as_labels("index", index, ndim=1)
        if index.shape[0] != logits.shape[0]:
            raise ValueError(f"index must have {logits.shape[0]} entries (rows of logits), got {index.shape[0]}")
        check_range("index", index, 0, self.lam.shape[0])
        z = upcast_half(logits)
        k = z.shape[1]
        # z / (||z||_1 / K), scaled by max|z| first so that the norm cannot overflow; 0 for a zero row
        top = z.abs().amax(1, keepdim=True)
        z = z / torch.where(top > 0, top, 1.0)
        norm = z.abs().sum(1, keepdim=True) / k
        scores = z / torch.where(norm > 0, norm, 1.0)
        with torch.no_grad():
            old = self.lam[index].to(scores.dtype)
            q = torch.softmax(scores / old[:, None], 1) + 1e-5
            q = q / q.sum(1, keepdim=True)
            kl = (q * torch.log(k * q)).sum(1)
            new = self.lam0 * (1 - kl / (self.alpha * math.log(k)))
            new = torch.where(torch.isfinite(new) & (new > 0), new, old)
            self.lam[index] = new.to(self.lam.dtype)
            sync_rows(self.lam, index)  # under torch.distributed: every rank's rows (regkit.distributed)
        lam = self.lam[index].to(scores.dtype)
        penalty = -0.5 * self.alpha * math.log(k) / self.lam0 * (lam - self.lam0) ** 2
        delta = _margins(scores, labels, self.margin)
        losses = _log_mean_exp_scaled(delta, lam[:, None]) + penalty
        return apply_reduction(losses, self.reduction).to(logits.dtype)
