"""Training losses: cross-entropy variants and noisy-label losses."""

from regkit.losses.elr import ELRLoss, elr_loss

__all__ = ["ELRLoss", "elr_loss"]
