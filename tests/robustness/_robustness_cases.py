"""Shared inventory for the tests/robustness/test_*.py modules (issue 12): every public
non-OT function that takes logits and labels, with a call that fixes its other arguments."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, settings

from regkit.losses import (
    balanced_softmax_loss,
    comp_sum_loss,
    dice_loss,
    focal_loss,
    gce_loss,
    label_smoothing_loss,
    ldr_kl_loss,
    mae_loss,
    pass_at_n_loss,
    sce_loss,
    spherical_softmax_cross_entropy,
    spherical_z_loss,
    squared_hinge_loss,
    stablemax_cross_entropy,
    taylor_softmax_cross_entropy,
)
from regkit.losses.elr import elr_loss
from regkit.regularizers import soft_cross_entropy

#: small, deterministic, fast: the robustness modules together stay well under a minute
FAST = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _soft_ce(logits, labels, **kwargs):
    targets = torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return soft_cross_entropy(logits, targets, **kwargs)


def _balanced_softmax(logits, labels, **kwargs):
    # counts 1, 2, ..., K: dropping the last classes keeps the others' counts (the masked-class test)
    counts = torch.arange(1, logits.shape[1] + 1)
    return balanced_softmax_loss(logits, labels, class_counts=counts, **kwargs)


def _elr(logits, labels, **kwargs):
    return elr_loss(logits, labels, torch.full_like(logits, 1.0 / logits.shape[1]), **kwargs)


#: name -> loss(logits (B, K), labels (B,), reduction=...) for every logits+labels loss
CLASSIFICATION_LOSSES = {
    "gce_loss": gce_loss,
    "gce_loss_small_q": lambda z, y, **kw: gce_loss(z, y, q=1e-3, **kw),
    "sce_loss": sce_loss,
    "mae_loss": mae_loss,
    "focal_loss": focal_loss,
    "focal_loss_gamma_half": lambda z, y, **kw: focal_loss(z, y, gamma=0.5, **kw),
    "label_smoothing_loss": label_smoothing_loss,
    "ldr_kl_loss": ldr_kl_loss,
    "pass_at_n_loss": lambda z, y, **kw: pass_at_n_loss(z, y, 4, **kw),
    "stablemax_cross_entropy": stablemax_cross_entropy,
    "spherical_z_loss": spherical_z_loss,
    "spherical_z_loss_sharp": lambda z, y, **kw: spherical_z_loss(z, y, a=50.0, b=1.0, **kw),
    "spherical_softmax_cross_entropy": spherical_softmax_cross_entropy,
    "taylor_softmax_cross_entropy": taylor_softmax_cross_entropy,
    "balanced_softmax_loss": _balanced_softmax,
    "soft_cross_entropy": _soft_ce,
    "elr_loss": _elr,
    # tau >= 1: bounded gradients (tau < 1 overflows to inf, by design; tests/losses/test_comp_sum.py)
    "comp_sum_loss_tau_1": lambda z, y, **kw: comp_sum_loss(z, y, tau=1.0, **kw),
    "comp_sum_loss_tau_1_5": lambda z, y, **kw: comp_sum_loss(z, y, tau=1.5, **kw),
    "comp_sum_loss_tau_2": lambda z, y, **kw: comp_sum_loss(z, y, tau=2.0, **kw),
    "dice_loss": dice_loss,
    "dice_loss_dsc": lambda z, y, **kw: dice_loss(z, y, alpha=1.0, **kw),
    "dice_loss_official": lambda z, y, **kw: dice_loss(z, y, alpha=0.01, square_denominator=True, **kw),
    "squared_hinge_loss": squared_hinge_loss,
    "squared_hinge_loss_weston_watkins": lambda z, y, **kw: squared_hinge_loss(
        z, y, formulation="weston_watkins", **kw
    ),
}

#: the losses for which a masked (−inf) class is the same as a removed class
MASK_IS_REMOVAL = [name for name in CLASSIFICATION_LOSSES if name not in ("ldr_kl_loss", "elr_loss")]


def reference(fn, logits, labels):
    """``fn`` per example in float64 (the right value to compare half precision against)."""
    return fn(logits.double(), labels, reduction="none")
