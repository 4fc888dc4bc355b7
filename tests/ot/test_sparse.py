"""Sparsity-constrained OT against POT, brute force and its limits."""

import numpy as np
import ot
import pytest
import torch

from regkit.ot import (
    exact_ot,
    sparse_simplex_projection,
    sparsity_constrained_ot,
    sqeuclidean,
)

# ---- sparsity-constrained OT ----------------------------------------------------------------


@pytest.mark.parametrize("k", [3, 8, 20])
@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_dual_matches_pot(clouds, k, gamma):
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
def test_semi_dual_matches_pot(clouds, k):
    _, _, C = clouds(30)
    a = np.full(30, 1 / 30)
    plan, log = ot.smooth.smooth_ot_semi_dual(a, a, C.numpy(), 1.0, reg_type="sparsity_constrained", max_nz=k, log=True)
    ours = sparsity_constrained_ot(None, None, C, k, 1.0, formulation="semi_dual")
    assert ours.objective == pytest.approx(-log["res"].fun, rel=1e-6)
    assert np.abs(ours.plan.numpy() - plan).max() < 1e-4 and int(ours.nonzeros_per_column.max()) <= k


def test_k1_recovers_exact_ot_and_large_k_quadratic_ot(clouds):
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


def test_torch_solver_agrees_with_scipy(clouds):
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
def test_sparse_bad_input(clouds, kwargs, match):
    _, _, C = clouds(6)
    with pytest.raises(ValueError, match=match):
        sparsity_constrained_ot(None, None, C, **{"k": 2, "gamma": 1.0, **kwargs})


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


def test_exact_ot_and_projection_reject_empty_input():
    with pytest.raises(ValueError, match="cost must be square and non-empty"):
        exact_ot(torch.zeros(0, 0, dtype=torch.float64))
    with pytest.raises(ValueError, match="values must have at least one row"):
        sparse_simplex_projection(torch.zeros(0, 3), 2)
