"""Issue 12, kind by kind, fed to every function of :mod:`regkit.ot` it applies to.

Cancellation (clouds far from the origin), zero-probability marginals, exponent overflow,
gradients at the boundary, half precision, degenerate inputs and unchecked arguments. Every
property is drawn by hypothesis (derandomized, few examples: the whole module runs in seconds).
"""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regkit.ot import (
    ResidualMap,
    euclidean,
    exact_ot,
    fit_map,
    minkowski,
    monge_gap,
    sinkhorn,
    sinkhorn_divergence,
    sinkhorn_newton_sparse,
    sparse_simplex_projection,
    sparsity_constrained_ot,
    sqeuclidean,
)
from regkit.ot.sinkhorn import check_problem

PROPERTY = settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(PROPERTY, max_examples=5)  # for the properties that solve several problems per example
HALF = [torch.bfloat16, torch.float16]
COSTS = {
    "sqeuclidean": sqeuclidean,
    "euclidean": euclidean,
    "l1": lambda x, y: minkowski(x, y, p=1),
    "l2": lambda x, y: minkowski(x, y, p=2),
    "l3^1.5": lambda x, y: minkowski(x, y, p=3, power=1.5),
    "linf^0.5": lambda x, y: minkowski(x, y, p=math.inf, power=0.5),
}


def points(seed, n, d=2, dtype=torch.float64, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) + shift).to(dtype)


def brute_force(name, x, y):
    """The cost from the differences, in float64 (of the inputs as given)."""
    diff = x.double().unsqueeze(-2) - y.double().unsqueeze(-3)
    p, power = {
        "sqeuclidean": (2, 2),
        "euclidean": (2, 1),
        "l1": (1, 1),
        "l2": (2, 1),
        "l3^1.5": (3, 1.5),
        "linf^0.5": (math.inf, 0.5),
    }[name]
    return torch.linalg.vector_norm(diff, ord=p, dim=-1) ** power


def unit_cost(x, y):
    """The squared Euclidean cost scaled to a largest entry of 1 (well-conditioned at ε ≈ 0.1)."""
    cost = sqeuclidean(x, y)
    return cost / cost.max()


def weights(seed, n, zeros=()):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n, generator=g, dtype=torch.float64) + 0.1
    w[list(zeros)] = 0.0
    return w / w.sum()


# ---- kind 1: cancellation — the costs and everything built on them ignore where the clouds sit


@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 6),
    m=st.integers(1, 6),
    d=st.integers(1, 3),
    exponent=st.integers(0, 6),
    name=st.sampled_from(sorted(COSTS)),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_costs_do_not_cancel_far_from_the_origin(seed, n, m, d, exponent, name, dtype):
    direction = points(seed + 1, 1, d)
    x = (points(seed, n, d) + 10.0**exponent * direction).to(dtype)
    y = (points(seed + 2, m, d) + 1 + 10.0**exponent * direction).to(dtype)
    reference = brute_force(name, x, y)
    spread = float(torch.cat([x, y]).double().sub(torch.cat([x, y]).double().mean(0)).norm(dim=1).max()) + 1
    unit = torch.finfo(dtype).eps
    tolerance = 64 * unit * spread**2 if name == "sqeuclidean" else 64 * unit * spread
    assert torch.allclose(COSTS[name](x, y).double(), reference, rtol=16 * unit, atol=tolerance)
    assert float(COSTS[name](x, x).diagonal().abs().max()) <= tolerance  # zero distance stays (near) zero


@FEW
@given(seed=st.integers(0, 10_000), offset=st.sampled_from([10.0, 1e3, 1e4]), eps=st.sampled_from([1.0, 4.0]))
def test_divergence_monge_gap_and_exact_ot_are_translation_invariant(seed, offset, eps):
    x, y = points(seed, 7), points(seed + 1, 5, shift=1.0)
    t = offset * points(seed + 2, 1)
    here = sinkhorn_divergence(x, y, eps, tol=1e-10)
    there = sinkhorn_divergence(x + t, y + t, eps, tol=1e-10)
    assert float(there) == pytest.approx(float(here), rel=1e-6, abs=1e-9)
    mapped = x @ torch.tensor([[1.5, 0.3], [0.3, 0.8]], dtype=torch.float64) + 1
    gap = monge_gap(x, mapped, eps, tol=1e-10)
    assert float(monge_gap(x + t, mapped + t, eps, tol=1e-10)) == pytest.approx(float(gap), rel=1e-6, abs=1e-9)
    assert float(exact_ot(sqeuclidean(x + t, mapped + t)).transport_cost) == pytest.approx(
        float(exact_ot(sqeuclidean(x, mapped)).transport_cost), rel=1e-9
    )
    # float32, as in the issue: a shift of 1000 no longer changes the divergence by a factor of 2
    single = sinkhorn_divergence(x.float() + 1000, y.float() + 1000, eps, tol=1e-5)
    assert float(single) == pytest.approx(float(here), rel=5e-3, abs=1e-3)


