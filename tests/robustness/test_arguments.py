"""Issue 12, kind 8: every numeric and enumerated argument of every public non-OT function
is validated: a bad value raises ``ValueError`` naming the argument, its value and the
valid range; ``reduction`` is "none" | "mean" | "sum" for every loss, one way."""

import math

import pytest
import torch
from _robustness_cases import CLASSIFICATION_LOSSES, FAST
from hypothesis import given
from hypothesis import strategies as st

from regkit.attacks import pgd_attack
from regkit.data import gaussian_clusters, load_digits, modular_addition, symmetric_noise, zipf_bigram_corpus
from regkit.divergences import f_divergence, f_dpo_loss, generator, implicit_reward
from regkit.heads import FixedHead, ebv_loss, equiangular_basis_vectors, simplex_etf
from regkit.losses import (
    ALDRKLLoss,
    BalancedMSELoss,
    ELRLoss,
    adv_comp_sum_loss,
    anyloss,
    balanced_mse_loss,
    comp_sum_loss,
    dice_loss,
    elr_loss,
    focal_loss,
    gce_loss,
    l2_svm_objective,
    label_smoothing_loss,
    ldr_kl_loss,
    linear_cross_entropy,
    pass_at_n_loss,
    sce_loss,
    spherical_softmax_cross_entropy,
    spherical_z_loss,
    spherical_z_loss_factored,
    squared_hinge_loss,
    stablemax_cross_entropy,
    trades_loss,
)
from regkit.losses.pass_at_n import coverage_gradient_factor
from regkit.optim import Lion, OrthoGrad
from regkit.regularizers import PSKD, cutout, mixup, soft_cross_entropy
from regkit.rl import aepo_temperature, group_advantages, grpo_loss

LOGITS, LABELS = torch.randn(3, 4), torch.tensor([0, 1, 3])
P = torch.tensor([0.2, 0.3, 0.5])
LOGPS = [torch.tensor([-1.0, -2.0])] * 4
X = torch.randn(3, 1, 5)
GEN = torch.Generator().manual_seed(0)
NAN, INF = math.nan, math.inf

