"""The compositional NLL estimator (MECO) and NCE against closed forms, hand computations and scikit-learn."""

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from regkit.generative import CompositionalNLL, log_mean_exp, nce_loss

DT = torch.float64
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _gaussian_energy(x, mean, log_std):
    """E(x) = (x − mean)² / (2 s²), s = exp(log_std): Z = √(2π) s, so ∇_{log s} log Z = 1."""
    return 0.5 * ((x - mean) / torch.exp(log_std)) ** 2


def _uniform_grid(low, high, m):
    """Midpoints of m cells on [low, high]: 'noise samples' of q = U(low, high), log q = −log(high − low).
    The importance-weight mean over them is the midpoint rule for Z (exact to ~1e-12 for a Gaussian here)."""
    width = (high - low) / m
    grid = low + width * (torch.arange(m, dtype=DT) + 0.5)
    return grid, torch.full((m,), -math.log(high - low), dtype=DT)


def test_gradient_equals_exact_nll_gradient_when_u_is_the_exact_expectation():
    gen = torch.Generator().manual_seed(0)
    data = 1.5 + 0.7 * torch.randn(50, generator=gen, dtype=DT)
    mean = torch.tensor(0.8, dtype=DT, requires_grad=True)
    log_std = torch.tensor(-0.2, dtype=DT, requires_grad=True)
    grid, log_q = _uniform_grid(-12.0, 12.0, 4000)
    loss_fn = CompositionalNLL(gamma=1.0)  # u_t = ĝ_t, here the (numerically exact) expectation Z
    loss = loss_fn(_gaussian_energy(data, mean, log_std), _gaussian_energy(grid, mean, log_std), log_q)
    grad_mean, grad_log_std = torch.autograd.grad(loss, (mean, log_std))
    s2 = math.exp(-0.4)
    # closed form: NLL = mean (x − μ)²/(2s²) + log s + log √(2π)
    exact_mean = -float((data - 0.8).mean()) / s2
    exact_log_std = 1.0 - float(((data - 0.8) ** 2).mean()) / s2
    assert float(grad_mean) == pytest.approx(exact_mean, rel=1e-9, abs=1e-10)
    assert float(grad_log_std) == pytest.approx(exact_log_std, rel=1e-9, abs=1e-10)
    # the value is the NLL estimate mean E + log u with log u = log Z = log √(2π) + log s
    exact_nll = float((0.5 * (data - 0.8) ** 2).mean()) / s2 + LOG_SQRT_2PI - 0.2
    assert loss.item() == pytest.approx(exact_nll, rel=1e-10)
    assert float(loss_fn.log_u) == pytest.approx(LOG_SQRT_2PI - 0.2, rel=1e-10)


def test_monte_carlo_gradient_is_unbiased_with_the_exact_u():
    """With u fixed at Z (state log Z, γ tiny), the estimator's mean over noise batches is ∇NLL."""
    gen = torch.Generator().manual_seed(1)
    data = 2.0 + torch.randn(40, generator=gen, dtype=DT)
    theta = torch.tensor(1.2, dtype=DT, requires_grad=True)
    log_std0 = torch.tensor(0.0, dtype=DT)
    grads = []
    for _ in range(400):
        loss_fn = CompositionalNLL(gamma=1e-12)
        loss_fn.load_state_dict({"log_u": torch.tensor(LOG_SQRT_2PI, dtype=DT), "steps": torch.tensor(1)})
        noise = 2.0 * torch.randn(256, generator=gen, dtype=DT)  # q = N(0, 4)
        log_q = -0.5 * (noise / 2.0) ** 2 - math.log(2.0) - LOG_SQRT_2PI
        loss = loss_fn(_gaussian_energy(data, theta, log_std0), _gaussian_energy(noise, theta, log_std0), log_q)
        grads.append(float(torch.autograd.grad(loss, theta)[0]))
    grads = torch.tensor(grads, dtype=DT)
    exact = float(1.2 - data.mean())  # ∇ log Z = 0 for a mean-only Gaussian energy
    assert abs(float(grads.mean()) - exact) < 4 * float(grads.std()) / math.sqrt(len(grads))
    assert float(grads.std()) > 0  # the noise term is really random


