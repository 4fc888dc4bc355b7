"""Training losses: cross-entropy variants, noisy-label losses and comp-sum losses."""

from regkit.losses.comp_sum import adv_comp_sum_loss, comp_sum_loss, margin_vector_distance
from regkit.losses.elr import ELRLoss, elr_loss
from regkit.losses.ldr import ALDRKLLoss, ldr_kl_loss
from regkit.losses.linear_cross_entropy import LinearCrossEntropyStats, linear_cross_entropy
from regkit.losses.pass_at_n import coverage_gradient_factor, pass_at_n_loss
from regkit.losses.robust import focal_loss, gce_loss, label_smoothing_loss, mae_loss, sce_loss
from regkit.losses.stablemax import log_stablemax, stablemax, stablemax_cross_entropy
from regkit.losses.vocab_parallel import vocab_parallel_linear_cross_entropy

__all__ = [
    "ALDRKLLoss",
    "ELRLoss",
    "LinearCrossEntropyStats",
    "adv_comp_sum_loss",
    "comp_sum_loss",
    "coverage_gradient_factor",
    "elr_loss",
    "focal_loss",
    "gce_loss",
    "label_smoothing_loss",
    "ldr_kl_loss",
    "linear_cross_entropy",
    "log_stablemax",
    "mae_loss",
    "margin_vector_distance",
    "pass_at_n_loss",
    "sce_loss",
    "stablemax",
    "stablemax_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
]
