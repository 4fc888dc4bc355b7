r"""AEPO: entropy held at a target by REINFORCE on temperature-adjusted samples.

Wang et al., "Arbitrary Entropy Policy Optimization: Entropy Is Controllable in
Reinforcement Fine-tuning", arXiv:2510.08141 (official code: ``597358816/AEPO``).

Instead of an entropy bonus, AEPO adds a REINFORCE term on responses sampled from the
temperature-scaled policy :math:`\pi_\theta^T = \operatorname{softmax}(z / T)`:

.. math::

    \nabla J_{\mathrm{AEPO}} = \nabla J_{\mathrm{GRPO}}
        + \alpha\, \mathbb E_{q,\, o \sim \pi_\theta^T}\big[\nabla \log \pi_\theta(o \mid q)\, R(q, o)\big],
    \qquad T = \begin{cases} T_{\mathrm{high}} & H(\pi_{\mathrm{old}}) < H_{\mathrm{target}} \\
                              T_{\mathrm{low}} & \text{otherwise.} \end{cases}

With a 0/1 verifiable reward only correct responses contribute: the correct answers of a
flatter (:math:`T_{\mathrm{high}}`) distribution pull the policy toward higher entropy, those of
a sharper one toward lower entropy, and the policy's own log-probability (temperature 1)
is what is differentiated. In the official trainer these samples (advantage set to 1)
replace part of the GRPO batch; here the term is an explicit weighted loss.

Padded positions (mask false) are replaced with ``torch.where`` before any arithmetic, so
whatever they hold reaches neither value nor gradient; masked (−inf) logits and
zero-probability tokens contribute :math:`0 \log 0 = 0` to the entropy with a zero gradient;
float16/bfloat16 inputs are computed in float32.

Replicated in ``notebooks/aepo_entropy_control.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import torch

from regkit._checks import as_mask, check_number, check_tensor, upcast_half
from regkit.rl.grpo import grpo_loss

__all__ = ["aepo_loss", "aepo_temperature", "reinforce_loss", "token_entropy"]


def aepo_temperature(entropy: float, target: float, *, t_low: float = 0.8, t_high: float = 1.2) -> float:
    """The sampling temperature of the REINFORCE term: ``t_high`` below the target entropy, else ``t_low``.

    Raises:
        ValueError: naming the argument: ``entropy``/``target`` not finite, or not
            ``0 < t_low ≤ 1 ≤ t_high`` (finite).
    """
    entropy = check_number("entropy", entropy)
    target = check_number("target", target)
    t_low = check_number("t_low", t_low, low=0, high=1, low_open=True)
    t_high = check_number("t_high", t_high, low=1)
    return t_high if entropy < target else t_low


def reinforce_loss(logps: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r""":math:`-\frac{1}{\sum m}\sum_{i,t} m_{i,t} R_i \log\pi_\theta(o_{i,t})`: REINFORCE without a
    baseline, token-averaged as the GRPO loss is.

    Args:
        logps: ``(..., L)`` token log-probabilities (differentiated).
        rewards: ``(...)`` one reward per response (a constant).
        mask: ``(..., L)`` bool or 0/1; padded positions may hold anything.

    Returns:
        a scalar in ``logps``' dtype (0 when no token is valid).

    Raises:
        ValueError: naming the argument, for dtypes, shapes or a non-0/1 mask.
    """
    check_tensor("logps", logps, floating=True)
    check_tensor("rewards", rewards, floating=True)
    if logps.ndim < 1 or rewards.shape != logps.shape[:-1]:
        raise ValueError(f"rewards must have shape {tuple(logps.shape[:-1])}, got {tuple(rewards.shape)}")
    valid = as_mask("mask", mask, logps.shape)
    logps_ = torch.where(valid, upcast_half(logps), 0.0)
    rewards_ = torch.where(valid, upcast_half(rewards).detach()[..., None], 0.0)
    return (-(rewards_ * logps_).sum() / valid.sum().clamp(min=1)).to(logps.dtype)


def token_entropy(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean entropy (nats) of the next-token distributions ``softmax(logits)``.

    Args:
        logits: ``(..., L, V)`` floating; −inf masks a vocabulary entry (its :math:`0 \\log 0`
            is 0, with a zero gradient).
        mask: optional ``(..., L)`` bool or 0/1; positions where it is false may hold anything.

    Returns:
        a scalar in ``logits``' dtype (float16/bfloat16 computed in float32).

    Raises:
        ValueError: non-floating logits, a mask of the wrong shape or values, or a valid
            position whose logits contain NaN/+inf or are all −inf.
    """
    check_tensor("logits", logits, floating=True)
    if logits.ndim < 1:
        raise ValueError(f"logits must have a vocabulary dimension, got shape {tuple(logits.shape)}")
    z = upcast_half(logits)
    if mask is not None:
        valid = as_mask("mask", mask, logits.shape[:-1])
        z = torch.where(valid[..., None], z, 0.0)
    if z.numel():
        bad = torch.stack([(z.isnan() | (z == torch.inf)).any(), (z == -torch.inf).all(-1).any()]).tolist()
        if bad[0] or bad[1]:
            raise ValueError("logits has NaN/+inf entries or an all −inf row at a valid position")
    log_p = z.log_softmax(-1)
    zero = log_p == -torch.inf
    log_p_safe = torch.where(zero, 0.0, log_p)
    entropy = -(torch.where(zero, 0.0, log_p_safe.exp()) * log_p_safe).sum(-1)
    if mask is None:
        return entropy.mean().to(logits.dtype)
    return (torch.where(valid, entropy, 0.0).sum() / valid.sum().clamp(min=1)).to(logits.dtype)