@PROPERTY
@given(seed=st.integers(0, 10_000), offset=st.sampled_from([1e2, 1e4]))
def test_every_solver_gives_the_same_plan_for_translated_clouds(seed, offset):
    x, y = points(seed, 6), points(seed + 1, 6, shift=0.5)
    t = offset * points(seed + 2, 1)
    C, C_far = unit_cost(x, y), unit_cost(x + t, y + t)
    solvers = [
        lambda C: sinkhorn(None, None, C, 0.1, tol=1e-10).plan,
        lambda C: sinkhorn_newton_sparse(None, None, C, 0.1, tol=1e-10).plan,
        lambda C: sparsity_constrained_ot(None, None, C, 3, 1.0).plan,
        lambda C: sparsity_constrained_ot(None, None, C, 3, 1.0, formulation="semi_dual").plan,
    ]
    for solve in solvers:
        assert torch.allclose(solve(C_far), solve(C), atol=1e-6)


# ---- kind 2: zero-probability marginals -------------------------------------------------------

zero_sets = st.sets(st.integers(0, 4), max_size=3)


@PROPERTY
@given(seed=st.integers(0, 10_000), zeros_a=zero_sets, zeros_b=zero_sets, eps=st.sampled_from([0.05, 0.3]))
def test_sinkhorn_and_sns_with_zero_weights_solve_the_reduced_problem(seed, zeros_a, zeros_b, eps):
    C = unit_cost(points(seed, 5), points(seed + 1, 5, shift=0.5))
    a, b = weights(seed, 5, zeros_a).requires_grad_(True), weights(seed + 1, 5, zeros_b).requires_grad_(True)
    keep_a, keep_b = a.detach() > 0, b.detach() > 0
    reduced = sinkhorn(a.detach()[keep_a], b.detach()[keep_b], C[keep_a][:, keep_b], eps, tol=1e-12)
    for solve in (sinkhorn, sinkhorn_newton_sparse):
        result = solve(a, b, C, eps, tol=1e-11)
        assert result.converged
        plan = result.plan.detach()
        assert bool((plan[~keep_a] == 0).all()) and bool((plan[:, ~keep_b] == 0).all())
        assert torch.allclose(plan[keep_a][:, keep_b], reduced.plan, atol=1e-9)
        assert float(result.regularized_cost.detach()) == pytest.approx(
            float(reduced.regularized_cost), rel=1e-9, abs=1e-12
        )
        grad_a, grad_b = torch.autograd.grad(result.regularized_cost, (a, b))
        assert torch.isfinite(grad_a).all() and torch.isfinite(grad_b).all()
        assert torch.allclose(grad_a, result.f - eps, atol=1e-8) and torch.allclose(grad_b, result.g - eps, atol=1e-8)


@FEW
@given(seed=st.integers(0, 10_000), zeros_a=zero_sets, zeros_b=zero_sets)
def test_sinkhorn_divergence_with_zero_weights_drops_those_points(seed, zeros_a, zeros_b):
    x, y = points(seed, 5).requires_grad_(True), points(seed + 1, 5, shift=0.5)
    a, b = weights(seed, 5, zeros_a).requires_grad_(True), weights(seed + 1, 5, zeros_b)
    keep_a, keep_b = a.detach() > 0, b > 0
    value = sinkhorn_divergence(x, y, 1.0, a=a, b=b, tol=1e-11)
    reduced = sinkhorn_divergence(x.detach()[keep_a], y[keep_b], 1.0, a=a.detach()[keep_a], b=b[keep_b], tol=1e-11)
    assert float(value.detach()) == pytest.approx(float(reduced), rel=1e-8, abs=1e-12)
    grad_x, grad_a = torch.autograd.grad(value, (x, a))
    assert torch.isfinite(grad_x).all() and torch.isfinite(grad_a).all()
    assert bool((grad_x[~keep_a] == 0).all())  # a point without mass does not move the divergence