#: (argument name, bad value, call with that value)
BAD = [
    ("q", 0.0, lambda v: gce_loss(LOGITS, LABELS, q=v)),
    ("q", 1.5, lambda v: gce_loss(LOGITS, LABELS, q=v)),
    ("q", NAN, lambda v: gce_loss(LOGITS, LABELS, q=v)),
    ("alpha", -0.1, lambda v: sce_loss(LOGITS, LABELS, alpha=v)),
    ("beta", NAN, lambda v: sce_loss(LOGITS, LABELS, beta=v)),
    ("clamp", 0.0, lambda v: sce_loss(LOGITS, LABELS, clamp=v)),
    ("clamp", 2.0, lambda v: sce_loss(LOGITS, LABELS, clamp=v)),
    ("gamma", -1.0, lambda v: focal_loss(LOGITS, LABELS, gamma=v)),
    ("gamma", INF, lambda v: focal_loss(LOGITS, LABELS, gamma=v)),
    ("epsilon", 1.5, lambda v: label_smoothing_loss(LOGITS, LABELS, epsilon=v)),
    ("lam", 0.0, lambda v: ldr_kl_loss(LOGITS, LABELS, lam=v)),
    ("lam", INF, lambda v: ldr_kl_loss(LOGITS, LABELS, lam=v)),
    ("margin", NAN, lambda v: ldr_kl_loss(LOGITS, LABELS, margin=v)),
    ("normalize", "yes", lambda v: ldr_kl_loss(LOGITS, LABELS, normalize=v)),
    ("n", 0, lambda v: pass_at_n_loss(LOGITS, LABELS, v)),
    ("n", 2.5, lambda v: pass_at_n_loss(LOGITS, LABELS, v)),
    ("n", 0, lambda v: coverage_gradient_factor(P, v)),
    ("compute_dtype", torch.int64, lambda v: stablemax_cross_entropy(LOGITS, LABELS, compute_dtype=v)),
    ("a", 0.0, lambda v: spherical_z_loss(LOGITS, LABELS, a=v)),
    ("a", INF, lambda v: spherical_z_loss(LOGITS, LABELS, a=v)),
    ("b", NAN, lambda v: spherical_z_loss(LOGITS, LABELS, b=v)),
    ("a", -1.0, lambda v: spherical_z_loss_factored(LOGITS, torch.eye(4), LABELS, a=v)),
    ("b", INF, lambda v: spherical_z_loss_factored(LOGITS, torch.eye(4), LABELS, b=v)),
    ("eps", 0.0, lambda v: spherical_softmax_cross_entropy(LOGITS, LABELS, eps=v)),
    ("noise_var", -1.0, lambda v: balanced_mse_loss(LOGITS, LOGITS, noise_var=v)),
    ("init_noise_sigma", 0.0, lambda v: BalancedMSELoss(v)),
    ("lam", -1.0, lambda v: elr_loss(LOGITS, LABELS, torch.full_like(LOGITS, 0.25), lam=v)),
    ("clamp", 0.7, lambda v: elr_loss(LOGITS, LABELS, torch.full_like(LOGITS, 0.25), clamp=v)),
    ("smooth", 0.0, lambda v: dice_loss(LOGITS, LABELS, smooth=v)),
    ("alpha", -1.0, lambda v: dice_loss(LOGITS, LABELS, alpha=v)),
    ("alpha", NAN, lambda v: dice_loss(LOGITS, LABELS, alpha=v)),
    ("metric", "mcc", lambda v: anyloss(LOGITS.softmax(1), LABELS, metric=v)),
    ("beta", 0.0, lambda v: anyloss(LOGITS.softmax(1), LABELS, metric="fbeta", beta=v)),
    ("beta", 2.0, lambda v: anyloss(LOGITS.softmax(1), LABELS, metric="f1", beta=v)),
    ("amplifier", INF, lambda v: anyloss(LOGITS.softmax(1), LABELS, amplifier=v)),
    ("amplifier", -1.0, lambda v: anyloss(LOGITS.softmax(1), LABELS, amplifier=v)),
    ("num_examples", 0, lambda v: ELRLoss(v, 4)),
    ("num_classes", 1, lambda v: ELRLoss(5, v)),
    ("beta", 1.0, lambda v: ELRLoss(5, 4, beta=v)),
    ("lam", NAN, lambda v: ELRLoss(5, 4, lam=v)),
    ("reduction", "avg", lambda v: ELRLoss(5, 4, reduction=v)),
    ("num_examples", 2.5, lambda v: ALDRKLLoss(v, 4)),
    ("num_classes", 1, lambda v: ALDRKLLoss(5, v)),
    ("lam0", 0.0, lambda v: ALDRKLLoss(5, 4, lam0=v)),
    ("alpha", 0.5, lambda v: ALDRKLLoss(5, 4, alpha=v)),
    ("margin", INF, lambda v: ALDRKLLoss(5, 4, margin=v)),
    ("tau", -0.5, lambda v: comp_sum_loss(LOGITS, LABELS, tau=v)),
    ("tau", NAN, lambda v: comp_sum_loss(LOGITS, LABELS, tau=v)),
    ("tau", INF, lambda v: comp_sum_loss(LOGITS, LABELS, tau=v)),
    ("nu", -1.0, lambda v: adv_comp_sum_loss(LOGITS, LOGITS, LABELS, tau=1.0, nu=v)),
    ("rho", 0.0, lambda v: adv_comp_sum_loss(LOGITS, LOGITS, LABELS, tau=1.0, nu=1.0, rho=v)),
    ("distance", "l1", lambda v: adv_comp_sum_loss(LOGITS, LOGITS, LABELS, tau=1.0, nu=1.0, distance=v)),
    ("beta", -1.0, lambda v: trades_loss(LOGITS, LOGITS, LABELS, beta=v)),
    ("beta", NAN, lambda v: trades_loss(LOGITS, LOGITS, LABELS, beta=v)),
    ("eps", -0.1, lambda v: pgd_attack(torch.nn.Linear(4, 2), LOGITS, LABELS % 2, eps=v, step_size=0.1, steps=1)),
    ("step_size", 0.0, lambda v: pgd_attack(torch.nn.Linear(4, 2), LOGITS, LABELS % 2, eps=0.1, step_size=v, steps=1)),
    ("steps", 0, lambda v: pgd_attack(torch.nn.Linear(4, 2), LOGITS, LABELS % 2, eps=0.1, step_size=0.1, steps=v)),
    (
        "norm",
        "fro",
        lambda v: pgd_attack(torch.nn.Linear(4, 2), LOGITS, LABELS % 2, eps=0.1, step_size=0.1, steps=1, norm=v),
    ),
    ("chunk_size", 0, lambda v: linear_cross_entropy(LOGITS, torch.eye(4), LABELS, chunk_size=v)),
    ("token_chunk_size", 1.5, lambda v: linear_cross_entropy(LOGITS, torch.eye(4), LABELS, token_chunk_size=v)),
    ("z_loss", -1.0, lambda v: linear_cross_entropy(LOGITS, torch.eye(4), LABELS, z_loss=v)),
    ("filter_eps", "never", lambda v: linear_cross_entropy(LOGITS, torch.eye(4), LABELS, filter_eps=v)),
    ("filter_eps", -1.0, lambda v: linear_cross_entropy(LOGITS, torch.eye(4), LABELS, filter_eps=v)),
    ("ignore_index", 0.5, lambda v: linear_cross_entropy(LOGITS, torch.eye(4), LABELS, ignore_index=v)),
    ("margin", -1.0, lambda v: squared_hinge_loss(LOGITS, LABELS, margin=v)),
    ("margin", INF, lambda v: squared_hinge_loss(LOGITS, LABELS, margin=v)),
    ("formulation", "crammer_singer", lambda v: squared_hinge_loss(LOGITS, LABELS, formulation=v)),
    ("C", 0.0, lambda v: l2_svm_objective(LOGITS, LABELS, torch.eye(4), C=v)),
    ("C", NAN, lambda v: l2_svm_objective(LOGITS, LABELS, torch.eye(4), C=v)),
    ("num_classes", 1, lambda v: simplex_etf(v, 4)),
    ("dim", 2, lambda v: simplex_etf(4, v)),
    ("max_cosine", 1.0, lambda v: equiangular_basis_vectors(4, 8, max_cosine=v)),
    ("max_cosine", NAN, lambda v: equiangular_basis_vectors(4, 8, max_cosine=v)),
    ("steps", 2.5, lambda v: equiangular_basis_vectors(4, 8, max_cosine=0.5, steps=v)),
    ("lr", INF, lambda v: equiangular_basis_vectors(4, 8, max_cosine=0.5, lr=v)),
    ("tol", NAN, lambda v: equiangular_basis_vectors(4, 8, max_cosine=0.5, tol=v)),
    ("temperature", 0.0, lambda v: FixedHead(torch.eye(4), temperature=v)),
    ("temperature", NAN, lambda v: ebv_loss(LOGITS, torch.eye(4), LABELS, temperature=v)),
    ("label_smoothing", -0.1, lambda v: ebv_loss(LOGITS, torch.eye(4), LABELS, label_smoothing=v)),
    ("divergence", "hellinger", lambda v: f_divergence(P, P, v)),
    ("input", "odds", lambda v: f_divergence(P, P, input=v)),
    ("alpha", 1.0, lambda v: f_divergence(P, P, "alpha", alpha=v)),
    ("dim", 3, lambda v: f_divergence(P, P, dim=v)),
    ("alpha", 0.0, lambda v: generator("alpha", alpha=v)),
    ("divergence", "chi2", lambda v: f_dpo_loss(*LOGPS, divergence=v)),
    ("beta", -1.0, lambda v: f_dpo_loss(*LOGPS, beta=v)),
    ("alpha", NAN, lambda v: f_dpo_loss(*LOGPS, divergence="alpha", alpha=v)),
    ("beta", 0.0, lambda v: implicit_reward(LOGPS[0], LOGPS[1], beta=v)),
    ("eps", -1.0, lambda v: group_advantages(torch.randn(2, 3), eps=v)),
    (
        "clip_low",
        1.5,
        lambda v: grpo_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1), torch.ones(1, 2), clip_low=v),
    ),
    (
        "clip_high",
        -0.1,
        lambda v: grpo_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1), torch.ones(1, 2), clip_high=v),
    ),
    ("mask", 0.5, lambda v: grpo_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1), torch.full((1, 2), v))),
    ("t_low", 1.5, lambda v: aepo_temperature(1.0, 2.0, t_low=v)),
    ("t_high", 0.5, lambda v: aepo_temperature(1.0, 2.0, t_high=v)),
    ("entropy", NAN, lambda v: aepo_temperature(v, 2.0)),
    ("lr", 0.0, lambda v: Lion([torch.nn.Parameter(torch.zeros(2))], lr=v)),
    ("lr", NAN, lambda v: Lion([torch.nn.Parameter(torch.zeros(2))], lr=v)),
    ("betas[1]", 1.0, lambda v: Lion([torch.nn.Parameter(torch.zeros(2))], betas=(0.9, v))),
    ("weight_decay", NAN, lambda v: Lion([torch.nn.Parameter(torch.zeros(2))], weight_decay=v)),
    ("base", "sgd", lambda v: OrthoGrad([torch.nn.Parameter(torch.zeros(2))], v)),
    ("epochs", 0, lambda v: PSKD(5, 4, v)),
    ("alpha_T", 1.5, lambda v: PSKD(5, 4, 3, alpha_T=v)),
    ("epoch", 4, lambda v: PSKD(5, 4, 3).targets(LABELS, torch.tensor([0, 1, 2]), v)),
    ("alpha", 0.0, lambda v: mixup(X, LABELS, 4, alpha=v, generator=GEN)),
    ("num_classes", 0, lambda v: mixup(X, torch.zeros(3, dtype=torch.int64), v, generator=GEN)),
    ("size", 0.0, lambda v: cutout(X, LABELS, 4, size=v, generator=GEN)),
    ("rate", 1.5, lambda v: symmetric_noise(LABELS, v, 4, generator=GEN)),
    ("num_classes", 1, lambda v: symmetric_noise(torch.zeros(3, dtype=torch.int64), 0.5, v, generator=GEN)),
    ("p", 1, lambda v: modular_addition(v, 0.5, GEN)),
    ("train_fraction", 1.0, lambda v: modular_addition(5, v, GEN)),
    ("noise", NAN, lambda v: gaussian_clusters(4, 4, torch.eye(2), v, GEN)),
    ("n_train", 0, lambda v: gaussian_clusters(v, 4, torch.eye(2), 0.1, GEN)),
    ("exponent", -1.0, lambda v: zipf_bigram_corpus(5, 10, GEN, exponent=v)),
    ("multiplier", 0, lambda v: zipf_bigram_corpus(5, 10, GEN, multiplier=v)),
    ("test_size", 0.0, lambda v: load_digits(test_size=v)),
    ("dtype", torch.int32, lambda v: load_digits(dtype=v)),
]


