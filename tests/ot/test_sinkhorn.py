"""Log-domain Sinkhorn and the Sinkhorn divergence against POT."""

import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regkit.ot import (
    SinkhornResult,
    epsilon_schedule,
    sinkhorn,
    sinkhorn_divergence,
    sqeuclidean,
)


def problem(n=40, m=30, seed=0, dtype=torch.float64, batch=()):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*batch, n, 2, generator=g, dtype=dtype)
    y = torch.rand(*batch, m, 2, generator=g, dtype=dtype)
    a = torch.rand(*batch, n, generator=g, dtype=dtype) + 0.1
    b = torch.rand(*batch, m, generator=g, dtype=dtype) + 0.1
    return a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True), sqeuclidean(x, y)


@pytest.mark.parametrize("eps", [1.0, 0.1, 0.01])
def test_plan_and_cost_match_pot(eps):
    a, b, C = problem()
    result = sinkhorn(a, b, C, eps, tol=1e-11)
    assert result.converged
    reference = ot.bregman.sinkhorn_log(a.numpy(), b.numpy(), C.numpy(), eps, stopThr=1e-13, numItermax=100_000)
    assert np.abs(result.plan.numpy() - reference).max() < 1e-9
    assert float(result.transport_cost) == pytest.approx(
        float(
            ot.sinkhorn2(a.numpy(), b.numpy(), C.numpy(), eps, method="sinkhorn_log", stopThr=1e-13, numItermax=100_000)
        ),
        rel=1e-8,
    )


def test_batched_equals_one_by_one():
    a, b, C = problem(batch=(3,))
    batched = sinkhorn(a, b, C, 0.05, tol=1e-10)
    for i in range(3):
        single = sinkhorn(a[i], b[i], C[i], 0.05, tol=1e-10)
        assert torch.allclose(batched.plan[i], single.plan, atol=1e-9)
    assert batched.transport_cost.shape == (3,) and bool((batched.marginal_error < 1e-9).all())


def test_float32_runs_and_is_close_to_float64():
    a, b, C = problem()
    single = sinkhorn(a.float(), b.float(), C.float(), 0.05, tol=1e-5)
    double = sinkhorn(a, b, C, 0.05, tol=1e-10)
    assert single.plan.dtype == torch.float32 and single.converged
    assert torch.allclose(single.plan.double(), double.plan, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_eps_gives_no_nan_and_approaches_exact_ot(dtype):
    a, b, C = problem(n=30, m=30)
    a = b = torch.full((30,), 1 / 30, dtype=torch.float64)
    result = sinkhorn(a.to(dtype), b.to(dtype), C.to(dtype), 1e-4, max_iter=3000, tol=1e-4)
    for value in (result.f, result.g, result.plan, result.transport_cost):
        assert torch.isfinite(value).all()
    exact = ot.emd2(a.numpy(), b.numpy(), C.numpy())
    assert float(result.transport_cost) == pytest.approx(exact, rel=2e-2)


def test_error_history_and_marginal_error_agree():
    a, b, C = problem()
    result = sinkhorn(a, b, C, 0.1, tol=1e-8)
    assert result.n_iter == len(result.errors) == len(result.times)
    assert result.errors[-1] < 1e-8 and float(result.marginal_error) == pytest.approx(result.errors[-1], abs=1e-12)
    unfinished = sinkhorn(a, b, C, 0.001, max_iter=5, tol=1e-12)
    assert not unfinished.converged and unfinished.n_iter == 5


def test_warm_start_from_the_solution_converges_at_once():
    a, b, C = problem()
    first = sinkhorn(a, b, C, 0.05, tol=1e-10)
    again = sinkhorn(a, b, C, 0.05, tol=1e-9, init=(first.f, first.g))
    assert again.n_iter == 1


def test_regularized_cost_gradient_is_the_plan():
    a, b, C = problem(n=12, m=10)
    C = C.clone().requires_grad_(True)
    result = sinkhorn(a, b, C, 0.1, tol=1e-12)
    result.regularized_cost.backward()
    assert torch.allclose(C.grad, result.plan.detach(), atol=1e-10)


def test_regularized_cost_is_the_primal_value():
    a, b, C = problem()
    result = sinkhorn(a, b, C, 0.1, tol=1e-12)
    plan = result.plan
    primal = (plan * C).sum() + 0.1 * (plan * (plan / (a[:, None] * b[None, :])).log()).sum()
    assert float(result.regularized_cost) == pytest.approx(float(primal), rel=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.5, 0.1, 0.02]))