def aepo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    reg_logps: torch.Tensor,
    reg_rewards: torch.Tensor,
    reg_mask: torch.Tensor,
    *,
    alpha: float = 1.0,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
) -> torch.Tensor:
    r"""The AEPO objective (to minimize): the GRPO surrogate plus :math:`\alpha` times REINFORCE on
    temperature-adjusted samples,

    .. math:: \mathcal L_{\mathrm{AEPO}} = \mathcal L_{\mathrm{GRPO}}(\log\pi_\theta, \log\pi_{\mathrm{old}}, A, m)
        - \frac{\alpha}{\sum m'} \sum_{i,t} m'_{i,t} R_i \log\pi_\theta(o'_{i,t}),
        \qquad o'_i \sim \pi_\theta^{T},\ T = \texttt{aepo\_temperature}(H, H_{\mathrm{target}}),

    whose gradient is the paper's Eq. for :math:`\nabla J_{\mathrm{AEPO}}` (Wang et al. 2025,
    arXiv:2510.08141, Sec. 3; the official trainer ``597358816/AEPO`` mixes the samples into the
    GRPO batch with advantage 1 instead of a weighted second term).

    Args:
        logps, old_logps: ``(..., L)`` token log-probabilities of the GRPO responses under the
            policy (differentiated) and the sampling policy (constants).
        advantages: ``(...)`` one advantage per GRPO response (e.g. :func:`regkit.rl.group_advantages`).
        mask: ``(..., L)`` bool or 0/1 validity of the GRPO tokens.
        reg_logps: ``(..., L')`` log-probabilities, under the policy at temperature 1, of the
            responses sampled at temperature :math:`T` (differentiated).
        reg_rewards: ``(...)`` their rewards; reg_mask: ``(..., L')`` their validity.
        alpha: weight :math:`\alpha \ge 0` of the REINFORCE term; clip_low, clip_high: as
            :func:`regkit.rl.grpo_loss`.

    Returns:
        a scalar in ``logps``' dtype.

    Raises:
        ValueError: naming the argument, as :func:`regkit.rl.grpo_loss` and :func:`reinforce_loss`,
            or ``alpha`` negative or not finite.
    """
    alpha = check_number("alpha", alpha, low=0)
    loss = grpo_loss(logps, old_logps, advantages, mask, clip_low=clip_low, clip_high=clip_high)
    return loss + alpha * reinforce_loss(reg_logps, reg_rewards, reg_mask)