@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    zeros_a=zero_sets,
    zeros_b=zero_sets,
    formulation=st.sampled_from(["dual", "semi_dual"]),
    k=st.integers(1, 5),
)
def test_sparse_ot_with_zero_weights_solves_the_reduced_problem(seed, zeros_a, zeros_b, formulation, k):
    C = unit_cost(points(seed, 5), points(seed + 1, 5, shift=0.5))
    a, b = weights(seed, 5, zeros_a), weights(seed + 1, 5, zeros_b)
    keep_a, keep_b = a > 0, b > 0
    result = sparsity_constrained_ot(a, b, C, k, 1.0, formulation=formulation)
    reduced = sparsity_constrained_ot(a[keep_a], b[keep_b], C[keep_a][:, keep_b], k, 1.0, formulation=formulation)
    assert torch.isfinite(result.plan).all() and int(result.nonzeros_per_column.max()) <= k
    assert bool((result.plan[:, ~keep_b] == 0).all()) and bool((result.plan[~keep_a] == 0).all())
    assert torch.equal(result.plan[keep_a][:, keep_b], reduced.plan)
    assert result.objective == pytest.approx(reduced.objective, rel=1e-12, abs=1e-14)  # at the embedded potentials


# ---- kind 3: exponent overflow ----------------------------------------------------------------


@PROPERTY
@given(seed=st.integers(0, 10_000), scale=st.sampled_from([1e-20, 1e-6, 1e6, 1e20, 1e100]))
def test_scaling_cost_and_regularization_together_changes_nothing(seed, scale):
    C = unit_cost(points(seed, 6), points(seed + 1, 5, shift=0.5))
    plan = sinkhorn(None, None, C, 0.05, tol=1e-10).plan
    assert torch.allclose(sinkhorn(None, None, C * scale, 0.05 * scale, tol=1e-10).plan, plan, atol=1e-9)
    assert torch.allclose(sinkhorn_newton_sparse(None, None, C * scale, 0.05 * scale, tol=1e-10).plan, plan, atol=1e-9)
    for formulation in ("dual", "semi_dual"):
        sparse = sparsity_constrained_ot(None, None, C, 2, 0.5, formulation=formulation).plan
        scaled = sparsity_constrained_ot(None, None, C * scale, 2, 0.5 * scale, formulation=formulation).plan
        assert torch.allclose(scaled, sparse, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eps_too_small_for_the_cost_is_rejected_by_name(dtype):
    x, y = points(0, 5, dtype=dtype), points(1, 4, dtype=dtype)
    tiny = 1e-38 if dtype == torch.float32 else 1e-307
    calls = [
        lambda: sinkhorn(None, None, sqeuclidean(x, y), tiny),
        lambda: sinkhorn_newton_sparse(None, None, sqeuclidean(x, y), tiny),
        lambda: sinkhorn_divergence(x, y, tiny),
        lambda: monge_gap(x, x + 1, tiny),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="eps = .* is too small"):
            call()


# ---- kind 4: gradients at the boundary --------------------------------------------------------


@PROPERTY
@given(seed=st.integers(0, 10_000), name=st.sampled_from(sorted(COSTS)), same=st.booleans())
def test_cost_gradients_at_zero_distance_are_finite(seed, name, same):
    x = points(seed, 5, shift=100.0).requires_grad_(True)
    y = x if same else x.detach().clone()
    (grad,) = torch.autograd.grad(COSTS[name](x, y).sum(), x)
    assert torch.isfinite(grad).all()
    if name in ("sqeuclidean", "l3^1.5"):  # differentiable costs: compare with the differences
        (brute,) = torch.autograd.grad(brute_force(name, x, y).sum(), x)
        assert torch.allclose(grad, brute, atol=1e-6)


@PROPERTY
@given(seed=st.integers(0, 10_000), name=st.sampled_from(["sqeuclidean", "euclidean", "l1"]))
def test_divergence_and_monge_gap_gradients_at_equality_are_finite(seed, name):
    x = points(seed, 6).requires_grad_(True)
    value = sinkhorn_divergence(x, x.detach().clone(), 1.0, cost_fn=COSTS[name], tol=1e-10, max_iter=100_000)
    (grad,) = torch.autograd.grad(value, x)
    assert torch.isfinite(grad).all()
    if name == "sqeuclidean":
        assert float(grad.abs().max()) < 1e-6  # the minimum of a smooth divergence
    (grad,) = torch.autograd.grad(monge_gap(x.detach(), x, 1.0, cost_fn=COSTS[name]), x)  # the identity map
    assert torch.isfinite(grad).all()


# ---- kind 5: half precision -------------------------------------------------------------------


@PROPERTY
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from(HALF), name=st.sampled_from(sorted(COSTS)))
def test_half_precision_costs_keep_their_dtype_and_accuracy(seed, dtype, name):
    x, y = points(seed, 6, dtype=dtype, shift=50.0), points(seed + 1, 5, dtype=dtype, shift=50.5)
    cost = COSTS[name](x, y)
    assert cost.dtype == dtype
    reference = brute_force(name, x, y)  # of the half-precision points as given
    assert torch.allclose(cost.double(), reference, rtol=2 * torch.finfo(dtype).eps, atol=1e-3)


