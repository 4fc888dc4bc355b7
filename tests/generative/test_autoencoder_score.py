"""Regularized auto-encoder criteria and the score estimate (Alain & Bengio 2014) against closed forms,
brute-force Jacobians, finite differences and the analytic score of a Gaussian mixture."""

import math

import pytest
import torch

from regkit.data import GaussianMixture, gaussian_mixture_1d
from regkit.generative import (
    contractive_loss,
    denoising_loss,
    jacobian_frobenius_sq,
    langevin_chain,
    score_estimate,
)

DT = torch.float64


def _normal():
    return GaussianMixture(torch.ones(1, dtype=DT), torch.zeros(1, 1, dtype=DT), torch.ones(1, dtype=DT))


def _mlp(d=3, hidden=5, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, d)).double()


@pytest.mark.parametrize("sigma", [0.1, 0.5, 1.0])
def test_optimal_denoiser_of_a_gaussian_gives_the_smoothed_score(sigma):
    """For N(0, 1) data the DAE minimiser is r(x) = x / (1 + σ²) (the posterior mean); its score estimate is
    −x / (1 + σ²), the score of N(0, 1 + σ²) = p * N(0, σ²)."""
    x = torch.linspace(-3, 3, 13, dtype=DT).unsqueeze(1)
    estimate = score_estimate(lambda t: t / (1 + sigma**2), x, sigma)
    torch.testing.assert_close(estimate, -x / (1 + sigma**2))
    torch.testing.assert_close(estimate, _normal().smoothed(sigma).score(x))


def test_denoising_loss_is_the_corrupted_reconstruction_error_and_its_expectation():
    """Per point: the same ε drawn by hand; in expectation, for r(x) = a x on N(0, 1): (a − 1)² + a²σ²,
    minimal at a = 1 / (1 + σ²)."""
    sigma, g = 0.5, torch.Generator().manual_seed(0)
    x = torch.randn(200_000, 1, generator=g, dtype=DT)
    r = _mlp(1)
    per_point = denoising_loss(r, x[:7], sigma, torch.Generator().manual_seed(3), reduction="none")
    eps = torch.randn(7, 1, generator=torch.Generator().manual_seed(3), dtype=DT)
    torch.testing.assert_close(per_point, (r(x[:7] + sigma * eps) - x[:7]).pow(2).sum(1))
    for a in (1 / (1 + sigma**2), 0.6, 1.0):
        value = float(denoising_loss(lambda t, a=a: a * t, x, sigma, g))
        assert abs(value - ((a - 1) ** 2 + a**2 * sigma**2)) < 0.01
    assert float(denoising_loss(lambda t: 0.8 * t, x, sigma, g, reduction="sum")) > 0


def test_jacobian_frobenius_matches_brute_force_jacobian():
    r = _mlp(3)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=DT)
    brute = torch.stack([torch.autograd.functional.jacobian(r, row).pow(2).sum() for row in x])
    torch.testing.assert_close(jacobian_frobenius_sq(r, x), brute)


def test_jacobian_frobenius_of_a_linear_map_and_hutchinson_is_unbiased():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(4, 4, generator=g, dtype=DT), torch.randn(4, generator=g, dtype=DT)
    x = torch.randn(10, 4, generator=g, dtype=DT)
    exact = jacobian_frobenius_sq(lambda t: t @ a.T + b, x)
    torch.testing.assert_close(exact, torch.full((10,), float(a.pow(2).sum()), dtype=DT))
    r = _mlp(4, seed=3)
    estimate = jacobian_frobenius_sq(r, x, method="hutchinson", n_probes=4000, generator=g)
    torch.testing.assert_close(estimate, jacobian_frobenius_sq(r, x), rtol=0.08, atol=0)


