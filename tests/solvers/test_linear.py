"""Conjugate gradient against a dense solve (torch.linalg.solve) and its bad-input rules."""

import pytest
import torch

from regkit.solvers.linear import conjugate_gradient


def _spd(n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=dtype)
    return a @ a.T + 0.5 * torch.eye(n, dtype=dtype), torch.randn(n, generator=g, dtype=dtype)


@pytest.mark.parametrize("n", [1, 5, 40])
def test_matches_a_dense_solve_in_float64(n):
    a, b = _spd(n, n)
    result = conjugate_gradient(lambda v: a @ v, b, tol=1e-12, max_iter=10 * n)
    assert result.converged and result.error <= 1e-12
    torch.testing.assert_close(result.solution, torch.linalg.solve(a, b), rtol=1e-9, atol=1e-9)
    assert len(result.errors) == result.n_iter + 1 and result.objectives == []


def test_solves_a_matrix_shaped_right_hand_side_as_a_flat_vector():
    a, b = _spd(12, 3)
    result = conjugate_gradient(lambda v: (a @ v.reshape(-1)).reshape(3, 4), b.reshape(3, 4), tol=1e-12)
    torch.testing.assert_close(result.solution.reshape(-1), torch.linalg.solve(a, b), rtol=1e-9, atol=1e-9)


def test_warm_start_and_budget():
    a, b = _spd(30, 7)
    exact = torch.linalg.solve(a, b)
    assert conjugate_gradient(lambda v: a @ v, b, x0=exact, tol=1e-8).n_iter == 0
    capped = conjugate_gradient(lambda v: a @ v, b, tol=1e-14, max_iter=2)
    assert capped.n_iter == 2 and not capped.converged


def test_zero_right_hand_side_returns_zero():
    result = conjugate_gradient(lambda v: 2 * v, torch.zeros(4))
    assert result.converged and result.n_iter == 0 and torch.equal(result.solution, torch.zeros(4))


def test_rejects_bad_input():
    a, b = _spd(4, 0)
    with pytest.raises(ValueError, match="tol"):
        conjugate_gradient(lambda v: a @ v, b, tol=1.0)
    with pytest.raises(ValueError, match="max_iter"):
        conjugate_gradient(lambda v: a @ v, b, max_iter=0)
    with pytest.raises(ValueError, match="x0"):
        conjugate_gradient(lambda v: a @ v, b, x0=torch.zeros(5, dtype=b.dtype))
    with pytest.raises(ValueError, match="rhs"):
        conjugate_gradient(lambda v: a @ v, torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="matvec must return"):
        conjugate_gradient(lambda v: v[:2], b)
    with pytest.raises(ValueError, match="positive definite"):
        conjugate_gradient(lambda v: -v, b)