@PROPERTY
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from(HALF), tol=st.sampled_from([2e-2, 1e-2, 1e-6]))
def test_half_precision_entropic_solvers_are_honest(seed, dtype, tol):
    C = unit_cost(points(seed, 8), points(seed + 1, 8, shift=2.0)).to(dtype)
    reference = sinkhorn(None, None, C.double(), 0.05, tol=1e-12)  # the same rounded cost in float64
    for solve, limit in ((sinkhorn, "max_iter"), (sinkhorn_newton_sparse, "max_newton")):
        result = solve(None, None, C, 0.05, tol=tol, **{limit: 600 if limit == "max_iter" else 20})
        plan = result.plan
        assert plan.dtype == result.transport_cost.dtype == result.regularized_cost.dtype == dtype
        error = float((plan.double().sum(1) - 1 / 8).abs().sum() + (plan.double().sum(0) - 1 / 8).abs().sum())
        assert result.converged == (float(result.marginal_error) < tol) or not result.converged
        if result.converged:  # the plan as returned meets the tolerance
            assert error < tol * (1 + 1e-3)
            assert float(result.transport_cost) == pytest.approx(float(reference.transport_cost), rel=2e-2)
        if tol < 1e-3:  # below the rounding of a half-precision plan
            assert not result.converged


@PROPERTY
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from(HALF), formulation=st.sampled_from(["dual", "semi_dual"]))
def test_half_precision_sparse_ot_projection_and_exact_ot(seed, dtype, formulation):
    C = sqeuclidean(points(seed, 6), points(seed + 1, 6, shift=1.0)).to(dtype)
    result = sparsity_constrained_ot(None, None, C, 3, 1.0, formulation=formulation)
    reference = sparsity_constrained_ot(None, None, C.double(), 3, 1.0, formulation=formulation)
    assert result.plan.dtype == dtype and torch.isfinite(result.plan).all()
    assert result.objective == pytest.approx(reference.objective, rel=1e-4)
    assert result.marginal_error < 4 * torch.finfo(dtype).eps + reference.marginal_error
    values = points(seed + 2, 6, d=4, dtype=dtype)
    projected = sparse_simplex_projection(values, 2)
    assert projected.dtype == dtype and bool((projected >= 0).all()) and int((projected > 0).sum(0).max()) <= 2
    assert torch.allclose(
        projected.double().sum(0), torch.ones(4, dtype=torch.float64), atol=2 * torch.finfo(dtype).eps
    )
    assert float(exact_ot(C).transport_cost) == pytest.approx(
        float(exact_ot(C.double()).transport_cost), rel=torch.finfo(dtype).eps
    )


@PROPERTY
@given(seed=st.integers(0, 10_000), dtype=st.sampled_from(HALF))
def test_half_precision_divergence_and_monge_gap(seed, dtype):
    x, y = points(seed, 6, dtype=dtype), points(seed + 1, 6, dtype=dtype, shift=1.0)
    divergence = sinkhorn_divergence(x, y, 1.0, tol=1e-2)
    reference = sinkhorn_divergence(x.double(), y.double(), 1.0, tol=1e-9)
    assert divergence.dtype == dtype and float(divergence) == pytest.approx(float(reference), rel=2e-2, abs=1e-2)
    mapped = (x.float() * 1.2 + 0.1).to(dtype).requires_grad_(True)
    gap = monge_gap(x, mapped, 1.0, tol=1e-2)
    reference = monge_gap(x.double(), mapped.detach().double(), 1.0, tol=1e-9)
    assert gap.dtype == dtype and float(gap.detach()) == pytest.approx(float(reference), rel=5e-2, abs=2e-2)
    (grad,) = torch.autograd.grad(gap, mapped)
    assert grad.dtype == dtype and torch.isfinite(grad).all()