def test_gradient_formula_with_a_given_state():
    """∇L = mean ∇E(data) − Σ_j exp(−E_j − log q_j) ∇E_j / (m u_t), u_t = (1 − γ) u_{t−1} + γ ĝ_t."""
    gen = torch.Generator().manual_seed(2)
    data, noise = torch.randn(7, generator=gen, dtype=DT), torch.randn(5, generator=gen, dtype=DT)
    log_q = torch.randn(5, generator=gen, dtype=DT)
    theta = torch.tensor(0.3, dtype=DT, requires_grad=True)
    loss_fn = CompositionalNLL(gamma=0.25)
    loss_fn.load_state_dict({"log_u": torch.tensor(math.log(3.0), dtype=DT), "steps": torch.tensor(4)})
    loss = loss_fn(0.5 * (data - theta) ** 2, 0.5 * (noise - theta) ** 2, log_q)
    (grad,) = torch.autograd.grad(loss, theta)
    weights = torch.exp(-0.5 * (noise - 0.3) ** 2 - log_q)
    u = 0.75 * 3.0 + 0.25 * float(weights.mean())
    expected = float((0.3 - data).mean()) - float((weights * (0.3 - noise)).sum()) / (5 * u)
    assert float(grad) == pytest.approx(expected, rel=1e-12)
    assert float(loss_fn.log_u) == pytest.approx(math.log(u), rel=1e-12)
    assert loss.item() == pytest.approx(float((0.5 * (data - 0.3) ** 2).mean()) + math.log(u), rel=1e-12)
    assert int(loss_fn.steps) == 5


@pytest.mark.parametrize("gamma", [1.0, 0.3, 0.05])
def test_moving_average_arithmetic_over_a_sequence(gamma):
    gen = torch.Generator().manual_seed(3)
    loss_fn = CompositionalNLL(gamma=gamma)
    u = None
    for _ in range(6):
        energy_noise = torch.randn(9, generator=gen, dtype=DT)
        log_q = torch.randn(9, generator=gen, dtype=DT)
        g = float(torch.exp(-energy_noise - log_q).mean())
        u = g if u is None else (1 - gamma) * u + gamma * g  # u_1 = ĝ_1
        loss_fn(torch.zeros(3, dtype=DT), energy_noise, log_q)
        assert float(loss_fn.log_u) == pytest.approx(math.log(u), rel=1e-12)
    assert int(loss_fn.steps) == 6
    loss_fn.reset()
    assert int(loss_fn.steps) == 0 and math.isnan(float(loss_fn.log_u))


def test_log_domain_survives_weights_that_overflow_exp():
    """−E − log q ≈ 2000 (mismatched noise): exp overflows even float64, the log-domain state does not."""
    loss_fn = CompositionalNLL(gamma=0.5)
    theta = torch.tensor(0.0, requires_grad=True)  # float32: exp overflows beyond 88
    shifts = torch.tensor([0.0, 1.0, -2.0])
    for level in (2000.0, 2003.0):
        loss = loss_fn(torch.zeros(2), -(level + shifts) + 0 * theta, torch.zeros(3))
    # log u_2 = log(0.5 ĝ_1 + 0.5 ĝ_2), log ĝ_k = level_k + log mean exp(shifts)
    lme = math.log(sum(math.exp(s) for s in shifts.tolist()) / 3)
    expected = lme + 2003.0 + math.log(0.5 * math.exp(-3.0) + 0.5)
    assert float(loss_fn.log_u) == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(loss) and torch.isfinite(torch.autograd.grad(loss, theta)[0])


def test_log_mean_exp_against_the_direct_formula():
    values = torch.randn(4, 6, dtype=DT)
    torch.testing.assert_close(log_mean_exp(values), torch.log(torch.exp(values).mean(-1)))
    assert float(log_mean_exp(torch.tensor([1000.0, 1000.0]))) == pytest.approx(1000.0)


