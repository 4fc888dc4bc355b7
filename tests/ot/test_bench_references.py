"""The benchmark's reference solvers (benchmarks/ot_references.py) solve regkit's problems: OTT-JAX's Sinkhorn
against :func:`regkit.ot.sinkhorn`, GeomLoss's divergence against :func:`regkit.ot.sinkhorn_divergence`
(n = 300, float64). Skipped without the ``[bench]`` extra."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from regkit.ot import sinkhorn, sinkhorn_divergence, sqeuclidean

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "ot_references.py"
_SPEC = importlib.util.spec_from_file_location("ot_references", _PATH)
refs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(refs)

N, EPS = 300, 0.01
SOLVE = dict(max_iterations=100_000, repeats=1)  # enough iterations for tol 1e-9; one timed run after the warm-up


def _problem(seed=0, uniform=True):
    rng = np.random.default_rng(seed)
    x, y = rng.random((N, 2)), rng.random((N, 2)) + 0.3
    a, b = (None, None) if uniform else (rng.dirichlet(np.ones(N)), rng.dirichlet(np.ones(N)))
    return x, y, a, b


def _regkit(x, y, a, b, tol):
    cost = sqeuclidean(torch.from_numpy(x), torch.from_numpy(y))
    weights = [None if w is None else torch.from_numpy(w) for w in (a, b)]
    return sinkhorn(*weights, cost, EPS, tol=tol, max_iter=100_000), cost.numpy()


def _plan(f, g, cost, eps=EPS):
    """OTT's plan exp((f + g - C) / eps) from OTT-convention potentials."""
    return np.exp((f[:, None] + g[None, :] - cost) / eps)


def _log(w, n):
    return np.log(np.full(n, 1 / n) if w is None else w)


@pytest.mark.parametrize("uniform", [True, False])
def test_ott_dense_matches_regkit(uniform):
    pytest.importorskip("ott")
    x, y, a, b = _problem(uniform=uniform)
    tol = 1e-9
    ours, cost = _regkit(x, y, a, b, tol)
    out = refs.ott_sinkhorn(x, y, a, b, EPS, tol, dtype="float64", **SOLVE)
    assert out["converged"] and out["marginal_error"] < tol and out["f"].dtype == np.float64
    assert abs(out["n_iters"] - ours.n_iter) <= 1  # both check every iteration, half a step apart
    # OTT's potentials carry eps * log(weights); without them they equal regkit's up to one constant shift
    f = out["f"] - EPS * _log(a, N)
    g = out["g"] - EPS * _log(b, N)
    shift = np.mean(f - ours.f.numpy())
    np.testing.assert_allclose(f - shift, ours.f.numpy(), atol=1e-8)
    np.testing.assert_allclose(g + shift, ours.g.numpy(), atol=1e-8)
    plan_distance = np.abs(_plan(out["f"], out["g"], cost) - ours.plan.numpy()).sum()
    assert plan_distance < 1e-6


def test_ott_default_inner_iterations_checks_every_tenth():
    pytest.importorskip("ott")
    x, y, a, b = _problem()
    tol = 1e-8
    ours, _ = _regkit(x, y, a, b, tol)
    out = refs.ott_sinkhorn(x, y, a, b, EPS, tol, dtype="float64", inner_iterations=10, **SOLVE)
    assert out["converged"] and out["marginal_error"] < tol
    assert out["n_iters"] % 10 == 0 and ours.n_iter - 1 <= out["n_iters"] < ours.n_iter + 10


def test_ott_online_matches_dense():
    pytest.importorskip("ott")
    x, y, a, b = _problem(uniform=False)
    dense = refs.ott_sinkhorn(x, y, a, b, EPS, 1e-9, dtype="float64", **SOLVE)
    online = refs.ott_sinkhorn(x, y, a, b, EPS, 1e-9, dtype="float64", online_batch_size=64, **SOLVE)
    assert online["converged"] and online["n_iters"] == dense["n_iters"]
    assert online["marginal_error"] < 1e-9 and online["online_batch_size"] == 64
    np.testing.assert_allclose(online["f"], dense["f"], atol=1e-10)
    np.testing.assert_allclose(online["g"], dense["g"], atol=1e-10)


def test_ott_float32():
    pytest.importorskip("ott")
    x, y, a, b = _problem()
    ours, cost = _regkit(x, y, a, b, 1e-10)
    out = refs.ott_sinkhorn(x, y, a, b, EPS, 1e-4, dtype=torch.float32, **SOLVE)
    assert out["converged"] and out["f"].dtype == np.float32 and out["marginal_error"] < 2e-4
    plan = _plan(out["f"].astype(np.float64), out["g"].astype(np.float64), cost)
    assert np.abs(plan - ours.plan.numpy()).sum() < 1e-3


