"""The measurements of ``cut_cross_entropy``: agreement with the materialized logits, the fresh-process
memory sweep and its ratios, the tiny language model, and the gradient-filtering table.

The variants and their problems are those of :mod:`regkit.workbook.testbeds.linear_ce`; each peak is read in
a fresh process by :func:`regkit.workbook.measure.measure_in_fresh_process`.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch
from torch import nn

from regkit.losses import LinearCrossEntropyStats, linear_cross_entropy
from regkit.workbook.measure import measure_in_fresh_process
from regkit.workbook.metrics import relative_error
from regkit.workbook.testbeds.linear_ce import loss_fn

__all__ = ["TinyLM", "filtering_table", "gradient_agreement", "memory_sweep", "ratios", "skip_reason"]

MIB = 2**20


def gradient_agreement(variants, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """Loss and gradients of each variant against the first one (``"naive"``, the materialized logits).

    ``hidden`` ``(N, d)`` and ``weight`` ``(V, d)`` require gradients. Returns a frame indexed by variant
    with ``loss`` and the relative (Frobenius) errors ``rel_error_{loss,hidden,weight}``.
    """
    reference, rows = None, []
    for variant in variants:
        hidden.grad = weight.grad = None
        loss = loss_fn(variant)(hidden, weight, labels)
        loss.backward()
        result = {"loss": loss.detach(), "hidden": hidden.grad.clone(), "weight": weight.grad.clone()}
        reference = reference or result
        rows.append(
            {
                "variant": variant,
                "loss": float(loss.detach()),
                **{f"rel_error_{k}": relative_error(result[k], reference[k]) for k in result},
            }
        )
    return pd.DataFrame(rows).set_index("variant")


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info()[0]
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def skip_reason(variant: str, n: int, vocab: int, device: torch.device, available: int | None = None) -> str | None:
    """Why a (variant, size) is left out of the sweep, or ``None``: the naive pass when ≈ 3 float32 copies
    of the logits exceed 60 % of the memory ``available`` (default: the device's), PyTorch's chunked pass
    on CPU above V = 32k (1-1.5 min per pass)."""
    available = _available_bytes(device) if available is None else available
    if variant == "naive" and 12 * n * vocab > 0.6 * available:
        return f"skipped: needs ≈ {12 * n * vocab / 2**30:.0f} GiB"
    if variant == "torch" and vocab > 32768 and device.type == "cpu":
        return "skipped: 1-1.5 min per pass on this CPU, beyond the notebook's budget (see make bench)"
    return None


def memory_sweep(sizes, variants, *, dim: int, device: torch.device, seed: int) -> pd.DataFrame:
    """One forward + backward pass per (size, variant) in a fresh process.

    Returns rows ``n, vocab, variant`` with ``measure_in_fresh_process``'s ``peak_extra_bytes`` and ``first_seconds``
    (or ``error`` naming why it was skipped), plus ``peak_extra_mib`` and ``gradient_mib`` (float32
    gradients of hidden and weight).
    """
    rows = []
    for n, vocab in sizes:
        for variant in variants:
            row = {"n": n, "vocab": vocab, "variant": variant}
            reason = skip_reason(variant, n, vocab, device)
            if reason:
                row["error"] = reason
            else:
                row.update(
                    measure_in_fresh_process(
                        "regkit.workbook.testbeds.linear_ce:setup",
                        variant=variant,
                        n=n,
                        vocab=vocab,
                        dim=dim,
                        device=str(device),
                        seed=seed,
                    )
                )
            rows.append(row)
    sweep = pd.DataFrame(rows)
    sweep["peak_extra_mib"] = sweep["peak_extra_bytes"] / MIB
    sweep["gradient_mib"] = (sweep.n + sweep.vocab) * dim * 4 / MIB
    return sweep


def ratios(sweep: pd.DataFrame, ours: str = "regkit", others=("naive", "torch")) -> pd.DataFrame:
    """Per size, ``ours`` over each other variant that ran: ``memory_ratio`` (peak extra bytes) and
    ``time_ratio`` (``first_seconds``)."""
    rows = []
    for (n, vocab), part in sweep.groupby(["n", "vocab"]):
        by = part.set_index("variant")
        for other in others:
            if np.isfinite(by.loc[other, "peak_extra_bytes"]):
                rows.append(
                    {
                        "n": n,
                        "vocab": vocab,
                        "versus": other,
                        "memory_ratio": by.loc[ours, "peak_extra_bytes"] / by.loc[other, "peak_extra_bytes"],
                        "time_ratio": by.loc[ours, "first_seconds"] / by.loc[other, "first_seconds"],
                    }
                )
    return pd.DataFrame(rows)


class TinyLM(nn.Module):
    """Embedding + residual GELU MLP; returns hidden states ``(..., width)``. The untied classifier
    ``(vocab, width)`` is the parameter ``classifier``, applied by the loss."""

    def __init__(self, vocab: int, width: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.classifier = nn.Parameter(torch.randn(vocab, width) * width**-0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        e = self.embed(tokens)
        return e + self.mlp(e)


def filtering_table(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    thresholds: dict,
    *,
    chunk_size: int = 512,
    token_chunk_size: int = 128,
) -> pd.DataFrame:
    """Per threshold ``{label: eps}``: the share of tiles the backward pass skipped and the relative
    errors of ∇hidden and ∇weight against the unfiltered gradients (``hidden``, ``weight`` require grad)."""

    def gradients(filter_eps, stats=None):
        loss = linear_cross_entropy(
            hidden,
            weight,
            labels,
            chunk_size=chunk_size,
            token_chunk_size=token_chunk_size,
            filter_eps=filter_eps,
            stats=stats,
        )
        return torch.autograd.grad(loss, [hidden, weight])

    exact, rows = gradients(None), []
    for label, eps in thresholds.items():
        stats = LinearCrossEntropyStats()
        filtered = gradients(eps, stats)
        rows.append(
            {
                "eps": label,
                "skipped_fraction": stats.skipped_fraction,
                "rel_error_hidden": relative_error(filtered[0], exact[0]),
                "rel_error_weight": relative_error(filtered[1], exact[1]),
            }
        )
    return pd.DataFrame(rows)
