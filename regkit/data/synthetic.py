"""Synthetic tasks generated on the fly (deterministic given a generator).

* ``modular_addition``: all pairs ``(a, b)`` mod ``p`` with label ``(a + b) mod p``, inputs
  ``concat(onehot(a), onehot(b))``; the grokking benchmark.
* ``gaussian_clusters``: ``K`` ambiguous classes, ``x = μ_y + σ ε`` around given means; a
  many-class task where a flexible model can overfit.
* ``zipf_bigram_corpus``: a token stream in which the successor of token ``v`` is
  ``(a·v + r) mod V`` with ``r`` Zipf-distributed, so every next-token distribution is a
  peaked Zipf law over its own permutation of the vocabulary.
"""

from __future__ import annotations

import torch

from regkit._checks import check_finite, check_number, check_tensor
from regkit.data.datasets import Dataset

__all__ = ["gaussian_clusters", "modular_addition", "zipf_bigram_corpus"]


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
