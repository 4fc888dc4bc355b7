"""The OT testbed problems: closed-form optimum of the Gaussian problem, seeded determinism, scaling."""

import torch

from regkit.ot import sqeuclidean
from regkit.workbook.testbeds.ot_problems import (
    GaussianMapProblem,
    gaussian_cloud_cost,
    routing_problem,
    uniform_cloud_cost,
)


def test_gaussian_problem_root_is_symmetric_with_the_stated_spectrum():
    problem = GaussianMapProblem(3, seed=4)
    torch.testing.assert_close(problem.root, problem.root.T)
    eigenvalues = torch.linalg.eigvalsh(problem.covariance)
    torch.testing.assert_close(eigenvalues, torch.linspace(0.5, 2.0, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(problem.mean, torch.ones(3))


def test_optimal_map_pushes_the_source_onto_the_target_moments():
    problem = GaussianMapProblem(2, seed=0)
    x = problem.source(200_000).double()
    mapped = problem.optimal(x.float()).double()
    torch.testing.assert_close(mapped.mean(0), problem.mean.double(), atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(mapped.T), problem.covariance.double(), atol=0.03, rtol=0)
    target = problem.target(200_000).double()
    torch.testing.assert_close(torch.cov(target.T), problem.covariance.double(), atol=0.03, rtol=0)


def test_optimal_map_is_the_gradient_of_a_convex_potential():
    # Brenier: T* = ∇φ with φ(x) = m·x + x'Σ^{1/2}x / 2, i.e. a symmetric positive-definite Jacobian.
    problem = GaussianMapProblem(4, seed=2)
    jacobian = torch.autograd.functional.jacobian(problem.optimal, torch.zeros(1, 4))[0, :, 0, :]
    torch.testing.assert_close(jacobian, problem.root)
    assert torch.linalg.eigvalsh(jacobian).min() > 0


def test_evaluate_scores_the_optimal_map_perfectly_and_the_identity_not():
    problem = GaussianMapProblem(2, seed=1)
    perfect = problem.evaluate(problem.optimal)
    assert perfect["l2_uvp_percent"] == 0.0
    assert perfect["mean_error"] < 0.05 and perfect["covariance_error"] < 0.1
    identity = problem.evaluate(lambda x: x)
    # E‖x − m − Σ^{1/2}x‖² / tr Σ, in closed form for x ~ N(0, I)
    squared_error = problem.mean.square().sum() + (torch.eye(2) - problem.root).square().sum()
    expected = 100 * squared_error / problem.covariance.trace()
    assert abs(identity["l2_uvp_percent"] - float(expected)) < 0.05 * float(expected)


def test_samplers_are_a_function_of_the_seed_and_the_call_order():
    a, b = GaussianMapProblem(2, seed=5), GaussianMapProblem(2, seed=5)
    torch.testing.assert_close(a.source(10), b.source(10))
    torch.testing.assert_close(a.target(10), b.target(10))
    assert not torch.equal(a.source(10), GaussianMapProblem(2, seed=6).source(10))


def test_cloud_costs_are_scaled_squared_distances_of_seeded_clouds():
    for make, draw, shift in ((uniform_cloud_cost, torch.rand, 0.0), (gaussian_cloud_cost, torch.randn, 1.0)):
        cost = make(30, seed=3)
        generator = torch.Generator().manual_seed(33)
        x = draw(30, 2, generator=generator, dtype=torch.float64)
        y = draw(30, 2, generator=generator, dtype=torch.float64) + shift
        raw = sqeuclidean(x, y)
        assert cost.dtype == torch.float64 and cost.shape == (30, 30)
        torch.testing.assert_close(cost, raw / raw.max())
        assert float(cost.max()) == 1.0 and float(cost.min()) >= 0


def test_routing_problem_shapes_marginals_and_clusters():
    toy = routing_problem(0)
    assert toy.tokens.shape == (512, 2) and toy.centres.shape == (8, 2) and toy.cost.shape == (512, 8)
    torch.testing.assert_close(toy.a.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(toy.b, torch.full((8,), 1 / 8, dtype=torch.float64))
    assert float(toy.cost.max()) == 1.0
    # most tokens are nearest to their own cluster's centre (clusters are listed in order, 128 tokens first)
    owner = torch.repeat_interleave(torch.arange(8), torch.tensor([128, 96, 80, 64, 48, 40, 32, 24]))
    assert (toy.cost.argmin(1) == owner).double().mean() > 0.7
    torch.testing.assert_close(routing_problem(0).tokens, toy.tokens)
