"""Linear cross-entropy: naive, regkit's ``linear_cross_entropy`` and torch's chunked
``F.linear_cross_entropy``, side by side, as memory and time ratios.

Each (variant, size) runs in its own fresh process (``regkit.workbook.measure``): peak
extra memory of one forward + backward pass over the inputs already allocated (gradients
included), then the median wall time of 3 more passes. Sizes: N = 8192 tokens, d = 256,
float32, V ∈ {32768, 65536, 131072}; the issue's reference point is V = 131072.

Run: ``python benchmarks/bench_cross_entropy.py`` (or ``make bench``); writes
outputs/benchmarks/cross_entropy.{json,png}.
"""

from common import OUT, write

from regkit.workbook.figures import save_figure, subplots
from regkit.workbook.measure import measure_in_fresh_process
from regkit.workbook.testbeds.linear_ce import VARIANTS

N, DIM = 8192, 256
VOCABS = (32768, 65536, 131072)
MIB = 2**20


def main():
    rows = []
    for vocab in VOCABS:
        for variant in VARIANTS:
            result = measure_in_fresh_process(
                "regkit.workbook.testbeds.linear_ce:setup", repeats=3, variant=variant, n=N, vocab=vocab, dim=DIM
            )
            rows.append({"variant": variant, "n": N, "vocab": vocab, "dim": DIM, **result})
            print(rows[-1], flush=True)
    by = {(r["variant"], r["vocab"]): r for r in rows}
    ratios = []
    for vocab in VOCABS:
        ours = by["regkit", vocab]
        for reference in ("naive", "torch"):
            ref = by[reference, vocab]
            ratios.append(
                {
                    "vocab": vocab,
                    "reference": reference,
                    "memory_ratio": ours["peak_extra_bytes"] / ref["peak_extra_bytes"],
                    "time_ratio": ours["median_seconds"] / ref["median_seconds"],
                }
            )
    for r in ratios:
        print(
            f"V = {r['vocab']:>6} regkit / {r['reference']:<5}: memory {r['memory_ratio']:.3f}x, "
            f"time {r['time_ratio']:.2f}x"
        )
    write("cross_entropy", {"rows": rows, "ratios": ratios, "dtype": "float32"})

    fig, axes = subplots(1, 2)
    for variant in VARIANTS:
        part = [by[variant, v] for v in VOCABS]
        axes[0, 0].plot(VOCABS, [p["peak_extra_bytes"] / MIB for p in part], "o-", label=variant)
        axes[0, 1].plot(VOCABS, [p["median_seconds"] for p in part], "o-", label=variant)
    axes[0, 0].set(
        xscale="log",
        yscale="log",
        xlabel="vocabulary V",
        ylabel="peak extra memory (MiB)",
        title=f"forward + backward, N = {N}, d = {DIM}",
    )
    axes[0, 1].set(xscale="log", xlabel="vocabulary V", ylabel="median time (s)", title="wall time (2 CPU cores)")
    axes[0, 0].legend()
    save_figure(fig, OUT / "cross_entropy")


if __name__ == "__main__":
    main()
