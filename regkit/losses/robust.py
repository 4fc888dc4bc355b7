r"""Classification losses that are robust to label noise, and the usual baselines.

With :math:`p = \operatorname{softmax}(z)` and label :math:`y`:

* generalized cross-entropy (Zhang & Sabuncu, 2018): :math:`(1 - p_y^q) / q` (:math:`q \to 0`: CE, :math:`q = 1`: MAE/2);
* symmetric cross-entropy (Wang et al., 2019): :math:`\alpha\,\mathrm{CE} + \beta\,\mathrm{RCE}`, with the
  reverse cross-entropy :math:`-\sum_k p_k \log \hat y_k = A (1 - p_y)` for a one-hot :math:`\hat y`
  clamped at :math:`10^{-4}`, :math:`A = -\log 10^{-4}`;
* mean absolute error (Ghosh et al., 2017): :math:`\lVert e_y - p\rVert_1 = 2 (1 - p_y)`;
* focal loss (Lin et al., 2017): :math:`-(1 - p_y)^\gamma \log p_y`;
* label smoothing (Szegedy et al., 2016): CE against :math:`(1 - \epsilon) e_y + \epsilon / K`.

All take logits ``(B, K)`` and integer labels ``(B,)`` and return the batch mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from regkit._checks import check_range, check_tensor

__all__ = ["focal_loss", "gce_loss", "label_smoothing_loss", "mae_loss", "sce_loss"]


def _log_p_y(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    check_tensor("logits", logits, ndim=2, floating=True)
    check_tensor("labels", labels, ndim=1, floating=False)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must have {logits.shape[0]} entries (rows of logits), got {labels.shape[0]}")
    check_range("labels", labels, 0, logits.shape[1])
    return logits.log_softmax(1).gather(1, labels[:, None]).squeeze(1)


def gce_loss(logits, labels, *, q: float = 0.7) -> torch.Tensor:
    if not 0 < q <= 1:
        raise ValueError(f"q must lie in (0, 1], got {q}")
    return ((1 - torch.exp(q * _log_p_y(logits, labels))) / q).mean()


def sce_loss(logits, labels, *, alpha: float = 0.1, beta: float = 1.0, clamp: float = 1e-4) -> torch.Tensor:
    log_p = _log_p_y(logits, labels)
    return (alpha * -log_p + beta * -math.log(clamp) * (1 - log_p.exp())).mean()


def mae_loss(logits, labels) -> torch.Tensor:
    return (2 * (1 - _log_p_y(logits, labels).exp())).mean()


def focal_loss(logits, labels, *, gamma: float = 2.0) -> torch.Tensor:
    if gamma < 0:
        raise ValueError(f"gamma must be non-negative, got {gamma}")
    log_p = _log_p_y(logits, labels)
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


def label_smoothing_loss(logits, labels, *, epsilon: float = 0.1) -> torch.Tensor:
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
    _log_p_y(logits, labels)
    log_p = logits.log_softmax(1)
    return ((1 - epsilon) * -log_p.gather(1, labels[:, None]).squeeze(1) - epsilon * log_p.mean(1)).mean()
