"""Output-layer losses against ``F.cross_entropy``: time of one training step of a linear output layer,
side by side, over class counts.

One step = forward ``hidden @ weight.T + bias`` (N = 512 examples, d = 128, float32), the loss, and the
backward pass into the layer's weight and bias. Losses: ``F.cross_entropy``, ``spherical_z_loss`` (the
Z-loss of de Brébisson & Vincent computed from the logits, a = 1, b = 0) and ``balanced_softmax_loss``
(Zipf-distributed class counts n_k ∝ 1/(k + 1)). Each time is the median over 7 samples of
``regkit.workbook.measure.median_time`` (each sample loops for at least 0.05 s) after 2 warm-up steps;
class counts K ∈ {10, 100, 1000, 10000, 50000}; the ratios are loss / cross-entropy at the same K.

Both losses here take the (N, K) logits, so their cost grows with K like the cross-entropy's; the
Z-loss's K-independent evaluation from the output moments (``spherical_z_loss_factored``) is timed in
``notebooks/z_loss_spherical.ipynb``.

Run: ``python benchmarks/bench_output_losses.py`` (or ``make bench``); writes
outputs/benchmarks/output_losses.{json,png}. ``--smoke``: K ∈ {10, 100}, 3 samples, written to
scratch/benchmarks/ instead (checks that the script runs; the numbers mean nothing).
"""

import argparse

import torch
import torch.nn.functional as F
from common import OUT, ROOT, write

from regkit.losses import balanced_softmax_loss, spherical_z_loss
from regkit.workbook.figures import save_figure, subplots
from regkit.workbook.measure import median_time

N, DIM = 512, 128
CLASSES = (10, 100, 1000, 10_000, 50_000)
LOSSES = ("cross_entropy", "spherical_z_loss", "balanced_softmax_loss")


def step_time(classes: int, loss: str, *, repeats: int, min_seconds: float) -> float:
    """Median seconds of one forward + backward step of ``loss`` on a fresh ``nn.Linear(DIM, classes)``."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    layer = torch.nn.Linear(DIM, classes)
    hidden = torch.randn(N, DIM, generator=generator)
    labels = torch.randint(0, classes, (N,), generator=generator)
    counts = 1.0 / torch.arange(1, classes + 1, dtype=torch.float64)
    fns = {
        "cross_entropy": F.cross_entropy,
        "spherical_z_loss": spherical_z_loss,
        "balanced_softmax_loss": lambda z, y: balanced_softmax_loss(z, y, class_counts=counts),
    }
    fn = fns[loss]

    def step():
        layer.zero_grad(set_to_none=True)
        fn(layer(hidden), labels).backward()

    return median_time(step, repeats=repeats, min_seconds=min_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="two small class counts, 3 samples, into scratch/")
    args = parser.parse_args()
    classes_list = CLASSES[:2] if args.smoke else CLASSES
    repeats, min_seconds = (3, 0.005) if args.smoke else (7, 0.05)
    out = ROOT / "scratch" / "benchmarks" if args.smoke else OUT

    rows = []
    for classes in classes_list:
        times = {loss: step_time(classes, loss, repeats=repeats, min_seconds=min_seconds) for loss in LOSSES}
        ce = times["cross_entropy"]
        for loss, seconds in times.items():
            rows.append({"classes": classes, "loss": loss, "ms": seconds * 1e3, "ratio_vs_cross_entropy": seconds / ce})
        print(
            f"K={classes:6d}  " + "  ".join(f"{loss} {times[loss] * 1e3:8.3f} ms" for loss in LOSSES) + "  ratios "
            + " ".join(f"{times[loss] / ce:.2f}" for loss in LOSSES[1:]),
            flush=True,
        )  # fmt: skip
    path = write(
        "output_losses_smoke" if args.smoke else "output_losses",
        {
            "what": "training-step time (forward + backward of a linear layer and the loss), loss / cross-entropy",
            "n": N,
            "dim": DIM,
            "dtype": "float32",
            "repeats": repeats,
            "smoke": args.smoke,
            "rows": rows,
        },
        out=out,
    )
    fig, axes = subplots(1, 2)
    for loss in LOSSES:
        sub = [r for r in rows if r["loss"] == loss]
        axes[0, 0].plot([r["classes"] for r in sub], [r["ms"] for r in sub], "o-", label=loss)
        axes[0, 1].plot([r["classes"] for r in sub], [r["ratio_vs_cross_entropy"] for r in sub], "o-", label=loss)
    axes[0, 0].set(xscale="log", yscale="log", xlabel="classes K", ylabel="ms per step",
                   title=f"forward + backward, N = {N}, d = {DIM}")  # fmt: skip
    axes[0, 1].axhline(1.0, color="gray", lw=1)
    axes[0, 1].set(xscale="log", xlabel="classes K", ylabel="time / cross-entropy", title="ratio to F.cross_entropy")
    axes[0, 0].legend()
    save_figure(fig, path.with_suffix(".png"), show=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
