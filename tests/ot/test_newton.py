"""Sinkhorn-Newton-Sparse against Sinkhorn's solution."""

import pytest
import torch

from regkit.ot import (
    sinkhorn,
    sinkhorn_newton_sparse,
)

# ---- Sinkhorn–Newton–Sparse -------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-2, 3e-3])
def test_sns_reaches_sinkhorns_solution(clouds, eps):
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


def test_sns_needs_far_fewer_iterations_at_small_eps(clouds):
    _, _, C = clouds(150)
    sns = sinkhorn_newton_sparse(None, None, C, 1e-3, tol=1e-8)
    plain = sinkhorn(None, None, C, 1e-3, tol=1e-8, max_iter=100_000)
    assert sns.converged and plain.converged and sns.n_iter * 5 < plain.n_iter
    assert 0 < sns.hessian_density <= 1 and all(0 < s <= 1 for s in sns.step_sizes)


def test_sns_rejects_batches_and_bad_density(clouds):
    _, _, C = clouds(10)
    with pytest.raises(ValueError, match="density"):
        sinkhorn_newton_sparse(None, None, C, 0.1, density=0.0)
    with pytest.raises(ValueError, match="single"):
        sinkhorn_newton_sparse(None, None, C.expand(2, 10, 10), 0.1)


def test_sns_with_zero_weights_matches_sinkhorn_and_has_envelope_gradients(clouds):
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