def test_half_precision_marginals_sum_within_their_own_rounding():
    C = sqeuclidean(points(0, 3), points(1, 3))
    third = torch.full((3,), 1 / 3, dtype=torch.bfloat16)  # sums to 1.0039 in bfloat16
    result = sinkhorn(third, third, C.bfloat16(), 0.1, tol=2e-2)
    assert result.converged and result.plan.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="a must sum to one"):
        check_problem(torch.tensor([0.5, 0.6], dtype=torch.bfloat16), None, torch.zeros(2, 2, dtype=torch.bfloat16))


# ---- kind 7: degenerate inputs that pass validation ------------------------------------------


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), m=st.integers(1, 4), identical=st.booleans())
def test_single_points_identical_points_and_constant_costs(seed, n, m, identical):
    x = points(seed, n)
    y = x[:1].expand(m, 2).clone() if identical else points(seed + 1, m)
    if identical:
        x = x[:1].expand(n, 2).clone()  # every point the same: a constant (zero) cost
    C = sqeuclidean(x, y)
    a, b = weights(seed, n), weights(seed + 1, m)
    for result in (sinkhorn(a, b, C, 1.0, tol=1e-12), sinkhorn_newton_sparse(a, b, C, 1.0, tol=1e-12)):
        assert torch.isfinite(result.plan).all() and float(result.marginal_error) < 1e-10
        if identical:
            assert torch.allclose(result.plan, a[:, None] * b[None, :], atol=1e-12)
            assert float(result.regularized_cost) == pytest.approx(0.0, abs=1e-12)
    for formulation in ("dual", "semi_dual"):
        sparse = sparsity_constrained_ot(a, b, C, n, 1.0, formulation=formulation)
        assert torch.isfinite(sparse.plan).all() and sparse.marginal_error < 1e-4
    assert float(sinkhorn_divergence(x, x, 1.0, a=a, b=a)) == pytest.approx(0.0, abs=1e-12)
    if n == m:
        assert float(exact_ot(C).transport_cost) >= 0.0


# ---- kind 8: every numeric and enumerated argument is checked --------------------------------

_C = sqeuclidean(points(0, 4), points(1, 4))
_X = points(2, 4)

# (call taking the argument, name, the kind of range)
ARGUMENTS = [
    (lambda v: minkowski(_X, _X, p=v), "p", "at_least_1"),
    (lambda v: minkowski(_X, _X, power=v), "power", "positive"),
    (lambda v: sinkhorn(None, None, _C, v), "eps", "positive"),
    (lambda v: sinkhorn(None, None, _C, 0.1, max_iter=v), "max_iter", "int_at_least_1"),
    (lambda v: sinkhorn(None, None, _C, 0.1, tol=v), "tol", "non_negative_or_inf"),
    (lambda v: check_problem(None, None, _C, atol=v), "atol", "non_negative"),
    (lambda v: sinkhorn_divergence(_X, _X + 1, v), "eps", "positive"),
    (lambda v: sinkhorn_divergence(_X, _X + 1, 0.1, max_iter=v), "max_iter", "int_at_least_1"),
    (lambda v: sinkhorn_divergence(_X, _X + 1, 0.1, tol=v), "tol", "non_negative_or_inf"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, v), "eps", "positive"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, 0.1, tol=v), "tol", "non_negative_or_inf"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, 0.1, warmup=v), "warmup", "int_non_negative"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, 0.1, max_newton=v), "max_newton", "int_non_negative"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, 0.1, density=v), "density", "unit_open_closed"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, 0.1, cg_rtol=v), "cg_rtol", "unit_closed_open"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, 0.1, cg_max_iter=v), "cg_max_iter", "int_at_least_1"),
    (lambda v: sinkhorn_newton_sparse(None, None, _C, 0.1, armijo=v), "armijo", "unit_open"),
    (lambda v: sparsity_constrained_ot(None, None, _C, v, 1.0), "k", "int_at_least_1"),
    (lambda v: sparsity_constrained_ot(None, None, _C, 2, v), "gamma", "positive"),
    (lambda v: sparsity_constrained_ot(None, None, _C, 2, 1.0, max_iter=v), "max_iter", "int_at_least_1"),
    (lambda v: sparsity_constrained_ot(None, None, _C, 2, 1.0, tol=v), "tol", "non_negative_or_inf"),
    (lambda v: sparsity_constrained_ot(None, None, _C, 2, 1.0, history_size=v), "history_size", "int_at_least_1"),
    (lambda v: sparse_simplex_projection(_C, v), "k", "int_at_least_1"),
    (lambda v: monge_gap(_X, _X + 1, v), "eps", "positive"),
    (lambda v: monge_gap(_X, _X + 1, 0.1, max_iter=v), "max_iter", "int_at_least_1"),
    (lambda v: monge_gap(_X, _X + 1, 0.1, tol=v), "tol", "non_negative_or_inf"),
    (lambda v: ResidualMap(v), "dim", "int_at_least_1"),
    (lambda v: ResidualMap(2, hidden=v), "hidden", "int_at_least_1"),
    (lambda v: ResidualMap(2, depth=v), "depth", "int_non_negative"),
]
for _name, _kind in [
    ("lam", "non_negative"),
    ("eps", "positive"),
    ("steps", "int_at_least_1"),
    ("batch_size", "int_at_least_1"),
    ("lr", "positive"),
    ("hidden", "int_at_least_1"),
    ("tol", "non_negative_or_inf"),
    ("max_iter", "int_at_least_1"),
]:
    ARGUMENTS.append(
        (
            lambda v, _name=_name: fit_map(
                torch.randn, torch.randn, 2, **{"lam": 1.0, "eps": 0.1, "steps": 1, _name: v}
            ),
            _name,
            _kind,
        )
    )

