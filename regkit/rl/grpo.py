r"""Group-relative policy optimization (GRPO) with a verifiable reward.

Shao et al., "DeepSeekMath", arXiv:2402.03300. For each prompt, :math:`G` responses are
sampled from the old policy and scored; the advantage of response :math:`i` is its reward
standardized within its group,

.. math:: A_i = \frac{r_i - \operatorname{mean}(r)}{\operatorname{std}(r) + \epsilon},

shared by all its tokens. The loss is the clipped surrogate with ratio
:math:`\rho_t = \pi_\theta(o_t) / \pi_{\mathrm{old}}(o_t)` and (possibly asymmetric) clip range
:math:`[1 - \epsilon_{\mathrm{low}}, 1 + \epsilon_{\mathrm{high}}]`, averaged over the valid tokens:

.. math:: \mathcal L = -\frac{1}{\sum m} \sum_{i,t} m_{i,t}
    \min\big(\rho_{i,t} A_i,\ \operatorname{clip}(\rho_{i,t}) A_i\big).

Numerics. :math:`\min(\rho A, \operatorname{clip}(\rho) A)` equals :math:`A \min(\rho, 1+\epsilon_{\mathrm{high}})`
for :math:`A \ge 0` and :math:`A \max(\rho, 1-\epsilon_{\mathrm{low}})` for :math:`A < 0`; the bound is applied
to :math:`\log\rho` *before* the exponential, so a log-ratio of +100 (``exp`` overflows float32)
with :math:`A \ge 0` gives a finite surrogate and a zero gradient instead of ``inf·0 = NaN``.
Padded positions (mask false) are replaced with ``torch.where`` before any arithmetic, so
whatever they hold (−inf, NaN) reaches neither the loss nor its gradient. float16/bfloat16
inputs are computed in float32.

Shapes: rewards ``(P, G)``; token log-probabilities and masks ``(P, G, L)`` (any leading
shape works as long as the advantages broadcast over the last dimension).

Replicated in ``notebooks/aepo_entropy_control.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math

import torch

from regkit._checks import as_mask, check_finite, check_number, check_tensor, upcast_half

__all__ = ["group_advantages", "grpo_loss", "masked_mean"]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true (0 when nothing is).

    Args:
        values: floating tensor; entries where ``mask`` is false may hold anything (NaN, ±inf)
            and get a zero gradient.
        mask: bool, or 0/1 numbers, of ``values``' shape.

    Raises:
        ValueError: a mask of another shape or with entries other than 0/1.
    """
    check_tensor("values", values, floating=True)
    valid = as_mask("mask", mask, values.shape)
    return torch.where(valid, values, 0.0).sum() / valid.sum().clamp(min=1)


def group_advantages(rewards: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Rewards standardized within each group (the last dimension); constant groups get exactly 0.

    Args:
        rewards: ``(..., G)`` finite floating rewards, ``G ≥ 2``.
        eps: :math:`\\epsilon \\ge 0` added to the standard deviation.

    Returns:
        ``(..., G)`` advantages in ``rewards``' dtype (half precision computed in float32).

    Raises:
        ValueError: naming ``rewards`` (not floating, fewer than 2 per group, non-finite) or ``eps``.
    """
    check_tensor("rewards", rewards, floating=True)
    if rewards.ndim < 1 or rewards.shape[-1] < 2:
        raise ValueError(f"each group needs at least 2 responses, got rewards of shape {tuple(rewards.shape)}")
    check_finite("rewards", rewards)
    eps = check_number("eps", eps, low=0)
    r = upcast_half(rewards)
    centred = r - r.mean(-1, keepdim=True)
    std = centred.square().sum(-1, keepdim=True).div(r.shape[-1] - 1).sqrt()  # centred two-pass form
    spread = std > 0
    advantages = torch.where(spread, centred / torch.where(spread, std + eps, 1.0), 0.0)
    return advantages.to(rewards.dtype)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
) -> torch.Tensor:
    """The clipped GRPO surrogate (to minimize), token-averaged over ``mask``.

    Args:
        logps: ``(..., L)`` token log-probabilities under the policy (differentiated).
        old_logps: ``(..., L)`` the same under the sampling policy (treated as constants).
        advantages: ``(...)`` one advantage per response (treated as constants).
        mask: ``(..., L)`` bool or 0/1: true for response tokens, false for padding.
        clip_low: :math:`\\epsilon_{\\mathrm{low}} \\in [0, 1]`; clip_high: :math:`\\epsilon_{\\mathrm{high}} \\ge 0`.

    Returns:
        a scalar in ``logps``' dtype (0 when no token is valid).

    Raises:
        ValueError: naming the argument: shapes, dtypes, a non-0/1 mask, clip ranges.
    """
    for name, value in (("logps", logps), ("old_logps", old_logps), ("advantages", advantages)):
        check_tensor(name, value, floating=True)
    if old_logps.shape != logps.shape:
        raise ValueError(f"old_logps must have logps' shape {tuple(logps.shape)}, got {tuple(old_logps.shape)}")
    if logps.ndim < 1 or advantages.shape != logps.shape[:-1]:
        raise ValueError(f"advantages must have shape {tuple(logps.shape[:-1])}, got {tuple(advantages.shape)}")
    valid = as_mask("mask", mask, logps.shape)
    clip_low = check_number("clip_low", clip_low, low=0, high=1)
    clip_high = check_number("clip_high", clip_high, low=0)
    logps_, old_ = upcast_half(logps), upcast_half(old_logps).detach()
    log_ratio = torch.where(valid, logps_, 0.0) - torch.where(valid, old_, 0.0)
    adv = torch.where(valid, upcast_half(advantages).detach()[..., None], 0.0)
    # A >= 0: A min(rho, 1 + eps_high); A < 0: A max(rho, 1 - eps_low), bounded in log space
    bounded = torch.where(
        adv >= 0,
        log_ratio.clamp(max=math.log1p(clip_high)),
        log_ratio.clamp(min=math.log1p(-clip_low) if clip_low < 1 else -math.inf),
    )
    surrogate = torch.where(valid, adv * torch.exp(bounded), 0.0)
    return (-surrogate.sum() / valid.sum().clamp(min=1)).to(logps.dtype)
