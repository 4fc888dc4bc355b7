"""SNS, sparsity-constrained OT, exact OT and the Monge gap against references."""

import math

import numpy as np
import ot
import pytest
import torch

from regkit.ot import (
    exact_ot,
    monge_gap,
    sinkhorn,
    sinkhorn_newton_sparse,
    sparse_simplex_projection,
    sparsity_constrained_ot,
    sqeuclidean,
)


def clouds(n, m=None, seed=0, shift=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randn(m or n, 2, generator=g, dtype=torch.float64) + shift
    C = sqeuclidean(x, y)
    return x, y, C / C.max()


# ---- Sinkhorn–Newton–Sparse -------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-2, 3e-3])
def test_sns_reaches_sinkhorns_solution(eps):
    _, _, C = clouds(120, 100)
    sns = sinkhorn_newton_sparse(None, None, C, eps, tol=1e-10)
    reference = sinkhorn(None, None, C, eps, tol=1e-11, max_iter=100_000)
    assert sns.converged and sns.n_newton >= 1
    assert torch.allclose(sns.plan, reference.plan, atol=1e-10)
    # potentials are defined up to (f + c, g - c)
    shift = (sns.f - reference.f).mean()
    assert torch.allclose(sns.f - shift, reference.f, atol=1e-7) and torch.allclose(
        sns.g + shift, reference.g, atol=1e-7
    )
    assert float(sns.marginal_error) < 1e-10 and sns.n_iter == sns.n_sinkhorn + sns.n_newton


def test_sns_needs_far_fewer_iterations_at_small_eps():
    _, _, C = clouds(150)
    sns = sinkhorn_newton_sparse(None, None, C, 1e-3, tol=1e-8)
    plain = sinkhorn(None, None, C, 1e-3, tol=1e-8, max_iter=100_000)
    assert sns.converged and plain.converged and sns.n_iter * 5 < plain.n_iter
    assert 0 < sns.hessian_density <= 1 and all(0 < s <= 1 for s in sns.step_sizes)


def test_sns_rejects_batches_and_bad_density():
    _, _, C = clouds(10)
    with pytest.raises(ValueError, match="density"):
        sinkhorn_newton_sparse(None, None, C, 0.1, density=0.0)
    with pytest.raises(ValueError, match="single"):
        sinkhorn_newton_sparse(None, None, C.expand(2, 10, 10), 0.1)


# ---- sparsity-constrained OT ----------------------------------------------------------------


@pytest.mark.parametrize("k", [3, 8, 20])
@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_dual_matches_pot(k, gamma):
    _, _, C = clouds(40, 30)
    a, b = np.full(40, 1 / 40), np.full(30, 1 / 30)
    plan, log = ot.smooth.smooth_ot_dual(a, b, C.numpy(), gamma, reg_type="sparsity_constrained", max_nz=k, log=True)
    ours = sparsity_constrained_ot(None, None, C, k, gamma)
    assert ours.objective == pytest.approx(-log["res"].fun, rel=1e-6)  # same L-BFGS-B driver and stopping rule
    if k >= 8:  # small k: near-ties in a column's top-k make the plan non-unique at equal objective
        # plan = [α + β − C]₊ / γ: a dual difference δ within L-BFGS-B's stopping tolerance moves the plan by δ / γ
        assert np.abs(ours.plan.numpy() - plan).max() < 1e-5 / gamma
    assert int(ours.nonzeros_per_column.max()) <= k


@pytest.mark.parametrize("k", [2, 6])
def test_semi_dual_matches_pot(k):
    _, _, C = clouds(30)
    a = np.full(30, 1 / 30)
    plan, log = ot.smooth.smooth_ot_semi_dual(a, a, C.numpy(), 1.0, reg_type="sparsity_constrained", max_nz=k, log=True)
    ours = sparsity_constrained_ot(None, None, C, k, 1.0, formulation="semi_dual")
    assert ours.objective == pytest.approx(-log["res"].fun, rel=1e-6)
    assert np.abs(ours.plan.numpy() - plan).max() < 1e-4 and int(ours.nonzeros_per_column.max()) <= k


def test_k1_recovers_exact_ot_and_large_k_quadratic_ot():
    _, _, C = clouds(40, seed=1)
    exact = exact_ot(C)
    assert float(exact.transport_cost) == pytest.approx(
        float(ot.emd2(np.full(40, 1 / 40), np.full(40, 1 / 40), C.numpy())), rel=1e-9
    )
    one = sparsity_constrained_ot(None, None, C, 1, 10.0, formulation="semi_dual")
    assert (
        float(one.transport_cost) == pytest.approx(float(exact.transport_cost), rel=1e-6) and one.marginal_error < 1e-6
    )
    a = np.full(40, 1 / 40)
    l2 = ot.smooth.smooth_ot_dual(a, a, C.numpy(), 1.0, reg_type="l2")
    full = sparsity_constrained_ot(None, None, C, 40, 1.0)
    assert np.abs(full.plan.numpy() - l2).max() < 1e-5


def test_torch_solver_agrees_with_scipy():
    _, _, C = clouds(25)
    scipy_result = sparsity_constrained_ot(None, None, C, 5, 1.0)
    torch_result = sparsity_constrained_ot(None, None, C, 5, 1.0, solver="torch")
    assert torch_result.objective == pytest.approx(scipy_result.objective, rel=1e-6)


def test_sparse_simplex_projection_against_brute_force():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(7, 5, generator=g, dtype=torch.float64)
    for k in (1, 3, 7):
        projected = sparse_simplex_projection(values, k)
        assert torch.allclose(projected.sum(0), torch.ones(5, dtype=torch.float64))
        assert int((projected > 0).sum(0).max()) <= k and bool((projected >= 0).all())
        for j in range(5):  # the projection is the closest k-sparse simplex point among the top-k support
            top = values[:, j].topk(k).indices
            reference = np.zeros(7)
            reference[top.numpy()] = ot.utils.proj_simplex(values[top, j].numpy())
            assert np.allclose(projected[:, j].numpy(), reference, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0}, "k must be"),
        ({"k": 2.5}, "k must be"),
        ({"gamma": 0.0}, "gamma"),
        ({"formulation": "primal"}, "formulation"),
        ({"solver": "adam"}, "solver"),
    ],
)
def test_sparse_bad_input(kwargs, match):
    _, _, C = clouds(6)
    with pytest.raises(ValueError, match=match):
        sparsity_constrained_ot(None, None, C, **{"k": 2, "gamma": 1.0, **kwargs})


