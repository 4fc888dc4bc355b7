"""Shared fixtures of the test-time adaptation tests: a tiny BatchNorm CNN, test batches and state comparisons."""

import torch
from torch import nn

DT = torch.float64


def bn_model(seed=0, classes=4):
    """Conv(1→3) → BatchNorm2d(3) → ReLU → Linear(48 → classes) in float64, with non-trivial source statistics."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, classes)
    ).to(DT)
    with torch.no_grad():  # non-trivial source statistics and affine parameters
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.2, 0.2)
    return model.eval()


def batch(n=8, seed=1, shift=0.7):
    """A ``(n, 1, 4, 4)`` float64 batch, shifted away from the source statistics."""
    return torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=DT) + shift


def entropy(logits):
    """The naive softmax entropy per row, as the official ``softmax_entropy``."""
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


def state(method):
    """A copy of the method's ``state_dict``."""
    return {k: v.clone() for k, v in method.state_dict().items()}


def same(a, b):
    """Two state copies are equal to the bit."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
