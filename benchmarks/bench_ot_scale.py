"""Optimal transport at speed and scale (issue 14): regkit against OTT-JAX (jit, CPU) and GeomLoss, side by side
in one run, reported as time ratios.

Problems: uniform marginals, clouds of n = m points uniform in the unit square (2-D), squared Euclidean cost
(not rescaled: its largest entry is about 2), absolute ε. Every measurement runs in a fresh worker process
(``python bench_ot_scale.py --worker <json>``), so that its peak resident memory (``ru_maxrss``) is its own;
``base_rss`` is the worker's resident memory after its imports, before any problem exists. Threads, pinned
per process and recorded: torch ``OMP_NUM_THREADS=2`` (the two cores), JAX/XLA its default CPU pool (one
thread per core), KeOps its OpenMP pool (``OMP_NUM_THREADS``). One worker runs at a time.

1. **Dense Sinkhorn** to an L1 marginal error of 1e-6 (float64) or 1e-5 (float32: 1e-6 is below its
   rounding for n ≥ 4000), ε = 0.01, n = 1000 … 8000, and a batch of 16 problems of n = 1000:
   ``regkit.ot.sinkhorn`` on the cost matrix against OTT-JAX's ``Sinkhorn`` (``lse_mode``) under
   ``jax.jit`` on the same matrix, checking every iteration (``inner_iterations=1``, regkit's semantics) and
   OTT's default (every 10). regkit: median of 3 after a warm-up; OTT compiled ahead of time (compilation not
   timed), median of 3 solves for n ≤ 2000 and one above (a float64 solve at n = 8000 takes minutes); the
   batch: one solve of ``jax.vmap`` of the solver. Iterations stated.
2. **ε-scaling** at ε = 1e-3 (float64, n = 1000, 2000, to 1e-6): plain Sinkhorn, ε-scaling from the
   largest cost entry halving per iteration, and Sinkhorn–Newton–Sparse; time, iterations, and the L1
   distance of each plan to the plain one.
3. **Online** (float32, n = 10⁴, 3·10⁴, 10⁵): time per iteration (3 iterations, ``tol = 0``; time / 3, setup
   included) and peak memory of ``sinkhorn(a, b, PointCloud(x, y), ε)`` against the dense solver where its
   cost fits (n ≤ 3·10⁴) and OTT-JAX's online ``PointCloud(batch_size=1024)`` (3 iterations, one error
   check; compiled ahead of time, compilation not timed).
4. **Sinkhorn divergence** at n = 10⁴ (float32, ε = 0.01): ``regkit.ot.sinkhorn_divergence`` (online, ε-scaling)
   against GeomLoss's ``SamplesLoss("sinkhorn", p=2, blur=sqrt(ε/2), debias=True)`` ×2 (its cost is
   ‖x−y‖²/2) with the tensorized and, where pykeops builds, the KeOps backend; value error against a tight
   float64 regkit solve (L1 marginal error 1e-8), time of value and gradient.

Run: ``python benchmarks/bench_ot_scale.py [--full | --quick]`` (``make bench`` runs the default profile; the
references need the ``[bench]`` extra and are skipped when missing); see :data:`PROFILES` for the sizes of each.
Writes outputs/benchmarks/ot_scale.{json,png} (``--full``, the committed run) or ot_scale_<profile>.{json,png};
``--figure [file]`` redraws a figure from its results file.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from common import ROOT, write

EPS = 0.01
THREADS = 2


def rss_mib() -> float:
    """Current resident memory of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clouds(n, seed=0, batch=None):
    rng = np.random.default_rng(seed)
    shape = (n, 2) if batch is None else (batch, n, 2)
    return rng.random(shape), rng.random(shape)


# ---- workers (one measurement each, in a fresh process) ------------------------------------------------------


def work_regkit_dense(n, dtype, tol, batch=None, eps=EPS, **_):
    import torch

    from regkit.ot import sinkhorn, sqeuclidean
    from regkit.workbook.measure import median_time

    x, y = clouds(n, batch=batch)
    dt = getattr(torch, dtype)
    base = rss_mib()
    cost = sqeuclidean(torch.from_numpy(x), torch.from_numpy(y)).to(dt)
    result = sinkhorn(None, None, cost, eps, tol=tol, max_iter=100_000)
    seconds = median_time(lambda: sinkhorn(None, None, cost, eps, tol=tol, max_iter=100_000), repeats=3, warmup=0)
    return dict(
        time_s=seconds, n_iters=result.n_iter, converged=result.converged,
        marginal_error=float(result.marginal_error.max()), base_rss=base, threads=torch.get_num_threads(),
    )  # fmt: skip


