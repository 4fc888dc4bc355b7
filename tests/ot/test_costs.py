"""Ground costs against brute force, far from the origin included."""

import pytest
import torch

from regkit.ot import (
    euclidean,
    minkowski,
    sqeuclidean,
)


def test_costs_against_brute_force():
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(2, 5, 3, generator=g, dtype=torch.float64),
        torch.randn(2, 4, 3, generator=g, dtype=torch.float64),
    )
    diff = x.unsqueeze(-2) - y.unsqueeze(-3)
    assert torch.allclose(sqeuclidean(x, y), (diff**2).sum(-1))
    assert torch.allclose(euclidean(x, y), (diff**2).sum(-1).sqrt())
    assert torch.allclose(minkowski(x, y, p=1), diff.abs().sum(-1))
    assert torch.allclose(minkowski(x, y, p=2, power=1.5), (diff**2).sum(-1).sqrt() ** 1.5)


# ---- issue 12: numerical robustness -------------------------------------------------------


def test_issue12_row1_sqeuclidean_far_from_the_origin():
    far = sqeuclidean(torch.tensor([[512695.0]]), torch.tensor([[512804.0]]))
    assert far.dtype == torch.float32 and float(far) == 11881.0
    near = sqeuclidean(torch.tensor([[100.0, 100.0]]), torch.tensor([[100.01, 100.0]]))
    exact = (torch.tensor(100.01).double() - 100) ** 2  # of the float32 inputs: 100.01 rounds to 100.0100021
    assert float(near) == pytest.approx(1.0e-4, rel=1e-3) and float(near) == pytest.approx(float(exact), rel=1e-6)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g) + 1000
    assert float(sqeuclidean(x, x).diagonal().abs().max()) == 0.0  # the same tensor: exact zeros
    assert float(sqeuclidean(x, x.clone()).diagonal().abs().max()) < 1e-5
    reference = ((x.double().unsqueeze(1) - x.double().unsqueeze(0)) ** 2).sum(-1)
    assert torch.allclose(sqeuclidean(x, x.clone()).double(), reference, atol=1e-4)


def test_issue12_row1_minkowski_p2_does_not_cancel():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 2, generator=g) + 1000, torch.randn(30, 2, generator=g) + 1000
    reference = ((x.double().unsqueeze(1) - y.double().unsqueeze(0)) ** 2).sum(-1).sqrt()
    assert torch.allclose(minkowski(x, y, p=2).double(), reference, rtol=1e-5, atol=1e-4)
    assert torch.allclose(euclidean(x, y).double(), reference, rtol=1e-5, atol=1e-4)


def test_sqeuclidean_gradients_match_the_differences():
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(6, 3, generator=g, dtype=torch.float64) + 50).requires_grad_(True)
    y = (torch.randn(5, 3, generator=g, dtype=torch.float64) + 50).requires_grad_(True)
    weights = torch.rand(6, 5, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((sqeuclidean(x, y) * weights).sum(), (x, y))
    brute = torch.autograd.grad((((x.unsqueeze(1) - y.unsqueeze(0)) ** 2).sum(-1) * weights).sum(), (x, y))
    assert all(torch.allclose(mine, theirs, atol=1e-9) for mine, theirs in zip(grads, brute))
    square = torch.rand(6, 6, generator=g, dtype=torch.float64)
    (grad,) = torch.autograd.grad((sqeuclidean(x, x) * square).sum(), x)
    (brute,) = torch.autograd.grad((((x.unsqueeze(1) - x.unsqueeze(0)) ** 2).sum(-1) * square).sum(), x)
    assert torch.allclose(grad, brute, atol=1e-9)
