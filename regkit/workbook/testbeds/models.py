"""Small reference models shared by the notebooks and testbeds, so that their numbers are comparable."""

from __future__ import annotations

from itertools import pairwise

from torch import nn


def mlp(*sizes: int) -> nn.Sequential:
    """A ReLU multilayer perceptron ``sizes[0] → … → sizes[-1]`` (no activation on the output)."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must be at least two positive layer widths, got {sizes}")
    layers: list[nn.Module] = []
    for fan_in, fan_out in pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])
