"""The classification testbed shared by the noisy-label and augmentation notebooks.

``ps_kd``, ``cutmix``, ``ldr_losses`` and ``elr`` use the same data splits, models, training loop
and metrics, so their numbers are comparable:

* data: scikit-learn digits (8×8 images, 1,347 / 450) and MNIST-1D (length-40 signals,
  4,000 / 1,000), optionally with symmetric or asymmetric (pair-flip) training-label noise;
* models: an MLP (2 × 256 ReLU) on flat inputs, or a small CNN: 2-D on digits (upsampled to
  16×16, 2 conv layers with max pooling) and 1-D on MNIST-1D (3 conv layers × 32 channels);
* training: Adam (lr 1e-3), batch 128, through the workbook's one loop (:func:`train_classifier`);
* metrics on the clean test set: accuracy, NLL, ECE (15 bins) and AURC.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from regkit.data import (
    MNIST_PAIR_FLIPS,
    Dataset,
    asymmetric_noise,
    load_digits,
    load_mnist1d,
    symmetric_noise,
)
from regkit.workbook.metrics import accuracy, aurc, expected_calibration_error, nll
from regkit.workbook.testbeds.models import mlp
from regkit.workbook.training import train

__all__ = ["DATASETS", "NOISES", "corrupt", "evaluate", "image_shape", "load", "make_model", "train_classifier"]

DATASETS = ("digits", "mnist1d")
NOISES = ("none", "symmetric", "asymmetric")


def load(name: str, *, noise: str = "none", rate: float = 0.0, seed: int = 0) -> tuple[Dataset, torch.Tensor]:
    """The dataset with (possibly) noisy training labels, and the clean training labels."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    data = load_digits() if name == "digits" else load_mnist1d()
    clean = data.y_train
    noisy = clean if noise == "none" else corrupt(clean, noise, rate, data.num_classes, seed=10_000 + seed)[0]
    return Dataset(data.name, data.x_train, noisy, data.x_test, data.y_test, data.num_classes), clean


def corrupt(labels: torch.Tensor, noise: str, rate: float, num_classes: int, *, seed: int):
    """``(noisy labels, corrupted mask)``: ``symmetric`` noise (exactly ``rate`` of the labels flipped to
    another class) or ``asymmetric`` pair flips (``rate`` of each source class of
    :data:`~regkit.data.MNIST_PAIR_FLIPS`), drawn from a CPU generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    if noise == "symmetric":
        return symmetric_noise(labels, rate, num_classes, generator=generator)
    if noise == "asymmetric":
        return asymmetric_noise(labels, rate, num_classes, generator=generator, flips=MNIST_PAIR_FLIPS)
    raise ValueError(f"noise must be 'symmetric' or 'asymmetric', got {noise!r}")


class _Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


def make_model(name: str, kind: str = "mlp", *, seed: int | None = None, device=None) -> nn.Module:
    """The testbed's model for ``name``: ``"mlp"`` on flat inputs or ``"cnn"``, on ``device``. Both take
    the flat ``(N, d)`` features; :func:`image_shape` gives the CNN's view for augmentations. With
    ``seed``, ``torch.manual_seed(seed)`` first: the seed fixes the initialization."""
    if kind not in ("mlp", "cnn"):
        raise ValueError(f"kind must be 'mlp' or 'cnn', got {kind!r}")
    if seed is not None:
        torch.manual_seed(seed)
    model = _model(name, kind)
    return model if device is None else model.to(device)


def _model(name: str, kind: str) -> nn.Module:
    if kind == "mlp":
        return mlp(64 if name == "digits" else 40, 256, 256, 10)
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


def train_classifier(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int,
    generator: torch.Generator,
    loss_fn: Callable | None = None,
    batch_loss: Callable | None = None,
    evaluate: Callable[[int], dict | None] | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    fused: bool | None = None,
) -> list[dict]:
    """The testbed's protocol: Adam (``lr``, ``fused``), batches of ``batch_size`` on the training split,
    through the workbook's one loop :func:`regkit.workbook.training.train` (``loss_fn`` / ``batch_loss`` /
    ``evaluate`` as there; no progress bar). Returns its history."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    return train(model, optimizer, data.x_train, data.y_train, epochs=epochs, batch_size=batch_size,
                 generator=generator, loss_fn=loss_fn, batch_loss=batch_loss, evaluate=evaluate, progress=False)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy, NLL, ECE and AURC of ``model`` on ``(x, y)``."""
    model.eval()
    logits = model(x).float()
    probs = logits.softmax(1)
    return {"accuracy": accuracy(logits, y), "nll": nll(logits, y), "ece": expected_calibration_error(probs, y),
            "aurc": aurc(probs, y)}
