"""Policy-gradient objectives for reinforcement fine-tuning with verifiable rewards."""

from regkit.rl.aepo import aepo_loss, aepo_temperature, reinforce_loss, token_entropy
from regkit.rl.grpo import group_advantages, grpo_loss, masked_mean
from regkit.rl.sequence import sequence_logps, token_logps

__all__ = [
    "aepo_loss",
    "aepo_temperature",
    "group_advantages",
    "grpo_loss",
    "masked_mean",
    "reinforce_loss",
    "sequence_logps",
    "token_entropy",
    "token_logps",
]
