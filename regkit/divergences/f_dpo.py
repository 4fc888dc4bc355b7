r"""f-DPO: direct preference optimization under an f-divergence constraint.

Wang, Jiang, Yang, Liu & Chen, "Beyond Reverse KL: Generalizing Direct Preference
Optimization with Diverse Divergence Constraints", ICLR 2024, arXiv:2309.16240.

Maximizing :math:`\mathbb E_\pi[r] - \beta D_f(\pi \| \pi_{\mathrm{ref}})` gives, when
:math:`0 \notin \operatorname{dom} f'`, :math:`r(x, y) = \beta f'(\pi(y|x) / \pi_{\mathrm{ref}}(y|x)) + \mathrm{const}`.
Plugged into the Bradley–Terry likelihood of a preferred response :math:`y_w` over
:math:`y_l`:

.. math::

    \mathcal L = -\log \sigma\!\big(\beta f'(u_w) - \beta f'(u_l)\big), \qquad
    u = \frac{\pi_\theta(y|x)}{\pi_{\mathrm{ref}}(y|x)} .

Reverse KL (:math:`f'(u) = \log u + 1`) is DPO. ``f'`` is evaluated from
:math:`\log u = \log \pi_\theta - \log \pi_{\mathrm{ref}}` (sequence log-probabilities), so the
JS margin is :math:`(\log u_w - \operatorname{softplus}\log u_w) - (\log u_l - \operatorname{softplus}\log u_l)`
as in TRL's ``f_divergence_type="js_divergence"`` (evaluated as :math:`\log 2 + \log\sigma(\log u)`).

The exponential links overflow: forward KL has :math:`f'(u) = -e^{-\log u}` and α has
:math:`f'(u) = (1 - e^{-\alpha \log u})/\alpha`, so a log-ratio of −100 makes both rewards
:math:`-\infty` in float32 and their difference NaN (TRL caps the exponent instead). Here the
margin :math:`c\,(e^{a} - e^{b})` (:math:`a = -s \log u_l`, :math:`b = -s \log u_w`) is formed in log space,
:math:`\operatorname{sign}(a-b)\exp(\log c + \max(a,b) + \operatorname{log1mexp}(-|a-b|))`, and its gradient
as :math:`\exp(\log\sigma(-\text{margin}) + \log c + a)`, so equal log-ratios give exactly
:math:`\log 2`, a margin beyond the float range gives 0 or ``inf`` (never NaN) and the
gradient vanishes, rather than being ``0·∞``, where the loss saturates.

Shapes: the four log-probability tensors ``(B,)``; the loss ``(B,)`` or a scalar.

Replicated in ``notebooks/f_dpo.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from regkit._checks import apply_reduction, check_number, check_reduction, check_tensor, upcast_half
from regkit.divergences.f_divergence import _check_alpha, _check_name, generator

__all__ = ["F_DPO_DIVERGENCES", "f_dpo_loss", "implicit_reward"]

F_DPO_DIVERGENCES = ("reverse_kl", "forward_kl", "js", "alpha")


class _ExpMarginLoss(torch.autograd.Function):
    """:math:`-\\log\\sigma(c\\,(e^a - e^b))` for :math:`c > 0`, evaluated in log space (see the module)."""

    @staticmethod
    def forward(ctx, a, b, log_c):
        gap = a - b
        log_abs = log_c + torch.maximum(a, b) + _log1mexp(-gap.abs())
        margin = torch.sign(gap) * torch.exp(log_abs)
        ctx.save_for_backward(a, b, margin)
        ctx.log_c = log_c
        return F.softplus(-margin)

    @staticmethod
    def backward(ctx, grad):
        a, b, margin = ctx.saved_tensors
        log_weight = F.logsigmoid(-margin) + ctx.log_c  # log(sigma(-margin) c)
        return -grad * torch.exp(log_weight + a), grad * torch.exp(log_weight + b), None


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """:math:`\\log(1 - e^x)` for :math:`x \\le 0` (−inf at 0), accurate at both ends."""
    near = x > -math.log(2)
    return torch.where(near, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def implicit_reward(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    divergence: str = "reverse_kl",
    alpha: float = 0.5,
) -> torch.Tensor:
    r""":math:`\beta f'(\pi_\theta / \pi_{\mathrm{ref}})`, the reward the policy implies (up to a constant).

    Args:
        policy_logps, reference_logps: ``(B,)`` floating sequence log-probabilities.
        beta: :math:`\beta > 0`; divergence: one of :data:`F_DPO_DIVERGENCES`; alpha: in (0, 1).

    Returns:
        ``(B,)`` in ``policy_logps``' dtype (half precision computed in float32); for the
        exponential links a reward beyond the float range is ``-inf``, its true rounding.

    Raises:
        ValueError: naming the argument, for an unknown divergence, ``beta`` ≤ 0, ``alpha``
            outside (0, 1), non-floating or differently shaped log-probabilities.
    """
    _check_name(divergence, F_DPO_DIVERGENCES)
    beta = check_number("beta", beta, low=0, low_open=True)
    alpha = _check_alpha(alpha)
    check_tensor("policy_logps", policy_logps, floating=True)
    check_tensor("reference_logps", reference_logps, floating=True)
    if policy_logps.shape != reference_logps.shape:
        raise ValueError(
            f"reference_logps must have shape {tuple(policy_logps.shape)}, got {tuple(reference_logps.shape)}"
        )
    log_u = upcast_half(policy_logps) - upcast_half(reference_logps)
    return (beta * generator(divergence, alpha=alpha).f_prime_log(log_u)).to(policy_logps.dtype)


def f_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    divergence: str = "reverse_kl",
    alpha: float = 0.5,
    reduction: str = "mean",
) -> torch.Tensor:
    r""":math:`-\log\sigma(\beta f'(u_w) - \beta f'(u_l))` per preference pair.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` log-probabilities of the
            preferred and the dispreferred response under the policy.
        reference_chosen_logps, reference_rejected_logps: the same under the reference.
        beta: strength :math:`\beta > 0` of the divergence constraint.
        divergence: one of :data:`F_DPO_DIVERGENCES` (``"reverse_kl"`` is DPO).
        alpha: the α of ``"alpha"``, in (0, 1).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        the loss in ``policy_chosen_logps``' dtype (half precision computed in float32):
        ``(B,)`` for ``"none"``, else a scalar. Never NaN for finite log-probabilities.

    Raises:
        ValueError: naming the argument, for an unknown ``divergence`` or ``reduction``,
            ``beta`` ≤ 0, ``alpha`` outside (0, 1), or tensors that are not floating or differ
            in shape.
    """
    _check_name(divergence, F_DPO_DIVERGENCES)
    tensors = {
        "policy_chosen_logps": policy_chosen_logps,
        "policy_rejected_logps": policy_rejected_logps,
        "reference_chosen_logps": reference_chosen_logps,
        "reference_rejected_logps": reference_rejected_logps,
    }
    for name, value in tensors.items():
        check_tensor(name, value, floating=True)
        if value.shape != policy_chosen_logps.shape:
            raise ValueError(f"{name} must have shape {tuple(policy_chosen_logps.shape)}, got {tuple(value.shape)}")
    beta = check_number("beta", beta, low=0, low_open=True)
    alpha = _check_alpha(alpha)
    check_reduction(reduction)
    chosen_log_u = upcast_half(policy_chosen_logps) - upcast_half(reference_chosen_logps)
    rejected_log_u = upcast_half(policy_rejected_logps) - upcast_half(reference_rejected_logps)
    if divergence in ("forward_kl", "alpha"):
        # beta f'(u_w) - beta f'(u_l) = c (e^{-s log u_l} - e^{-s log u_w}), c = beta / s
        s = 1.0 if divergence == "forward_kl" else alpha
        losses = _ExpMarginLoss.apply(-s * rejected_log_u, -s * chosen_log_u, math.log(beta / s))
    else:
        f_prime = generator(divergence, alpha=alpha).f_prime_log
        losses = -F.logsigmoid(beta * (f_prime(chosen_log_u) - f_prime(rejected_log_u)))
    return apply_reduction(losses, reduction).to(policy_chosen_logps.dtype)
