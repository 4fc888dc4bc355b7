"""The closure convention of ``torch.optim``: re-evaluate the loss with gradients enabled."""

from __future__ import annotations

from collections.abc import Callable

import torch


def evaluate_closure(closure: Callable[[], float] | None):
    """``closure()`` with autograd on (``step`` itself runs under ``no_grad``); None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
