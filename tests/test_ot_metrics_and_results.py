"""L2-UVP and moment errors against hand computations; the shared contract of the OT results."""

import pytest
import torch

from regkit.ot import (
    exact_ot,
    fit_map,
    gaussian_moment_errors,
    l2_uvp,
    sinkhorn,
    sinkhorn_newton_sparse,
    sparsity_constrained_ot,
    sqeuclidean,
)


def test_l2_uvp_by_hand():
    mapped = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    optimal = torch.zeros(2, 2)
    # mean squared error (1 + 4) / 2 = 2.5; over Var(ν) = 5: 50 %
    assert float(l2_uvp(mapped, optimal, 5.0)) == pytest.approx(50.0)
    assert float(l2_uvp(optimal, optimal, torch.tensor(3.0))) == 0.0


def test_l2_uvp_of_the_constant_map_is_100_percent():
    """For the Gaussian target y = m + Σ^{1/2} x the constant map x ↦ m scores tr Σ / tr Σ = 100 %."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, 3, generator=generator, dtype=torch.float64)
    root = torch.diag(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    mean = torch.ones(3, dtype=torch.float64)
    optimal = mean + x @ root.T
    assert float(l2_uvp(mean.expand_as(optimal), optimal, (root @ root).trace())) == pytest.approx(100, rel=1e-2)


@pytest.mark.parametrize("variance", [0.0, -1.0, float("inf"), float("nan")])
def test_l2_uvp_rejects_a_bad_variance(variance):
    with pytest.raises(ValueError, match="target_variance"):
        l2_uvp(torch.zeros(2, 2), torch.zeros(2, 2), variance)


def test_l2_uvp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mapped and optimal"):
        l2_uvp(torch.zeros(2, 2), torch.zeros(3, 2), 1.0)


def test_gaussian_moment_errors_by_hand():
    mapped = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])  # mean (1, 1), cov diag(4/3, 4/3)
    mean, cov = torch.tensor([1.0, 0.0]), torch.eye(2)
    mean_error, cov_error = gaussian_moment_errors(mapped, mean, cov)
    assert mean_error == pytest.approx(1 / 2**0.5)
    assert cov_error == pytest.approx(((1 / 3) ** 2 * 2) ** 0.5 / 2**0.5)


def test_fit_map_reports_progress_through_the_callback():
    calls = []
    generator = torch.Generator().manual_seed(0)
    fit_map(
        lambda n: torch.randn(n, 2, generator=generator),
        lambda n: torch.randn(n, 2, generator=generator) + 1,
        2,
        lam=1.0,
        eps=0.5,
        steps=3,
        batch_size=8,
        callback=lambda step, record: calls.append((step, record)),
    )
    assert [step for step, _ in calls] == [0, 1, 2] and set(calls[0][1]) == {"fit", "monge_gap", "loss"}
    with pytest.raises(TypeError, match="callback"):
        fit_map(torch.randn, torch.randn, 2, lam=1.0, eps=0.1, steps=1, callback=3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ot_results_share_field_types_and_keep_the_dtype(dtype):
    generator = torch.Generator().manual_seed(1)
    cost = sqeuclidean(
        torch.randn(6, 2, generator=generator, dtype=dtype), torch.randn(6, 2, generator=generator, dtype=dtype)
    )
    results = [
        exact_ot(cost),
        sinkhorn(None, None, cost, 0.1),
        sinkhorn_newton_sparse(None, None, cost, 0.1),
        sparsity_constrained_ot(None, None, cost, 2, 1.0),
    ]
    for result in results:
        for name in ("plan", "transport_cost", "marginal_error"):
            value = getattr(result, name)
            assert isinstance(value, torch.Tensor), (type(result).__name__, name)
            assert value.device == cost.device
        assert result.plan.dtype == result.transport_cost.dtype == dtype
        assert result.transport_cost.ndim == result.marginal_error.ndim == 0
    exact = results[0]
    assert float(exact.transport_cost) == pytest.approx(float((exact.plan * cost).sum()), rel=1e-6)
    assert float(exact.plan.sum(0).sub(1 / 6).abs().max()) < 1e-7 and float(exact.marginal_error) == 0.0
