"""The OT family's result contract: every solver's result shares field types and keeps the input's dtype."""

import pytest
import torch

from regkit.ot import (
    exact_ot,
    sinkhorn,
    sinkhorn_newton_sparse,
    sparsity_constrained_ot,
    sqeuclidean,
)


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