def test_plan_properties(seed, eps):
    a, b, C = problem(n=15, m=9, seed=seed)
    result = sinkhorn(a, b, C, eps, tol=1e-10)
    plan = result.plan
    assert bool((plan >= 0).all())
    assert torch.allclose(plan.sum(1), a, atol=1e-9) and torch.allclose(plan.sum(0), b, atol=1e-9)
    # invariance: adding a constant to the cost shifts the potentials, not the plan
    shifted = sinkhorn(a, b, C + 3.0, eps, tol=1e-10)
    assert torch.allclose(shifted.plan, plan, atol=1e-8)


# POT's float64 marginal error stalls just above 1e-11 here; its plan is checked against ours at rel 1e-7
@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge:UserWarning")
@pytest.mark.parametrize("m", [40, 30])
@pytest.mark.parametrize("weighted", [False, True])
def test_sinkhorn_divergence_properties(m, weighted):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 2, generator=g, dtype=torch.float64)
    y = torch.randn(m, 2, generator=g, dtype=torch.float64) + 2.0
    u = torch.rand(30, generator=g, dtype=torch.float64) + 0.5 if weighted else torch.ones(30, dtype=torch.float64)
    v = torch.rand(m, generator=g, dtype=torch.float64) + 0.5 if weighted else torch.ones(m, dtype=torch.float64)
    u, v = u / u.sum(), v / v.sum()
    a, b = (u, v) if weighted else (None, None)
    assert float(sinkhorn_divergence(x, x, 0.1, a=a, b=a)) == pytest.approx(0.0, abs=1e-9)
    far = sinkhorn_divergence(x, y, 0.1, a=a, b=b)
    assert float(far) > 1.0

    def pot_ot_eps(p, q, wp, wq):  # ⟨P, C⟩ + ε KL(P | a⊗b) from POT's plan
        C, wp, wq = sqeuclidean(p, q).numpy(), wp.numpy(), wq.numpy()
        plan = ot.bregman.sinkhorn_log(wp, wq, C, 0.1, stopThr=1e-11, numItermax=20_000)
        return (plan * C).sum() + 0.1 * (plan * np.log(plan / np.outer(wp, wq))).sum()

    reference = pot_ot_eps(x, y, u, v) - 0.5 * (pot_ot_eps(x, x, u, u) + pot_ot_eps(y, y, v, v))
    assert float(sinkhorn_divergence(x, y, 0.1, a=a, b=b, tol=1e-10)) == pytest.approx(reference, rel=1e-7)
    assert float(far) == pytest.approx(reference, rel=1e-6)  # default tol 1e-4
    x = x.clone().requires_grad_(True)
    sinkhorn_divergence(x, y, 0.1, a=a, b=b).backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.norm()) > 0


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a, b, C: (-a, b, C, 0.1), "a must be non-negative"),
        (lambda a, b, C: (a * 2, b, C, 0.1), "a must sum to one"),
        (lambda a, b, C: (a, b[:-1], C, 0.1), "b must have shape"),
        (lambda a, b, C: (a, b, C.masked_fill(C > 0.5, math.nan), 0.1), "cost has"),
        (lambda a, b, C: (a, b, C.masked_fill(C > 0.5, math.inf), 0.1), "cost has"),
        (lambda a, b, C: (a, b, C, 0.0), r"eps must be a number in \(0, inf\)"),
        (lambda a, b, C: (a, b, C, -1.0), r"eps must be a number in \(0, inf\)"),
        (lambda a, b, C: (a, b, C[0], 0.1), "cost must have shape"),
    ],
)
def test_bad_input(change, match):
    a, b, C = problem()
    with pytest.raises(ValueError, match=match):
        sinkhorn(*change(a, b, C))


def test_issue12_row1_sinkhorn_divergence_is_translation_invariant():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 2, generator=g), torch.randn(40, 2, generator=g) + 1
    here = float(sinkhorn_divergence(x, y, 0.1))
    there = float(sinkhorn_divergence(x + 1000, y + 1000, 0.1))
    assert here > 0.5 and there == pytest.approx(here, rel=1e-3)


