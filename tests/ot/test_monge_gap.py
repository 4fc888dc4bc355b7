"""The Monge gap of optimal and non-optimal maps, its gradient and fit_map's progress callback."""

import math

import pytest
import torch

from regkit.ot import (
    exact_ot,
    fit_map,
    monge_gap,
    sqeuclidean,
)

# ---- Monge gap ------------------------------------------------------------------------------


def test_monge_gap_of_optimal_and_non_optimal_maps(clouds):
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


def test_monge_gap_is_differentiable_and_checks_shapes(clouds):
    x, y, _ = clouds(30)
    mapped = y.clone().requires_grad_(True)
    monge_gap(x, mapped, 0.1).backward()
    assert torch.isfinite(mapped.grad).all()
    with pytest.raises(ValueError, match="mapped"):
        monge_gap(x, y[:-1], 0.1)


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
