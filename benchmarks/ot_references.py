r"""Reference entropic-OT solvers for the benchmarks: OTT-JAX's Sinkhorn and GeomLoss's Sinkhorn divergence,
set up to solve the same problems as :func:`regkit.ot.sinkhorn` and :func:`regkit.ot.sinkhorn_divergence`.

Both libraries are optional (the ``[bench]`` extra: ``pip install -e .[bench]``); they are imported when a
function is first called, so a benchmark script can import this module and skip what is missing.

**OTT-JAX** (0.6.0, on jax 0.8.3: jax 0.9.0 removed ``jax.interpreters.batching.is_vmappable``, which OTT's
online ``PointCloud(batch_size=...)`` calls). Problem: uniform or given weights, cost
:math:`C_{ij} = \lVert x_i - y_j\rVert_2^2`, absolute :math:`\varepsilon` (a float ``epsilon`` with
``relative_epsilon=None`` and ``scale_cost=1.0`` is used as is, the cost is not rescaled: the same ε as
regkit's). What OTT's ``Sinkhorn`` does (``ott/solvers/linear/sinkhorn.py``, ``lse_mode=True``):

* one iteration updates :math:`g \leftarrow \varepsilon\log b - \varepsilon\operatorname{LSE}_i((f_i - C_{ij})
  /\varepsilon)`, then :math:`f` likewise, so its potentials are regkit's plus :math:`\varepsilon\log a`,
  :math:`\varepsilon\log b` and the plan is :math:`P_{ij} = e^{(f_i + g_j - C_{ij})/\varepsilon}`;
* after the ``f`` update the rows of the plan are exact, and the error (balanced problem, sequential updates)
  is :math:`\lVert P^\top 1 - b\rVert_p` with :math:`p` = ``norm_error``: with ``norm_error=1`` this is the
  full L1 marginal error, regkit's criterion. Unlike regkit, whose error comes free from the next half-step,
  OTT pays an extra log-sum-exp pass over the n × m cost for each check
  (``marginal_from_potentials``), so it checks only every ``inner_iterations`` (default 10) iterations
  (and at iteration ``max_iterations - 1``), never before ``min_iterations``;
* it stops when the last checked error is ``< threshold`` (strict, as regkit's ``< tol``), after a multiple
  of ``inner_iterations`` iterations: ``n_iters`` is that multiple. ``inner_iterations=1`` gives regkit's
  semantics (a check every iteration, the first iteration that meets ``tol``; regkit checks the plan after
  the ``g`` half-step, OTT after the ``f`` half-step, so counts can differ by one) at 3 instead of 2 passes
  per iteration; the default 10 overshoots by up to 9 iterations at about 2.1 passes per iteration.
* ``recenter_potentials`` only acts on unbalanced problems; no momentum, no Anderson acceleration, zero
  initial potentials (as regkit's default).

**GeomLoss** (0.3.1) ``SamplesLoss("sinkhorn", p=2, blur=σ, debias=True)`` uses the *halved* cost
:math:`\tfrac12\lVert x - y\rVert^2` and :math:`\varepsilon_{\text{geomloss}} = \sigma^p = \sigma^2`. Since
:math:`\mathrm{OT}_{\lambda\varepsilon}(\lambda C) = \lambda\,\mathrm{OT}_\varepsilon(C)`, regkit's
:math:`S_\varepsilon` on :math:`\lVert x-y\rVert^2` equals :math:`2\,S^{\text{geomloss}}_{\varepsilon/2}`:
``blur = sqrt(eps / 2)`` and the value (and its gradient) times 2. Its solver has no stopping rule: it
runs one symmetric (averaged) Sinkhorn update per entry of the ε-schedule ``[D², D² s², D² s⁴, …, σ²]``
(``D`` = ``diameter``, by default the diagonal of the clouds' bounding box, ``s`` = ``scaling``), then one
last extrapolation step for the gradients; the accuracy at the target ε is set by ``scaling`` alone (the
closer to 1, the more iterations: about :math:`\log(D/\sigma)/\log(1/s)`).
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch

from regkit._checks import check_choice, check_number
from regkit.ot import sqeuclidean
from regkit.workbook.measure import median_time

__all__ = ["geomloss_divergence", "ott_sinkhorn"]

_DTYPES = {"float32": np.float32, "float64": np.float64}


def _dtype_name(dtype) -> str:
    """``"float32"`` or ``"float64"`` from a NumPy/torch dtype or its name; ``ValueError`` otherwise."""
    name = str(dtype).removeprefix("torch.").removeprefix("<class 'numpy.").removesuffix("'>")
    return check_choice("dtype", name, tuple(_DTYPES))


def _timed(fn, repeats: int, *, warmup: bool = True) -> tuple[object, float]:
    """``fn()``'s result and its median wall time over ``repeats`` runs, after one warm-up run unless
    ``warmup`` is false (a function compiled ahead of time needs none; its first run is then a sample)."""
    if warmup:
        return fn(), median_time(fn, repeats=repeats, warmup=0, min_seconds=0)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - start)
    return out, float(np.median(samples))


def _weights(w, size: int, dtype) -> np.ndarray:
    """Marginal weights in ``dtype``: uniform for ``None``."""
    return np.full(size, 1.0 / size, dtype=dtype) if w is None else np.asarray(w, dtype=dtype)


def ott_sinkhorn(
    x,
    y,
    a,
    b,
    eps: float,
    tol: float,
    *,
    dtype,
    online_batch_size: int | None = None,
    max_iterations: int = 10_000,
    inner_iterations: int = 1,
    repeats: int = 3,
) -> dict:
    r"""Solve entropic OT between clouds ``x`` ``(n, d)`` and ``y`` ``(m, d)`` with OTT-JAX's jitted Sinkhorn.

    Cost :math:`\lVert x_i - y_j\rVert^2`, absolute ``eps``; stops when the L1 marginal error is ``< tol``
    (``norm_error=1``), checked every ``inner_iterations`` iterations (1: regkit's semantics, 10: OTT's
    default), or after ``max_iterations`` (a multiple of ``inner_iterations``). Dense: an OTT ``Geometry``
    on the cost matrix of :func:`regkit.ot.sqeuclidean` (the same matrix regkit solves on, formed outside
    the timing). Online (``online_batch_size`` rows at a time, nothing n × m stored): a ``PointCloud`` on
    the clouds moved by a common shift (the cost is translation invariant; this avoids cancellation in
    :math:`\lVert x\rVert^2 + \lVert y\rVert^2 - 2\langle x, y\rangle`).

    Args:
        x, y: NumPy arrays or tensors ``(n, d)``, ``(m, d)``. a, b: weights ``(n,)``, ``(m,)`` or ``None``
            (uniform). dtype: float32 or float64 (NumPy/torch dtype or name); float64 enables
            ``jax_enable_x64``. repeats: timed runs after the warm-up, an integer ≥ 1.

    Returns:
        A dict: ``time_s`` (median of ``repeats`` jitted solves, compiled ahead of time and not timed, each to
        ``block_until_ready``), ``n_iters``, ``converged``, ``f``, ``g`` (NumPy, ``dtype``, OTT's
        convention: regkit's potentials plus ``eps * log a``, ``eps * log b``), ``marginal_error``
        (:math:`\lVert P1 - a\rVert_1 + \lVert P^\top 1 - b\rVert_1` measured afterwards: from the plan
        formed in NumPy in ``dtype``, or for online from OTT's ``marginal_from_potentials``, summed in
        float64), ``inner_iterations`` and ``online_batch_size``.

    Raises:
        ValueError: naming the argument (``eps``, ``tol``, ``dtype``, ``max_iterations``,
            ``inner_iterations``, ``online_batch_size``, ``repeats``).
    """
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 needs it; float32 inputs stay float32
    import jax.numpy as jnp
    from ott.geometry import geometry, pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    name = _dtype_name(dtype)
    np_dtype = _DTYPES[name]
    eps = check_number("eps", eps, low=0, low_open=True)
    repeats = check_number("repeats", repeats, low=1, integer=True)
    tol = check_number("tol", tol, low=0)
    inner_iterations = check_number("inner_iterations", inner_iterations, low=1, integer=True)
    max_iterations = check_number("max_iterations", max_iterations, low=1, integer=True)
    if max_iterations % inner_iterations:
        raise ValueError(
            f"max_iterations must be a multiple of inner_iterations = {inner_iterations}, got {max_iterations}"
        )
    if online_batch_size is not None:
        online_batch_size = check_number("online_batch_size", online_batch_size, low=1, integer=True)
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
    a, b = _weights(a, len(x), np_dtype), _weights(b, len(y), np_dtype)
    solver = sinkhorn.Sinkhorn(
        lse_mode=True,
        threshold=tol,
        norm_error=1,
        inner_iterations=inner_iterations,
        min_iterations=0,
        max_iterations=max_iterations,
        parallel_dual_updates=False,
        recenter_potentials=False,
    )
    if online_batch_size is None:
        cost = sqeuclidean(torch.from_numpy(x), torch.from_numpy(y)).numpy().astype(np_dtype)
        operands = (jnp.asarray(cost),)

        def make_geometry(cost):
            return geometry.Geometry(cost_matrix=cost, epsilon=eps, relative_epsilon=None, scale_cost=1.0)

    else:
        shift = 0.5 * (x.mean(0) + y.mean(0))
        operands = (jnp.asarray((x - shift).astype(np_dtype)), jnp.asarray((y - shift).astype(np_dtype)))

        def make_geometry(x, y):
            return pointcloud.PointCloud(
                x, y, epsilon=eps, relative_epsilon=None, scale_cost=1.0, batch_size=online_batch_size
            )

    a_j, b_j = jnp.asarray(a), jnp.asarray(b)

    @jax.jit
    def solve(operands, a, b):
        out = solver(linear_problem.LinearProblem(make_geometry(*operands), a=a, b=b))
        return out.f, out.g, out.n_iters, out.converged

    compiled = solve.lower(operands, a_j, b_j).compile()  # ahead of time: no warm-up solve, compile not timed

    def run():
        return jax.block_until_ready(compiled(operands, a_j, b_j))

    (f, g, n_iters, converged), time_s = _timed(run, repeats, warmup=False)
    if online_batch_size is None:
        plan = np.exp((np.asarray(f)[:, None] + np.asarray(g)[None, :] - cost) / np_dtype(eps)).astype(np.float64)
        rows, columns = plan.sum(1), plan.sum(0)
    else:
        marginal = jax.jit(
            lambda ops, f, g, axis: make_geometry(*ops).marginal_from_potentials(f, g, axis=axis), static_argnums=3
        )
        rows = np.asarray(marginal(operands, f, g, 1), dtype=np.float64)
        columns = np.asarray(marginal(operands, f, g, 0), dtype=np.float64)
    marginal_error = float(np.abs(rows - a).sum() + np.abs(columns - b).sum())
    return {
        "time_s": time_s,
        "n_iters": int(n_iters),
        "converged": bool(converged),
        "f": np.asarray(f),
        "g": np.asarray(g),
        "marginal_error": marginal_error,
        "inner_iterations": inner_iterations,
        "online_batch_size": online_batch_size,
    }


def _geomloss_loop(a, x, b, y, blur: float, scaling: float, diameter: float, extra_iterations: int, backend: str):
    """GeomLoss's own solver (``geomloss._legacy``: ``sinkhorn_loop``, its softmins and ``sinkhorn_cost``, as
    ``SamplesLoss`` calls them for ``p=2``, ``debias=True``, a batch of one) on SamplesLoss's ε-schedule followed
    by ``extra_iterations`` more iterations at the target ``blur**2``. Returns GeomLoss's divergence ``(1,)``."""
    from geomloss._legacy import sinkhorn_divergence as gd
    from geomloss._legacy import sinkhorn_samples as gs

    eps_list = gd.epsilon_schedule(2, diameter, blur, scaling) + [blur**2] * extra_iterations
    a, x, b, y = a[None], x[None], b[None], y[None]
    if backend == "tensorized":
        softmin, cost = gs.softmin_tensorized, gs.cost_routines[2]
        pairs = [cost(p, q.detach()) for p, q in ((x, x), (y, y), (x, y), (y, x))]
    else:
        log_conv = gs.lse_genred(gs.cost_formulas[2], x.shape[-1], dtype=str(x.dtype).removeprefix("torch."))
        softmin = functools.partial(gs.softmin_online, log_conv=log_conv)
        pairs = [(p[0], q[0].detach()) for p, q in ((x, x), (y, y), (x, y), (y, x))]
    potentials = gd.sinkhorn_loop(softmin, gd.log_weights(a), gd.log_weights(b), *pairs, eps_list, None, debias=True)
    return gd.sinkhorn_cost(blur**2, None, a, b, *potentials, batch=True, debias=True)


