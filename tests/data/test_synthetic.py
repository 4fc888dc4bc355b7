"""Synthetic data: modular addition, Gaussian clusters, the Zipf bigram corpus, Gaussian mixtures."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from regkit.data import (
    GaussianMixture,
    eight_gaussians,
    gaussian_clusters,
    gaussian_mixture_1d,
    modular_addition,
    zipf_bigram_corpus,
)


def test_modular_addition_labels_and_split():
    data = modular_addition(7, 0.4, torch.Generator().manual_seed(0))
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test])
    a, b = x[:, :7].argmax(1), x[:, 7:].argmax(1)
    assert torch.equal(y, (a + b) % 7)
    assert len(data.y_train) == round(0.4 * 49) and len(y) == 49
    assert len({(int(i), int(j)) for i, j in zip(a, b)}) == 49  # every pair exactly once


def test_gaussian_clusters_are_balanced_and_centered():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(5, 40, generator=g) / 40**0.5
    data = gaussian_clusters(500, 100, means, 0.5, g)
    assert torch.equal(torch.bincount(data.y_train), torch.full((5,), 100))
    centers = torch.stack([data.x_train[data.y_train == k].mean(0) for k in range(5)])
    assert float((centers - means).norm(dim=1).max()) < 0.2  # noise 0.5/√d per coordinate, 100 samples


def test_zipf_bigram_follows_the_rule_and_the_law():
    vocab = 64
    tokens = zipf_bigram_corpus(vocab, 20_000, torch.Generator().manual_seed(0))
    ranks = (tokens[1:] - 31 * tokens[:-1]) % vocab
    counts = torch.bincount(ranks, minlength=vocab).double()
    law = torch.arange(1, vocab + 1, dtype=torch.float64) ** -1.1
    assert float((counts / counts.sum() - law / law.sum()).abs().max()) < 0.01


def _diagonal_mixture():
    g = torch.Generator().manual_seed(1)
    return GaussianMixture(
        torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64),
        torch.randn(3, 3, generator=g, dtype=torch.float64),
        0.3 + torch.rand(3, 3, generator=g, dtype=torch.float64),
    )


def _scipy_log_prob(mixture, x):
    scales = mixture._scales().numpy()
    parts = [
        math.log(w) + stats.multivariate_normal(m, np.diag(s**2)).logpdf(x.numpy())
        for w, m, s in zip(mixture.weights.tolist(), mixture.means.numpy(), scales)
    ]
    return np.logaddexp.reduce(np.stack(parts), axis=0)


@pytest.mark.parametrize("make", [_diagonal_mixture, eight_gaussians])
def test_mixture_log_prob_matches_scipy(make):
    mixture = make()
    x = torch.randn(50, mixture.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2
    np.testing.assert_allclose(mixture.log_prob(x).numpy(), _scipy_log_prob(mixture, x), rtol=1e-10, atol=1e-10)


def test_mixture_1d_log_prob_matches_norm_mixture():
    mixture = gaussian_mixture_1d()
    x = np.linspace(-5, 5, 101)
    density = sum(
        w * stats.norm(m, s).pdf(x)
        for w, m, s in zip(mixture.weights.tolist(), mixture.means[:, 0].tolist(), mixture.stds.tolist())
    )
    got = mixture.log_prob(torch.tensor(x).unsqueeze(1)).numpy()
    np.testing.assert_allclose(got, np.log(density), rtol=1e-12)


@pytest.mark.parametrize("make", [_diagonal_mixture, eight_gaussians, gaussian_mixture_1d])
def test_mixture_score_is_the_gradient_of_log_prob(make):
    mixture = make()
    x = torch.randn(40, mixture.dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    x.requires_grad_(True)
    (autograd,) = torch.autograd.grad(mixture.log_prob(x).sum(), x)
    torch.testing.assert_close(mixture.score(x.detach()), autograd, rtol=1e-10, atol=1e-12)


def test_smoothed_mixture_is_the_convolution():
    """1-D: the smoothed density against numerical quadrature of ∫ p(y) N(x − y; 0, σ²) dy; d-dim:
    the smoothed variances are s² + σ² per coordinate."""
    mixture, sigma = gaussian_mixture_1d(), 0.4
    y = torch.linspace(-12, 12, 40001, dtype=torch.float64)
    p = mixture.log_prob(y.unsqueeze(1)).exp()
    x = torch.tensor([-2.0, -0.3, 0.0, 1.1, 3.0], dtype=torch.float64)
    kernel = torch.exp(-((x[:, None] - y) ** 2) / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma**2)
    quadrature = torch.trapezoid(kernel * p, y, dim=1)
    torch.testing.assert_close(mixture.smoothed(sigma).log_prob(x.unsqueeze(1)).exp(), quadrature, rtol=1e-8, atol=0)
    diagonal = _diagonal_mixture()
    torch.testing.assert_close(diagonal.smoothed(0.5)._scales() ** 2, diagonal._scales() ** 2 + 0.25)
    assert diagonal.smoothed(0.0).log_prob(diagonal.means).allclose(diagonal.log_prob(diagonal.means))


def test_mixture_samples_follow_the_mixture():
    mixture = gaussian_mixture_1d()
    x = mixture.sample(20_000, torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 1) and x.dtype == torch.float64
    cdf = lambda t: sum(  # noqa: E731
        w * stats.norm(m, s).cdf(t)
        for w, m, s in zip(mixture.weights.tolist(), mixture.means[:, 0].tolist(), mixture.stds.tolist())
    )
    assert stats.ks_1samp(x[:, 0].numpy(), cdf).pvalue > 0.01
    ring = eight_gaussians().sample(8000, torch.Generator().manual_seed(1))
    radii = ring.norm(dim=1)
    assert abs(float(radii.mean()) - 2.0) < 0.05
    angles = torch.atan2(ring[:, 1], ring[:, 0])
    counts = torch.bincount(((angles / (2 * math.pi / 8)).round().long()) % 8, minlength=8)
    assert int(counts.min()) > 850 and int(counts.max()) < 1150  # 1000 expected per component


def test_mixture_sampling_is_reproducible():
    mixture = eight_gaussians(dtype=torch.float32)
    a = mixture.sample(10, torch.Generator().manual_seed(5))
    assert a.dtype == torch.float32
    assert torch.equal(a, mixture.sample(10, torch.Generator().manual_seed(5)))


@pytest.mark.parametrize(
    "fn",
    [
        lambda: GaussianMixture(torch.tensor([0.5, 0.6]), torch.zeros(2, 1), torch.ones(2)),
        lambda: GaussianMixture(torch.tensor([1.5, -0.5]), torch.zeros(2, 1), torch.ones(2)),
        lambda: GaussianMixture(torch.tensor([0.5, 0.5]), torch.zeros(3, 1), torch.ones(2)),
        lambda: GaussianMixture(torch.tensor([0.5, 0.5]), torch.zeros(2, 2), torch.ones(3)),
        lambda: GaussianMixture(torch.tensor([0.5, 0.5]), torch.zeros(2, 1), torch.tensor([1.0, 0.0])),
        lambda: GaussianMixture(torch.tensor([0.5, 0.5]), torch.tensor([[0.0], [math.nan]]), torch.ones(2)),
        lambda: eight_gaussians().log_prob(torch.zeros(4, 3)),
        lambda: eight_gaussians().score(torch.zeros(4)),
        lambda: eight_gaussians().smoothed(-0.1),
        lambda: eight_gaussians(std=0.0),
        lambda: eight_gaussians().sample(0, torch.Generator()),
        lambda: modular_addition(1, 0.5, torch.Generator()),
        lambda: modular_addition(5, 1.0, torch.Generator()),
        lambda: zipf_bigram_corpus(1, 10, torch.Generator()),
    ],
)
def test_bad_input(fn):
    with pytest.raises(ValueError):
        fn()