def test_nce_loss_against_a_hand_computation_and_pooled_binary_cross_entropy():
    gen = torch.Generator().manual_seed(4)
    e_data, e_noise = torch.randn(6, generator=gen, dtype=DT), torch.randn(9, generator=gen, dtype=DT)
    q_data, q_noise = torch.randn(6, generator=gen, dtype=DT), torch.randn(9, generator=gen, dtype=DT)
    c = torch.tensor(0.4, dtype=DT)
    nu = 9 / 6
    h_data = 1 / (1 + torch.exp(-(-e_data - c - q_data - math.log(nu))))
    h_noise = 1 / (1 + torch.exp(-(-e_noise - c - q_noise - math.log(nu))))
    hand = -(torch.log(h_data).sum() + torch.log(1 - h_noise).sum()) / 6  # Gutmann & Hyvärinen, JMLR eq. 8
    loss = nce_loss(e_data, e_noise, q_data, q_noise, c)
    assert loss.item() == pytest.approx(float(hand), rel=1e-12)
    logits = torch.cat([-e_data - q_data, -e_noise - q_noise]) - c - math.log(nu)
    labels = torch.cat([torch.ones(6, dtype=DT), torch.zeros(9, dtype=DT)])
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    assert loss.item() == pytest.approx(15 / 6 * float(bce), rel=1e-12)


def test_nce_minimiser_matches_scikit_learn_logistic_regression():
    """q = N(0, 1), E = (x − θ)²/2: the NCE logit θx − θ²/2 − c + log √(2π) is linear in x, so NCE's
    minimiser is unpenalised logistic regression of data vs noise: slope θ, intercept −θ²/2 − c + log √(2π)."""
    gen = torch.Generator().manual_seed(5)
    data = 1.0 + torch.randn(300, generator=gen, dtype=DT)
    noise = torch.randn(300, generator=gen, dtype=DT)
    features = torch.cat([data, noise]).reshape(-1, 1).numpy()
    labels = torch.cat([torch.ones(300), torch.zeros(300)]).numpy()
    reference = LogisticRegression(C=math.inf, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(features, labels)
    slope, intercept = float(reference.coef_[0, 0]), float(reference.intercept_[0])

    # the NCE gradient vanishes at the logistic-regression solution mapped to (θ, c) ...
    theta = torch.tensor(slope, dtype=DT, requires_grad=True)
    c = torch.tensor(-(slope**2) / 2 + LOG_SQRT_2PI - intercept, dtype=DT, requires_grad=True)
    log_q = lambda x: -0.5 * x**2 - LOG_SQRT_2PI  # noqa: E731
    loss = nce_loss(0.5 * (data - theta) ** 2, 0.5 * (noise - theta) ** 2, log_q(data), log_q(noise), c)
    grads = torch.autograd.grad(loss, (theta, c))
    assert max(abs(float(g)) for g in grads) < 1e-9
    # ... and the loss is (n + m)/n times scikit-learn's mean log-loss there
    log_loss = -float(torch.tensor(reference.predict_log_proba(features)[torch.arange(600), labels.astype(int)]).mean())
    assert loss.item() == pytest.approx(2 * log_loss, rel=1e-9)


@pytest.mark.parametrize("method", ["compositional", "nce"])
def test_both_recover_a_gaussian_mean(method):
    gen = torch.Generator().manual_seed(6)
    mu_star, noise_std = 2.0, 2.0
    theta = torch.tensor(0.0, dtype=DT, requires_grad=True)
    c = torch.tensor(0.0, dtype=DT, requires_grad=True)
    opt = torch.optim.SGD([theta, c], lr=0.05)
    loss_fn = CompositionalNLL(gamma=0.1)
    log_q = lambda x: -0.5 * (x / noise_std) ** 2 - math.log(noise_std) - LOG_SQRT_2PI  # noqa: E731
    path = []
    for _ in range(600):
        x = mu_star + torch.randn(256, generator=gen, dtype=DT)
        y = noise_std * torch.randn(256, generator=gen, dtype=DT)
        e_x, e_y = 0.5 * (x - theta) ** 2, 0.5 * (y - theta) ** 2
        loss = loss_fn(e_x, e_y, log_q(y)) if method == "compositional" else nce_loss(e_x, e_y, log_q(x), log_q(y), c)
        opt.zero_grad()
        loss.backward()
        opt.step()
        path.append(float(theta.detach()))
    assert abs(sum(path[-100:]) / 100 - mu_star) < 0.1


def test_bad_gamma():
    for gamma in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="gamma"):
            CompositionalNLL(gamma=gamma)
    with pytest.raises(TypeError, match="gamma"):
        CompositionalNLL(gamma="0.1")


