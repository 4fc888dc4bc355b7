"""Optimal-transport solvers against POT, side by side in one process, reported as time ratios.

1. ``regkit.ot.sinkhorn`` vs POT ``ot.bregman.sinkhorn_log`` (numpy and torch backends), both to an
   L1 marginal error of 1e-6, at n ∈ {500, 1000, 2000, 4000} (float64, ε = 0.05 on a unit-scaled cost).
   POT checks its own (L2, column) error every 10 iterations; both plans' L1 errors are re-measured
   the same way afterwards.
Every time is the median of 3 runs after a warm-up run (first touches of fresh memory are not timed).

2. ``regkit.ot.sinkhorn_newton_sparse`` vs ``regkit.ot.sinkhorn`` at ε = 1e-3, to 1e-8.
3. ``regkit.ot.sparsity_constrained_ot`` vs POT ``ot.smooth.smooth_ot_dual(reg_type="sparsity_constrained")``
   (k = 8, γ = 1), both with scipy's L-BFGS-B to the same stopping rule; objectives compared.

Run: ``python benchmarks/bench_ot.py`` (or ``make bench``); writes outputs/benchmarks/ot.{json,png}.
"""

import time

import numpy as np
import ot
import torch
from common import write

from regkit.ot import sinkhorn, sinkhorn_newton_sparse, sparsity_constrained_ot, sqeuclidean
from regkit.workbook.figures import save_figure, subplots


