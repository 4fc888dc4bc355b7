"""Noise2Score: the Tweedie denoisers against brute-force posteriors (quadrature / summation) under priors, the
AR-DAE loss's minimiser against the closed-form score of a Gaussian, the annealing schedule, and bad input."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from regkit.generative import annealed_sigma, ardae_score_loss, gamma_tweedie, gaussian_tweedie, poisson_tweedie

DT = torch.float64


def _t(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=float), dtype=DT)


# ---------------------------------------------------------------------------------------------
# Gaussian: x ~ N(mu, tau²), y = x + sigma n  =>  y ~ N(mu, tau² + sigma²), E[x | y] in closed form
# ---------------------------------------------------------------------------------------------


def test_gaussian_tweedie_with_the_exact_score_is_the_posterior_mean_of_a_gaussian_prior():
    mu, tau, sigma = 0.3, 0.5, 0.2
    y = torch.linspace(-1.5, 2.0, 41, dtype=DT)
    score = -(y - mu) / (tau**2 + sigma**2)
    posterior_mean = (tau**2 * y + sigma**2 * mu) / (tau**2 + sigma**2)
    torch.testing.assert_close(gaussian_tweedie(y, score, sigma), posterior_mean, rtol=0, atol=1e-14)


def test_gaussian_tweedie_is_the_posterior_mean_under_a_mixture_prior_by_quadrature():
    sigma = 0.3
    weights, means, scales = [0.3, 0.7], [-1.0, 0.8], [0.2, 0.4]

    def prior(x):
        return sum(w * stats.norm.pdf(x, m, s) for w, m, s in zip(weights, means, scales, strict=True))

    def quad(fn, y):
        return integrate.quad(lambda x: fn(x) * prior(x) * stats.norm.pdf(y, x, sigma), -10, 10, epsabs=1e-13)[0]

    for y in [-1.7, -0.4, 0.1, 0.9, 2.2]:
        marginal = quad(lambda x: 1.0, y)
        mean = quad(lambda x: x, y) / marginal
        d_marginal = quad(lambda x, y=y: (x - y) / sigma**2, y)  # d/dy of the likelihood
        estimate = gaussian_tweedie(_t([y]), _t([d_marginal / marginal]), sigma)
        assert float(estimate) == pytest.approx(mean, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Poisson: lambda = x / zeta ~ Gamma(a, rate b), z = y / zeta ~ Poisson(lambda)
# posterior lambda | z ~ Gamma(a + z, b + 1), E[log lambda | z] = psi(a + z) − log(b + 1)
# ---------------------------------------------------------------------------------------------


def _poisson_brute_force(z, a, b):
    """E[log lambda | z] and d/dz log p(z) (the marginal continued in z through 1/Γ(z + 1)) by quadrature."""
    prior = lambda lam: stats.gamma.pdf(lam, a, scale=1 / b)

    def log_marginal(zz):
        like = lambda lam: prior(lam) * np.exp(zz * np.log(lam) - lam - special.gammaln(zz + 1))
        return math.log(integrate.quad(like, 0, np.inf, epsabs=1e-14, limit=200)[0])

    like = lambda lam: prior(lam) * stats.poisson.pmf(z, lam)
    marginal = integrate.quad(like, 0, np.inf, epsabs=1e-14, limit=200)[0]
    mean_log = integrate.quad(lambda lam: np.log(lam) * like(lam), 0, np.inf, epsabs=1e-14, limit=200)[0] / marginal
    h = 1e-4
    score_z = (log_marginal(z + h) - log_marginal(z - h)) / (2 * h)
    return mean_log, score_z


@pytest.mark.parametrize("z", [0, 1, 3, 8, 20])
def test_poisson_tweedie_is_the_geometric_posterior_mean_up_to_the_stirling_term(z):
    a, b, zeta = 3.0, 0.4, 0.05
    mean_log, score_z = _poisson_brute_force(z, a, b)
    assert mean_log == pytest.approx(special.digamma(a + z) - math.log(b + 1), abs=1e-7)  # the conjugate form
    y, score_y = _t([zeta * z]), _t([score_z / zeta])  # the score with respect to y = zeta z
    estimate = float(poisson_tweedie(y, score_y, zeta))
    target = zeta * math.exp(mean_log)
    # the paper replaces psi(z + 1) by log(z + 1/2): the exponent errs by at most 1/(24 (z + 1/2)²)
    bound = 1 / (24 * (z + 0.5) ** 2)
    assert abs(math.log(estimate / target)) <= bound
    assert abs(math.log(estimate / target)) == pytest.approx(abs(special.digamma(z + 1) - math.log(z + 0.5)), abs=1e-6)


def test_poisson_tweedie_matches_the_official_count_scale_form():
    # official: the network sees z = y / eta and recon = (eta / 2 + eta z) exp(R(z)), R the score in z
    gen = torch.Generator().manual_seed(0)
    zeta = 0.05
    z = torch.poisson(torch.full((50,), 8.0, dtype=DT), generator=gen)
    score_z = torch.randn(50, generator=gen, dtype=DT) * 0.2
    official = (zeta * 0.5 + z * zeta) * torch.exp(score_z)
    torch.testing.assert_close(poisson_tweedie(zeta * z, score_z / zeta, zeta), official)


# ---------------------------------------------------------------------------------------------
# Gamma: y | x ~ Gamma(k, rate k/x); the estimate is 1 / E[1/x | y] exactly, whatever the prior
# ---------------------------------------------------------------------------------------------


def test_gamma_tweedie_is_one_over_the_posterior_mean_of_one_over_x_conjugate():
    k, a, b = 20.0, 4.0, 3.0  # beta = k / x ~ Gamma(a, rate b): beta | y ~ Gamma(a + k, b + y)
    y = torch.linspace(0.05, 3.0, 30, dtype=DT)
    score = (k - 1) / y - (a + k) / (b + y)  # the compound-gamma marginal p(y) ∝ y^(k-1) / (b + y)^(a+k)
    torch.testing.assert_close(gamma_tweedie(y, score, k), k * (b + y) / (a + k), rtol=1e-13, atol=0)


def test_gamma_tweedie_under_a_non_conjugate_prior_by_quadrature():
    k = 12.0
    prior = lambda x: stats.beta.pdf(x, 2.0, 3.0)  # x in (0, 1)

    def quad(fn, y):
        integrand = lambda x: fn(x) * prior(x) * stats.gamma.pdf(y, k, scale=x / k)
        return integrate.quad(integrand, 0, 1, epsabs=1e-14, limit=200)[0]

    for y in [0.1, 0.35, 0.7, 1.2]:
        marginal = quad(lambda x: 1.0, y)
        inverse_mean = quad(lambda x: 1 / x, y) / marginal
        score = quad(lambda x, y=y: (k - 1) / y - k / x, y) / marginal  # d/dy of the Gamma density
        assert float(gamma_tweedie(_t([y]), _t([score]), k)) == pytest.approx(1 / inverse_mean, rel=1e-8)


def test_gamma_tweedie_at_zero_is_zero():
    assert float(gamma_tweedie(_t([0.0]), _t([5.0]), 10.0)) == 0.0


# ---------------------------------------------------------------------------------------------
# The AR-DAE loss
# ---------------------------------------------------------------------------------------------


def test_ardae_loss_is_the_official_mse_of_sigma_r_against_minus_u():
    y = torch.rand(4, 1, 5, 5, dtype=DT, generator=torch.Generator().manual_seed(1))
    model = lambda v: torch.tanh(3 * v) - v**2
    sigma = 0.07
    loss = ardae_score_loss(model, y, sigma, generator=torch.Generator().manual_seed(7))
    u = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=DT)
    official = torch.nn.functional.mse_loss(sigma * model(y + sigma * u), -u)
    torch.testing.assert_close(loss, official)
    per_example = ardae_score_loss(model, y, sigma, generator=torch.Generator().manual_seed(7), reduction="none")
    assert per_example.shape == (4,)
    torch.testing.assert_close(per_example.mean(), official)
    summed = ardae_score_loss(model, y, sigma, generator=torch.Generator().manual_seed(7), reduction="sum")
    torch.testing.assert_close(summed, per_example.sum())


def _linear_minimiser(y, sigma, seed):
    """Minimise the loss over R(v) = a v + b: the loss is quadratic, so one Newton step from 0 is exact."""
    theta = torch.zeros(2, dtype=DT, requires_grad=True)

    def loss(t):
        return ardae_score_loss(lambda v: t[0] * v + t[1], y, sigma, generator=torch.Generator().manual_seed(seed))

    grad = torch.autograd.grad(loss(theta), theta)[0]
    hessian = torch.autograd.functional.hessian(loss, theta.detach())
    return -torch.linalg.solve(hessian, grad)


def test_ardae_minimiser_over_linear_r_is_the_least_squares_fit():
    gen = torch.Generator().manual_seed(3)
    y = (0.4 + 0.5 * torch.randn(500, 1, generator=gen, dtype=DT)).contiguous()
    sigma = 0.1
    theta = _linear_minimiser(y, sigma, seed=11)
    u = torch.randn(y.shape, generator=torch.Generator().manual_seed(11), dtype=DT)
    v = y + sigma * u
    design = sigma * torch.cat([v, torch.ones_like(v)], 1)
    reference = torch.linalg.lstsq(design, -u).solution.reshape(2)
    torch.testing.assert_close(theta, reference, rtol=1e-10, atol=1e-12)


def test_ardae_minimiser_is_the_score_of_the_smoothed_gaussian():
    # y ~ N(mu, s²): the minimiser over all functions is the score of N(mu, s² + sigma²), linear
    mu, s, sigma, n = 0.4, 0.5, 0.1, 400_000
    y = (mu + s * torch.randn(n, 1, generator=torch.Generator().manual_seed(5), dtype=DT)).contiguous()
    a, b = _linear_minimiser(y, sigma, seed=13).tolist()
    variance = s**2 + sigma**2
    assert a == pytest.approx(-1 / variance, rel=0.02)
    assert b == pytest.approx(mu / variance, rel=0.03)
    assert abs(-1 / a - variance) < abs(-1 / a - s**2)  # the smoothed variance, not the raw one


def test_ardae_loss_trains_a_score_model_to_the_gaussian_score():
    mu, s = 0.3, 0.4
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1).double()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    steps = 600
    for step in range(steps):
        y = mu + s * torch.randn(256, 1, generator=gen, dtype=DT)
        sigma = annealed_sigma(step, steps, sigma_max=0.2, sigma_min=0.05)
        loss = ardae_score_loss(model, y, sigma, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    weight, bias = float(model.weight.detach()), float(model.bias.detach())
    assert weight == pytest.approx(-1 / (s**2 + 0.05**2), rel=0.1)
    assert bias == pytest.approx(mu / (s**2 + 0.05**2), rel=0.15)


def test_ardae_loss_follows_the_device_and_dtype_of_y():
    y = torch.rand(2, 3, dtype=torch.float32)
    loss = ardae_score_loss(lambda v: -v, y, 0.1, generator=torch.Generator().manual_seed(0))
    assert loss.dtype == torch.float32 and loss.device == y.device


# ---------------------------------------------------------------------------------------------
# The annealing schedule
# ---------------------------------------------------------------------------------------------


def test_annealed_sigma_is_the_official_linear_schedule():
    values = [annealed_sigma(t, 10, sigma_max=1.0, sigma_min=0.5) for t in range(12)]
    assert values[0] == pytest.approx(0.95)  # perc = (0 + 1) / 10
    assert values[9] == pytest.approx(0.5) and values[11] == pytest.approx(0.5)
    assert all(b < a for a, b in zip(values[:10], values[1:10], strict=False))
    assert annealed_sigma(4, 10, sigma_max=0.05, sigma_min=0.001) == pytest.approx(0.05 * 0.5 + 0.001 * 0.5)


# ---------------------------------------------------------------------------------------------
# Bad input: one test per kind of rejection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [gaussian_tweedie, poisson_tweedie, gamma_tweedie])
def test_tweedie_rejects_a_score_of_another_shape(fn):
    with pytest.raises(ValueError, match="score must have y's shape"):
        fn(torch.ones(3), torch.ones(4), 2.0)


@pytest.mark.parametrize("fn", [gaussian_tweedie, poisson_tweedie, gamma_tweedie])
def test_tweedie_rejects_non_finite_inputs(fn):
    with pytest.raises(ValueError, match="score has 1 non-finite"):
        fn(torch.ones(3), torch.tensor([0.0, math.nan, 0.0]), 2.0)
    with pytest.raises(ValueError, match="y has 1 non-finite"):
        fn(torch.tensor([1.0, math.inf, 1.0]), torch.zeros(3), 2.0)


@pytest.mark.parametrize("fn", [gaussian_tweedie, poisson_tweedie, gamma_tweedie])
def test_tweedie_rejects_integer_tensors_and_non_tensors(fn):
    with pytest.raises(ValueError, match="floating-point"):
        fn(torch.ones(3, dtype=torch.int64), torch.zeros(3), 2.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn([1.0, 2.0], torch.zeros(2), 2.0)


@pytest.mark.parametrize(
    ("fn", "name", "bad"),
    [(gaussian_tweedie, "sigma", 0.0), (poisson_tweedie, "zeta", -0.1), (gamma_tweedie, "k", 1.0)],
)
def test_tweedie_rejects_a_noise_parameter_out_of_range(fn, name, bad):
    with pytest.raises(ValueError, match=name):
        fn(torch.ones(3), torch.zeros(3), bad)


@pytest.mark.parametrize(("fn", "family"), [(poisson_tweedie, "Poisson"), (gamma_tweedie, "Gamma")])
def test_poisson_and_gamma_reject_negative_observations(fn, family):
    with pytest.raises(ValueError, match=f"non-negative for {family}"):
        fn(torch.tensor([0.5, -0.1]), torch.zeros(2), 2.0)


def test_ardae_loss_rejects_bad_input():
    gen = torch.Generator().manual_seed(0)
    model = lambda v: -v
    with pytest.raises(ValueError, match="sigma"):
        ardae_score_loss(model, torch.ones(2, 3), 0.0, generator=gen)
    with pytest.raises(ValueError, match="non-batch dimension"):
        ardae_score_loss(model, torch.ones(3), 0.1, generator=gen)
    with pytest.raises(ValueError, match="y has 1 non-finite"):
        ardae_score_loss(model, torch.tensor([[1.0, math.nan]]), 0.1, generator=gen)
    with pytest.raises(ValueError, match="reduction"):
        ardae_score_loss(model, torch.ones(2, 3), 0.1, generator=gen, reduction="max")
    with pytest.raises(ValueError, match="score_model must return"):
        ardae_score_loss(lambda v: v.sum(1), torch.ones(2, 3), 0.1, generator=gen)
    with pytest.raises(TypeError, match="generator"):
        ardae_score_loss(model, torch.ones(2, 3), 0.1, generator=0)


def test_annealed_sigma_rejects_bad_input():
    with pytest.raises(ValueError, match="sigma_min"):
        annealed_sigma(0, 10, sigma_max=0.1, sigma_min=0.2)
    with pytest.raises(ValueError, match="sigma_max"):
        annealed_sigma(0, 10, sigma_max=0.0, sigma_min=0.0)
    with pytest.raises(ValueError, match="total_steps"):
        annealed_sigma(0, 0, sigma_max=0.1, sigma_min=0.01)
    with pytest.raises(ValueError, match="step"):
        annealed_sigma(-1, 10, sigma_max=0.1, sigma_min=0.01)
