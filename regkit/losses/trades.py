r"""TRADES: the clean cross-entropy plus a KL smoothness term at an adversarial point.

Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, "Theoretically Principled Trade-off between Robustness
and Accuracy", ICML 2019, arXiv:1901.08573; checked against the authors' ``trades.py``
(github.com/yaodongyu/TRADES, ``trades_loss``). With :math:`p(x) = \operatorname{softmax}(h(x))`,

.. math::

    \ell_{\text{TRADES}}(h, x, y) = \operatorname{CE}(h(x), y)
        + \beta \max_{\lVert x' - x\rVert \le \epsilon} \operatorname{KL}\big(p(x) \,\|\, p(x')\big),
    \qquad \operatorname{KL}(p \,\|\, q) = \sum_k p_k \log \frac{p_k}{q_k},

averaged over the batch (the reference: ``F.cross_entropy(logits, y)`` plus
``beta / batch_size`` times ``nn.KLDivLoss(size_average=False)(log_softmax(model(x_adv)),
softmax(model(x_natural)))``, which is :math:`\sum_i \operatorname{KL}(p(x_i) \| p(x'_i))`).
Gradients flow through both the clean and the adversarial logits, as in the reference (its
target ``softmax(model(x_natural))`` is not detached). :math:`\beta = 1/\lambda` trades clean
accuracy for robustness (the paper uses :math:`\beta = 6` on CIFAR-10).

The maximizer :math:`x'` is found by PGD on the KL term (:func:`regkit.attacks.trades_attack`;
the reference's adversary: sign steps, projection on the :math:`\ell_\infty` ball and the
:math:`[0, 1]` box, the model in eval mode). :func:`trades_loss` takes the logits at the clean
and at the adversarial inputs, like :func:`regkit.losses.adv_comp_sum_loss`, whose smoothness
term is a margin-vector distance where TRADES has this KL.

The KL is :func:`regkit.divergences.f_divergence` (``"reverse_kl"``: :math:`D_f(p\|q)` with
:math:`f(u) = u \log u`) of the two logit rows, evaluated from log-softmaxes, so a tiny
probability neither underflows to a NaN nor divides by zero; a class masked (−inf) in both rows
takes no part. Shapes: logits and adversarial logits ``(B, K)`` (floating), labels ``(B,)``
(integer). float16/bfloat16 are computed in float32 and the loss is returned in the logits'
dtype. Raises ``ValueError`` naming the argument for a wrong shape or dtype, NaN/+inf logits,
masks that differ, a label outside ``[0, K)``, an unknown ``reduction`` or ``beta`` < 0 (or NaN).

Used as a baseline in ``notebooks/comp_sum_losses.ipynb`` (slug ``comp_sum_losses``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regkit._checks import (
    apply_reduction,
    check_logits,
    check_logits_and_labels,
    check_number,
    check_reduction,
    upcast_half,
)
from regkit.divergences import f_divergence

__all__ = ["trades_kl", "trades_loss"]


def _check_pair(logits, adv_logits) -> None:
    check_logits("logits", logits, ndim=2)
    check_logits("adv_logits", adv_logits, ndim=2)
    if adv_logits.shape != logits.shape:
        raise ValueError(
            f"adv_logits must have the shape of logits {tuple(logits.shape)}, got {tuple(adv_logits.shape)}"
        )
    if bool(((logits == -torch.inf) != (adv_logits == -torch.inf)).any()):
        raise ValueError("adv_logits must be masked (−inf) exactly where logits is")


def _kl(logits, adv_logits) -> torch.Tensor:
    z, z_adv = upcast_half(logits), upcast_half(adv_logits)
    common = torch.promote_types(z.dtype, z_adv.dtype)
    return f_divergence(z.to(common), z_adv.to(common), "reverse_kl", input="logits", dim=1)


def trades_kl(logits, adv_logits, *, reduction: str = "none") -> torch.Tensor:
    r""":math:`\operatorname{KL}(p(x) \,\|\, p(x'))` per example, :math:`p = \operatorname{softmax}` of the logits.

    TRADES' smoothness term, the quantity its adversary maximizes; 0 where ``adv_logits`` equals
    ``logits`` (or differs from it by a constant per row).

    Args:
        logits: ``(B, K)`` clean scores :math:`h(x)`.
        adv_logits: ``(B, K)`` scores :math:`h(x')`, masked (−inf) exactly where ``logits`` is.
        reduction: ``"none"`` (default, ``(B,)``), ``"mean"`` or ``"sum"``.
    """
    check_reduction(reduction)
    _check_pair(logits, adv_logits)
    return apply_reduction(_kl(logits, adv_logits), reduction).to(logits.dtype)


def trades_loss(logits, adv_logits, labels, *, beta: float, reduction: str = "mean") -> torch.Tensor:
    r"""The TRADES loss :math:`\operatorname{CE}(h(x), y) + \beta\,\operatorname{KL}(p(x) \,\|\, p(x'))`.

    One TRADES training step (the adversary as in the reference, on the :math:`[0, 1]` box)::

        x_adv = trades_attack(model, x, eps=0.1, step_size=0.025, steps=10, generator=g, clamp=(0, 1))
        loss = trades_loss(model(x), model(x_adv), y, beta=6.0)

    ``beta = 0`` is the cross-entropy; ``adv_logits = logits`` too.

    Args:
        logits: ``(B, K)`` clean scores :math:`h(x)`.
        adv_logits: ``(B, K)`` scores :math:`h(x')` (gradients flow through both).
        labels: ``(B,)`` integer classes in ``[0, K)``.
        beta: weight :math:`\beta \ge 0` of the KL term.
        reduction: ``"none"``, ``"mean"`` (default: the reference's batch mean) or ``"sum"``.
    """
    beta = check_number("beta", beta, low=0)
    check_reduction(reduction)
    labels = check_logits_and_labels(logits, labels)
    _check_pair(logits, adv_logits)
    z = upcast_half(logits)
    kl = _kl(logits, adv_logits)
    losses = F.cross_entropy(z, labels, reduction="none").to(kl.dtype) + beta * kl
    return apply_reduction(losses, reduction).to(logits.dtype)
