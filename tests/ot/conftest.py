"""Shared problems for the OT tests."""

import pytest
import torch

from regkit.ot import sqeuclidean


def _clouds(n, m=None, seed=0, shift=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randn(m or n, 2, generator=g, dtype=torch.float64) + shift
    C = sqeuclidean(x, y)
    return x, y, C / C.max()


@pytest.fixture
def clouds():
    """``clouds(n, m=None, seed=0, shift=1.0) -> (x, y, C)``: two float64 Gaussian clouds in 2-D, the second
    shifted, and their squared-Euclidean cost scaled to a maximum of 1."""
    return _clouds
