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
as in TRL's ``f_divergence_type="js_divergence"``.

Shapes: the four log-probability tensors ``(B,)``; the loss ``(B,)`` or a scalar.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regkit._checks import check_tensor
from regkit.divergences.f_divergence import _check_name, generator

__all__ = ["F_DPO_DIVERGENCES", "f_dpo_loss", "implicit_reward"]

F_DPO_DIVERGENCES = ("reverse_kl", "forward_kl", "js", "alpha")


def implicit_reward(policy_logps: torch.Tensor, reference_logps: torch.Tensor, *, beta: float = 0.1,
                    divergence: str = "reverse_kl", alpha: float = 0.5) -> torch.Tensor:
    r""":math:`\beta f'(\pi_\theta / \pi_{\mathrm{ref}})`, the reward the policy implies (up to a constant)."""
    _check_name(divergence, F_DPO_DIVERGENCES)
    return beta * generator(divergence, alpha=alpha).f_prime_log(policy_logps - reference_logps)


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
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    _check_name(divergence, F_DPO_DIVERGENCES)
    tensors = {"policy_chosen_logps": policy_chosen_logps, "policy_rejected_logps": policy_rejected_logps,
               "reference_chosen_logps": reference_chosen_logps, "reference_rejected_logps": reference_rejected_logps}
    for name, value in tensors.items():
        check_tensor(name, value, floating=True)
        if value.shape != policy_chosen_logps.shape:
            raise ValueError(f"{name} must have shape {tuple(policy_chosen_logps.shape)}, got {tuple(value.shape)}")
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    chosen = implicit_reward(policy_chosen_logps, reference_chosen_logps, beta=beta, divergence=divergence, alpha=alpha)
    rejected = implicit_reward(policy_rejected_logps, reference_rejected_logps, beta=beta, divergence=divergence,
                               alpha=alpha)
    losses = -F.logsigmoid(chosen - rejected)
    return {"mean": losses.mean, "sum": losses.sum, "none": lambda: losses}[reduction]()