def test_contractive_loss_closed_form_and_linear_minimiser():
    """r(x) = a x: the per-point criterion is (a − 1)² ‖x‖² + σ² a² d; on a sample its minimiser is
    a* = m / (m + σ² d) with m the mean of ‖x‖² (= 1 / (1 + σ²) for N(0, 1) data as n → ∞)."""
    sigma = 0.3
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(4), dtype=DT)
    a = torch.tensor(0.7, dtype=DT, requires_grad=True)
    per_point = contractive_loss(lambda t: a * t, x, sigma, reduction="none")
    torch.testing.assert_close(per_point, (a - 1) ** 2 * x.pow(2).sum(1) + sigma**2 * a**2 * 2)
    m = float(x.pow(2).sum(1).mean())
    a_star = torch.tensor(m / (m + 2 * sigma**2), dtype=DT, requires_grad=True)
    (grad,) = torch.autograd.grad(contractive_loss(lambda t: a_star * t, x, sigma), a_star)
    assert abs(float(grad)) < 1e-12


def test_contractive_loss_gradient_matches_finite_differences():
    """Double backward through the Jacobian penalty (exact and Hutchinson with a fixed probe seed)."""
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(5), dtype=DT)
    g = torch.Generator().manual_seed(6)
    w1 = torch.randn(4, 2, generator=g, dtype=DT, requires_grad=True)
    b1 = torch.randn(4, generator=g, dtype=DT, requires_grad=True)
    w2 = torch.randn(2, 4, generator=g, dtype=DT, requires_grad=True)

    def loss(w1, b1, w2, jacobian):
        def r(t):
            return t + torch.tanh(t @ w1.T + b1) @ w2.T

        return contractive_loss(r, x, 0.4, jacobian=jacobian, n_probes=3, generator=torch.Generator().manual_seed(7))

    for jacobian in ("exact", "hutchinson"):
        assert torch.autograd.gradcheck(lambda *p, j=jacobian: loss(*p, j), (w1, b1, w2))


def test_contractive_and_denoising_criteria_agree_for_small_sigma():
    """Section 3.3: E‖r(x + σε) − x‖² = E[‖r(x) − x‖² + σ²‖J‖²_F] + o(σ²) for a smooth r near the identity
    (the DAE expectation by antithetic pairs ±ε, which cancel the odd terms of the Taylor expansion)."""
    net = _mlp(2, seed=8)

    def r(t):
        return t + 0.05 * net(t)

    g = torch.Generator().manual_seed(9)
    x = torch.randn(2000, 2, generator=g, dtype=DT)
    sigma = 0.05
    eps = torch.randn(20, *x.shape, generator=g, dtype=DT)
    with torch.no_grad():
        dae = 0.5 * ((r(x + sigma * eps) - x).pow(2).sum(-1) + (r(x - sigma * eps) - x).pow(2).sum(-1)).mean()
    rcae = float(contractive_loss(r, x, sigma).detach())
    penalty = rcae - float((r(x) - x).pow(2).sum(1).mean().detach())
    assert abs(float(dae) - rcae) < 0.02 * penalty  # the σ² terms agree to 2 %
    assert abs(penalty - sigma**2 * 2) < 0.2 * sigma**2 * 2  # J ≈ I: the penalty ≈ σ² d


def test_per_point_sigma_equals_one_call_per_sigma():
    """A (N,) sigma (an ensemble over noise levels stacked row-wise) gives what separate calls give."""
    r = _mlp(2, seed=10)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(11), dtype=DT)
    sigmas = torch.tensor([0.1, 0.1, 0.1, 0.5, 0.5, 0.5], dtype=DT)
    parts = [slice(0, 3), slice(3, 6)]
    joint = contractive_loss(r, x, sigmas, reduction="none")
    torch.testing.assert_close(
        joint, torch.cat([contractive_loss(r, x[p], float(sigmas[p][0]), reduction="none") for p in parts])
    )
    joint = denoising_loss(r, x, sigmas, torch.Generator().manual_seed(0), reduction="none")
    eps = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=DT)
    torch.testing.assert_close(joint, (r(x + sigmas[:, None] * eps) - x).pow(2).sum(1))
    joint = score_estimate(r, x, sigmas)
    torch.testing.assert_close(joint, torch.cat([score_estimate(r, x[p], float(sigmas[p][0])) for p in parts]))