def test_issue12_row10_gradient_at_a_zero_weight_is_the_envelope_gradient():
    g = torch.Generator().manual_seed(0)
    C = sqeuclidean(
        torch.randn(4, 2, generator=g, dtype=torch.float64), torch.randn(3, 2, generator=g, dtype=torch.float64)
    )
    weights = torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64)
    a = weights.clone().requires_grad_(True)
    result = sinkhorn(a, None, C, eps=0.1, tol=1e-13)
    (grad,) = torch.autograd.grad(result.regularized_cost, a)
    assert torch.isfinite(grad).all()
    assert torch.allclose(grad, result.f - 0.1, atol=1e-12)  # f_i − ε, the zero weight's entry included
    assert bool((result.plan[3] == 0).all())

    def value(w):
        return float(sinkhorn(w, None, C, eps=0.1, tol=1e-13).regularized_cost)

    direction = torch.tensor([-1.0, 0.0, 0.0, 1.0], dtype=torch.float64)  # stays on the simplex
    h = 1e-6
    finite_difference = (value(weights + h * direction) - value(weights)) / h
    assert finite_difference == pytest.approx(float(grad @ direction), abs=1e-5)


def test_regularized_cost_gradients_by_gradcheck():
    g = torch.Generator().manual_seed(2)
    a, b, C = problem(n=5, m=4, seed=2)
    solved = sinkhorn(a, b, C, 0.3, tol=1e-12)

    def value(cost, u, v):  # at fixed potentials: the dual value is smooth in (cost, a, b)
        return SinkhornResult(solved.f, solved.g, u, v, cost, 0.3, 1, True, [], []).regularized_cost

    inputs = (
        C.clone().requires_grad_(True),
        (a + 0.01 * torch.rand(5, generator=g, dtype=torch.float64)).requires_grad_(True),
        b.clone().requires_grad_(True),
    )
    assert torch.autograd.gradcheck(value, inputs)


def test_issue12_row12_half_precision_cost():
    torch.manual_seed(0)
    x, y = torch.randn(8, 2), torch.randn(8, 2) + 3
    cost = sqeuclidean(x, y).bfloat16()
    reference = sinkhorn(None, None, cost.double(), 0.1, tol=1e-12)  # the same rounded cost in float64
    assert float(reference.transport_cost) == pytest.approx(21.6165, abs=1e-4)
    result = sinkhorn(None, None, cost, 0.1, tol=1e-2)
    assert result.plan.dtype == result.transport_cost.dtype == torch.bfloat16
    assert result.converged and float(result.marginal_error) < 1e-2  # of the plan as returned
    plan = result.plan.double()  # check it independently as well
    assert float((plan.sum(1) - 1 / 8).abs().sum() + (plan.sum(0) - 1 / 8).abs().sum()) < 1e-2
    assert float(result.transport_cost) == pytest.approx(21.6165, abs=0.125)  # one bfloat16 step at 21.6
    for dtype in (torch.bfloat16, torch.float16):  # a tolerance finer than the rounding: honestly not converged
        unreachable = sinkhorn(None, None, cost.to(dtype), 0.1, tol=1e-6, max_iter=300)
        assert not unreachable.converged and unreachable.plan.dtype == dtype


def test_issue12_row12_half_precision_gradient_flows_back():
    torch.manual_seed(0)
    cost = sqeuclidean(torch.randn(8, 2), torch.randn(8, 2) + 3).to(torch.float16).requires_grad_(True)
    result = sinkhorn(None, None, cost, 0.1, tol=1e-2)
    result.regularized_cost.backward()
    assert cost.grad.dtype == torch.float16 and torch.allclose(cost.grad.float(), result.plan.float(), atol=1e-3)


def log_domain_sinkhorn(a, b, C, eps, tol, max_iter=100_000):
    """The textbook log-domain iteration (torch.logsumexp), the reference for the scaling form:
    returns (f, g, n_iter) with the same stopping rule (L1 row error of the plan after a g update)."""
    f = torch.zeros_like(a)
    for k in range(1, max_iter + 1):
        g = -eps * torch.logsumexp(a.log()[:, None] + (f[:, None] - C) / eps, dim=0)
        f_next = -eps * torch.logsumexp(b.log()[None, :] + (g[None, :] - C) / eps, dim=1)
        if float((a * torch.expm1((f - f_next) / eps)).abs().sum()) < tol:
            return f, g, k
        f = f_next
    raise AssertionError("the reference did not converge")


