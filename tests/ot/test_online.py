"""Online point-cloud Sinkhorn against the dense solver on the materialized cost, and the point-cloud geometry
against regkit.ot.costs."""

import math
import subprocess
import sys
import textwrap

import pytest
import torch

from regkit.ot import minkowski, sinkhorn, sqeuclidean
from regkit.ot.geometry import CPU_BLOCK_BYTES, PointCloud
from regkit.ot.online import OnlineSinkhornResult, sinkhorn_online

COSTS = {
    "sqeuclidean": ({}, sqeuclidean),
    "minkowski-1.5": (dict(p=1.5, power=1.5), lambda x, y: minkowski(x, y, p=1.5, power=1.5)),
    "minkowski-l1": (dict(p=1.0, power=1.0), lambda x, y: minkowski(x, y, p=1.0, power=1.0)),
}


def problem(n=57, m=43, d=2, seed=0, batch=(), zeros=True):
    """Random float64 clouds (the second shifted) and random weights, with a zero in each when ``zeros``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, n, d, generator=g, dtype=torch.float64)
    y = torch.randn(*batch, m, d, generator=g, dtype=torch.float64) + 1
    a = torch.rand(*batch, n, generator=g, dtype=torch.float64) + 0.1
    b = torch.rand(*batch, m, generator=g, dtype=torch.float64) + 0.1
    if zeros:
        a[..., 3], b[..., 5] = 0, 0
    return x, y, a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)


def rows_budget(rows, other, buffers=1, itemsize=8):
    """The memory budget that gives blocks of ``rows`` rows against ``other`` columns."""
    return rows * other * itemsize * buffers


# ---- geometry -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COSTS)
def test_cost_matrix_and_rows_equal_the_dense_costs(name):
    kwargs, cost_fn = COSTS[name]
    x, y, _, _ = problem(batch=(2,))
    geometry = PointCloud(x + 1000, y + 1000, cost=name.split("-")[0], **kwargs)  # far from the origin
    reference = cost_fn(x + 1000, y + 1000)
    assert geometry.shape == (57, 43) and geometry.batch_shape == (2,)
    assert torch.allclose(geometry.cost_matrix(), reference, rtol=1e-12, atol=1e-9)
    assert torch.allclose(geometry.cost_rows(5, 17), reference[:, 5:17], rtol=1e-12, atol=1e-9)
    assert torch.allclose(geometry.cost_rows(4, 9, transpose=True), reference.transpose(-1, -2)[:, 4:9], atol=1e-9)
    brute = ((x.unsqueeze(-2) - y.unsqueeze(-3)).abs() ** kwargs.get("p", 2)).sum(-1) ** (
        kwargs.get("power", 2) / kwargs.get("p", 2)
    )
    assert torch.allclose(geometry.cost_matrix(), brute, rtol=1e-9, atol=1e-9)


def test_same_cloud_has_an_exact_zero_diagonal_and_cost_rows_are_differentiable():
    x, _, _, _ = problem()
    x = (x + 1000).requires_grad_(True)
    geometry = PointCloud(x, x)
    cost = geometry.cost_matrix()
    assert float(cost.detach().diagonal().abs().max()) == 0.0 and torch.equal(cost, sqeuclidean(x, x))
    (grad,) = torch.autograd.grad(cost.sum(), x)
    brute = x.detach().unsqueeze(1) - x.detach().unsqueeze(0)
    assert torch.allclose(grad, 4 * brute.sum(1), atol=1e-6)


def test_block_rows_follow_the_memory_formula():
    x, y, _, _ = problem(n=100, m=30, batch=(3,))
    geometry = PointCloud(x, y, memory=10_000)
    assert geometry.block_rows() == 10_000 // (3 * 30 * 8) == 13
    assert geometry.block_rows(transpose=True) == 10_000 // (3 * 100 * 8) == 4
    assert geometry.block_rows(buffers=2) == 10_000 // (2 * 3 * 30 * 8)
    assert PointCloud(x, y, memory=1).block_rows() == 1  # a budget below one row: one row
    assert PointCloud(x, y).block_rows() == 100  # 256 MiB: the whole cloud
    blocks = geometry.blocks()
    assert blocks[0] == (0, 13) and blocks[-1] == (91, 100) and sum(stop - start for start, stop in blocks) == 100
    big = PointCloud(torch.zeros(10, 2), torch.zeros(100_000, 2))
    assert big.block_rows() == CPU_BLOCK_BYTES // (100_000 * 4)  # the cache cap on the CPU


def test_half_precision_points_compute_in_float32():
    x, y, _, _ = problem()
    geometry = PointCloud(x.bfloat16(), y.bfloat16())
    assert geometry.dtype == torch.bfloat16 and geometry.work_dtype == torch.float32
    assert geometry.cost_matrix().dtype == torch.bfloat16
    reference = sqeuclidean(x.bfloat16(), y.bfloat16())
    assert torch.allclose(geometry.cost_matrix().float(), reference.float(), rtol=1e-2)


# ---- online = dense -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COSTS)
@pytest.mark.parametrize("rows", [1, 7, 57])  # one row, a block that does not divide n = 57, the whole cloud
def test_online_equals_dense(name, rows):
    kwargs, _ = COSTS[name]
    x, y, a, b = problem()
    buffers = 2 if name.startswith("minkowski") else 1  # the half-steps' temporaries per block
    geometry = PointCloud(x, y, cost=name.split("-")[0], memory=rows_budget(rows, 43, buffers), **kwargs)
    assert geometry.block_rows(buffers=buffers) == rows
    online = sinkhorn_online(a, b, geometry, 0.5, tol=1e-11)
    dense = sinkhorn(a, b, geometry.cost_matrix(), 0.5, tol=1e-11)
    assert isinstance(online, OnlineSinkhornResult) and online.converged and dense.converged
    assert online.n_iter == dense.n_iter and online.errors == pytest.approx(dense.errors, rel=1e-6, abs=1e-13)
    assert torch.allclose(online.f, dense.f, atol=1e-10) and torch.allclose(online.g, dense.g, atol=1e-10)
    plan = dense.plan
    v, u = torch.randn(43, 3, dtype=torch.float64), torch.randn(57, dtype=torch.float64)
    assert torch.allclose(online.apply(v), plan @ v, atol=1e-10)
    assert torch.allclose(online.apply(v[:, 0]), plan @ v[:, 0], atol=1e-10)
    assert torch.allclose(online.apply_transpose(u), plan.T @ u, atol=1e-10)
    assert torch.allclose(online.dense(), plan, atol=1e-10)
    rows_sum, cols_sum = online.marginals()
    assert torch.allclose(rows_sum, plan.sum(-1), atol=1e-10) and torch.allclose(cols_sum, plan.sum(-2), atol=1e-10)
    assert float(online.marginal_error) == pytest.approx(float(dense.marginal_error), abs=1e-10)
    assert float(online.transport_cost) == pytest.approx(float(dense.transport_cost), abs=1e-10)
    assert float(online.regularized_cost) == pytest.approx(float(dense.regularized_cost), abs=1e-10)
    top_rows, top_cols, top_values = online.top_entries(6)
    values, index = plan.flatten().topk(6)
    assert torch.allclose(top_values, values, atol=1e-12)
    assert torch.equal(top_rows * 43 + top_cols, index)


@pytest.mark.parametrize("name", COSTS)
@pytest.mark.parametrize("max_iter", [3, 10_000])  # the exact envelope formula also before convergence
def test_gradients_equal_autograd_through_the_dense_solver(name, max_iter):
    kwargs, cost_fn = COSTS[name]
    x, y, a, b = problem(n=31, m=23)

    def gradients(online):
        leaves = [t.clone().requires_grad_(True) for t in (x, y, a, b)]
        px, py, pa, pb = leaves
        if online:
            geometry = PointCloud(px, py, cost=name.split("-")[0], memory=rows_budget(5, 23, 4), **kwargs)
            value = sinkhorn_online(pa, pb, geometry, 0.2, max_iter=max_iter, tol=1e-12).regularized_cost
        else:
            value = sinkhorn(pa, pb, cost_fn(px, py), 0.2, max_iter=max_iter, tol=1e-12).regularized_cost
        return value, torch.autograd.grad(value, leaves)

    (online_value, online_grads), (dense_value, dense_grads) = gradients(True), gradients(False)
    assert float(online_value.detach()) == pytest.approx(float(dense_value.detach()), abs=1e-10)
    for which, mine, reference in zip("xyab", online_grads, dense_grads):
        assert torch.isfinite(mine).all(), which
        assert torch.allclose(mine, reference, atol=1e-10), (which, float((mine - reference).abs().max()))
    if max_iter > 3:  # at convergence the weight gradients are the potentials minus ε, at zero weights too
        online = sinkhorn_online(a, b, PointCloud(x, y, cost=name.split("-")[0], **kwargs), 0.2, tol=1e-12)
        assert torch.allclose(online_grads[2], online.f - 0.2, atol=1e-9)


def test_gradients_for_one_cloud_against_itself():
    """The Sinkhorn-divergence term OT(α, α): the points enter as both x and y, their gradients add up."""
    x, _, a, _ = problem(n=25, zeros=False)
    x1, x2, a1, a2 = (t.clone().requires_grad_(True) for t in (x, x, a, a))
    online = sinkhorn_online(a1, a1, PointCloud(x1, x1), 0.3, tol=1e-12).regularized_cost
    dense = sinkhorn(a2, a2, sqeuclidean(x2, x2), 0.3, tol=1e-12).regularized_cost
    for mine, reference in zip(torch.autograd.grad(online, (x1, a1)), torch.autograd.grad(dense, (x2, a2))):
        assert torch.allclose(mine, reference, atol=1e-10)


def test_batched_equals_one_by_one():
    x, y, a, b = problem(n=20, m=15, batch=(3,))
    batched = sinkhorn_online(a, b, PointCloud(x, y, memory=rows_budget(4, 15, itemsize=8 * 3)), 0.5, tol=1e-10)
    assert batched.f.shape == (3, 20) and batched.transport_cost.shape == (3,)
    v = torch.randn(3, 15, 2, dtype=torch.float64)
    for i in range(3):
        single = sinkhorn(a[i], b[i], sqeuclidean(x[i], y[i]), 0.5, tol=1e-10)
        assert torch.allclose(batched.dense()[i], single.plan, atol=1e-10)
        assert torch.allclose(batched.apply(v)[i], single.plan @ v[i], atol=1e-10)
        assert float(batched.regularized_cost[i]) == pytest.approx(float(single.regularized_cost), abs=1e-10)
        top_rows, top_cols, _ = batched.top_entries(3)
        assert torch.equal(top_rows[i] * 15 + top_cols[i], single.plan.flatten().topk(3).indices)


def test_zero_weights_give_empty_rows_and_finite_potentials():
    x, y, a, b = problem()
    result = sinkhorn_online(a, b, PointCloud(x, y, memory=rows_budget(7, 43)), 0.2, tol=1e-10)
    assert torch.isfinite(result.f).all() and torch.isfinite(result.g).all()
    plan = result.dense()
    assert float(plan[3].abs().max()) == 0.0 and float(plan[:, 5].abs().max()) == 0.0
    assert float(result.apply(torch.ones(43, dtype=torch.float64))[3]) == 0.0


def test_uniform_default_weights_and_warm_start():
    x, y, _, _ = problem()
    geometry = PointCloud(x, y)
    cold = sinkhorn_online(None, None, geometry, 0.3, tol=1e-9)
    dense = sinkhorn(None, None, geometry.cost_matrix(), 0.3, tol=1e-9)
    assert cold.n_iter == dense.n_iter and torch.allclose(cold.f, dense.f, atol=1e-10)
    warm = sinkhorn_online(None, None, geometry, 0.3, tol=1e-9, init=(cold.f, cold.g))
    assert warm.converged and warm.n_iter == 1 and torch.allclose(warm.f, cold.f, atol=1e-9)
    unfinished = sinkhorn_online(None, None, geometry, 0.001, max_iter=4, tol=1e-12)
    assert not unfinished.converged and unfinished.n_iter == 4 == len(unfinished.times)


@pytest.mark.parametrize("dtype, tol, close", [(torch.float32, 1e-4, 1e-3), (torch.bfloat16, 2e-2, 5e-2)])
def test_low_precision_points_match_float64(dtype, tol, close):
    x, y, a, b = problem(zeros=False)
    x64 = x.clone().requires_grad_(True)
    reference = sinkhorn_online(a, b, PointCloud(x64, y), 0.1, tol=1e-10)
    result = sinkhorn_online(a.float(), b.float(), PointCloud(x.to(dtype), y.to(dtype)), 0.1, tol=tol)
    assert result.f.dtype == torch.float32 and result.converged
    assert result.transport_cost.dtype == dtype and result.dense().dtype == dtype
    assert float(result.transport_cost) == pytest.approx(float(reference.transport_cost), rel=close)
    # of the plan as returned: bfloat16's convergence test vouches for it; in float32 the free error and the
    # recomputed one differ by the rounding of the potentials (a few 1e-6 here)
    assert float(result.marginal_error) < (tol if dtype == torch.bfloat16 else 1.1 * tol)
    assert torch.allclose(result.dense().double(), reference.dense(), atol=tol)
    points = x.to(dtype).requires_grad_(True)
    value = sinkhorn_online(a.float(), b.float(), PointCloud(points, y.to(dtype)), 0.1, tol=tol).regularized_cost
    (grad,) = torch.autograd.grad(value, points)
    (expected,) = torch.autograd.grad(reference.regularized_cost, x64)
    assert grad.dtype == dtype and torch.allclose(grad.double(), expected, atol=close)


# ---- bad inputs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=torch.zeros(4, 2, dtype=torch.long)), "x must be a floating"),
        (dict(y=torch.zeros(4, 3)), "same d"),
        (dict(x=torch.zeros(2, 4, 2), y=torch.zeros(3, 4, 2)), "leading"),
        (dict(x=torch.zeros(0, 2)), "x must hold at least one point"),
        (dict(x=torch.tensor([[0.0, math.nan]])), "x has 1 non-finite"),
        (dict(cost="cosine"), "cost must be one of"),
        (dict(cost="minkowski", p=0.5), "p must be"),
        (dict(cost="minkowski", power=0.0), "power must be"),
        (dict(memory=0), "memory must be"),
        (dict(memory=1.5), "memory must be an integer"),
    ],
)
def test_bad_geometry_is_rejected(kwargs, match):
    arguments = dict(x=torch.zeros(4, 2), y=torch.ones(5, 2)) | kwargs
    with pytest.raises(ValueError, match=match):
        PointCloud(**arguments)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        PointCloud([[0.0]], torch.zeros(1, 1))


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(a=torch.full((5,), 0.2)), "a must have shape"),
        (dict(a=torch.tensor([0.5, 0.6, -0.1, 0.0])), "a must be non-negative"),
        (dict(b=torch.full((5,), 0.3)), "b must sum to one"),
        (dict(b=torch.tensor([0.2, 0.2, 0.2, math.nan, 0.4])), "b has 1 non-finite"),
        (dict(eps=0.0), "eps must be"),
        (dict(eps=1e-40), "eps = 1e-40 is too small"),
        (dict(max_iter=0), "max_iter must be"),
        (dict(tol=-1.0), "tol must be"),
        (dict(init=torch.zeros(4)), "init must be a pair"),
        (dict(init=(torch.zeros(3), torch.zeros(5))), r"init\[0\] must broadcast"),
    ],
)
def test_bad_solver_arguments_are_rejected(change, match):
    arguments = dict(a=None, b=None, geometry=PointCloud(torch.zeros(4, 2), torch.ones(5, 2)), eps=0.1) | change
    eps = arguments.pop("eps")
    with pytest.raises(ValueError, match=match):
        sinkhorn_online(arguments.pop("a"), arguments.pop("b"), arguments.pop("geometry"), eps, **arguments)


def test_bad_plan_queries_are_rejected():
    with pytest.raises(TypeError, match="geometry must be a regkit.ot.geometry.PointCloud"):
        sinkhorn_online(None, None, torch.zeros(4, 5), 0.1)
    result = sinkhorn_online(None, None, PointCloud(torch.zeros(4, 2), torch.ones(5, 2)), 0.1)
    with pytest.raises(ValueError, match="v must have shape"):
        result.apply(torch.zeros(4))
    with pytest.raises(ValueError, match="u must have shape"):
        result.apply_transpose(torch.zeros(4, 2, 2))
    with pytest.raises(ValueError, match="k must be"):
        result.top_entries(21)
    with pytest.raises(ValueError, match="k must be"):
        result.top_entries(0)


# ---- memory -------------------------------------------------------------------------------------------------


def test_online_solve_stays_far_below_the_dense_cost_in_memory():
    """n = m = 20,000 float32: the dense cost alone is 1.6 GB; the fresh process peaks under 1 GiB (the
    interpreter and torch account for most of it, the points and the 4 MiB block for a few MiB)."""
    n = 20_000
    script = textwrap.dedent(
        f"""
        import resource, torch
        from regkit.ot.geometry import PointCloud
        from regkit.ot.online import sinkhorn_online
        torch.set_num_threads(1)
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand({n}, 2, generator=g), torch.rand({n}, 2, generator=g) + 0.5
        result = sinkhorn_online(None, None, PointCloud(x, y), 0.05, max_iter=1, tol=0.0)
        assert result.n_iter == 1 and bool(torch.isfinite(result.f).all())
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: KiB
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    peak = int(done.stdout.split()[-1])
    dense_cost = n * n * 4
    assert peak < 2**30 < dense_cost, f"peak RSS {peak / 2**20:.0f} MiB"


