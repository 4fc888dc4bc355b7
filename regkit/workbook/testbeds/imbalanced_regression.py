"""An imbalanced regression task with a balanced test set, for ``balanced_softmax_mse`` (Balanced MSE).

The features come from :func:`sklearn.datasets.make_regression` (``x ~ N(0, I)``, a noiseless linear
response ``x·w``); the response is standardized by its exact scale ``‖w‖``, mixed with independent
Gaussian label noise and warped:

.. math::

    z = \\sqrt{1 - \\tau^2}\\, \\frac{x \\cdot w}{\\lVert w \\rVert} + \\tau \\varepsilon, \\qquad y = e^{z},

so that :math:`z \\sim \\mathcal N(0, 1)` exactly and the training targets are log-normal (most of
them near 1, a long tail to the right), whatever the draw of ``w``. ``τ`` is the share of the
log-target's standard deviation that the features cannot explain: the conditional law of ``y`` given
``x`` has a spread, which is what makes plain MSE pull predictions towards the frequent targets.

The test set has uniform targets over ``num_bins`` equal-width bins of ``[0, y_max]``: the same
number of examples in every bin, drawn without replacement from a large pool of the same task
(importance resampling of the training law to a uniform target law: the test set differs from the
training set only by its label distribution). :func:`bin_shares` gives each bin's exact share of the
training law (from the log-normal CDF), the input of a definition of "rare" bins fixed before any
run; :func:`per_bin_mse` scores predictions bin by bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

__all__ = ["RegressionTask", "bin_edges", "bin_shares", "make_task", "per_bin_mse"]


@dataclass(frozen=True)
class RegressionTask:
    """Training and balanced test data (``x`` ``(n, d)``, ``y`` ``(n,)``, float32) and the test bins' ``edges``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    edges: torch.Tensor

    def to(self, device) -> RegressionTask:
        """The same task on ``device``."""
        return RegressionTask(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)), self.edges
        )


def bin_edges(num_bins: int = 10, y_max: float = math.exp(2.5)) -> torch.Tensor:
    """``num_bins + 1`` equal-width edges of ``[0, y_max]`` (float64)."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    if not (isinstance(y_max, (int, float)) and math.isfinite(y_max) and y_max > 0):
        raise ValueError(f"y_max must be a positive finite number, got {y_max!r}")
    return torch.linspace(0.0, float(y_max), num_bins + 1, dtype=torch.float64)


def bin_shares(edges: torch.Tensor) -> torch.Tensor:
    """Each bin's probability under the training law ``y = e^z``, ``z ~ N(0, 1)``: ``Φ(log hi) − Φ(log lo)``."""
    cdf = torch.as_tensor(stats.lognorm.cdf(edges.double().numpy(), s=1.0), dtype=torch.float64)
    return cdf[1:] - cdf[:-1]


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin ``b`` of each value, ``edges[b] ≤ value < edges[b + 1]`` (the last bin closed), −1 outside."""
    index = np.digitize(values, edges[1:-1])
    index[(values < edges[0]) | (values > edges[-1])] = -1
    return index


def _targets(x: np.ndarray, coef: np.ndarray, noise: np.ndarray, tau: float) -> np.ndarray:
    return np.exp(math.sqrt(1 - tau**2) * (x @ coef) / np.linalg.norm(coef) + tau * noise)


def make_task(
    n_train: int,
    *,
    seed: int,
    n_features: int = 8,
    tau: float = 0.5,
    edges: torch.Tensor | None = None,
    test_per_bin: int = 100,
    pool: int = 100_000,
) -> RegressionTask:
    """One draw of the task: ``make_regression`` (``random_state=seed``) draws ``w`` and the features of
    ``n_train + pool`` examples, a NumPy generator seeded with ``seed`` the label noise and the test
    resampling. The first ``n_train`` examples train (their targets imbalanced by construction); from the
    other ``pool``, ``test_per_bin`` per bin of ``edges`` (default :func:`bin_edges`) form the test set,
    sorted by bin. ``ValueError`` for ``tau`` outside ``[0, 1)``, sizes below 1, or a pool with fewer than
    ``test_per_bin`` examples in some bin."""
    from sklearn.datasets import make_regression

    for name, value in (
        ("n_train", n_train),
        ("n_features", n_features),
        ("test_per_bin", test_per_bin),
        ("pool", pool),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(tau, (int, float)) and 0 <= tau < 1):
        raise ValueError(f"tau must be in [0, 1), got {tau!r}")
    edges = bin_edges() if edges is None else edges.double()
    x, _, coef = make_regression(
        n_samples=n_train + pool,
        n_features=n_features,
        n_informative=n_features,
        noise=0.0,
        shuffle=False,
        coef=True,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    y = _targets(x, coef, rng.standard_normal(len(x)), tau)
    bins = _bin_index(y[n_train:], edges.numpy())
    test = []
    for b in range(len(edges) - 1):
        members = n_train + np.flatnonzero(bins == b)
        if len(members) < test_per_bin:
            raise ValueError(
                f"the pool holds {len(members)} examples in bin {b}, fewer than test_per_bin = "
                f"{test_per_bin}: raise pool"
            )
        test.append(rng.choice(members, test_per_bin, replace=False))
    test = np.concatenate(test)
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)
    return RegressionTask(as_tensor(x[:n_train]), as_tensor(y[:n_train]), as_tensor(x[test]), as_tensor(y[test]), edges)


def per_bin_mse(pred: torch.Tensor, target: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The mean squared error of ``pred`` ``(n,)`` against ``target`` ``(n,)`` within each bin of ``edges``
    (by the target; the last bin closed on the right), ``(num_bins,)`` float64, NaN for an empty bin.
    Targets outside ``[edges[0], edges[-1]]`` are ignored."""
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(
            f"pred and target must have the same shape (n,), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pred, target = pred.detach().double().cpu().numpy(), target.detach().double().cpu().numpy()
    index = _bin_index(target, edges.double().cpu().numpy())
    squared = (pred - target) ** 2
    out = [squared[index == b].mean() if (index == b).any() else math.nan for b in range(len(edges) - 1)]
    return torch.tensor(out, dtype=torch.float64)
