"""OT map metrics: L2-UVP and Gaussian moment errors by hand."""

import pytest
import torch

from regkit.ot import (
    gaussian_moment_errors,
    l2_uvp,
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