def cloud_cost(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    cost = sqeuclidean(
        torch.rand(n, 2, generator=g, dtype=torch.float64), torch.rand(n, 2, generator=g, dtype=torch.float64)
    )
    return cost / cost.max()


def timed(fn, *args, repeats=3, **kwargs):
    """The output of ``fn(*args, **kwargs)`` and its median wall time over ``repeats`` runs after one warm-up run."""
    out = fn(*args, **kwargs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def l1_error(plan, n):
    plan = torch.as_tensor(np.asarray(plan))
    return float((plan.sum(1) - 1 / n).abs().sum() + (plan.sum(0) - 1 / n).abs().sum())


def sinkhorn_rows(sizes, eps=0.05, tol=1e-6):
    rows = []
    for n in sizes:
        cost = cloud_cost(n)
        a = np.full(n, 1 / n)
        ours, t_ours = timed(sinkhorn, None, None, cost, eps, tol=tol, max_iter=100_000)
        (pot_np, log_np), t_np = timed(
            ot.bregman.sinkhorn_log, a, a, cost.numpy(), eps, stopThr=tol, numItermax=100_000, log=True
        )
        at = torch.from_numpy(a)
        (pot_t, log_t), t_t = timed(
            ot.bregman.sinkhorn_log, at, at, cost, eps, stopThr=tol, numItermax=100_000, log=True
        )
        rows.append(
            {
                "n": n,
                "regkit_s": t_ours,
                "pot_numpy_s": t_np,
                "pot_torch_s": t_t,
                "regkit_iters": ours.n_iter,
                "pot_numpy_iters": int(log_np["niter"]),
                "pot_torch_iters": int(log_t["niter"]),
                "regkit_l1_error": float(ours.marginal_error),
                "pot_numpy_l1_error": l1_error(pot_np, n),
                "pot_torch_l1_error": l1_error(pot_t, n),
                "ratio_vs_pot_numpy": t_ours / t_np,
                "ratio_vs_pot_torch": t_ours / t_t,
            }
        )
        print(
            f"sinkhorn n={n:5d}: regkit {t_ours:7.2f}s ({ours.n_iter} it)  POT numpy {t_np:7.2f}s  POT torch "
            f"{t_t:7.2f}s  ratios {t_ours / t_np:.2f} / {t_ours / t_t:.2f}",
            flush=True,
        )
    return rows


def sns_rows(sizes, eps=1e-3, tol=1e-8):
    rows = []
    for n in sizes:
        cost = cloud_cost(n, seed=1)
        sns, t_sns = timed(sinkhorn_newton_sparse, None, None, cost, eps, tol=tol)
        plain, t_plain = timed(sinkhorn, None, None, cost, eps, tol=tol, max_iter=100_000)
        rows.append(
            {
                "n": n,
                "sns_s": t_sns,
                "sinkhorn_s": t_plain,
                "sns_iters": sns.n_iter,
                "sinkhorn_iters": plain.n_iter,
                "speedup": t_plain / t_sns,
                "converged": sns.converged and plain.converged,
            }
        )
        print(
            f"SNS n={n:5d}: SNS {t_sns:6.2f}s ({sns.n_iter} it)  Sinkhorn {t_plain:6.2f}s ({plain.n_iter} it)  "
            f"speed-up {t_plain / t_sns:.1f}x",
            flush=True,
        )
    return rows


def sparse_rows(sizes, k=8, gamma=1.0):
    rows = []
    for n in sizes:
        cost = cloud_cost(n, seed=2)
        a = np.full(n, 1 / n)
        ours, t_ours = timed(sparsity_constrained_ot, None, None, cost, k, gamma)
        (_, log), t_pot = timed(
            ot.smooth.smooth_ot_dual, a, a, cost.numpy(), gamma, reg_type="sparsity_constrained", max_nz=k, log=True
        )
        rows.append(
            {
                "n": n,
                "regkit_s": t_ours,
                "pot_s": t_pot,
                "regkit_iters": ours.n_iter,
                "pot_iters": int(log["res"].nit),
                "regkit_objective": ours.objective,
                "pot_objective": float(-log["res"].fun),
                "ratio": t_ours / t_pot,
            }
        )
        print(
            f"sparse OT n={n:4d}: regkit {t_ours:6.3f}s ({ours.n_iter} it)  POT {t_pot:6.3f}s "
            f"({log['res'].nit} it)  ratio {t_ours / t_pot:.2f}  objective {ours.objective:.10f} vs "
            f"{-log['res'].fun:.10f}",
            flush=True,
        )
    return rows


def main():
    results = {
        "sinkhorn_vs_pot": sinkhorn_rows([500, 1000, 2000, 4000]),
        "sns_vs_sinkhorn": sns_rows([500, 1000]),
        "sparsity_constrained_vs_pot": sparse_rows([100, 200, 400, 800]),
    }
    path = write("ot", {"what": "time ratios regkit / reference (< 1: regkit faster)", **results})
    fig, axes = subplots(1, 3)
    s = results["sinkhorn_vs_pot"]
    axes[0, 0].plot([r["n"] for r in s], [r["ratio_vs_pot_numpy"] for r in s], marker="o", label="vs POT (numpy)")
    axes[0, 0].plot([r["n"] for r in s], [r["ratio_vs_pot_torch"] for r in s], marker="o", label="vs POT (torch)")
    axes[0, 0].set(title="log-domain Sinkhorn, ε = 0.05", ylabel="time ratio regkit / POT")
    axes[0, 0].legend()
    s = results["sns_vs_sinkhorn"]
    axes[0, 1].bar([str(r["n"]) for r in s], [r["speedup"] for r in s])
    axes[0, 1].set(title="SNS speed-up over Sinkhorn, ε = 1e-3", ylabel="Sinkhorn time / SNS time", xlabel="n")
    s = results["sparsity_constrained_vs_pot"]
    axes[0, 2].plot([r["n"] for r in s], [r["ratio"] for r in s], marker="o")
    axes[0, 2].set(title="sparsity-constrained OT, k = 8", ylabel="time ratio regkit / POT")
    for ax in (axes[0, 0], axes[0, 2]):
        ax.axhline(1.0, color="gray", lw=1)
        ax.set(xscale="log", xlabel="n")
    save_figure(fig, path.with_suffix(".png"), show=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
