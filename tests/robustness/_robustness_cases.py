"""Shared inventory for the tests/robustness/test_*.py modules (issue 12): every public
non-OT function that takes logits and labels, with a call that fixes its other arguments."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, settings

from regkit.losses import (
    focal_loss,
    gce_loss,
    label_smoothing_loss,
    ldr_kl_loss,
    mae_loss,
    pass_at_n_loss,
    sce_loss,
    squared_hinge_loss,
    stablemax_cross_entropy,
)
from regkit.losses.elr import elr_loss
from regkit.regularizers import soft_cross_entropy

#: small, deterministic, fast: the robustness modules together stay well under a minute
FAST = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _soft_ce(logits, labels, **kwargs):
    targets = torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return soft_cross_entropy(logits, targets, **kwargs)


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
    "soft_cross_entropy": _soft_ce,
    "elr_loss": _elr,
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
