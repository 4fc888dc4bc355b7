"""The workbook's one training loop: full-tensor shuffled mini-batches, a per-step callback and an
end-of-epoch hook (evaluation, or state that advances once per epoch)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from tqdm import tqdm

__all__ = ["train"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _callable(name: str, value) -> None:
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be callable or None, got {type(value).__name__}")


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: LossFn | None = None,
    batch_loss: BatchLoss | None = None,
    evaluate: Callable[[int], dict | None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> list[dict]:
    """Train ``model`` on the in-memory tensors ``x`` ``(n, ...)`` and ``y`` ``(n,)``; the history.

    The loss of a batch comes from exactly one of:

    - ``loss_fn(logits, labels, index)``: the model's logits on the batch, its labels and its
      positions in ``x`` (for losses with per-example state such as ELR);
    - ``batch_loss(model, x_batch, y_batch, index, epoch)``: for losses that change the input
      (augmentations) or depend on the epoch (self-distillation schedules).

    Batches are drawn by a permutation from ``generator`` every epoch, so a seed fixes the run.
    Epochs are counted from 1. Hooks:

    - ``on_step(step, loss)`` after every optimizer step, ``step`` counted from 1 over the whole
      run and ``loss`` the batch loss as a float (a device sync per step; only when given);
    - ``evaluate(epoch)`` at the end of every epoch, with the model in eval mode and gradients
      off; it returns metrics to record (a dict) or ``None``.

    Returns the list of ``{"epoch": e, "loss": mean training loss, **metrics}``, one per epoch.

    Raises:
        ValueError: naming the argument: ``epochs`` or ``batch_size`` not a positive integer,
            ``x`` and ``y`` of different lengths, not exactly one of ``loss_fn`` / ``batch_loss``,
            a hook that is not callable, ``evaluate`` returning neither a dict nor None.
    """
    _positive("epochs", epochs)
    _positive("batch_size", batch_size)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    if (loss_fn is None) == (batch_loss is None):
        raise ValueError("give exactly one of loss_fn(logits, labels, index) and batch_loss(model, x, y, index, epoch)")
    for name, hook in (("loss_fn", loss_fn), ("batch_loss", batch_loss), ("evaluate", evaluate), ("on_step", on_step)):
        _callable(name, hook)
    if not isinstance(generator, torch.Generator):  # ValueError for every bad argument: the workbook's contract
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")  # noqa: TRY004
    history, step = [], 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, mininterval=1.0, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(x.shape[0], generator=generator).to(x.device)
        total = torch.zeros((), device=x.device)  # summed on the device: no sync per step
        for batch in order.split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            if batch_loss is not None:
                loss = batch_loss(model, x[batch], y[batch], batch, epoch)
            else:
                loss = loss_fn(model(x[batch]), y[batch], batch)
            loss.backward()
            optimizer.step()
            total += loss.detach() * batch.numel()
            step += 1
            if on_step is not None:
                on_step(step, float(loss.detach()))
        record = {"epoch": epoch, "loss": float(total) / x.shape[0]}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                metrics = evaluate(epoch)
            if metrics is not None and not isinstance(metrics, dict):
                raise ValueError(f"evaluate must return a dict or None, got {type(metrics).__name__}")
            record.update(metrics or {})
        history.append(record)
        bar.set_postfix({k: round(v, 3) for k, v in record.items() if isinstance(v, float)}, refresh=False)
    return history
