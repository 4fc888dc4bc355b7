"""Learned proximal networks: convexity, f = ∇ψ, the inverse, R against closed forms, proximal matching."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regkit.generative.proximal import (
    InverseResult,
    LearnedProximalNetwork,
    invert_prox,
    prox_regularizer,
    proximal_matching_gamma,
    proximal_matching_loss,
)

DT = torch.float64


def _lpn(dim=1, hidden=16, layers=2, alpha=0.1, seed=0, beta=5.0):
    return LearnedProximalNetwork(
        dim, hidden, layers, beta=beta, alpha=alpha, dtype=DT, generator=torch.Generator().manual_seed(seed)
    )


def _scramble_(net, seed):
    """Signed random values in every parameter, convex weights included (as an unprojected step can leave)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=DT))
    return net


def _convexity_gap(net, a, b, t):
    """tψ(a) + (1 − t)ψ(b) − ψ(ta + (1 − t)b), ≥ 0 for a convex ψ."""
    mix = t[:, None] * a + (1 - t[:, None]) * b
    return t * net.potential(a) + (1 - t) * net.potential(b) - net.potential(mix)


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 3),
    layers=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    scramble=st.booleans(),
)
def test_potential_is_convex_on_random_pairs(dim, layers, seed, scramble):
    net = _lpn(dim=dim, layers=layers, seed=seed, alpha=0.0)
    if scramble:  # negative stored weights: the forward pass clamps them, ψ stays convex
        _scramble_(net, seed + 1)
    gen = torch.Generator().manual_seed(seed)
    a, b = 3 * torch.randn(200, dim, generator=gen, dtype=DT), 3 * torch.randn(200, dim, generator=gen, dtype=DT)
    t = torch.rand(200, generator=gen, dtype=DT)
    assert _convexity_gap(net, a, b, t).min() >= -1e-10


def test_without_the_clamp_the_potential_is_not_convex():
    # the test above can fail: the same scrambled weights used unclamped break convexity
    net = _scramble_(_lpn(dim=1, layers=3, alpha=0.0, hidden=8), 3)
    y = torch.linspace(-4, 4, 801, dtype=DT)[:, None]

    def unclamped(y):
        act = torch.nn.functional.softplus
        z = act(y @ net.input_weights[0].T, beta=net.beta)
        for h, w, b in zip(net.input_weights[1:], net.hidden_weights, net.biases):
            z = act(z @ w.T + y @ h.T + b, beta=net.beta)
        return z @ net.output_weight + y @ net.linear + net.offset

    second = torch.diff(unclamped(y), 2)  # discrete second derivative
    assert second.min() < -1e-6
    assert torch.diff(net.potential(y), 2).min() >= -1e-12


def test_convexity_holds_after_a_training_step_and_projection_keeps_the_function():
    net = _lpn(dim=2, layers=3, alpha=0.0, seed=1)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 2, generator=gen, dtype=DT)
    y = x + torch.randn(64, 2, generator=gen, dtype=DT)
    optimizer = torch.optim.SGD(net.parameters(), lr=50.0)  # a large step drives convex weights negative
    proximal_matching_loss(net(y), x, 0.5).backward()
    optimizer.step()
    assert min(float(w.detach().min()) for w in net.convex_weights()) < 0
    a, b = 3 * torch.randn(300, 2, generator=gen, dtype=DT), 3 * torch.randn(300, 2, generator=gen, dtype=DT)
    t = torch.rand(300, generator=gen, dtype=DT)
    assert _convexity_gap(net, a, b, t).min() >= -1e-10
    before = net.potential(a)
    assert net.project_() is net
    assert min(float(w.detach().min()) for w in net.convex_weights()) >= 0
    torch.testing.assert_close(net.potential(a), before, rtol=0, atol=0)


def test_prox_is_the_gradient_of_the_potential():
    net = _lpn(dim=3, layers=2, seed=4)
    y = torch.randn(10, 3, generator=torch.Generator().manual_seed(5), dtype=DT)
    f = net(y)
    assert f.shape == y.shape and f.dtype == DT
    # autograd directly
    yy = y.clone().requires_grad_(True)
    torch.testing.assert_close(f, torch.autograd.grad(net.potential(yy).sum(), yy)[0])
    # central finite differences
    h = 1e-6
    basis = torch.eye(3, dtype=DT)
    fd = torch.stack([(net.potential(y + h * e) - net.potential(y - h * e)) / (2 * h) for e in basis], 1)
    torch.testing.assert_close(f.detach(), fd, rtol=1e-6, atol=1e-8)
    # f is differentiable in y (its Jacobian, the Hessian of ψ) and in θ
    assert torch.autograd.gradcheck(lambda v: net(v), (y[:3].clone().requires_grad_(True),))
    f.sum().backward()
    assert net.output_weight.grad is not None and torch.isfinite(net.output_weight.grad).all()


