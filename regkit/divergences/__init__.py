"""Divergences between distributions and the preference objectives built on them."""

from regkit.divergences.f_divergence import DIVERGENCES, Generator, f_divergence, generator
from regkit.divergences.f_dpo import F_DPO_DIVERGENCES, f_dpo_loss, implicit_reward

__all__ = [
    "DIVERGENCES",
    "F_DPO_DIVERGENCES",
    "Generator",
    "f_divergence",
    "f_dpo_loss",
    "generator",
    "implicit_reward",
]
