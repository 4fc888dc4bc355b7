"""Synthetic tasks generated on the fly (deterministic given a generator).

* ``modular_addition``: all pairs ``(a, b)`` mod ``p`` with label ``(a + b) mod p``, inputs
  ``concat(onehot(a), onehot(b))``; the grokking benchmark.
* ``gaussian_clusters``: ``K`` ambiguous classes, ``x = μ_y + σ ε`` around given means; a
  many-class task where a flexible model can overfit.
* ``zipf_bigram_corpus``: a token stream in which the successor of token ``v`` is
  ``(a·v + r) mod V`` with ``r`` Zipf-distributed, so every next-token distribution is a
  peaked Zipf law over its own permutation of the vocabulary.
* ``GaussianMixture``: a mixture of Gaussians with isotropic or diagonal covariances and its exact
  density, score ``∇ log p`` and Gaussian smoothing ``p * N(0, σ² I)`` (analytic ground truth for
  score estimators); ``gaussian_mixture_1d`` and ``eight_gaussians`` build the two used in the notebooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from regkit._checks import check_finite, check_number, check_tensor
from regkit.data.datasets import Dataset

__all__ = [
    "GaussianMixture",
    "eight_gaussians",
    "gaussian_clusters",
    "gaussian_mixture_1d",
    "modular_addition",
    "zipf_bigram_corpus",
]


def modular_addition(p: int, train_fraction: float, generator: torch.Generator) -> Dataset:
    """All ``p²`` pairs, a random ``train_fraction`` of them for training."""
    p = check_number("p", p, low=2, integer=True)
    train_fraction = check_number("train_fraction", train_fraction, low=0, high=1, low_open=True, high_open=True)
    a, b = torch.cartesian_prod(torch.arange(p), torch.arange(p)).T
    x = torch.cat([torch.nn.functional.one_hot(a, p), torch.nn.functional.one_hot(b, p)], 1).float()
    y = (a + b) % p
    order = torch.randperm(p * p, generator=generator)
    cut = int(round(train_fraction * p * p))
    train, test = order[:cut], order[cut:]
    return Dataset(f"modular_addition_{p}", x[train], y[train], x[test], y[test], p)


def gaussian_clusters(
    n_train: int, n_test: int, means: torch.Tensor, noise: float, generator: torch.Generator
) -> Dataset:
    """``x = μ_y + noise · ε`` with ``means`` ``(K, d)`` (e.g. ``randn(K, d) / √d``), ``ε ~ N(0, I/d)``,
    balanced labels."""
    n_train = check_number("n_train", n_train, low=1, integer=True)
    n_test = check_number("n_test", n_test, low=1, integer=True)
    noise = check_number("noise", noise, low=0)
    check_tensor("means", means, ndim=2, floating=True)
    check_finite("means", means)
    classes, dim = means.shape

    def draw(n):
        y = torch.arange(n) % classes
        y = y[torch.randperm(n, generator=generator)]
        return means[y] + noise * torch.randn(n, dim, generator=generator) / dim**0.5, y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return Dataset(f"gaussian_clusters_{classes}", x_train, y_train, x_test, y_test, classes)


def zipf_bigram_corpus(
    vocab: int, length: int, generator: torch.Generator, *, exponent: float = 1.1, multiplier: int = 31
) -> torch.Tensor:
    """A ``(length,)`` int64 token stream; ``P(r) ∝ (r + 1)^-exponent`` over ranks ``r < vocab``."""
    vocab = check_number("vocab", vocab, low=2, integer=True)
    length = check_number("length", length, low=2, integer=True)
    exponent = check_number("exponent", exponent, low=0)
    multiplier = check_number("multiplier", multiplier, low=1, integer=True)
    ranks = torch.multinomial(
        torch.arange(1, vocab + 1, dtype=torch.float64) ** -exponent, length, replacement=True, generator=generator
    )
    tokens = [int(torch.randint(0, vocab, (1,), generator=generator))]
    for r in ranks[1:].tolist():  # sequential by definition: plain ints, ~0.5 s per million tokens
        tokens.append((multiplier * tokens[-1] + r) % vocab)
    return torch.tensor(tokens, dtype=torch.int64)


@dataclass(frozen=True)
class GaussianMixture:
    """The density ``p(x) = Σ_k w_k N(x; μ_k, diag(s_k²))`` on ``R^d`` with exact log-density and score.

    Attributes:
        weights: ``(K,)`` positive mixture weights summing to 1 (within 1e-6).
        means: ``(K, d)`` component means.
        stds: ``(K,)`` isotropic or ``(K, d)`` diagonal standard deviations, all positive.

    All three are floating tensors of one dtype and device; the methods compute in that dtype and
    device (float64 for reference values). Raises ``ValueError`` (naming the attribute) for wrong
    shapes, non-finite entries, non-positive weights or stds, or weights not summing to 1.
    """

    weights: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor

    def __post_init__(self):
        check_tensor("weights", self.weights, ndim=1, floating=True)
        check_tensor("means", self.means, ndim=2, floating=True)
        check_tensor("stds", self.stds, floating=True)
        for name in ("weights", "means", "stds"):
            check_finite(name, getattr(self, name))
        k = self.weights.shape[0]
        if k < 1 or self.means.shape[0] != k:
            raise ValueError(f"means must have shape (K, d) with K = {k} (len(weights)), got {tuple(self.means.shape)}")
        if tuple(self.stds.shape) not in ((k,), tuple(self.means.shape)):
            raise ValueError(
                f"stds must have shape ({k},) (isotropic) or {tuple(self.means.shape)} (diagonal), "
                f"got {tuple(self.stds.shape)}"
            )
        if bool((self.weights <= 0).any()) or abs(float(self.weights.sum()) - 1) > 1e-6:
            raise ValueError(f"weights must be positive and sum to 1, got {self.weights.tolist()}")
        if bool((self.stds <= 0).any()):
            raise ValueError("stds must be positive")

    @property
    def dim(self) -> int:
        """The dimension ``d``."""
        return self.means.shape[1]

    def _scales(self) -> torch.Tensor:
        """``(K, d)`` standard deviations."""
        return self.stds.unsqueeze(1).expand_as(self.means) if self.stds.ndim == 1 else self.stds

    def _check_points(self, x) -> torch.Tensor:
        check_tensor("x", x, ndim=2, floating=True)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {tuple(x.shape)}")
        return x.to(self.means.dtype)

    def _component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, K)``: ``log w_k + log N(x_n; μ_k, diag(s_k²))``."""
        scales = self._scales()
        z = (x.unsqueeze(1) - self.means) / scales
        log_norm = -0.5 * self.dim * math.log(2 * math.pi) - scales.log().sum(1)
        return self.weights.log() + log_norm - 0.5 * (z**2).sum(-1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` independent draws, ``(n, d)``: a component by its weight, then its Gaussian."""
        n = check_number("n", n, low=1, integer=True)
        dtype, device = self.means.dtype, self.means.device
        components = torch.multinomial(self.weights.cpu().double(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        components, noise = components.to(device), noise.to(device=device, dtype=dtype)
        return self.means[components] + self._scales()[components] * noise

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` exact ``log p(x_n)`` for points ``x`` ``(N, d)`` (log-sum-exp over components)."""
        return torch.logsumexp(self._component_log_probs(self._check_points(x)), 1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, d)`` exact ``∇_x log p(x_n) = Σ_k γ_k(x_n) (μ_k − x_n) / s_k²`` with the responsibilities
        ``γ_k(x) = w_k N_k(x) / p(x)``."""
        x = self._check_points(x)
        responsibilities = torch.softmax(self._component_log_probs(x), 1)
        return (responsibilities.unsqueeze(-1) * (self.means - x.unsqueeze(1)) / self._scales() ** 2).sum(1)

    def smoothed(self, sigma: float) -> GaussianMixture:
        """The law of ``x + σ ε``, ``ε ~ N(0, I)``: ``p * N(0, σ² I)``, the same mixture with variances
        ``s_k² + σ²``. ``sigma ≥ 0`` (0 returns the mixture itself)."""
        sigma = check_number("sigma", sigma, low=0)
        return GaussianMixture(self.weights, self.means, (self.stds**2 + sigma**2).sqrt())


def gaussian_mixture_1d(dtype: torch.dtype = torch.float64) -> GaussianMixture:
    """The 1-D mixture of the ``regularized_ae_score`` notebook:
    ``⅓ N(−1.5, 0.6²) + ⅔ N(1.5, 0.6²)`` (two overlapping modes of unequal weight)."""
    return GaussianMixture(
        torch.tensor([1 / 3, 2 / 3], dtype=dtype),
        torch.tensor([[-1.5], [1.5]], dtype=dtype),
        torch.tensor([0.6, 0.6], dtype=dtype),
    )


def eight_gaussians(radius: float = 2.0, std: float = 0.3, dtype: torch.dtype = torch.float64) -> GaussianMixture:
    """The 2-D "8 Gaussians" ring: equal weights, means ``radius · (cos 2πk/8, sin 2πk/8)``, isotropic ``std``."""
    radius = check_number("radius", radius, low=0, low_open=True)
    std = check_number("std", std, low=0, low_open=True)
    angles = torch.arange(8, dtype=dtype) * (2 * math.pi / 8)
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)
    return GaussianMixture(torch.full((8,), 1 / 8, dtype=dtype), means, torch.full((8,), std, dtype=dtype))