def test_bad_shapes_are_rejected_and_leave_the_state_unchanged():
    loss_fn = CompositionalNLL()
    loss_fn(torch.zeros(3), torch.zeros(4), torch.zeros(4))
    state = {k: v.clone() for k, v in loss_fn.state_dict().items()}
    with pytest.raises(ValueError, match="energy_data must have 1 dimensions"):
        loss_fn(torch.zeros(3, 1), torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="log_noise_density must have the shape of energy_noise"):
        loss_fn(torch.zeros(3), torch.zeros(4), torch.zeros(5))
    with pytest.raises(ValueError, match="energy_noise must hold at least one value"):
        loss_fn(torch.zeros(3), torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="energy_data must be a floating-point tensor"):
        loss_fn(torch.zeros(3, dtype=torch.long), torch.zeros(4), torch.zeros(4))
    assert all(torch.equal(v, state[k]) for k, v in loss_fn.state_dict().items())


def test_non_finite_batch_is_rejected_and_leaves_the_state_unchanged():
    loss_fn = CompositionalNLL(gamma=0.5)
    loss_fn(torch.zeros(3), torch.zeros(4), torch.zeros(4))
    state = {k: v.clone() for k, v in loss_fn.state_dict().items()}
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="energy_noise has 1 non-finite"):
            loss_fn(torch.zeros(3), torch.tensor([0.0, bad, 0.0, 0.0]), torch.zeros(4))
        with pytest.raises(ValueError, match="energy_data has 1 non-finite"):
            loss_fn(torch.tensor([0.0, bad, 0.0]), torch.zeros(4), torch.zeros(4))
        with pytest.raises(ValueError, match="log_noise_density has 1 non-finite"):
            loss_fn(torch.zeros(3), torch.zeros(4), torch.tensor([0.0, 0.0, bad, 0.0]))
    assert all(torch.equal(v, state[k]) for k, v in loss_fn.state_dict().items())


def test_nce_bad_inputs():
    z3, z4 = torch.zeros(3), torch.zeros(4)
    with pytest.raises(ValueError, match="log_noise_density_data must have the shape of energy_data"):
        nce_loss(z3, z4, z4, z4, torch.tensor(0.0))
    with pytest.raises(ValueError, match="log_noise_density_noise must have the shape of energy_noise"):
        nce_loss(z3, z4, z3, z3, torch.tensor(0.0))
    with pytest.raises(ValueError, match="log_normalizer must have one element"):
        nce_loss(z3, z4, z3, z4, torch.zeros(2))
    with pytest.raises(ValueError, match="log_normalizer has 1 non-finite"):
        nce_loss(z3, z4, z3, z4, torch.tensor(math.nan))
    with pytest.raises(ValueError, match="energy_noise has 1 non-finite"):
        nce_loss(z3, torch.tensor([0.0, math.inf, 0.0, 0.0]), z3, z4, torch.tensor(0.0))
    with pytest.raises(ValueError, match="energy_data must have 1 dimensions"):
        nce_loss(torch.zeros(3, 2), z4, z3, z4, torch.tensor(0.0))


def test_log_mean_exp_bad_input():
    with pytest.raises(ValueError, match="non-empty last dimension"):
        log_mean_exp(torch.zeros(2, 0))
    with pytest.raises(ValueError, match="floating-point"):
        log_mean_exp(torch.zeros(3, dtype=torch.long))


def test_device_and_dtype_follow_the_inputs(device):
    loss_fn = CompositionalNLL(gamma=0.5).to(device)
    for dtype in (torch.float32, torch.float64):
        loss_fn.reset()
        theta = torch.tensor(0.5, dtype=dtype, device=device, requires_grad=True)
        x = torch.randn(5, dtype=dtype, device=device)
        loss = loss_fn((x - theta) ** 2, (x - theta) ** 2, torch.zeros(5, dtype=dtype, device=device))
        assert loss.dtype == dtype and loss.device.type == device.type
        assert loss_fn.log_u.dtype == dtype
        c = torch.tensor(0.0, dtype=dtype, device=device)
        assert nce_loss(x - theta, x - theta, x, x, c).dtype == dtype