def geomloss_divergence(
    x,
    y,
    eps: float,
    *,
    backend: str = "tensorized",
    dtype,
    scaling: float = 0.95,
    diameter: float | None = None,
    extra_iterations: int = 0,
    a=None,
    b=None,
    repeats: int = 3,
) -> dict:
    r"""regkit's Sinkhorn divergence :math:`S_\varepsilon` on :math:`\lVert x - y\rVert^2` computed by GeomLoss:
    ``2 * SamplesLoss("sinkhorn", p=2, blur=sqrt(eps / 2), debias=True, scaling=scaling)`` (see the module
    docstring for the mapping of cost, blur and ε).

    SamplesLoss runs one iteration per entry of its ε-schedule and one at the target ε, so its accuracy at
    the target is limited (n = 300, ε = 0.01, float64: relative value error 9e-5 at ``scaling=0.95``, 1e-7 at
    0.999 with 3,252 iterations). ``extra_iterations > 0`` runs GeomLoss's own loop (the same functions that
    SamplesLoss calls) with that many more iterations at the target ε: a fixed, accurate solve.

    Args:
        x, y: clouds ``(n, d)``, ``(m, d)`` (NumPy or torch). eps: regkit's ε. backend: ``"tensorized"``
            (dense torch) or ``"online"`` (KeOps, needs ``pykeops``; it compiles on first use).
        dtype: float32 or float64. scaling: GeomLoss's ε-scaling ratio in (0, 1). diameter: the schedule's
            start (``None``: GeomLoss's bounding-box diagonal). extra_iterations: an integer ≥ 0.
            a, b: weights or ``None`` (uniform). repeats: timed runs after the warm-up, an integer ≥ 1.

    Returns:
        A dict: ``value`` (regkit's convention, float), ``grad_x`` (NumPy ``(n, d)``, of ``value``),
        ``time_s`` (value only) and ``time_grad_s`` (value and gradient), each the median of ``repeats``
        after a warm-up, ``n_iters`` (the schedule's length plus ``extra_iterations``), ``blur``.

    Raises:
        ValueError: naming ``eps``, ``backend``, ``dtype``, ``scaling``, ``extra_iterations`` or ``repeats``.
    """
    from geomloss import SamplesLoss
    from geomloss._legacy.sinkhorn_divergence import epsilon_schedule, max_diameter

    eps = check_number("eps", eps, low=0, low_open=True)
    backend = check_choice("backend", backend, ("tensorized", "online"))
    scaling = check_number("scaling", scaling, low=0, high=1, low_open=True, high_open=True)
    extra_iterations = check_number("extra_iterations", extra_iterations, low=0, integer=True)
    repeats = check_number("repeats", repeats, low=1, integer=True)
    torch_dtype = getattr(torch, _dtype_name(dtype))
    x, y = (torch.as_tensor(np.asarray(c) if not isinstance(c, torch.Tensor) else c) for c in (x, y))
    x, y = x.detach().to(torch_dtype), y.detach().to(torch_dtype)
    a = torch.full((len(x),), 1.0 / len(x), dtype=torch_dtype) if a is None else torch.as_tensor(a).to(torch_dtype)
    b = torch.full((len(y),), 1.0 / len(y), dtype=torch_dtype) if b is None else torch.as_tensor(b).to(torch_dtype)
    blur = math.sqrt(eps / 2)
    diameter = float(max_diameter(x, y)) if diameter is None else diameter
    if extra_iterations:
        loss = functools.partial(
            _geomloss_loop,
            blur=blur,
            scaling=scaling,
            diameter=diameter,
            extra_iterations=extra_iterations,
            backend=backend,
        )
    else:
        loss = SamplesLoss("sinkhorn", p=2, blur=blur, debias=True, scaling=scaling, diameter=diameter, backend=backend)

    def value():
        with torch.no_grad():
            return float(loss(a, x, b, y).sum())

    def value_and_grad():
        points = x.clone().requires_grad_(True)
        out = loss(a, points, b, y).sum()
        (grad,) = torch.autograd.grad(out, points)
        return float(out.detach()), grad

    _, time_s = _timed(value, repeats)
    (raw, grad), time_grad_s = _timed(value_and_grad, repeats)
    return {
        "value": 2 * raw,
        "grad_x": (2 * grad).numpy(),
        "time_s": time_s,
        "time_grad_s": time_grad_s,
        "n_iters": len(epsilon_schedule(2, diameter, blur, scaling)) + extra_iterations,
        "blur": blur,
    }
