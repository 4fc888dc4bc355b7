"""Offline datasets and label noise. Nothing here downloads."""

from regkit.data.datasets import Dataset, load_digits, load_mnist1d
from regkit.data.noise import MNIST_PAIR_FLIPS, asymmetric_noise, symmetric_noise

__all__ = ["Dataset", "load_digits", "load_mnist1d", "symmetric_noise", "asymmetric_noise", "MNIST_PAIR_FLIPS"]
