"""Offline datasets, synthetic tasks (with analytic Gaussian mixtures) and label noise. Nothing here downloads."""

from regkit.data.datasets import Dataset, load_digits, load_mnist1d
from regkit.data.noise import MNIST_PAIR_FLIPS, asymmetric_noise, symmetric_noise
from regkit.data.synthetic import (
    GaussianMixture,
    eight_gaussians,
    gaussian_clusters,
    gaussian_mixture_1d,
    modular_addition,
    zipf_bigram_corpus,
)

__all__ = [
    "Dataset",
    "GaussianMixture",
    "MNIST_PAIR_FLIPS",
    "asymmetric_noise",
    "eight_gaussians",
    "gaussian_clusters",
    "gaussian_mixture_1d",
    "load_digits",
    "load_mnist1d",
    "modular_addition",
    "symmetric_noise",
    "zipf_bigram_corpus",
]