def _divergence(x, y):
    """regkit's S_eps (tight tolerance) and its gradient in x."""
    points = torch.from_numpy(x).requires_grad_(True)
    value = sinkhorn_divergence(points, torch.from_numpy(y), EPS, tol=1e-12, max_iter=100_000)
    (grad,) = torch.autograd.grad(value, points)
    return float(value.detach()), grad.numpy()


def test_geomloss_samples_loss_matches_regkit_to_its_annealing_accuracy():
    pytest.importorskip("geomloss")
    x, y, _, _ = _problem()
    value, grad = _divergence(x, y)
    out = refs.geomloss_divergence(x, y, EPS, dtype="float64", scaling=0.99, repeats=1)
    # 326 iterations of eps-scaling, a single one at the target eps: accurate to about 1e-5 in value
    assert out["n_iters"] == 326 and out["blur"] == pytest.approx((EPS / 2) ** 0.5)
    assert out["value"] == pytest.approx(value, rel=3e-5)
    assert np.abs(out["grad_x"] - grad).max() < 0.05 * np.abs(grad).max()
    # the naive blur = sqrt(eps) (GeomLoss's eps on regkit's cost) misses by 0.3 %, 100 times that accuracy
    naive = refs.geomloss_divergence(x, y, 2 * EPS, dtype="float64", scaling=0.99, repeats=1)["value"]
    assert naive != pytest.approx(value, rel=1e-3)


def test_geomloss_fixed_solve_matches_regkit():
    pytest.importorskip("geomloss")
    x, y, _, _ = _problem()
    value, grad = _divergence(x, y)
    out = refs.geomloss_divergence(x, y, EPS, dtype="float64", scaling=0.9, extra_iterations=800, repeats=1)
    assert out["n_iters"] == 33 + 800
    assert out["value"] == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(out["grad_x"], grad, atol=1e-4 * np.abs(grad).max())


def test_geomloss_loop_is_samples_loss():
    geomloss = pytest.importorskip("geomloss")
    x, y, _, _ = _problem()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    a = torch.full((N,), 1 / N, dtype=torch.float64)
    blur, diameter = (EPS / 2) ** 0.5, 1.5
    ours = refs._geomloss_loop(a, x, a, y, blur, 0.8, diameter, 0, "tensorized")
    theirs = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, scaling=0.8, diameter=diameter, backend="tensorized")
    assert float(ours.sum()) == pytest.approx(float(theirs(a, x, a, y)), rel=1e-12)


def test_geomloss_online_matches_tensorized():
    pytest.importorskip("geomloss")
    pytest.importorskip("pykeops")
    x, y, _, _ = _problem()
    kwargs = dict(dtype="float64", scaling=0.9, extra_iterations=50, repeats=1)
    dense = refs.geomloss_divergence(x[:100], y[:100], EPS, backend="tensorized", **kwargs)
    online = refs.geomloss_divergence(x[:100], y[:100], EPS, backend="online", **kwargs)
    assert online["value"] == pytest.approx(dense["value"], rel=1e-10)
    np.testing.assert_allclose(online["grad_x"], dense["grad_x"], atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(dtype="float16"), "dtype"),
        (dict(dtype="float64", eps=0.0), "eps"),
        (dict(dtype="float64", tol=-1.0), "tol"),
        (dict(dtype="float64", inner_iterations=0), "inner_iterations"),
        (dict(dtype="float64", inner_iterations=10, max_iterations=25), "max_iterations"),
        (dict(dtype="float64", online_batch_size=0), "online_batch_size"),
        (dict(dtype="float64", repeats=0), "repeats"),
    ],
)
def test_ott_rejects(kwargs, name):
    pytest.importorskip("ott")
    x, y, a, b = _problem()
    args = dict(eps=EPS, tol=1e-6) | kwargs
    with pytest.raises(ValueError, match=name):
        refs.ott_sinkhorn(x, y, a, b, args.pop("eps"), args.pop("tol"), **args)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(backend="keops"), "backend"),
        (dict(scaling=1.0), "scaling"),
        (dict(extra_iterations=-1), "extra_iterations"),
        (dict(dtype="int64"), "dtype"),
        (dict(repeats=0), "repeats"),
    ],
)
def test_geomloss_rejects(kwargs, name):
    pytest.importorskip("geomloss")
    x, y, _, _ = _problem()
    with pytest.raises(ValueError, match=name):
        refs.geomloss_divergence(x, y, EPS, **(dict(dtype="float64") | kwargs))