def test_prox_is_monotone_and_alpha_strongly_so():
    alpha = 0.3
    net = _lpn(dim=2, alpha=alpha, seed=6)
    gen = torch.Generator().manual_seed(7)
    a, b = torch.randn(200, 2, generator=gen, dtype=DT), torch.randn(200, 2, generator=gen, dtype=DT)
    inner = ((net(a) - net(b)) * (a - b)).sum(1).detach()
    assert (inner >= alpha * ((a - b) ** 2).sum(1) - 1e-10).all()


@pytest.mark.parametrize("dim", [1, 3])
def test_inverse_solves_the_fixed_point_equation(dim):
    net = _lpn(dim=dim, alpha=0.05, seed=8, beta=10.0)
    x = 2 * torch.randn(50, dim, generator=torch.Generator().manual_seed(9), dtype=DT)
    result = invert_prox(net.potential, x, tol=1e-9)
    assert isinstance(result, InverseResult) and result.converged and result.errors[-1] <= 1e-9
    torch.testing.assert_close(net(result.solution).detach(), x, rtol=0, atol=1e-9)
    assert len(result.errors) == result.n_iter + 1 == len(result.objectives)
    # from another start, the same inverse (strictly monotone f)
    other = invert_prox(net.potential, x, init=torch.zeros_like(x), tol=1e-9)
    torch.testing.assert_close(other.solution, result.solution, rtol=0, atol=1e-7)


def test_regularizer_of_the_huber_potential_is_the_l1_norm():
    # ψ(y) = ½ max(|y| − 1, 0)² has ∇ψ = soft-thresholding at 1, the prox of R = |·| (no constant)
    def huber(y):
        return 0.5 * (y.abs() - 1).clamp_min(0).pow(2).sum(1)

    x = torch.linspace(-3, 3, 61, dtype=DT)[:, None]
    values, result = prox_regularizer(huber, x)
    assert result.converged
    torch.testing.assert_close(values, x[:, 0].abs(), rtol=0, atol=1e-9)


def test_regularizer_of_a_linear_quadratic_lpn_in_closed_form():
    # convex weights zero: ψ(y) = ⟨v, y⟩ + c + α‖y‖²/2, f(y) = αy + v, R(x) = ‖x − v‖²/(2α) − ½‖x‖² − c
    alpha = 0.4
    net = _lpn(dim=2, alpha=alpha, seed=10)
    with torch.no_grad():
        for w in net.convex_weights():
            w.zero_()
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(11), dtype=DT)
    values, result = prox_regularizer(net.potential, x)
    v, c = net.linear.detach(), net.offset.detach()
    expected = ((x - v) ** 2).sum(1) / (2 * alpha) - 0.5 * (x**2).sum(1) - c
    torch.testing.assert_close(values, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(result.solution, (x - v) / alpha)


def test_learned_prox_is_the_prox_of_the_recovered_regularizer_by_brute_force():
    # f(y) = argmin_x ½(x − y)² + R(x): R on a fine grid of x, the minimum over the grid for each y
    net = _lpn(dim=1, hidden=16, layers=3, alpha=0.2, seed=12, beta=4.0)
    y = torch.linspace(-3, 3, 41, dtype=DT)[:, None]
    f = net(y).detach()
    grid = torch.linspace(float(f.min()) - 1, float(f.max()) + 1, 4001, dtype=DT)[:, None]
    values, result = prox_regularizer(net.potential, grid)
    assert result.converged
    objective = 0.5 * (grid[:, 0][None, :] - y) ** 2 + values[None, :]
    brute = grid[objective.argmin(1), 0]
    spacing = float(grid[1, 0] - grid[0, 0])
    assert (brute - f[:, 0]).abs().max() <= spacing


def test_proximal_matching_loss_by_hand():
    input = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], dtype=DT)
    target = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 0.0]], dtype=DT)
    gamma = 2.0
    # squared distances 5, 0, 1
    expected = torch.tensor([1 - math.exp(-5 / 4), 0.0, 1 - math.exp(-1 / 4)], dtype=DT)
    torch.testing.assert_close(proximal_matching_loss(input, target, gamma, reduction="none"), expected)
    torch.testing.assert_close(proximal_matching_loss(input, target, gamma), expected.mean())
    torch.testing.assert_close(proximal_matching_loss(input, target, gamma, reduction="sum"), expected.sum())
    # the norm runs over every non-batch dimension
    image = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(0), dtype=DT)
    flat = proximal_matching_loss(image.reshape(4, -1), torch.zeros(4, 18, dtype=DT), 3.0, reduction="none")
    torch.testing.assert_close(proximal_matching_loss(image, torch.zeros_like(image), 3.0, reduction="none"), flat)


