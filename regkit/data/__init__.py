"""Offline datasets, synthetic tasks and label noise. Nothing here downloads."""

from regkit.data.datasets import Dataset, load_digits, load_mnist1d
from regkit.data.noise import MNIST_PAIR_FLIPS, asymmetric_noise, symmetric_noise
from regkit.data.synthetic import gaussian_clusters, modular_addition, zipf_bigram_corpus

__all__ = [
    "Dataset",
    "MNIST_PAIR_FLIPS",
    "asymmetric_noise",
    "gaussian_clusters",
    "load_digits",
    "load_mnist1d",
    "modular_addition",
    "symmetric_noise",
    "zipf_bigram_corpus",
]
