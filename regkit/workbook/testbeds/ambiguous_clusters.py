r"""Ambiguous Gaussian classes: the testbed of ``pass_at_n_loss``.

:math:`K` classes with random means :math:`\mu_k \sim N(0, I/d)` and :math:`x = \mu_y + \sigma\varepsilon`
(:func:`regkit.data.gaussian_clusters`). The ambiguity is fixed by the data, not by the results:
:func:`calibrate_noise` picks the :math:`\sigma` of a grid at which the oracle rule (nearest true
mean) is right on a target share of a fresh sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from regkit.data import Dataset, gaussian_clusters

__all__ = ["calibrate_noise", "oracle_accuracy", "problem"]


def problem(
    classes: int, noise: float, seed: int, *, dim: int = 300, n_train: int = 600, n_test: int = 2000
) -> tuple[torch.Tensor, Dataset]:
    """The class means ``(classes, dim)`` and a dataset drawn around them, both from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=g) / dim**0.5
    return means, gaussian_clusters(n_train, n_test, means, noise, g)


def oracle_accuracy(means: torch.Tensor, data: Dataset) -> float:
    """Test accuracy of the nearest-true-mean rule, the best a classifier knowing ``means`` can do."""
    return float((torch.cdist(data.x_test, means).argmin(1) == data.y_test).float().mean())


def calibrate_noise(
    classes: int, seed: int, *, target: float = 0.5, grid: Sequence[float] = tuple(np.geomspace(0.5, 50.0, 41)), **sizes
) -> float:
    """The ``σ`` of ``grid`` whose oracle accuracy on ``problem(classes, σ, seed, **sizes)`` is closest to
    ``target`` (the first such on a tie)."""
    grid = np.asarray(grid, dtype=float)
    accs = np.array([oracle_accuracy(*problem(classes, s, seed, **sizes)) for s in grid])
    return float(grid[np.abs(accs - target).argmin()])
