r"""Classification losses that are robust to label noise, and the usual baselines.

With :math:`p = \operatorname{softmax}(z)` and label :math:`y`:

* generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018, arXiv:1805.07836):
  :math:`(1 - p_y^q) / q` (:math:`q \to 0`: CE, :math:`q = 1`: MAE/2);
* symmetric cross-entropy (Wang et al., ICCV 2019, arXiv:1908.06112): :math:`\alpha\,\mathrm{CE} + \beta\,\mathrm{RCE}`,
  with the reverse cross-entropy :math:`-\sum_k p_k \log \hat y_k = A (1 - p_y)` for a one-hot
  :math:`\hat y` clamped at ``clamp``, :math:`A = -\log(\text{clamp})`;
* mean absolute error (Ghosh et al., AAAI 2017): :math:`\lVert e_y - p\rVert_1 = 2 (1 - p_y)`;
* focal loss (Lin et al., ICCV 2017, arXiv:1708.02002): :math:`-(1 - p_y)^\gamma \log p_y`;
* label smoothing (Szegedy et al., CVPR 2016): CE against :math:`(1 - \epsilon) e_y + \epsilon / K`.

All take logits ``(B, K)`` (floating; −inf marks a masked class) and labels ``(B,)`` (any
integer dtype, used as int64; bool is rejected) and return the batch mean, sum or the
``(B,)`` losses (``reduction``). :math:`1 - p_y` is evaluated as
:math:`\exp(\operatorname{LSE}_{k \ne y} z_k - \operatorname{LSE}_k z_k)`, :math:`\log p_y` near 1 as
``log1p(-(1 - p_y))`` and :math:`p_y^q` as ``exp(q log p_y)``, so nothing cancels near
:math:`p_y = 1` or :math:`q = 0`. float16/bfloat16 logits are computed in float32 and the loss is returned in
the logits' dtype.

Raises (all): ``ValueError`` naming the argument for a wrong shape or dtype, NaN/+inf
logits, a row with every class masked, a label outside ``[0, K)``, an unknown
``reduction`` or a scalar argument outside its range.

Replicated in ``notebooks/ldr_losses.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math

import torch

from regkit._checks import (
    apply_reduction,
    check_logits_and_labels,
    check_number,
    check_reduction,
    upcast_half,
)

__all__ = ["focal_loss", "gce_loss", "label_smoothing_loss", "mae_loss", "sce_loss"]


def _log_softmax_and_labels(logits, labels) -> tuple[torch.Tensor, torch.Tensor]:
    labels = check_logits_and_labels(logits, labels)
    return upcast_half(logits).log_softmax(1), labels


def _log_p_and_log_1mp(logits, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`\\log p_y` and :math:`\\log(1 - p_y)`, each to full relative accuracy.

    :math:`\\log(1 - p_y) = \\operatorname{LSE}_{k \\ne y} z_k - \\operatorname{LSE}_k z_k` never rounds to
    :math:`\\log 0` while another class has a finite logit (``1 - exp(log p)`` is 0 in float32
    once :math:`1 - p_y < 6 \\cdot 10^{-8}`), and near :math:`p_y = 1` :math:`\\log p_y` is
    ``log1p(-(1 - p_y))``. Where every other class is masked, :math:`\\log(1 - p_y) = -\\infty`
    with a zero gradient.
    """
    log_p_all, labels = _log_softmax_and_labels(logits, labels)
    z = upcast_half(logits)
    is_label = torch.zeros_like(z, dtype=torch.bool).scatter_(1, labels[:, None], True)
    others = torch.where(is_label, -torch.inf, z)
    none_left = (others == -torch.inf).all(1)
    lse_others = torch.logsumexp(torch.where(none_left[:, None], 0.0, others), 1)
    log_1mp = torch.where(none_left, -torch.inf, lse_others - torch.logsumexp(z, 1))
    direct = log_p_all.gather(1, labels[:, None]).squeeze(1)
    near_one = log_1mp < -math.log(2)
    log_p = torch.where(near_one, torch.log1p(-torch.exp(log_1mp.clamp(max=-math.log(2)))), direct)
    return log_p, log_1mp


