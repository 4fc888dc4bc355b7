"""Implicit differentiation (``regkit.solvers.custom_root``) against unrolling: the time and peak memory of a
hypergradient over the number of inner iterations, side by side, as ratios.

The problem: ridge regression with one L2 hyperparameter per feature, ``w*(θ) = argmin ½‖Xw − y‖²/n +
½ Σ_j exp(θ_j) w_j²`` (synthetic, n = 4000 examples, d = 500 features, float64), solved by K steps of gradient
descent (step 1/L); the hypergradient is that of the validation MSE (2000 examples) w.r.t. θ. Implicit: the K
steps run without a graph, the backward pass is ``custom_root(∇_w f, solve="cg")``; unrolled: autograd through
the K steps. K ∈ {10, 30, 100, 300, 1000}.

Two measurements per (method, K):

- one hypergradient (solve + backward) in a fresh process (``regkit.workbook.measure.measure_in_fresh_process``):
  the peak extra resident memory of the first run, then the median wall time of 3 more;
- the backward pass alone, in this process (``torch.autograd.grad`` with ``retain_graph=True`` after one solve,
  ``median_time``): the part implicit differentiation replaces.

Ratios: unrolled / implicit at the same K. The notebook ``notebooks/implicit_differentiation.ipynb`` makes the
same comparison on diabetes (d = 10) with the autograd graph's saved bytes as the memory measure.

Run: ``python benchmarks/bench_implicit.py`` (or ``make bench``); writes outputs/benchmarks/implicit.{json,png}.
``--smoke``: n = 200, d = 20, K ∈ {10, 100}, into scratch/benchmarks/ (checks that the script runs; the numbers
mean nothing); ``--out DIR`` writes elsewhere.
"""

import argparse
import os
from pathlib import Path

import torch
from common import OUT, ROOT, write

from regkit.solvers import custom_root
from regkit.workbook.figures import save_figure, subplots
from regkit.workbook.measure import measure_in_fresh_process, median_time

N, N_VAL, DIM = 4000, 2000, 500
INNER = (10, 30, 100, 300, 1000)
METHODS = ("implicit", "unrolled")
MIB = 2**20


def problem(method: str, k: int, n: int, n_val: int, dim: int, device: str = "cpu"):
    """The solver of ``method`` with ``k`` inner steps and a function from θ to the validation loss."""
    generator = torch.Generator().manual_seed(0)
    dt = torch.float64
    x = torch.randn(n + n_val, dim, generator=generator, dtype=dt)
    y = x @ torch.randn(dim, generator=generator, dtype=dt) + torch.randn(n + n_val, generator=generator, dtype=dt)
    x, y = x.to(device), y.to(device)
    xt, yt, xv, yv = x[:n], y[:n], x[n:], y[n:]
    theta0 = torch.linspace(-1, 1, dim, dtype=dt, device=device)
    step_size = 1.0 / (float(torch.linalg.eigvalsh(xt.T @ xt / n).max()) + float(theta0.exp().max()))

    def grad_fn(w, theta):
        return xt.T @ (xt @ w - yt) / n + theta.exp() * w

    def descent(init, theta):
        w = init
        for _ in range(k):
            w = w - step_size * grad_fn(w, theta)
        return w

    solver = custom_root(grad_fn, solve="cg")(descent) if method == "implicit" else descent

    def validation_loss():
        """(loss, θ): one solve at a fresh leaf θ, and the validation MSE with its graph."""
        theta = theta0.clone().requires_grad_()
        w = solver(torch.zeros(dim, dtype=dt, device=device), theta)
        return torch.mean((xv @ w - yv) ** 2), theta

    return validation_loss


