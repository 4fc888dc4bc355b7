"""Tests of regkit.generative.sparse_autoencoder: TopK SAE, vSAE, metrics, superposition data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from torch.distributions import Normal, kl_divergence

from regkit.generative import (
    TopKSAE,
    VariationalTopKSAE,
    dead_latent_fraction,
    feature_recovery,
    fit_sae,
    fraction_variance_unexplained,
    gaussian_kl,
    mean_pairwise_cosine,
    random_unit_features,
    sae_step,
    sparse_superposition,
    topk_relu,
)

DT = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_fvu_is_one_minus_variance_weighted_r2():
    x = torch.randn(50, 7, generator=gen(), dtype=DT) * torch.arange(1, 8, dtype=DT)
    x_hat = x + 0.3 * torch.randn(50, 7, generator=gen(1), dtype=DT)
    fvu = float(fraction_variance_unexplained(x, x_hat))
    assert fvu == pytest.approx(1 - r2_score(x.numpy(), x_hat.numpy(), multioutput="variance_weighted"), rel=1e-12)
    # not the uniform average of per-feature R² (the features have different variances)
    assert abs(fvu - (1 - r2_score(x.numpy(), x_hat.numpy()))) > 1e-3


def test_fvu_hand_computation():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=DT)  # mean (1, 2); total variance 1+1+1+1 = 4
    x_hat = torch.tensor([[0.0, 2.0], [2.0, 3.0]], dtype=DT)  # squared error 1
    assert float(fraction_variance_unexplained(x, x_hat)) == pytest.approx(0.25)
    assert float(fraction_variance_unexplained(x, x.mean(0).expand_as(x))) == pytest.approx(1.0)


def test_dead_latent_fraction_brute_force():
    latents = torch.randn(30, 40, generator=gen(), dtype=DT).relu() * (torch.rand(30, 40, generator=gen(1)) < 0.05)
    dead = sum(all(latents[n, j] == 0 for n in range(30)) for j in range(40)) / 40
    assert 0 < dead < 1
    assert dead_latent_fraction(latents) == pytest.approx(dead)


def test_mean_pairwise_cosine_brute_force():
    rows = torch.randn(9, 5, generator=gen(), dtype=DT)
    pairs = [
        abs(float(torch.nn.functional.cosine_similarity(rows[i], rows[j], dim=0)))
        for i, j in itertools.combinations(range(9), 2)
    ]
    assert float(mean_pairwise_cosine(rows)) == pytest.approx(np.mean(pairs), rel=1e-12)
    assert float(mean_pairwise_cosine(torch.eye(4, dtype=DT))) == 0.0


def test_feature_recovery_brute_force_and_exact_dictionary():
    features = random_unit_features(6, 4, generator=gen(), dtype=DT)
    rows = torch.randn(10, 4, generator=gen(1), dtype=DT)
    expected = np.mean([max(float(torch.nn.functional.cosine_similarity(f, r, dim=0)) for r in rows) for f in features])
    assert float(feature_recovery(features, rows)) == pytest.approx(expected, rel=1e-12)
    shuffled = torch.cat([3.0 * features[torch.randperm(6, generator=gen(2))], rows])
    assert float(feature_recovery(features, shuffled)) == pytest.approx(1.0)


def test_gaussian_kl_matches_torch_distributions():
    mean = torch.randn(20, 8, generator=gen(), dtype=DT)
    log_var = torch.randn(20, 8, generator=gen(1), dtype=DT)
    reference = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(torch.zeros_like(mean), 1.0))
    torch.testing.assert_close(gaussian_kl(mean, log_var), reference)


def test_topk_relu_keeps_exactly_k_largest():
    pre = torch.randn(16, 32, generator=gen(), dtype=DT)
    out = topk_relu(pre.abs() + 0.1, 5)  # all positive: exactly k non-zero
    assert ((out != 0).sum(1) == 5).all()
    kept = (pre.abs() + 0.1).sort(1, descending=True).values[:, :5]
    torch.testing.assert_close(out.sort(1, descending=True).values[:, :5], kept)
    mixed = topk_relu(pre, 5)  # a ReLU zero may be among the k kept
    assert ((mixed != 0).sum(1) <= 5).all() and (mixed >= 0).all()
    assert ((mixed != 0).sum(1) == (pre > 0).sum(1).clamp(max=5)).all()


def test_superposition_statistics():
    features = random_unit_features(256, 64, generator=gen())
    torch.testing.assert_close(features.norm(dim=1), torch.ones(256))
    x, coefficients = sparse_superposition(features, 4000, activation_prob=0.02, generator=gen(1))
    assert x.shape == (4000, 64) and coefficients.shape == (4000, 256)
    active = coefficients > 0
    assert float(active.float().mean()) == pytest.approx(0.02, abs=0.002)
    assert float(coefficients[active].mean()) == pytest.approx(0.5, abs=0.02)  # U(0, 1)
    torch.testing.assert_close(x, coefficients @ features)


def test_decoder_rows_unit_norm_after_step_and_gradient_orthogonal():
    data = torch.randn(64, 8, generator=gen(), dtype=DT)
    model = TopKSAE(8, 24, 3, generator=gen(1), dtype=DT)
    torch.testing.assert_close(model.decoder_weight.norm(dim=1), torch.ones(24, dtype=DT))
    tied = model.encoder_weight.data / model.encoder_weight.norm(dim=1, keepdim=True)
    torch.testing.assert_close(model.decoder_weight.data, tied)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model.loss(data).backward()
    model.project_decoder_gradient_()
    radial = (model.decoder_weight.grad * model.decoder_weight).sum(1)
    torch.testing.assert_close(radial, torch.zeros(24, dtype=DT))
    before = model.decoder_weight.detach().clone()
    sae_step(model, optimizer, data)
    assert not torch.equal(before, model.decoder_weight)
    torch.testing.assert_close(model.decoder_weight.norm(dim=1), torch.ones(24, dtype=DT))


def test_forward_is_the_formula():
    model = TopKSAE(5, 12, 4, generator=gen(), dtype=DT)
    with torch.no_grad():
        model.encoder_bias.normal_(generator=gen(2))
        model.decoder_bias.normal_(generator=gen(3))
    x = torch.randn(7, 5, generator=gen(1), dtype=DT)
    pre = torch.nn.functional.linear(x - model.decoder_bias, model.encoder_weight, model.encoder_bias)
    z = torch.relu(pre)
    z = z * (z >= z.topk(4, dim=1).values[:, -1:])
    out = model(x)
    torch.testing.assert_close(out.latents, z)
    torch.testing.assert_close(out.reconstruction, z @ model.decoder_weight + model.decoder_bias)
    torch.testing.assert_close(out.reconstruction_loss, ((x - out.reconstruction) ** 2).sum(1))


def test_vsae_beta0_sigma0_is_the_topk_sae():
    x = torch.randn(40, 6, generator=gen(), dtype=DT)
    sae = TopKSAE(6, 20, 4, generator=gen(1), dtype=DT)
    vsae = VariationalTopKSAE(6, 20, 4, beta=0.0, log_var_init=-80.0, generator=gen(1), dtype=DT)
    for name in ("encoder_weight", "encoder_bias", "decoder_weight", "decoder_bias"):
        torch.testing.assert_close(getattr(vsae, name), getattr(sae, name))
    out_sae, out_vsae = sae(x), vsae(x, generator=gen(5))  # sampled, with σ = e^-40
    torch.testing.assert_close(out_vsae.latents, out_sae.latents)
    torch.testing.assert_close(vsae.loss(x, generator=gen(5)), sae.loss(x))
    # and training on the same batches follows the same path (the noise has its own generator)
    opt_sae, opt_vsae = torch.optim.Adam(sae.parameters(), lr=1e-2), torch.optim.Adam(vsae.parameters(), lr=1e-2)
    noise = gen(8)
    for step in range(5):
        batch = torch.randn(16, 6, generator=gen(10 + step), dtype=DT)
        assert sae_step(vsae, opt_vsae, batch, generator=noise) == pytest.approx(sae_step(sae, opt_sae, batch))
    torch.testing.assert_close(vsae.decoder_weight, sae.decoder_weight)
    torch.testing.assert_close(vsae.encoder_weight, sae.encoder_weight)


def test_vsae_sampling_and_kl_scope():
    x = torch.randn(30, 6, generator=gen(), dtype=DT)
    vsae = VariationalTopKSAE(6, 20, 4, beta=0.5, log_var_init=0.0, generator=gen(1), dtype=DT)
    out = vsae(x, generator=gen(2))
    noise = torch.randn(30, 20, generator=gen(2), dtype=DT)
    torch.testing.assert_close(out.latents, topk_relu(out.mean + (0.5 * out.log_var).exp() * noise, 4))
    torch.testing.assert_close(out.kl, gaussian_kl(out.mean, out.log_var).sum(1))
    torch.testing.assert_close(vsae.loss(x, generator=gen(2)), (out.reconstruction_loss + 0.5 * out.kl).mean())
    torch.testing.assert_close(vsae(x).latents, topk_relu(out.mean, 4))  # no generator: the mean
    active = VariationalTopKSAE(6, 20, 4, kl_latents="active", log_var_init=0.0, generator=gen(1), dtype=DT)
    out_active = active(x, generator=gen(2))
    mask = torch.zeros(30, 20, dtype=torch.bool).scatter(1, torch.relu(out.mean + noise).topk(4, dim=1).indices, True)
    torch.testing.assert_close(out_active.kl, (gaussian_kl(out.mean, out.log_var) * mask).sum(1))


def test_kl_gradient_matches_finite_differences():
    mean = torch.randn(3, 4, generator=gen(), dtype=DT, requires_grad=True)
    log_var = torch.randn(3, 4, generator=gen(1), dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, v: gaussian_kl(m, v).sum(), (mean, log_var))


def test_training_reduces_fvu_on_superposition():
    features = random_unit_features(32, 16, generator=gen())
    x, _ = sparse_superposition(features, 2000, activation_prob=0.1, generator=gen(1))
    model = TopKSAE(16, 64, 4, generator=gen(2))
    with torch.no_grad():
        before = float(fraction_variance_unexplained(x, model(x).reconstruction))
    fit_sae(model, x, steps=150, batch_size=64, lr=3e-3, generator=gen(3))
    with torch.no_grad():
        after = float(fraction_variance_unexplained(x, model(x).reconstruction))
    assert after < 0.5 * before


# ---- rejected input, one test per kind ----


def test_rejects_k_larger_than_width():
    with pytest.raises(ValueError, match="k must be"):
        TopKSAE(4, 8, 9)
    with pytest.raises(ValueError, match="k must be"):
        topk_relu(torch.randn(2, 3), 4)


def test_rejects_negative_beta():
    with pytest.raises(ValueError, match="beta"):
        VariationalTopKSAE(4, 8, 2, beta=-0.1)


def test_rejects_unknown_kl_latents():
    with pytest.raises(ValueError, match="kl_latents.*all, active"):
        VariationalTopKSAE(4, 8, 2, kl_latents="some")


def test_rejects_wrong_input_shape():
    model = TopKSAE(4, 8, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 4\)"):
        model(torch.randn(3, 5))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        model(torch.randn(4))


def test_rejects_metric_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        fraction_variance_unexplained(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="same number of columns"):
        feature_recovery(torch.randn(4, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(torch.randn(2, 3), torch.randn(3, 2))


def test_rejects_degenerate_metric_inputs():
    with pytest.raises(ValueError, match="zero variance"):
        fraction_variance_unexplained(torch.ones(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="zero rows"):
        mean_pairwise_cosine(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="at least 2 rows"):
        mean_pairwise_cosine(torch.ones(1, 2))


def test_rejects_bad_probability():
    with pytest.raises(ValueError, match="activation_prob"):
        sparse_superposition(torch.eye(3), 5, activation_prob=1.5)


def test_rejects_integer_input():
    with pytest.raises(ValueError, match="floating"):
        TopKSAE(4, 8, 2)(torch.ones(3, 4, dtype=torch.long))
