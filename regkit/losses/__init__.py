"""Training losses: cross-entropy variants, noisy-label losses and the L2-SVM (squared hinge) head."""

from regkit.losses.elr import ELRLoss, elr_loss
from regkit.losses.ldr import ALDRKLLoss, ldr_kl_loss
from regkit.losses.linear_cross_entropy import LinearCrossEntropyStats, linear_cross_entropy
from regkit.losses.pass_at_n import coverage_gradient_factor, pass_at_n_loss
from regkit.losses.robust import focal_loss, gce_loss, label_smoothing_loss, mae_loss, sce_loss
from regkit.losses.stablemax import log_stablemax, stablemax, stablemax_cross_entropy
from regkit.losses.svm import l2_svm_objective, squared_hinge_loss
from regkit.losses.vocab_parallel import vocab_parallel_linear_cross_entropy

__all__ = [
    "ALDRKLLoss",
    "ELRLoss",
    "LinearCrossEntropyStats",
    "coverage_gradient_factor",
    "elr_loss",
    "focal_loss",
    "gce_loss",
    "l2_svm_objective",
    "label_smoothing_loss",
    "ldr_kl_loss",
    "linear_cross_entropy",
    "log_stablemax",
    "mae_loss",
    "pass_at_n_loss",
    "sce_loss",
    "squared_hinge_loss",
    "stablemax",
    "stablemax_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
]
