"""Small reference models shared by the notebooks and testbeds, so that their numbers are comparable."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

__all__ = ["GRUReader", "gru_classifier", "mlp"]


def mlp(*sizes: int) -> nn.Sequential:
    """A ReLU multilayer perceptron ``sizes[0] → … → sizes[-1]`` (no activation on the output)."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must be at least two positive layer widths, got {sizes}")
    layers: list[nn.Module] = []
    for fan_in, fan_out in pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class GRUReader(nn.Module):
    """A one-layer GRU that reads flat inputs ``(N, steps · features)`` as ``steps`` consecutive
    chunks of ``features`` values and returns its last hidden state ``(N, hidden)``."""

    def __init__(self, steps: int, features: int, hidden: int):
        super().__init__()
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (steps, features, hidden)):
            raise ValueError(f"steps, features and hidden must be positive integers, got {steps}, {features}, {hidden}")
        self.steps, self.features = steps, features
        self.gru = nn.GRU(features, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.steps * self.features:
            raise ValueError(
                f"x must be (N, {self.steps * self.features}) = (N, steps · features), got {tuple(x.shape)}"
            )
        return self.gru(x.reshape(x.shape[0], self.steps, self.features))[1][-1]


def gru_classifier(steps: int, features: int, hidden: int, classes: int) -> nn.Sequential:
    """A :class:`GRUReader` followed by a linear output layer ``hidden → classes`` (``model[-1]``: the
    head that a softmax or an SVM loss trains)."""
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}")
    return nn.Sequential(GRUReader(steps, features, hidden), nn.Linear(hidden, classes))