def gce_loss(logits, labels, *, q: float = 0.7, reduction: str = "mean") -> torch.Tensor:
    r"""Generalized cross-entropy :math:`(1 - p_y^q)/q`, computed as ``-expm1(q log p_y) / q``.

    Args:
        logits: ``(B, K)`` scores; labels: ``(B,)`` integer classes.
        q: :math:`q \in (0, 1]`; the loss tends to cross-entropy as :math:`q \to 0` (accurate
            down to any representable ``q``) and is half the MAE at ``q = 1``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    q = check_number("q", q, low=0, high=1, low_open=True)
    check_reduction(reduction)
    log_p, _ = _log_p_and_log_1mp(logits, labels)
    return apply_reduction(-torch.expm1(q * log_p) / q, reduction).to(logits.dtype)


def sce_loss(
    logits, labels, *, alpha: float = 0.1, beta: float = 1.0, clamp: float = 1e-4, reduction: str = "mean"
) -> torch.Tensor:
    r"""Symmetric cross-entropy :math:`\alpha\,\mathrm{CE} + \beta (-\log \text{clamp}) (1 - p_y)`.

    Args:
        alpha, beta: non-negative weights of CE and of the reverse CE.
        clamp: the value :math:`\in (0, 1)` the zeros of the one-hot label are clamped to
            (``1e-4`` in the paper); 0 would make the reverse CE infinite and 1 or more
            negative.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    alpha = check_number("alpha", alpha, low=0)
    beta = check_number("beta", beta, low=0)
    clamp = check_number("clamp", clamp, low=0, high=1, low_open=True, high_open=True)
    check_reduction(reduction)
    log_p, log_1mp = _log_p_and_log_1mp(logits, labels)
    losses = alpha * -log_p + beta * -math.log(clamp) * log_1mp.exp()
    return apply_reduction(losses, reduction).to(logits.dtype)


def mae_loss(logits, labels, *, reduction: str = "mean") -> torch.Tensor:
    r"""Mean absolute error :math:`\lVert e_y - p\rVert_1 = 2(1 - p_y)`."""
    check_reduction(reduction)
    _, log_1mp = _log_p_and_log_1mp(logits, labels)
    return apply_reduction(2 * log_1mp.exp(), reduction).to(logits.dtype)


def focal_loss(logits, labels, *, gamma: float = 2.0, reduction: str = "mean") -> torch.Tensor:
    r"""Focal loss :math:`-(1 - p_y)^\gamma \log p_y`.

    The factor is :math:`\exp(\gamma \log(1 - p_y))` with :math:`\log(1 - p_y)` from the other
    classes' log-sum-exp, so at a saturated logit (``p_y`` rounds to 1) the loss and its
    gradient are 0 (or tiny) for every :math:`\gamma \ge 0`: the :math:`\gamma (1-p)^{\gamma-1} = \infty`
    of :math:`0 < \gamma < 1` never meets the zero of :math:`\partial(1 - p_y)`.

    Args:
        gamma: the focusing parameter :math:`\gamma \ge 0` (``0`` is cross-entropy).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    gamma = check_number("gamma", gamma, low=0)
    check_reduction(reduction)
    log_p, log_1mp = _log_p_and_log_1mp(logits, labels)
    if gamma == 0:
        return apply_reduction(-log_p, reduction).to(logits.dtype)
    # (1 - p)^gamma = exp(gamma log(1 - p)): 0 with a zero gradient where 1 - p is 0
    return apply_reduction(-torch.exp(gamma * log_1mp) * log_p, reduction).to(logits.dtype)


def label_smoothing_loss(logits, labels, *, epsilon: float = 0.1, reduction: str = "mean") -> torch.Tensor:
    r"""Cross-entropy against :math:`(1 - \epsilon) e_y + \epsilon / K`.

    Equals ``F.cross_entropy(logits, labels, label_smoothing=epsilon)``. A masked class
    (logit −inf) is not a class: the smoothing mass is spread over the :math:`K'` unmasked
    classes of the row (:math:`K' = K` without masking), so the loss stays finite.

    Args:
        epsilon: smoothing :math:`\epsilon \in [0, 1]`.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    epsilon = check_number("epsilon", epsilon, low=0, high=1)
    check_reduction(reduction)
    log_p, labels = _log_softmax_and_labels(logits, labels)
    unmasked = log_p > -torch.inf
    mean_log_p = torch.where(unmasked, log_p, 0.0).sum(1) / unmasked.sum(1)
    losses = (1 - epsilon) * -log_p.gather(1, labels[:, None]).squeeze(1) - epsilon * mean_log_p
    return apply_reduction(losses, reduction).to(logits.dtype)