def work_ott_dense(n, dtype, tol, inner, batch=None, eps=EPS, **_):
    if batch is not None:
        return work_ott_batched(n, dtype, tol, inner, batch, eps)
    from ot_references import ott_sinkhorn

    x, y = clouds(n)
    base = rss_mib()
    out = ott_sinkhorn(
        x, y, None, None, eps, tol, dtype=dtype, inner_iterations=inner,
        max_iterations=100_000 // inner * inner, repeats=3 if n <= 2000 else 1,
    )  # fmt: skip
    return dict(
        time_s=out["time_s"], n_iters=int(out["n_iters"]), converged=bool(out["converged"]),
        marginal_error=float(out["marginal_error"]), base_rss=base,
    )  # fmt: skip


def work_ott_batched(n, dtype, tol, inner, batch, eps):
    """OTT-JAX on a batch: ``jax.vmap`` of the jitted solve over the problems (each stops on its own)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import torch
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn as ott_sinkhorn

    from regkit.ot import sqeuclidean

    x, y = clouds(n, batch=batch)
    base = rss_mib()
    cost = jnp.asarray(sqeuclidean(torch.from_numpy(x), torch.from_numpy(y)).numpy().astype(dtype))
    solver = ott_sinkhorn.Sinkhorn(
        lse_mode=True, threshold=tol, norm_error=1, inner_iterations=inner, min_iterations=0,
        max_iterations=100_000 // inner * inner, parallel_dual_updates=False, recenter_potentials=False,
    )  # fmt: skip

    def one(c):
        geom = geometry.Geometry(cost_matrix=c, epsilon=eps, relative_epsilon=None, scale_cost=1.0)
        out = solver(linear_problem.LinearProblem(geom))
        return out.n_iters, out.converged

    solve = jax.jit(jax.vmap(one)).lower(cost).compile()  # ahead of time: compilation not timed
    start = time.perf_counter()
    n_iters, converged = jax.block_until_ready(solve(cost))
    seconds = time.perf_counter() - start
    return dict(time_s=seconds, n_iters=int(np.max(n_iters)), converged=bool(np.all(converged)), base_rss=base)


def work_scaling(n, eps, tol, **_):
    import torch

    from regkit.ot import sinkhorn, sinkhorn_newton_sparse, sqeuclidean
    from regkit.workbook.measure import median_time

    x, y = clouds(n)
    cost = sqeuclidean(torch.from_numpy(x), torch.from_numpy(y))
    top = float(cost.max())
    runs = {
        "plain": lambda: sinkhorn(None, None, cost, eps, tol=tol, max_iter=100_000),
        "eps_scaling": lambda: sinkhorn(None, None, cost, eps, tol=tol, max_iter=100_000, eps_init=top),
        "sns": lambda: sinkhorn_newton_sparse(None, None, cost, eps, tol=tol),
    }
    out, plain = {}, None
    for name, run in runs.items():
        result = run()
        plan = result.plan
        plain = plan if plain is None else plain
        out[name] = dict(
            time_s=median_time(run, repeats=3, warmup=0), n_iters=int(result.n_iter), converged=bool(result.converged),
            l1_to_plain=float((plan - plain).abs().sum()), transport_cost=float(result.transport_cost),
        )  # fmt: skip
    return out


def work_regkit_online(n, iters, dense=False, **_):
    import torch

    from regkit.ot import PointCloud, sinkhorn, sqeuclidean

    x, y = clouds(n)
    x, y = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    base = rss_mib()
    start = time.perf_counter()
    if dense:
        result = sinkhorn(None, None, sqeuclidean(x, y), EPS, tol=0, max_iter=iters)
    else:
        result = sinkhorn(None, None, PointCloud(x, y), EPS, tol=0, max_iter=iters)
    seconds = time.perf_counter() - start
    return dict(
        time_per_iter_s=seconds / iters, error=result.errors[-1], base_rss=base, threads=torch.get_num_threads()
    )


def work_ott_online(n, iters, batch_size=1024, **_):
    import jax
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn as ott_sinkhorn

    x, y = clouds(n)
    base = rss_mib()
    solver = ott_sinkhorn.Sinkhorn(
        lse_mode=True, threshold=0.0, norm_error=1, inner_iterations=iters, min_iterations=0,
        max_iterations=iters, parallel_dual_updates=False, recenter_potentials=False,
    )  # fmt: skip

    def solve(x, y):
        geom = pointcloud.PointCloud(x, y, epsilon=EPS, relative_epsilon=None, scale_cost=1.0, batch_size=batch_size)
        out = solver(linear_problem.LinearProblem(geom))
        return out.f, out.n_iters

    xs, ys = jnp.asarray(x.astype(np.float32)), jnp.asarray(y.astype(np.float32))
    compiled = jax.jit(solve).lower(xs, ys).compile()
    start = time.perf_counter()
    _, n_iters = jax.block_until_ready(compiled(xs, ys))
    seconds = time.perf_counter() - start
    return dict(time_per_iter_s=seconds / iters, n_iters=int(n_iters), base_rss=base)


def work_divergence(n, which, **_):
    import torch

    from regkit.ot import sinkhorn_divergence
    from regkit.workbook.measure import median_time

    x, y = clouds(n)
    base = rss_mib()
    if which == "reference":  # a tight float64 solve (dense: 0.8 GB per term at n = 10⁴)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        return dict(value=float(sinkhorn_divergence(xt, yt, EPS, tol=1e-8, max_iter=100_000)))
    if which.startswith("geomloss"):
        from ot_references import geomloss_divergence

        backend = which.split("-")[1]
        out = geomloss_divergence(x, y, EPS, backend=backend, dtype="float32", scaling=0.9, repeats=1)
        return dict(
            value=out["value"],
            time_s=out["time_s"],
            time_grad_s=out["time_grad_s"],
            n_iters=out["n_iters"],
            base_rss=base,
        )
    online = which == "regkit-online"
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).float()

    def value():
        return sinkhorn_divergence(xt, yt, EPS, tol=1e-3, online=online, eps_init=2.0)

    def value_and_grad():
        points = xt.clone().requires_grad_(True)
        sinkhorn_divergence(points, yt, EPS, tol=1e-3, online=online, eps_init=2.0).backward()

    return dict(
        value=float(value()), time_s=median_time(value, repeats=1, warmup=0),
        time_grad_s=median_time(value_and_grad, repeats=1, warmup=0), base_rss=base,
    )  # fmt: skip


WORKERS = {
    "regkit_dense": work_regkit_dense,
    "ott_dense": work_ott_dense,
    "scaling": work_scaling,
    "regkit_online": work_regkit_online,
    "ott_online": work_ott_online,
    "divergence": work_divergence,
}


def worker(spec: dict) -> None:
    out = WORKERS[spec["kind"]](**spec)
    out["peak_rss"] = peak_mib()
    print("RESULT " + json.dumps(out))


# ---- driver ----------------------------------------------------------------------------------------------------


def measure(spec: dict, timeout: float = 900) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT / "benchmarks",
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        out = {"error": tail[0][:300]}
    else:
        out = json.loads(lines[-1][len("RESULT ") :])
    out["wall_s"] = time.perf_counter() - start
    print(f"  {spec} -> {out}", flush=True)
    return {**spec, **out}


def have(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


#: What each profile measures. ``full`` is the committed run (outputs/benchmarks/ot_scale.json, 39 minutes on
#: 2 cores: OTT-JAX's float64 solves at n = 8000 and its online solve at n = 10⁵, 131 s per iteration, and
#: GeomLoss's tensorized and KeOps divergences at n = 10⁴ dominate); ``default`` (``make bench``) drops those
#: reference runs to stay near the 15-minute budget; ``quick`` is a smoke test.
PROFILES = {
    "full": dict(dense=[1000, 2000, 4000, 8000], ott_dense_max=8000, batch=(16, 2000), scaling=[1000, 2000],
                 online=[10_000, 30_000, 100_000], ott_online_max=100_000, divergence=10_000),
    "default": dict(dense=[1000, 2000, 4000, 8000], ott_dense_max=4000, batch=(16, 1000), scaling=[1000],
                    online=[10_000, 30_000, 100_000], ott_online_max=30_000, divergence=3000),
    "quick": dict(dense=[500, 1000], ott_dense_max=1000, batch=(4, 1000), scaling=[300], online=[2000, 4000],
                  ott_online_max=4000, divergence=1000),
}  # fmt: skip


def main(profile: str = "default") -> None:
    config = PROFILES[profile]
    ott, geomloss, keops = have("ott"), have("geomloss"), have("pykeops")
    dense = []
    for dtype, tol in (("float64", 1e-6), ("float32", 1e-5)):
        for n in config["dense"]:
            row = {"n": n, "dtype": dtype, "tol": tol}
            row["regkit"] = measure(dict(kind="regkit_dense", n=n, dtype=dtype, tol=tol))
            for inner in (1, 10) if ott and n <= config["ott_dense_max"] else ():
                row[f"ott_inner{inner}"] = measure(dict(kind="ott_dense", n=n, dtype=dtype, tol=tol, inner=inner))
            dense.append(row)
    batch, n_batch = config["batch"]
    batched = {"n": n_batch, "batch": batch, "dtype": "float32", "tol": 1e-5}
    spec = dict(n=n_batch, dtype="float32", tol=1e-5, batch=batch)
    batched["regkit"] = measure(dict(kind="regkit_dense", **spec))
    if ott:
        batched["ott_inner1"] = measure(dict(kind="ott_dense", inner=1, **spec))
    scaling = [{"n": n, **measure(dict(kind="scaling", n=n, eps=1e-3, tol=1e-6))} for n in config["scaling"]]
    online = []
    for n in config["online"]:
        row = {"n": n, "iters": 3, "regkit_online": measure(dict(kind="regkit_online", n=n, iters=3))}
        if n <= 30_000:
            row["regkit_dense"] = measure(dict(kind="regkit_online", n=n, iters=3, dense=True))
        if ott and n <= config["ott_online_max"]:
            row["ott_online"] = measure(dict(kind="ott_online", n=n, iters=3))
        online.append(row)
    n_div = config["divergence"]
    divergence = {"n": n_div, "eps": EPS}
    kinds = ["reference", "regkit-online", "regkit-dense"] + (["geomloss-tensorized"] if geomloss else [])
    kinds += ["geomloss-online"] if geomloss and keops else []
    for which in kinds:
        divergence[which] = measure(dict(kind="divergence", n=n_div, which=which))
    reference = divergence["reference"].get("value")
    for which in kinds[1:]:
        if reference and "value" in divergence[which]:
            divergence[which]["relative_error"] = abs(divergence[which]["value"] - reference) / reference
    results = dict(
        eps=EPS, threads=THREADS, dense=dense, batched=batched, eps_scaling=scaling, online=online,
        divergence=divergence, references=dict(ott=ott, geomloss=geomloss, pykeops=keops), profile=profile,
    )  # fmt: skip
    path = write("ot_scale" + ("" if profile == "full" else f"_{profile}"), results)
    figure(results, path.with_suffix(".png"))
    print(f"wrote {path}")


def figure(results: dict, path) -> None:
    from regkit.workbook.figures import save_figure, subplots

    fig, axes = subplots(1, 3)
    left, middle, right = axes[0]
    for dtype, marker in (("float64", "o"), ("float32", "s")):
        rows = [r for r in results["dense"] if r["dtype"] == dtype]
        ns = [r["n"] for r in rows]
        for key, color in (("regkit", "C0"), ("ott_inner1", "C1"), ("ott_inner10", "C2")):
            times = [r[key].get("time_s") if key in r else None for r in rows]
            if any(t is not None for t in times):
                left.plot(ns, times, marker=marker, color=color, label=f"{key} {dtype}")
    left.set(
        xscale="log", yscale="log", xlabel="n = m", ylabel="seconds to L1 error tol", title=f"dense Sinkhorn, ε = {EPS}"
    )
    left.set_xticks([r["n"] for r in results["dense"] if r["dtype"] == "float64"], minor=False)
    left.get_xaxis().set_major_formatter("{x:.0f}")
    left.minorticks_off()
    left.legend(fontsize=7)
    labels = {
        "regkit_online": "regkit online (PointCloud)",
        "regkit_dense": "regkit dense (cost + kernel built: setup included)",
        "ott_online": "OTT-JAX online (batch_size 1024)",
    }
    for key, color in (("regkit_online", "C0"), ("regkit_dense", "C3"), ("ott_online", "C1")):
        pts = [(r["n"], r[key]) for r in results["online"] if key in r and "time_per_iter_s" in r[key]]
        if pts:
            ns = [p for p, _ in pts]
            middle.plot(ns, [q["time_per_iter_s"] for _, q in pts], marker="o", color=color, label=labels[key])
            right.plot(ns, [q["peak_rss"] for _, q in pts], marker="o", color=color, label=labels[key])
    for ax in (middle, right):
        ax.set(xscale="log", yscale="log", xlabel="n = m (float32, 2-D)")
        ax.set_xticks([r["n"] for r in results["online"]], minor=False)
        ax.get_xaxis().set_major_formatter("{x:.0f}")
        ax.minorticks_off()
        ax.legend(fontsize=7)
    middle.set(ylabel="seconds per iteration (3 iterations)", title="online vs dense: time")
    right.set(ylabel="peak RSS of the process (MiB)", title="online vs dense: memory")
    save_figure(fig, path)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--figure":  # redraw from a results file
        results_path = ROOT / "outputs" / "benchmarks" / (sys.argv[2] if len(sys.argv) > 2 else "ot_scale.json")
        figure(json.loads(results_path.read_text()), results_path.with_suffix(".png"))
    else:
        main(next((a.removeprefix("--") for a in sys.argv[1:] if a.removeprefix("--") in PROFILES), "default"))
