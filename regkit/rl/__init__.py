"""Policy-gradient objectives for reinforcement fine-tuning with verifiable rewards."""

from regkit.rl.aepo import aepo_temperature, reinforce_loss, token_entropy
from regkit.rl.grpo import group_advantages, grpo_loss, masked_mean

__all__ = ["aepo_temperature", "group_advantages", "grpo_loss", "masked_mean", "reinforce_loss", "token_entropy"]
