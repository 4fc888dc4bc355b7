"""Every loss validates ``reduction`` through ``regkit._checks.check_reduction`` (issue 11, Deliver 5):
an unknown value raises ``ValueError`` naming the valid ones, before any state is written."""

import inspect

import pytest
import torch

import regkit.divergences
import regkit.generative
import regkit.heads
import regkit.losses
import regkit.regularizers
import regkit.rl
from regkit.divergences import f_dpo_loss
from regkit.generative import ardae_score_loss, contractive_loss, denoising_loss, proximal_matching_loss
from regkit.heads import ebv_loss
from regkit.losses import (
    ALDRKLLoss,
    BalancedMSELoss,
    ELRLoss,
    adv_comp_sum_loss,
    anyloss,
    balanced_mse_loss,
    balanced_softmax_loss,
    comp_sum_loss,
    dice_loss,
    elr_loss,
    focal_loss,
    gce_loss,
    label_smoothing_loss,
    ldr_kl_loss,
    linear_cross_entropy,
    mae_loss,
    margin_vector_distance,
    pass_at_n_loss,
    sce_loss,
    spherical_softmax_cross_entropy,
    spherical_z_loss,
    spherical_z_loss_factored,
    squared_hinge_loss,
    stablemax_cross_entropy,
    taylor_softmax_cross_entropy,
    trades_kl,
    trades_loss,
    vocab_parallel_linear_cross_entropy,
)
from regkit.regularizers import PSKD, soft_cross_entropy

LOGITS, LABELS, INDEX = torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 3])
HIDDEN, WEIGHT = torch.randn(4, 5), torch.randn(3, 5)
LOGPS = torch.randn(4)

# name → call with reduction=r (functions) or construct-and-call (modules, validated at construction)
CALLS = {
    "elr_loss": lambda r: elr_loss(LOGITS, LABELS, LOGITS.softmax(1), reduction=r),
    "ELRLoss": lambda r: ELRLoss(4, 3, reduction=r)(LOGITS, LABELS, INDEX),
    "ldr_kl_loss": lambda r: ldr_kl_loss(LOGITS, LABELS, reduction=r),
    "ALDRKLLoss": lambda r: ALDRKLLoss(4, 3, reduction=r)(LOGITS, LABELS, INDEX),
    "linear_cross_entropy": lambda r: linear_cross_entropy(HIDDEN, WEIGHT, LABELS, reduction=r),
    "vocab_parallel_linear_cross_entropy": lambda r: vocab_parallel_linear_cross_entropy(
        HIDDEN, WEIGHT, LABELS, reduction=r
    ),
    "pass_at_n_loss": lambda r: pass_at_n_loss(LOGITS, LABELS, 4, reduction=r),
    "gce_loss": lambda r: gce_loss(LOGITS, LABELS, reduction=r),
    "sce_loss": lambda r: sce_loss(LOGITS, LABELS, reduction=r),
    "mae_loss": lambda r: mae_loss(LOGITS, LABELS, reduction=r),
    "focal_loss": lambda r: focal_loss(LOGITS, LABELS, reduction=r),
    "label_smoothing_loss": lambda r: label_smoothing_loss(LOGITS, LABELS, reduction=r),
    "stablemax_cross_entropy": lambda r: stablemax_cross_entropy(LOGITS, LABELS, reduction=r),
    "comp_sum_loss": lambda r: comp_sum_loss(LOGITS, LABELS, tau=0.5, reduction=r),
    "adv_comp_sum_loss": lambda r: adv_comp_sum_loss(LOGITS, LOGITS + 1, LABELS, tau=1.0, nu=1.0, reduction=r),
    "margin_vector_distance": lambda r: margin_vector_distance(LOGITS, LOGITS + 1, LABELS, reduction=r),
    "trades_loss": lambda r: trades_loss(LOGITS, 2 * LOGITS, LABELS, beta=6.0, reduction=r),
    "trades_kl": lambda r: trades_kl(LOGITS, 2 * LOGITS, reduction=r),
    "spherical_z_loss": lambda r: spherical_z_loss(LOGITS, LABELS, reduction=r),
    "spherical_z_loss_factored": lambda r: spherical_z_loss_factored(HIDDEN, WEIGHT, LABELS, reduction=r),
    "spherical_softmax_cross_entropy": lambda r: spherical_softmax_cross_entropy(LOGITS, LABELS, reduction=r),
    "taylor_softmax_cross_entropy": lambda r: taylor_softmax_cross_entropy(LOGITS, LABELS, reduction=r),
    "balanced_softmax_loss": lambda r: balanced_softmax_loss(LOGITS, LABELS, class_counts=[5, 1, 2], reduction=r),
    "balanced_mse_loss": lambda r: balanced_mse_loss(HIDDEN, HIDDEN + 0.1, noise_var=1.0, reduction=r),
    "BalancedMSELoss": lambda r: BalancedMSELoss(1.0, reduction=r)(HIDDEN, HIDDEN + 0.1),
    "soft_cross_entropy": lambda r: soft_cross_entropy(LOGITS, LOGITS.softmax(1), reduction=r),
    "PSKD": lambda r: PSKD(4, 3, epochs=2, reduction=r)(LOGITS, LABELS, INDEX),
    "f_dpo_loss": lambda r: f_dpo_loss(LOGPS, LOGPS - 1, LOGPS, LOGPS, reduction=r),
    "anyloss": lambda r: anyloss(LOGITS.softmax(1), LABELS, reduction=r),  # "none": one loss per class
    "dice_loss": lambda r: dice_loss(LOGITS, LABELS, reduction=r),
    "squared_hinge_loss": lambda r: squared_hinge_loss(LOGITS, LABELS, reduction=r),
    "ebv_loss": lambda r: ebv_loss(HIDDEN, WEIGHT, LABELS, reduction=r),
    "proximal_matching_loss": lambda r: proximal_matching_loss(HIDDEN, HIDDEN + 0.1, 0.5, reduction=r),
    "denoising_loss": lambda r: denoising_loss(torch.tanh, HIDDEN, 0.1, torch.Generator(), reduction=r),
    "contractive_loss": lambda r: contractive_loss(torch.tanh, HIDDEN, 0.1, reduction=r),
    "ardae_score_loss": lambda r: ardae_score_loss(
        torch.tanh, HIDDEN.reshape(4, 1, 1, 5), 0.1, generator=torch.Generator(), reduction=r
    ),
}


def _public_with_reduction():
    names = set()
    for module in (regkit.losses, regkit.divergences, regkit.regularizers, regkit.rl, regkit.heads, regkit.generative):
        for name in module.__all__:
            obj = getattr(module, name)
            target = obj.__init__ if inspect.isclass(obj) else obj
            if callable(target) and "reduction" in inspect.signature(target).parameters:
                names.add(name)
    return names


def test_every_public_loss_with_a_reduction_is_covered():
    assert _public_with_reduction() == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_bogus_reduction_raises_a_value_error_listing_the_valid_ones(name):
    with pytest.raises(ValueError) as raised:
        CALLS[name]("bogus")
    message = str(raised.value)
    assert "reduction" in message and "'bogus'" in message
    assert "valid: none, mean, sum" in message


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_the_valid_reductions_are_accepted(name, reduction):
    loss = CALLS[name](reduction)
    assert loss.ndim == (1 if reduction == "none" else 0)