# ---- through the dense API: dispatch, ε-scaling, the Sinkhorn divergence -----------------------------------


def test_sinkhorn_on_a_point_cloud_solves_online_with_the_dense_iterates():
    x, y, a, b = problem()
    online = sinkhorn(a, b, PointCloud(x, y, memory=rows_budget(7, 57)), 0.05, tol=1e-9)
    dense = sinkhorn(a, b, sqeuclidean(x, y), 0.05, tol=1e-9)
    assert isinstance(online, OnlineSinkhornResult) and online.n_iter == dense.n_iter
    assert torch.allclose(online.f, dense.f, atol=1e-10) and torch.allclose(online.g, dense.g, atol=1e-10)


@pytest.mark.parametrize("eps", [0.05, 0.005])
def test_online_epsilon_scaling_takes_the_dense_annealed_iterates(eps):
    x, y, a, b = problem(seed=2)
    options = dict(tol=1e-9, eps_init=10.0, eps_decay=0.5)
    online = sinkhorn_online(a, b, PointCloud(x, y, memory=rows_budget(7, 57)), eps, **options)
    dense = sinkhorn(a, b, sqeuclidean(x, y), eps, **options)
    plain = sinkhorn(a, b, sqeuclidean(x, y), eps, tol=1e-9)
    assert online.converged and online.n_iter == dense.n_iter == len(online.errors)
    assert torch.allclose(online.f, dense.f, atol=1e-10) and torch.allclose(online.g, dense.g, atol=1e-10)
    assert float((online.dense() - plain.plan).abs().sum()) < 1e-7  # annealing reaches the plain solution


def test_online_sinkhorn_divergence_equals_the_dense_one_with_its_gradients():
    from regkit.ot import sinkhorn_divergence

    x, y, a, b = problem(n=40, m=30, zeros=False)
    values, grads = [], []
    for online in (False, True):
        xs, ys, as_ = x.clone().requires_grad_(), y.clone().requires_grad_(), a.clone().requires_grad_()
        value = sinkhorn_divergence(xs, ys, 0.1, a=as_, b=b, tol=1e-11, online=online)
        value.backward()
        values.append(value.detach())
        grads.append((xs.grad, ys.grad, as_.grad))
    assert float(values[0]) > 0 and float(values[1]) == pytest.approx(float(values[0]), rel=1e-10, abs=1e-12)
    for dense_grad, online_grad in zip(*grads):
        assert torch.allclose(online_grad, dense_grad, atol=1e-9)
    with pytest.raises(ValueError, match="cost_fn must be None when online=True"):
        sinkhorn_divergence(x, y, 0.1, online=True, cost_fn=sqeuclidean)
