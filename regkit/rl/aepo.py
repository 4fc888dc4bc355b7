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
"""

from __future__ import annotations

import torch

from regkit._checks import check_tensor
from regkit.rl.grpo import masked_mean

__all__ = ["aepo_temperature", "reinforce_loss", "token_entropy"]


def aepo_temperature(entropy: float, target: float, *, t_low: float = 0.8, t_high: float = 1.2) -> float:
    """The sampling temperature of the REINFORCE term: ``t_high`` below the target entropy, else ``t_low``."""
    if not 0 < t_low <= 1 <= t_high:
        raise ValueError(f"need 0 < t_low ≤ 1 ≤ t_high, got {t_low}, {t_high}")
    return t_high if entropy < target else t_low


def reinforce_loss(logps: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r""":math:`-\frac{1}{\sum m}\sum_{i,t} m_{i,t} R_i \log\pi_\theta(o_{i,t})`: REINFORCE without a
    baseline on responses ``(…, L)`` with rewards ``(…)``, token-averaged as the GRPO loss is."""
    check_tensor("logps", logps, floating=True)
    if mask.shape != logps.shape or rewards.shape != logps.shape[:-1]:
        raise ValueError(
            f"mask must have logps' shape {tuple(logps.shape)} and rewards {tuple(logps.shape[:-1])}, "
            f"got {tuple(mask.shape)} and {tuple(rewards.shape)}"
        )
    return -masked_mean(rewards.detach()[..., None] * logps, mask)


def token_entropy(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean entropy (nats) of the next-token distributions ``softmax(logits)`` ``(…, L, V)``."""
    log_p = logits.log_softmax(-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    return entropy.mean() if mask is None else masked_mean(entropy, mask)