BAD = {  # values outside each kind of range
    "positive": [0.0, -1.0, -1e-300, math.nan, math.inf, -math.inf],
    "non_negative": [-1.0, -1e-300, math.nan, math.inf, -math.inf],
    "non_negative_or_inf": [-1.0, -1e-300, math.nan, -math.inf],
    "at_least_1": [0.999, 0.0, -2.0, math.nan, -math.inf],
    "int_at_least_1": [0, -3, 2.5, math.nan, math.inf],
    "int_non_negative": [-1, -7, 0.5, math.nan, math.inf],
    "unit_open_closed": [0.0, -0.5, 1.5, math.nan, math.inf],
    "unit_closed_open": [1.0, -0.5, 1.5, math.nan, math.inf],
    "unit_open": [0.0, 1.0, -0.5, 1.5, math.nan],
}


@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=st.sampled_from(ARGUMENTS), data=st.data())
def test_every_numeric_argument_is_validated_by_name(case, data):
    call, name, kind = case
    value = data.draw(st.sampled_from(BAD[kind]))
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got {value!r}$"):
        call(value)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda v: sparsity_constrained_ot(None, None, _C, 2, 1.0, formulation=v), "formulation"),
        (lambda v: sparsity_constrained_ot(None, None, _C, 2, 1.0, solver=v), "solver"),
    ],
)
@pytest.mark.parametrize("value", ["bogus", "", None, 3])
def test_every_enumerated_argument_is_validated_by_name(call, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be one of the valid values, got {value!r}; valid: "):
        call(value)


@pytest.mark.parametrize("value", [True, "0.1", None, [0.1]])
def test_non_numbers_are_type_errors_naming_the_argument(value):
    with pytest.raises(TypeError, match=r"^eps must be a number"):
        sinkhorn(None, None, _C, value)
    with pytest.raises(TypeError, match=r"^k must be an integer"):
        sparsity_constrained_ot(None, None, _C, value, 1.0)


def test_bad_warm_starts_and_cost_functions_are_named():
    with pytest.raises(ValueError, match=r"init\[0\] must broadcast"):
        sinkhorn(None, None, _C, 0.1, init=(torch.zeros(3, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"init\[1\] has 1 non-finite"):
        sinkhorn(
            None,
            None,
            _C,
            0.1,
            init=(torch.zeros(4, dtype=torch.float64), torch.tensor([0, 0, 0, math.nan], dtype=torch.float64)),
        )
    with pytest.raises(ValueError, match="init must be a pair"):
        sinkhorn(None, None, _C, 0.1, init=torch.zeros(4))
    with pytest.raises(TypeError, match="cost_fn must be callable"):
        sinkhorn_divergence(_X, _X, 0.1, cost_fn="sqeuclidean")
    with pytest.raises(ValueError, match="x must hold at least one point"):
        sinkhorn_divergence(_X[:0], _X, 0.1)
    with pytest.raises(ValueError, match="cost must have shape"):
        sinkhorn(None, None, torch.zeros(0, 3, 3, dtype=torch.float64), 0.1)
