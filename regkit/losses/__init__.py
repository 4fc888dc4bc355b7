"""Training losses: cross-entropy variants, noisy-label, comp-sum, TRADES, spherical-family, label-rebalancing and
metric (confusion-matrix, Dice) losses, and the L2-SVM (squared hinge) head."""

from regkit.losses.anyloss import ANYLOSS_METRICS, SoftConfusion, anyloss, anyloss_approximation, soft_confusion_matrix
from regkit.losses.balanced import BalancedMSELoss, balanced_mse_loss, balanced_softmax_loss
from regkit.losses.comp_sum import adv_comp_sum_loss, comp_sum_loss, margin_vector_distance
from regkit.losses.dice import dice_loss
from regkit.losses.elr import ELRLoss, elr_loss
from regkit.losses.ldr import ALDRKLLoss, ldr_kl_loss
from regkit.losses.linear_cross_entropy import LinearCrossEntropyStats, linear_cross_entropy
from regkit.losses.pass_at_n import coverage_gradient_factor, pass_at_n_loss
from regkit.losses.robust import focal_loss, gce_loss, label_smoothing_loss, mae_loss, sce_loss
from regkit.losses.spherical import (
    log_spherical_softmax,
    log_taylor_softmax,
    spherical_softmax,
    spherical_softmax_cross_entropy,
    spherical_z_loss,
    spherical_z_loss_factored,
    standardize_logits,
    taylor_softmax,
    taylor_softmax_cross_entropy,
)
from regkit.losses.stablemax import log_stablemax, stablemax, stablemax_cross_entropy
from regkit.losses.svm import l2_svm_objective, squared_hinge_loss
from regkit.losses.trades import trades_kl, trades_loss
from regkit.losses.vocab_parallel import vocab_parallel_linear_cross_entropy

__all__ = [
    "ANYLOSS_METRICS",
    "ALDRKLLoss",
    "BalancedMSELoss",
    "ELRLoss",
    "LinearCrossEntropyStats",
    "adv_comp_sum_loss",
    "comp_sum_loss",
    "balanced_mse_loss",
    "balanced_softmax_loss",
    "SoftConfusion",
    "anyloss",
    "anyloss_approximation",
    "coverage_gradient_factor",
    "dice_loss",
    "elr_loss",
    "focal_loss",
    "gce_loss",
    "l2_svm_objective",
    "label_smoothing_loss",
    "ldr_kl_loss",
    "linear_cross_entropy",
    "log_spherical_softmax",
    "log_stablemax",
    "log_taylor_softmax",
    "mae_loss",
    "margin_vector_distance",
    "pass_at_n_loss",
    "sce_loss",
    "spherical_softmax",
    "spherical_softmax_cross_entropy",
    "spherical_z_loss",
    "spherical_z_loss_factored",
    "soft_confusion_matrix",
    "squared_hinge_loss",
    "stablemax",
    "stablemax_cross_entropy",
    "standardize_logits",
    "taylor_softmax",
    "taylor_softmax_cross_entropy",
    "trades_kl",
    "trades_loss",
    "vocab_parallel_linear_cross_entropy",
]
