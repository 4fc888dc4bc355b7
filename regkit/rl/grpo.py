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

Shapes: rewards ``(P, G)``; token log-probabilities and masks ``(P, G, L)`` (any leading
shape works as long as the advantages broadcast over the last dimension).
"""

from __future__ import annotations

import torch

from regkit._checks import check_tensor

__all__ = ["group_advantages", "grpo_loss", "masked_mean"]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true (0 when nothing is)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def group_advantages(rewards: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Rewards standardized within each group (the last dimension); constant groups get 0."""
    check_tensor("rewards", rewards, floating=True)
    if rewards.shape[-1] < 2:
        raise ValueError(f"each group needs at least 2 responses, got rewards of shape {tuple(rewards.shape)}")
    mean = rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, keepdim=True)
    return (rewards - mean) / (std + eps)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
) -> torch.Tensor:
    """The clipped GRPO surrogate (to minimize), token-averaged over ``mask``."""
    for name, value in (("logps", logps), ("old_logps", old_logps)):
        check_tensor(name, value, floating=True)
    if old_logps.shape != logps.shape or mask.shape != logps.shape:
        raise ValueError(
            f"logps, old_logps and mask must share a shape, got {tuple(logps.shape)}, "
            f"{tuple(old_logps.shape)}, {tuple(mask.shape)}"
        )
    if advantages.shape != logps.shape[:-1]:
        raise ValueError(f"advantages must have shape {tuple(logps.shape[:-1])}, got {tuple(advantages.shape)}")
    if clip_low < 0 or clip_high < 0:
        raise ValueError(f"clip ranges must be non-negative, got {clip_low}, {clip_high}")
    ratio = torch.exp(logps - old_logps.detach())
    adv = advantages.detach()[..., None]
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip_low, 1 + clip_high) * adv)
    return -masked_mean(surrogate, mask)
