"""The shared classification benchmark of the noisy-label and augmentation notebooks.

``ps_kd``, ``cutmix`` and ``ldr_losses`` use the same data splits, models, training loop
and metrics, so their numbers are comparable:

* data: scikit-learn digits (8×8 images, 1,347 / 450) and MNIST-1D (length-40 signals,
  4,000 / 1,000), optionally with symmetric or asymmetric (pair-flip) training-label noise;
* models: an MLP (2 × 256 ReLU) on flat inputs, or a small CNN: 2-D on digits (upsampled to
  16×16, 2 conv layers with max pooling) and 1-D on MNIST-1D (3 conv layers × 32 channels);
* training: Adam (lr 1e-3), batch 128, a ``step`` callback that returns the batch loss;
* metrics on the clean test set: accuracy, NLL, ECE (15 bins) and AURC.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from regkit.data import MNIST_PAIR_FLIPS, Dataset, asymmetric_noise, load_digits, load_mnist1d, symmetric_noise
from regkit.workbook.metrics import accuracy, aurc, expected_calibration_error, nll
from regkit.workbook.models import mlp

__all__ = ["DATASETS", "evaluate", "fit", "image_shape", "load", "make_model"]

DATASETS = ("digits", "mnist1d")


def load(name: str, *, noise: str = "none", rate: float = 0.0, seed: int = 0) -> tuple[Dataset, torch.Tensor]:
    """The dataset with (possibly) noisy training labels, and the clean training labels."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    data = load_digits() if name == "digits" else load_mnist1d()
    clean = data.y_train
    generator = torch.Generator().manual_seed(10_000 + seed)
    if noise == "symmetric":
        noisy, _ = symmetric_noise(clean, rate, data.num_classes, generator=generator)
    elif noise == "asymmetric":
        noisy, _ = asymmetric_noise(clean, rate, data.num_classes, generator=generator, flips=MNIST_PAIR_FLIPS)
    elif noise == "none":
        noisy = clean
    else:
        raise ValueError(f"noise must be 'none', 'symmetric' or 'asymmetric', got {noise!r}")
    return Dataset(data.name, data.x_train, noisy, data.x_test, data.y_test, data.num_classes), clean


class _Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


def make_model(name: str, kind: str = "mlp") -> nn.Module:
    """The benchmark's model for ``name``: ``"mlp"`` on flat inputs or ``"cnn"``. Both take
    the flat ``(N, d)`` features; :func:`image_shape` gives the CNN's view for augmentations."""
    if kind == "mlp":
        return mlp(64 if name == "digits" else 40, 256, 256, 10)
    if kind != "cnn":
        raise ValueError(f"kind must be 'mlp' or 'cnn', got {kind!r}")
    if name == "digits":
        return nn.Sequential(
            _Reshape(1, 8, 8), nn.Upsample(scale_factor=2, mode="bilinear"),
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 4 * 4, 10))
    return nn.Sequential(
        _Reshape(1, 40), nn.Conv1d(1, 32, 5, padding=2), nn.ReLU(), nn.Conv1d(32, 32, 3, padding=1, stride=2), nn.ReLU(),
        nn.Conv1d(32, 32, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 10, 10))


def image_shape(name: str) -> tuple[int, ...]:
    """The per-example layout the augmentations mix in: ``(1, 8, 8)`` or ``(1, 40)``."""
    return (1, 8, 8) if name == "digits" else (1, 40)


def fit(
    model: nn.Module,
    data: Dataset,
    step: Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor],
    *,
    epochs: int,
    generator: torch.Generator,
    batch_size: int = 128,
    lr: float = 1e-3,
    end_epoch: Callable[[int], None] | None = None,
    progress: bool = False,
) -> nn.Module:
    """Train with Adam; ``step(model, x, y, index, epoch)`` returns the loss of a batch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = data.x_train.shape[0]
    for epoch in tqdm(range(epochs), disable=not progress, leave=False):
        model.train()
        order = torch.randperm(n, generator=generator).to(data.x_train.device)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            loss = step(model, data.x_train[index], data.y_train[index], index, epoch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if end_epoch is not None:
            end_epoch(epoch)
    return model


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy, NLL, ECE and AURC of ``model`` on ``(x, y)``."""
    model.eval()
    logits = model(x).float()
    probs = logits.softmax(1)
    return {"accuracy": accuracy(logits, y), "nll": nll(logits, y), "ece": expected_calibration_error(probs, y),
            "aurc": aurc(probs, y)}