def test_proximal_matching_loss_limits():
    gen = torch.Generator().manual_seed(1)
    input, target = torch.randn(30, 4, generator=gen, dtype=DT), torch.randn(30, 4, generator=gen, dtype=DT)
    squared = ((input - target) ** 2).sum(1)
    # γ → ∞: γ²·loss → ‖·‖² (the squared ℓ2 loss, up to scale)
    big = 1e4
    torch.testing.assert_close(
        big**2 * proximal_matching_loss(input, target, big, reduction="none"), squared, rtol=1e-6, atol=0
    )
    # γ → 0: the 0-1 loss, 1 for a miss and 0 for an exact match
    target[:5] = input[:5]
    small = proximal_matching_loss(input, target, 1e-6, reduction="none")
    assert (small[:5] == 0).all() and torch.allclose(small[5:], torch.ones(25, dtype=DT))
    # values in [0, 1), increasing in the distance
    d = torch.linspace(0, 5, 50, dtype=DT)[:, None]
    values = proximal_matching_loss(d, torch.zeros_like(d), 1.0, reduction="none")
    assert (values >= 0).all() and (values < 1).all() and (torch.diff(values) > 0).all()


def test_gamma_schedule_follows_the_official_stages():
    gammas = [proximal_matching_gamma(k, total_steps=100, gamma_min=0.1) for k in range(0, 130)]
    assert gammas[0] == gammas[24] == pytest.approx(0.8)
    assert gammas[25] == gammas[49] == pytest.approx(0.4)
    assert gammas[50] == pytest.approx(0.2) and gammas[75] == gammas[129] == pytest.approx(0.1)
    # 10 steps in 3 stages: 3 steps each, the remainder in the last stage
    assert [proximal_matching_gamma(k, total_steps=10, gamma_min=1.0, stages=3) for k in range(10)] == [4.0] * 3 + [
        2.0
    ] * 3 + [1.0] * 4


def test_dtype_follows_the_network():
    net = LearnedProximalNetwork(2, 8, 2, dtype=torch.float32)
    out = net(torch.randn(5, 2))
    assert out.dtype == torch.float32 and net.potential(torch.randn(5, 2)).shape == (5,)


@pytest.mark.parametrize("gamma", [0.0, -1.0, math.nan])
def test_rejects_non_positive_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        proximal_matching_loss(torch.zeros(2, 1), torch.zeros(2, 1), gamma)


def test_rejects_mismatched_loss_shapes():
    with pytest.raises(ValueError, match="same shape"):
        proximal_matching_loss(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)
    with pytest.raises(ValueError, match="same shape"):
        proximal_matching_loss(torch.tensor(1.0), torch.tensor(1.0), 1.0)


def test_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        proximal_matching_loss(torch.zeros(2, 1), torch.zeros(2, 1), 1.0, reduction="max")


@pytest.mark.parametrize(
    "kwargs, name",
    [({"alpha": -0.1}, "alpha"), ({"beta": 0.0}, "beta"), ({"hidden": 0}, "hidden"), ({"layers": 0}, "layers")],
)
def test_rejects_bad_network_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LearnedProximalNetwork(2, **kwargs)
    with pytest.raises(ValueError, match="dim"):
        LearnedProximalNetwork(0)


def test_rejects_wrong_input_shapes():
    net = LearnedProximalNetwork(3, 4, 1)
    with pytest.raises(ValueError, match=r"y must have shape \(batch, 3\)"):
        net(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="y must have 2 dimensions"):
        net.potential(torch.zeros(3))
    with pytest.raises(ValueError, match="floating"):
        net.potential(torch.zeros(2, 3, dtype=torch.long))


def test_rejects_bad_inverse_arguments():
    net = _lpn(dim=2)
    x = torch.zeros(4, 2, dtype=DT)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        invert_prox(net.potential, torch.zeros(4, dtype=DT))
    with pytest.raises(ValueError, match="non-finite"):
        invert_prox(net.potential, torch.full((4, 2), math.nan, dtype=DT))
    with pytest.raises(ValueError, match="init must have the shape"):
        invert_prox(net.potential, x, init=torch.zeros(4, 3, dtype=DT))
    with pytest.raises(ValueError, match="tol"):
        prox_regularizer(net.potential, x, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        invert_prox(net.potential, x, max_iter=-1)


def test_rejects_bad_schedule_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        proximal_matching_gamma(0, total_steps=3, gamma_min=0.1, stages=4)
    with pytest.raises(ValueError, match="step"):
        proximal_matching_gamma(-1, total_steps=10, gamma_min=0.1)
    with pytest.raises(ValueError, match="gamma_min"):
        proximal_matching_gamma(0, total_steps=10, gamma_min=0.0)
