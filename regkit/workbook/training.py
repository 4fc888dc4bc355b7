"""A minimal full-tensor training loop: shuffled mini-batches, one evaluation per epoch."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    loss_fn: LossFn,
    generator: torch.Generator,
    evaluate: Callable[[int], dict] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> list[dict]:
    """Train ``model`` on the in-memory tensors ``x`` ``(n, ...)`` and ``y`` ``(n,)``.

    ``loss_fn(logits, labels, index)`` receives the batch's positions in ``x`` (for losses
    with per-example state such as ELR). Batches are drawn by a permutation from
    ``generator`` every epoch, so a seed fixes the run. After each epoch ``evaluate(epoch)``
    (called with the model in eval mode and gradients off) returns metrics; the history is
    the list of ``{"epoch": e, "loss": mean training loss, **metrics}``.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got epochs={epochs}, batch_size={batch_size}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    history = []
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, mininterval=1.0, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(x.shape[0], generator=generator).to(x.device)
        total = torch.zeros((), device=x.device)  # summed on the device: no sync per step
        for batch in order.split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[batch]), y[batch], batch)
            loss.backward()
            optimizer.step()
            total += loss.detach() * batch.numel()
        record = {"epoch": epoch, "loss": float(total) / x.shape[0]}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update(evaluate(epoch))
        history.append(record)
        bar.set_postfix({k: round(v, 3) for k, v in record.items() if isinstance(v, float)}, refresh=False)
    return history
