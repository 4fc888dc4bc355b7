"""Small reference models shared by the notebooks and testbeds, so that their numbers are comparable."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

__all__ = ["GRUReader", "MLPEnsemble", "gru_classifier", "mlp"]


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


class MLPEnsemble(nn.Module):
    """``M`` independent MLPs ``sizes[0] → … → sizes[-1]`` (``activation`` between layers, none on the output),
    evaluated together by batched matrix products; for training many small models at once (Adam's update is
    elementwise, so the members of a summed loss train exactly as they would alone).

    Member ``m`` is initialised as ``nn.Linear`` initialises (uniform on ``±1/√fan_in``, weights and biases) from
    ``torch.Generator().manual_seed(seeds[m])``, so it does not depend on the other members. The input is the
    members' rows stacked member-major: ``(M·N, sizes[0])``, rows ``m·N … m·N + N − 1`` go through member ``m``;
    the output is ``(M·N, sizes[-1])`` in the same order (so the map is row by row).
    """

    def __init__(self, seeds: Sequence[int], *sizes: int, activation: type[nn.Module] = nn.SiLU):
        super().__init__()
        if len(seeds) < 1 or len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"need at least one seed and two positive layer widths, got {len(seeds)}, {sizes}")
        self.members = len(seeds)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        for fan_in, fan_out in pairwise(sizes):
            bound = fan_in**-0.5
            w = torch.stack([(torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in generators])
            b = torch.stack([(torch.rand(1, fan_out, generator=g) * 2 - 1) * bound for g in generators])
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[0] % self.members or x.shape[1] != self.weights[0].shape[1]:
            raise ValueError(
                f"x must be (M·N, {self.weights[0].shape[1]}) with M = {self.members} members, got {tuple(x.shape)}"
            )
        h = x.reshape(self.members, -1, x.shape[1])
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = self.activation(h)
        return h.reshape(-1, h.shape[-1])

    def member(self, m: int) -> nn.Sequential:
        """Member ``m`` as a stand-alone ``nn.Sequential`` of ``nn.Linear`` layers (a copy of its weights)."""
        layers: list[nn.Module] = []
        for w, b in zip(self.weights, self.biases):
            linear = nn.Linear(w.shape[1], w.shape[2]).to(w.dtype)
            with torch.no_grad():
                linear.weight.copy_(w[m].T)
                linear.bias.copy_(b[m, 0])
            layers += [linear, type(self.activation)()]
        return nn.Sequential(*layers[:-1])