def setup(method: str, k: int, n: int, n_val: int, dim: int, device: str = "cpu"):
    """A zero-argument step computing one hypergradient (solve + backward), for ``measure_in_fresh_process``."""
    validation_loss = problem(method, k, n, n_val, dim, device)
    # A first hypergradient on a tiny problem: the lazy imports of torch.func (tens of MiB of resident memory)
    # happen here, before the measured step, without leaving freed tensors of the measured size in the heap.
    tiny_loss, tiny_theta = problem(method, 1, 8, 4, 2, device)()
    torch.autograd.grad(tiny_loss, tiny_theta)

    def step():
        loss, theta = validation_loss()
        return torch.autograd.grad(loss, theta)[0]

    return step


def backward_time(method: str, k: int, n: int, n_val: int, dim: int, *, repeats: int, min_seconds: float) -> float:
    """Median seconds of the backward pass alone, after one solve whose graph is kept."""
    loss, theta = problem(method, k, n, n_val, dim)()
    return median_time(lambda: torch.autograd.grad(loss, theta, retain_graph=True), repeats=repeats,
                       min_seconds=min_seconds)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny problem, K ∈ {10, 100}, into scratch/")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default outputs/benchmarks/)")
    args = parser.parse_args()
    n, n_val, dim = (200, 100, 20) if args.smoke else (N, N_VAL, DIM)
    inner = (10, 100) if args.smoke else INNER
    repeats, min_seconds = (3, 0.005) if args.smoke else (7, 0.05)
    out = args.out or (ROOT / "scratch" / "benchmarks" if args.smoke else OUT)
    # the fresh processes import setup from this file
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent), str(ROOT), os.environ.get("PYTHONPATH", "")]
    )

    rows = []
    for k in inner:
        for method in METHODS:
            fresh = measure_in_fresh_process(
                "bench_implicit:setup", repeats=3, method=method, k=k, n=n, n_val=n_val, dim=dim
            )
            if "error" in fresh:
                raise RuntimeError(f"{method}, K={k}: {fresh['error']}")
            backward = backward_time(method, k, n, n_val, dim, repeats=repeats, min_seconds=min_seconds)
            rows.append({"method": method, "K": k, **fresh, "backward_seconds": backward})
            print(
                f"K={k:5d} {method:9s} hypergradient {fresh['median_seconds'] * 1e3:9.2f} ms  "
                f"peak {fresh['peak_extra_bytes'] / MIB:8.2f} MiB  backward {backward * 1e3:8.3f} ms",
                flush=True,
            )
    by = {(r["method"], r["K"]): r for r in rows}
    ratios = [
        {
            "K": k,
            "time_ratio": by["unrolled", k]["median_seconds"] / by["implicit", k]["median_seconds"],
            "memory_ratio": by["unrolled", k]["peak_extra_bytes"] / max(by["implicit", k]["peak_extra_bytes"], 1),
            "backward_time_ratio": by["unrolled", k]["backward_seconds"] / by["implicit", k]["backward_seconds"],
        }
        for k in inner
    ]
    for r in ratios:
        print(
            f"K={r['K']:5d} unrolled / implicit: hypergradient time {r['time_ratio']:.2f}x, "
            f"peak memory {r['memory_ratio']:.2f}x, backward time {r['backward_time_ratio']:.2f}x"
        )
    path = write(
        "implicit_smoke" if args.smoke else "implicit",
        {
            "what": "hypergradient of a per-feature ridge (validation MSE): implicit (custom_root, CG) vs unrolled GD",
            "n": n,
            "n_val": n_val,
            "dim": dim,
            "dtype": "float64",
            "rows": rows,
            "ratios": ratios,
        },
        out=out,
    )
    fig, axes = subplots(1, 3)
    panels = [("median_seconds", "hypergradient time (s)"), ("peak_extra_bytes", "peak extra memory (MiB)"),
              ("backward_seconds", "backward pass time (s)")]  # fmt: skip
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for method in METHODS:
            values = [by[method, k][key] / (MIB if key == "peak_extra_bytes" else 1) for k in inner]
            ax.plot(inner, values, "o-", label=method)
        ax.set(xscale="log", yscale="log", xlabel="inner gradient-descent steps K", ylabel=label)
    axes[0, 0].legend()
    save_figure(fig, path.with_suffix(".png"), show=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