def test_trained_mlp_score_approaches_the_analytic_score():
    """A small MLP trained by the DAE criterion on the 1-D mixture: (r(x) − x)/σ² against the analytic score of
    the smoothed mixture (its exact target) and of the data, p-weighted relative MSE on a grid."""
    torch.manual_seed(0)
    mixture, sigma = gaussian_mixture_1d(dtype=torch.float32), 0.2
    g = torch.Generator().manual_seed(0)
    data = mixture.sample(20_000, g)
    net = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU())
    net.append(torch.nn.Linear(64, 1))

    def r(t):
        return t + sigma**2 * net(t)

    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(1200):
        batch = data[torch.randint(0, len(data), (512,), generator=g)]
        loss = denoising_loss(r, batch, sigma, g) / sigma**4
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    grid = torch.linspace(-4, 4, 401).unsqueeze(1)
    weights = mixture.log_prob(grid).exp()
    with torch.no_grad():
        estimate = score_estimate(r, grid, sigma)

    def relative_mse(truth):
        return float((weights * (estimate - truth).pow(2).sum(1)).sum() / (weights * truth.pow(2).sum(1)).sum())

    assert relative_mse(mixture.smoothed(sigma).score(grid)) < 0.05
    assert relative_mse(mixture.score(grid)) < 0.1


def test_langevin_chain_on_a_gaussian_has_the_discretised_stationary_law():
    """Exact score −x of N(0, 1): the chain x ← (1 − h) x + √(2h) ξ is stationary at N(0, 2 / (2 − h))."""
    h = 0.1
    x0 = torch.full((20_000, 1), 3.0, dtype=DT)
    samples = langevin_chain(lambda t: -t, x0, h, 150, torch.Generator().manual_seed(0))
    assert abs(float(samples.mean())) < 0.03
    assert abs(float(samples.var()) - 2 / (2 - h)) < 0.04
    assert torch.equal(samples, langevin_chain(lambda t: -t, x0, h, 150, torch.Generator().manual_seed(0)))


def _identity(t):
    return t


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda: denoising_loss(_identity, torch.zeros(4, 2), 0.0), "sigma"),
        (lambda: contractive_loss(_identity, torch.zeros(4, 2), -1.0), "sigma"),
        (lambda: score_estimate(_identity, torch.zeros(4, 2), math.nan), "sigma"),
        (lambda: denoising_loss(_identity, torch.zeros(4, 2), torch.full((3,), 0.1)), "sigma"),
        (lambda: contractive_loss(_identity, torch.zeros(4, 2), torch.tensor([0.1, 0.1, 0.0, 0.1])), "sigma"),
        (lambda: denoising_loss(_identity, torch.zeros(4), 0.1), "x must have 2 dimensions"),
        (lambda: contractive_loss(_identity, torch.zeros(4, 2, dtype=torch.long), 0.1), "floating"),
        (lambda: score_estimate(_identity, torch.tensor([[math.nan, 0.0]]), 0.1), "non-finite"),
        (lambda: score_estimate(lambda t: t[:, :1], torch.zeros(4, 2), 0.1), "reconstruct"),
        (lambda: jacobian_frobenius_sq(_identity, torch.zeros(4, 2), method="fd"), "method"),
        (lambda: contractive_loss(_identity, torch.zeros(4, 2), 0.1, jacobian="fd"), "jacobian"),
        (lambda: jacobian_frobenius_sq(_identity, torch.zeros(4, 2), method="hutchinson", n_probes=0), "n_probes"),
        (lambda: denoising_loss(_identity, torch.zeros(4, 2), 0.1, reduction="avg"), "reduction"),
        (lambda: langevin_chain(_identity, torch.zeros(4, 2), 0.0, 10), "step"),
        (lambda: langevin_chain(_identity, torch.zeros(4, 2), 0.1, 0), "n_steps"),
        (lambda: langevin_chain(lambda t: t[:, :1], torch.zeros(4, 2), 0.1, 1), "score"),
    ],
)
def test_bad_input(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()