@pytest.mark.parametrize(
    "shift, eps",
    [(0.0, 0.1), (0.0, 0.003), (3.0, 0.01), (3.0, 0.002)],  # shifted clouds: whole kernel rows underflow
)
def test_scaling_form_takes_the_log_domain_iterates(shift, eps):
    """The matrix–vector iteration with absorption gives the log-domain iterates: the same
    iteration count and potentials to 1e-10 (float64), also where absorption and log-domain
    fallbacks are exercised (far-apart clouds at small ε: a row of exp(-C/ε) is all zeros)."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(60, 2, generator=g, dtype=torch.float64), torch.rand(50, 2, generator=g, dtype=torch.float64)
    a = torch.rand(60, generator=g, dtype=torch.float64) + 0.1
    b = torch.rand(50, generator=g, dtype=torch.float64) + 0.1
    a, b, C = a / a.sum(), b / b.sum(), sqeuclidean(x, y + shift)
    if shift:
        assert bool(((-C / eps).exp().sum(1) == 0).any())  # the case the fallback exists for
    f, g_ref, n_iter = log_domain_sinkhorn(a, b, C, eps, tol=1e-9)
    result = sinkhorn(a, b, C, eps, tol=1e-9)
    assert result.converged and result.n_iter == n_iter
    scale = float(C.max())
    assert float((result.f - f).abs().max()) < 1e-10 * scale and float((result.g - g_ref).abs().max()) < 1e-10 * scale


def test_scaling_form_in_float32_follows_the_float64_iterates():
    a, b, C = problem(n=200, m=150, seed=4)
    for eps in (0.05, 0.002):
        single = sinkhorn(a.float(), b.float(), C.float(), eps, tol=1e-5)
        exact = sinkhorn(a, b, C, eps, tol=0, max_iter=single.n_iter)  # the same number of iterations
        assert single.converged and float(exact.marginal_error) < 2e-5
        assert float((single.plan.double() - exact.plan).abs().sum()) < 2e-5
        assert float(single.transport_cost) == pytest.approx(float(exact.transport_cost), rel=1e-5)


@pytest.mark.parametrize("eps", [0.01, 0.001])
def test_epsilon_scaling_converges_to_the_plain_solution(eps):
    a, b, C = problem(n=120, m=100, seed=5)
    plain = sinkhorn(a, b, C, eps, tol=1e-9)
    annealed = sinkhorn(a, b, C, eps, tol=1e-9, eps_init=float(C.max()), eps_decay=0.5)
    stages = epsilon_schedule(eps, float(C.max()), 0.5)
    assert annealed.converged and annealed.eps == eps
    assert annealed.n_iter == len(annealed.errors) == len(annealed.times) and annealed.n_iter >= len(stages)
    assert all(t1 >= t0 for t0, t1 in zip(annealed.times, annealed.times[1:]))
    assert float((annealed.plan - plain.plan).abs().sum()) < 1e-7
    shift = float((annealed.f - plain.f).mean())  # potentials are unique up to (f + c, g - c)
    assert float((annealed.f - plain.f - shift).abs().max()) < 1e-8
    assert float((annealed.g - plain.g + shift).abs().max()) < 1e-8
    if eps == 0.001:  # the transient that ε-scaling removes
        assert annealed.n_iter < plain.n_iter


def test_epsilon_schedule():
    assert epsilon_schedule(0.01) == [0.01] and epsilon_schedule(0.01, 0.005) == [0.01]
    assert epsilon_schedule(0.01, 1.0, 0.1) == pytest.approx([1.0, 0.1, 0.01])
    assert epsilon_schedule(0.03, 1.0, 0.5) == pytest.approx([1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.03])
    for kwargs, match in (
        (dict(eps_init=0.0), r"eps_init must be a number in \(0, inf\)"),
        (dict(eps_init=1.0, eps_decay=1.0), r"eps_decay must be a number in \(0, 1\)"),
        (dict(eps_init=1.0, eps_decay=0.0), r"eps_decay must be a number in \(0, 1\)"),
    ):
        with pytest.raises(ValueError, match=match):
            sinkhorn(*problem()[:3], 0.01, **kwargs)