# ---- Monge gap ------------------------------------------------------------------------------


def test_monge_gap_of_optimal_and_non_optimal_maps():
    x, _, _ = clouds(200)
    spd = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)  # x ↦ Ax, A SPD: a Brenier map
    rotation = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    eps = 0.01
    lower = -eps * math.log(200)
    optimal, rotated = monge_gap(x, x @ spd.T, eps), monge_gap(x, x @ (spd @ rotation).T, eps)
    assert lower - 1e-9 <= float(optimal) <= 0.0
    assert float(rotated) > 1.0
    exact_rotated = sqeuclidean(x, x @ (spd @ rotation).T)
    exact_gap = float(exact_rotated.diagonal().mean()) - float(exact_ot(exact_rotated).transport_cost)
    assert float(rotated) == pytest.approx(exact_gap, rel=0.05)


def test_monge_gap_is_differentiable_and_checks_shapes():
    x, y, _ = clouds(30)
    mapped = y.clone().requires_grad_(True)
    monge_gap(x, mapped, 0.1).backward()
    assert torch.isfinite(mapped.grad).all()
    with pytest.raises(ValueError, match="mapped"):
        monge_gap(x, y[:-1], 0.1)


def test_exact_ot_rejects_rectangular_costs():
    _, _, C = clouds(5, 4)
    with pytest.raises(ValueError, match="square"):
        exact_ot(C)


# ---- issue 12: numerical robustness -------------------------------------------------------


@pytest.mark.parametrize("solver", ["scipy", "torch"])
@pytest.mark.parametrize("formulation", ["dual", "semi_dual"])
def test_issue12_row14_zero_target_weight_gives_an_empty_column(formulation, solver):
    g = torch.Generator().manual_seed(0)
    C = sqeuclidean(
        torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
    )
    b = torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0], dtype=torch.float64)
    result = sparsity_constrained_ot(None, b, C, k=3, gamma=1.0, formulation=formulation, solver=solver)
    assert torch.isfinite(result.plan).all() and bool((result.plan[:, 4] == 0).all())
    assert result.marginal_error < 1e-4 and int(result.nonzeros_per_column.max()) <= 3
    # the same as the problem without the empty column
    reduced = sparsity_constrained_ot(None, b[:4], C[:, :4], k=3, gamma=1.0, formulation=formulation, solver=solver)
    assert result.objective == pytest.approx(reduced.objective, rel=1e-6)
    assert torch.allclose(result.plan[:, :4], reduced.plan, atol=1e-4)


def test_sns_with_zero_weights_matches_sinkhorn_and_has_envelope_gradients():
    _, _, C = clouds(30, seed=3)
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(30, generator=g, dtype=torch.float64), torch.rand(30, generator=g, dtype=torch.float64)
    a[[3, 7]], b[0] = 0.0, 0.0
    a, b = (a / a.sum()).requires_grad_(True), (b / b.sum()).requires_grad_(True)
    sns = sinkhorn_newton_sparse(a, b, C, 1e-2, tol=1e-10)
    reference = sinkhorn(a.detach(), b.detach(), C, 1e-2, tol=1e-11, max_iter=100_000)
    assert sns.converged and torch.allclose(sns.plan, reference.plan, atol=1e-10)
    grad_a, grad_b = torch.autograd.grad(sns.regularized_cost, (a, b))
    assert torch.allclose(grad_a[[3, 7]], sns.f[[3, 7]] - 1e-2, atol=1e-9)
    assert torch.allclose(grad_b[0], sns.g[0] - 1e-2, atol=1e-9)


def test_exact_ot_and_projection_reject_empty_input():
    with pytest.raises(ValueError, match="cost must be square and non-empty"):
        exact_ot(torch.zeros(0, 0, dtype=torch.float64))
    with pytest.raises(ValueError, match="values must have at least one row"):
        sparse_simplex_projection(torch.zeros(0, 3), 2)