@pytest.mark.parametrize("name, value, call", BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_bad_argument_is_a_value_error_naming_it(name, value, call):
    expected = TypeError if name in ("normalize", "base") else ValueError  # a wrong type, not a wrong value
    with pytest.raises(expected) as error:
        call(value)
    message = str(error.value)
    assert name in message
    if isinstance(value, (int, float, str)) and name != "mask":
        assert repr(value) in message or str(value) in message


REDUCED = dict(CLASSIFICATION_LOSSES)
REDUCED.update(
    {
        "f_dpo_loss": lambda z, y, **kw: f_dpo_loss(z[:, 0], z[:, 1], z[:, 2], z[:, 3], **kw),
        "soft_cross_entropy_soft": lambda z, y, **kw: soft_cross_entropy(z, z.detach().softmax(1), **kw),
        "ebv_loss": lambda z, y, **kw: ebv_loss(z, torch.eye(4, dtype=z.dtype), y, **kw),
    }
)


@FAST
@given(seed=st.integers(0, 2**16), bogus=st.sampled_from(["avg", "Mean", "", "batchmean"]))
@pytest.mark.parametrize("name", list(REDUCED))
def test_reduction_is_one_rule_for_every_loss(name, seed, bogus):
    fn = REDUCED[name]
    g = torch.Generator().manual_seed(seed)
    logits, labels = -torch.rand(5, 4, generator=g, dtype=torch.float64) * 3, torch.randint(0, 4, (5,), generator=g)
    none = fn(logits, labels, reduction="none")
    assert none.shape == (5,)
    torch.testing.assert_close(fn(logits, labels, reduction="sum"), none.sum())
    torch.testing.assert_close(fn(logits, labels, reduction="mean"), none.mean())
    torch.testing.assert_close(fn(logits, labels), none.mean())
    with pytest.raises(ValueError, match=f"reduction.*{bogus!r}.*none, mean, sum"):
        fn(logits, labels, reduction=bogus)


@pytest.mark.parametrize("module", [lambda r: ALDRKLLoss(5, 4, reduction=r), lambda r: ELRLoss(5, 4, reduction=r)])
def test_stateful_losses_take_the_same_reduction(module):
    logits, labels, index = torch.randn(3, 4), torch.tensor([0, 1, 3]), torch.tensor([0, 2, 4])
    none = module("none")(logits, labels, index)
    torch.testing.assert_close(module("sum")(logits, labels, index), none.sum())
    torch.testing.assert_close(module("mean")(logits, labels, index), none.mean())
