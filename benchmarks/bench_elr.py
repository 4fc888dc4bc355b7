"""ELR's cost over plain cross-entropy: one training step (forward, backward, Adam) of a
2-layer MLP head, ELR vs ``F.cross_entropy``, side by side, over batch sizes and class counts.

The ELR step adds the target update (an indexed read-modify-write of ``(B, C)``), the input
checks and the regularizer; the ratio shows what that costs relative to the step itself.
"""

import torch
import torch.nn.functional as F
from common import write

import regkit.workbook as wb
from regkit.losses import ELRLoss
from regkit.workbook.figures import save_figure, subplots
from regkit.workbook.measure import median_time

N_EXAMPLES, FEATURES, HIDDEN = 50_000, 64, 256


def step_time(batch: int, classes: int, arm: str) -> float:
    torch.manual_seed(0)
    model = wb.mlp(FEATURES, HIDDEN, classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, FEATURES)
    y = torch.randint(0, classes, (batch,))
    index = torch.randperm(N_EXAMPLES)[:batch]
    elr = ELRLoss(N_EXAMPLES, classes)

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = elr(logits, y, index) if arm == "ELR" else F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()

    return median_time(step)


def main() -> None:
    rows = []
    for classes in (10, 100, 1000):
        for batch in (128, 512, 2048):
            ce, elr = step_time(batch, classes, "CE"), step_time(batch, classes, "ELR")
            rows.append(
                {"batch": batch, "classes": classes, "ce_ms": ce * 1e3, "elr_ms": elr * 1e3, "elr_over_ce": elr / ce}
            )
            print(f"B={batch:5d} C={classes:5d}  CE {ce * 1e3:7.3f} ms  ELR {elr * 1e3:7.3f} ms  ratio {elr / ce:5.2f}")
    path = write(
        "elr",
        {
            "what": "training-step time, ELR / CE",
            "examples": N_EXAMPLES,
            "features": FEATURES,
            "hidden": HIDDEN,
            "rows": rows,
        },
    )
    fig, axes = subplots(1, 1)
    ax = axes[0, 0]
    for classes in (10, 100, 1000):
        sub = [r for r in rows if r["classes"] == classes]
        ax.plot([r["batch"] for r in sub], [r["elr_over_ce"] for r in sub], marker="o", label=f"C = {classes}")
    ax.axhline(1.0, color="gray", lw=1)
    ax.set(xscale="log", xlabel="batch size", ylabel="step time ELR / CE", title="ELR overhead")
    ax.legend()
    save_figure(fig, path.with_suffix(".png"), show=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
