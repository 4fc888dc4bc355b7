"""Testbed of ``cut_cross_entropy``: the cross-entropy implementations it and ``make bench`` compare.

``setup(variant, n, vocab, dim, ...)`` builds one problem without large temporaries and
returns a step that runs the forward and backward pass of one variant; it is meant for
:func:`regkit.workbook.measure.measure_in_fresh_process`, which runs it in a fresh process.

Variants:

- ``"naive"``: ``F.cross_entropy(hidden @ weight.T, labels)`` (the full logits);
- ``"regkit"``: :func:`regkit.losses.linear_cross_entropy` (vocabulary tiles, recomputed);
- ``"torch"``: ``F.linear_cross_entropy(..., options=torch.nn.LinearCrossEntropyOptions())``,
  PyTorch's batch-chunked path with its automatic settings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regkit.losses import linear_cross_entropy

__all__ = ["VARIANTS", "loss_fn", "make_problem", "setup"]

VARIANTS = ("naive", "regkit", "torch")


def loss_fn(variant: str):
    """``loss(hidden, weight, labels)`` for one variant."""
    if variant == "naive":
        return lambda h, w, y: F.cross_entropy(h @ w.T, y)
    if variant == "regkit":
        return linear_cross_entropy
    if variant == "torch":
        options = torch.nn.LinearCrossEntropyOptions()
        return lambda h, w, y: F.linear_cross_entropy(h, w, y, options=options)
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def make_problem(n: int, vocab: int, dim: int, *, dtype=torch.float32, device="cpu", seed: int = 0):
    """Hidden states ``(n, dim)``, a classifier ``(vocab, dim)`` scaled to logits of unit
    order, and uniform random labels (class ids); all created in place (no temporaries)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    hidden = torch.empty(n, dim, dtype=dtype, device=device).normal_(generator=generator)
    weight = torch.empty(vocab, dim, dtype=dtype, device=device).normal_(generator=generator).mul_(dim**-0.5)
    labels = torch.randint(0, vocab, (n,), generator=generator, device=device)
    return hidden.requires_grad_(), weight.requires_grad_(), labels


def setup(variant: str, n: int, vocab: int, dim: int, dtype: str = "float32", device: str = "cpu", seed: int = 0):
    hidden, weight, labels = make_problem(n, vocab, dim, dtype=getattr(torch, dtype), device=device, seed=seed)
    loss = loss_fn(variant)

    def step():
        hidden.grad = weight.grad = None
        loss(hidden, weight, labels).backward()

    return step
