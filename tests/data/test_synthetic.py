"""Synthetic data: modular addition, Gaussian clusters, the Zipf bigram corpus."""

import pytest
import torch

from regkit.data import gaussian_clusters, modular_addition, zipf_bigram_corpus


def test_modular_addition_labels_and_split():
    data = modular_addition(7, 0.4, torch.Generator().manual_seed(0))
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test])
    a, b = x[:, :7].argmax(1), x[:, 7:].argmax(1)
    assert torch.equal(y, (a + b) % 7)
    assert len(data.y_train) == round(0.4 * 49) and len(y) == 49
    assert len({(int(i), int(j)) for i, j in zip(a, b)}) == 49  # every pair exactly once


def test_gaussian_clusters_are_balanced_and_centered():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(5, 40, generator=g) / 40**0.5
    data = gaussian_clusters(500, 100, means, 0.5, g)
    assert torch.equal(torch.bincount(data.y_train), torch.full((5,), 100))
    centers = torch.stack([data.x_train[data.y_train == k].mean(0) for k in range(5)])
    assert float((centers - means).norm(dim=1).max()) < 0.2  # noise 0.5/√d per coordinate, 100 samples


def test_zipf_bigram_follows_the_rule_and_the_law():
    vocab = 64
    tokens = zipf_bigram_corpus(vocab, 20_000, torch.Generator().manual_seed(0))
    ranks = (tokens[1:] - 31 * tokens[:-1]) % vocab
    counts = torch.bincount(ranks, minlength=vocab).double()
    law = torch.arange(1, vocab + 1, dtype=torch.float64) ** -1.1
    assert float((counts / counts.sum() - law / law.sum()).abs().max()) < 0.01


@pytest.mark.parametrize(
    "fn",
    [
        lambda: modular_addition(1, 0.5, torch.Generator()),
        lambda: modular_addition(5, 1.0, torch.Generator()),
        lambda: zipf_bigram_corpus(1, 10, torch.Generator()),
    ],
)
def test_bad_input(fn):
    with pytest.raises(ValueError):
        fn()
