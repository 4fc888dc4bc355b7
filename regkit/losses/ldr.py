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
code the scores are normalized, :math:`s = \operatorname{softplus}(z) / \operatorname{mean}_k \operatorname{softplus}(z_k)`,
which bounds the loss.

**ALDR-KL** gives each example its own :math:`\lambda_i`, regularized toward :math:`\lambda_0` by
:math:`-\frac{\alpha \log K}{2 \lambda_0}(\lambda_i - \lambda_0)^2`; its closed-form update from the
authors' code is

.. math:: \lambda_i \leftarrow \lambda_0 \Big(1 - \frac{\mathrm{KL}(\hat q_i \,\|\, \tfrac1K \mathbf 1)}{\alpha \log K}\Big),
    \qquad \hat q_i = \operatorname{softmax}(s_i / \lambda_i^{\mathrm{old}}),

so confident (possibly memorized) examples get a smaller :math:`\lambda_i`. The ALDR scores are
normalized by the mean absolute score, :math:`s = z / (\lVert z\rVert_1 / K)`, as in that code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import check_range, check_tensor
from regkit.distributed import sync_rows

__all__ = ["ALDRKLLoss", "ldr_kl_loss"]


def _check(logits, labels):
    check_tensor("logits", logits, ndim=2, floating=True)
    check_tensor("labels", labels, ndim=1, floating=False)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must have {logits.shape[0]} entries (rows of logits), got {labels.shape[0]}")
    check_range("labels", labels, 0, logits.shape[1])


def _margins(scores: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """:math:`\\delta_k = s_k - s_y + c\\,[k \\ne y]`, shape ``(B, K)``."""
    not_label = 1 - F.one_hot(labels, scores.shape[1]).to(scores.dtype)
    return scores - scores.gather(1, labels[:, None]) + margin * not_label


def ldr_kl_loss(logits, labels, *, lam: float = 1.0, margin: float = 2.0, normalize: bool = True,
                reduction: str = "mean") -> torch.Tensor:
    r""":math:`\lambda \log \frac1K \sum_k \exp(\delta_k / \lambda)` on (normalized) scores.

    Args:
        logits: ``(B, K)``; labels: ``(B,)``.
        lam: the KL weight :math:`\lambda > 0`.
        margin: :math:`c`, the margin added to every wrong label (2 in the authors' defaults).
        normalize: use ``softplus(z) / mean(softplus(z))`` as scores (the authors' choice).
    """
    _check(logits, labels)
    if not lam > 0:
        raise ValueError(f"lam must be positive, got {lam}")
    scores = logits
    if normalize:
        scores = F.softplus(logits)
        scores = scores / scores.mean(1, keepdim=True)
    delta = _margins(scores, labels, margin)
    losses = lam * (torch.logsumexp(delta / lam, 1) - math.log(delta.shape[1]))
    return {"mean": losses.mean, "sum": losses.sum, "none": lambda: losses}[reduction]()


class ALDRKLLoss(nn.Module):
    """ALDR-KL with one adaptive :math:`\\lambda_i` per training example.

    Args:
        num_examples: size of the training set (batches pass each example's index).
        num_classes: K.
        lam0: the reference :math:`\\lambda_0`.
        alpha: strength :math:`\\alpha > 0` of the pull toward :math:`\\lambda_0`.
        margin: :math:`c`.

    Under ``torch.distributed`` the updated :math:`\\lambda_i` are exchanged between the ranks
    (:func:`regkit.distributed.sync_rows`), so every rank holds every example's value.
    """

    def __init__(self, num_examples: int, num_classes: int, *, lam0: float = 1.0, alpha: float = 2.0,
                 margin: float = 1.0):
        super().__init__()
        if not lam0 > 0 or not alpha > 0:
            raise ValueError(f"lam0 and alpha must be positive, got {lam0}, {alpha}")
        self.lam0, self.alpha, self.margin, self.num_classes = lam0, alpha, margin, num_classes
        self.register_buffer("lam", torch.full((num_examples,), float(lam0)))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        _check(logits, labels)
        k = logits.shape[1]
        scores = logits / (logits.abs().sum(1, keepdim=True) / k)
        with torch.no_grad():
            q = torch.softmax(scores / self.lam[index, None], 1) + 1e-5
            q = q / q.sum(1, keepdim=True)
            kl = (q * torch.log(k * q)).sum(1)
            self.lam[index] = self.lam0 * (1 - kl / (self.alpha * math.log(k)))
            sync_rows(self.lam, index)  # under torch.distributed: every rank's rows (regkit.distributed)
        lam = self.lam[index]
        penalty = -0.5 * self.alpha * math.log(k) / self.lam0 * (lam - self.lam0) ** 2
        delta = _margins(scores, labels, self.margin)
        losses = lam * (torch.logsumexp(delta / lam[:, None], 1) - math.log(k)) + penalty
        return losses.mean()
