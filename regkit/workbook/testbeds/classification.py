"""The classification testbed shared by the noisy-label, augmentation and output-layer notebooks.

``ps_kd``, ``cutmix``, ``ldr_losses``, ``elr`` and ``cnn_svm_head`` use the same data splits, models,
training loop and metrics, so their numbers are comparable:

* data: scikit-learn digits (8×8 images, 1,347 / 450) and MNIST-1D (length-40 signals,
  4,000 / 1,000), standardized, optionally with symmetric or asymmetric (pair-flip) training-label
  noise; digits with its grey levels in [0, 1] (:func:`load_unit_digits`), the input box of
  adversarial attacks; a harder digits variant (:func:`shifted_noisy_digits`: random one-pixel shifts
  and Gaussian pixel noise) and a stratified validation split of the training set
  (:func:`validation_split`);
* models: an MLP (2 × 256 ReLU) on flat inputs, a small CNN: 2-D on digits (upsampled to
  16×16, 2 conv layers with max pooling) and 1-D on MNIST-1D (3 conv layers × 32 channels), or a
  GRU (64 units) reading digits as 8 rows of 8 pixels and MNIST-1D as 8 chunks of 5 samples;
* training: Adam (lr 1e-3), batch 128, through the workbook's one loop (:func:`train_classifier`);
* metrics on the clean test set: accuracy, NLL, ECE (15 bins) and AURC.

``balanced_softmax_mse`` trains on a long-tailed subsample of the training split
(:func:`long_tailed`: exponential class profile, class 0 the head) and scores the balanced test
split with :func:`long_tailed_metrics` (balanced accuracy, macro-F1, tail-class accuracy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from regkit.data import (
    MNIST_PAIR_FLIPS,
    Dataset,
    asymmetric_noise,
    load_digits,
    load_mnist1d,
    symmetric_noise,
)
from regkit.regularizers import cutout, soft_cross_entropy
from regkit.workbook.metrics import accuracy, aurc, expected_calibration_error, nll, noisy_label_fractions
from regkit.workbook.testbeds.models import gru_classifier, mlp
from regkit.workbook.training import train

__all__ = [
    "DATASETS",
    "KINDS",
    "NOISES",
    "augmented_loss",
    "corrupt",
    "evaluate",
    "image_shape",
    "load",
    "load_unit_digits",
    "long_tailed",
    "long_tailed_counts",
    "long_tailed_metrics",
    "make_model",
    "noisy_label_metrics",
    "noisy_label_summary",
    "occluded",
    "shifted_noisy_digits",
    "train_classifier",
    "validation_split",
]

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


def load_unit_digits() -> Dataset:
    """Digits with the pixels scaled to [0, 1] (grey level / 16) instead of standardized, in the split
    of ``load("digits")`` (the same examples in the same order): the box of valid images, in which an
    ℓ∞ radius ε is 16 ε grey levels. For attacks with ``clamp=(0, 1)``."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    x, y = sklearn_digits(return_X_y=True)
    # regkit.data.load_digits' split (test_size 0.25, split_seed 0, stratified); tested to match it
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)
    return Dataset("digits", as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test), 10)


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


def long_tailed_counts(n_max: int, num_classes: int, imbalance_ratio: float) -> list[int]:
    """The exponential long-tail profile ``n_c = ⌊n_max · IR^(−c/(C−1))⌋`` (at least 1) for classes
    ``c = 0 … C−1``: class 0 keeps ``n_max`` examples, class ``C−1`` about ``n_max / IR`` (the CIFAR-LT
    profile of Cao et al. 2019, used by Balanced Softmax). ``ValueError`` unless ``n_max ≥ 1``,
    ``num_classes ≥ 2`` and ``imbalance_ratio ≥ 1``."""
    if isinstance(n_max, bool) or not isinstance(n_max, int) or n_max < 1:
        raise ValueError(f"n_max must be a positive integer, got {n_max!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer ≥ 2, got {num_classes!r}")
    if not (isinstance(imbalance_ratio, (int, float)) and np.isfinite(imbalance_ratio) and imbalance_ratio >= 1):
        raise ValueError(f"imbalance_ratio must be a finite number ≥ 1, got {imbalance_ratio!r}")
    # the power in float64 and a tiny slack, so that exact profiles (IR = 1: n_max everywhere) are not floored away
    return [max(1, int(n_max * imbalance_ratio ** (-c / (num_classes - 1)) + 1e-9)) for c in range(num_classes)]


def long_tailed(data: Dataset, imbalance_ratio: float, *, seed: int) -> Dataset:
    """``data`` with its training split subsampled to the exponential profile :func:`long_tailed_counts`,
    ``n_max`` being the smallest class count of the training split (so every class can be filled) and class
    ``c`` the ``c``-th most frequent; the test split is left as it is (balanced for digits and MNIST-1D).
    Each class's examples are drawn without replacement by a CPU generator seeded with ``seed`` and kept
    in their original order. The class counts of the result are ``torch.bincount(result.y_train)``.
    ``ValueError`` as :func:`long_tailed_counts`."""
    labels = data.y_train.cpu()
    counts = torch.bincount(labels, minlength=data.num_classes)
    targets = long_tailed_counts(int(counts.min()), data.num_classes, imbalance_ratio)
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for c, n in enumerate(targets):
        members = torch.nonzero(labels == c).flatten()
        keep.append(members[torch.randperm(len(members), generator=generator)[:n]])
    index = torch.cat(keep).sort().values.to(data.y_train.device)
    return dataclasses.replace(data, x_train=data.x_train[index], y_train=data.y_train[index])


@torch.no_grad()
def long_tailed_metrics(logits: torch.Tensor, labels: torch.Tensor, tail_classes: Sequence[int]) -> dict[str, float]:
    """Scores of the argmax predictions of ``logits`` ``(N, K)`` on ``labels`` ``(N,)``, from
    :mod:`sklearn.metrics`: ``accuracy``, ``balanced_accuracy`` (the mean per-class recall),
    ``macro_f1`` and ``tail_accuracy``, the mean recall of ``tail_classes`` (each must occur in ``labels``)."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

    num_classes = logits.shape[1]
    pred = logits.argmax(1).cpu().numpy()
    true = labels.cpu().numpy()
    tail = list(tail_classes)
    missing = sorted(set(tail) - set(true.tolist()))
    if missing or not tail:
        raise ValueError(f"tail_classes must be a non-empty list of classes present in labels, missing {missing}")
    recall = recall_score(true, pred, labels=list(range(num_classes)), average=None, zero_division=0)
    return {
        "accuracy": float((pred == true).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(true, pred)),
        "macro_f1": float(f1_score(true, pred, labels=list(range(num_classes)), average="macro", zero_division=0)),
        "tail_accuracy": float(recall[tail].mean()),
    }


class _Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


#: The model kinds of :func:`make_model`.
KINDS = ("mlp", "cnn", "gru")


def make_model(name: str, kind: str = "mlp", *, seed: int | None = None, device=None) -> nn.Module:
    """The testbed's model for ``name``: ``"mlp"`` on flat inputs, ``"cnn"`` or ``"gru"``, on ``device``.
    All take the flat ``(N, d)`` features; :func:`image_shape` gives the CNN's view for augmentations;
    the GRU (64 units, :func:`~regkit.workbook.testbeds.models.gru_classifier`) reads digits as 8 rows
    of 8 pixels and MNIST-1D as 8 consecutive chunks of 5 samples. Every model ends in its linear
    output layer (``model[-1]``). With ``seed``, ``torch.manual_seed(seed)`` first: the seed fixes the
    initialization."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if seed is not None:
        torch.manual_seed(seed)
    model = _model(name, kind)
    return model if device is None else model.to(device)


def _model(name: str, kind: str) -> nn.Module:
    if kind == "mlp":
        return mlp(64 if name == "digits" else 40, 256, 256, 10)
    if kind == "gru":
        return gru_classifier(8, 8, 64, 10) if name == "digits" else gru_classifier(8, 5, 64, 10)
    if name == "digits":
        return nn.Sequential(
            _Reshape(1, 8, 8),
            nn.Upsample(scale_factor=2, mode="bilinear"),
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 10),
        )
    return nn.Sequential(
        _Reshape(1, 40),
        nn.Conv1d(1, 32, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(32, 32, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Conv1d(32, 32, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 10, 10),
    )


def image_shape(name: str) -> tuple[int, ...]:
    """The per-example layout the augmentations mix in: ``(1, 8, 8)`` or ``(1, 40)``."""
    return (1, 8, 8) if name == "digits" else (1, 40)


def occluded(x: torch.Tensor, shape: tuple[int, ...], *, size: float = 0.5, seed: int = 12345) -> torch.Tensor:
    """The flat inputs ``x`` ``(N, d)`` with one box of side ``size`` × each extent of the per-example
    ``shape`` (:func:`image_shape`) zeroed in every example, where :func:`~regkit.regularizers.cutout`
    puts it with a CPU generator seeded with ``seed``: the same boxes for every model tested."""
    view = x.view(x.shape[0], *shape)
    labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    out, _, _ = cutout(view, labels, 1, size=size, generator=torch.Generator().manual_seed(seed))
    return out.reshape(x.shape)


def shifted_noisy_digits(*, sigma: float, max_shift: int = 1, seed: int) -> Dataset:
    """A harder digits (the split of :func:`~regkit.data.load_digits`): every raw 8×8 image (pixels
    0–16), training and test, shifted by its own random offset ``(dy, dx)``, each uniform in
    ``{-max_shift, …, max_shift}`` (pixels moved out of the frame are dropped, the uncovered border
    is 0, the background), then Gaussian noise of standard deviation ``sigma`` (in pixel units) added
    to every pixel, and the features standardized with the perturbed training set's statistics, as
    ``load_digits`` does. Deterministic: the draws come from one CPU generator seeded with ``seed``,
    training images first. ``sigma=0, max_shift=0`` gives ``load_digits()`` itself."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    sigma = float(sigma)
    if not 0 <= sigma < float("inf"):
        raise ValueError(f"sigma must be finite and non-negative, got {sigma!r}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or not 0 <= max_shift < 8:
        raise ValueError(f"max_shift must be an integer in [0, 8), got {max_shift!r}")
    x, y = sklearn_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    generator = torch.Generator().manual_seed(seed)
    x_train, x_test = (
        _shift_and_add_noise(torch.as_tensor(a, dtype=torch.float64), sigma, max_shift, generator)
        for a in (x_train, x_test)
    )
    mean, std = x_train.mean(0), x_train.std(0, correction=0)
    std[std < 1e-8] = 1.0  # constant pixels (digits' borders without noise) stay at zero
    as_x = lambda a: ((a - mean) / std).float()
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)
    return Dataset("digits", as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test), 10)


def _shift_and_add_noise(x, sigma, m, generator):
    """Flat 8×8 images ``x`` ``(N, 64)``, each shifted by a random ``(dy, dx)`` in ``[-m, m]²``, plus noise."""
    n = x.shape[0]
    offsets = torch.randint(-m, m + 1, (n, 2), generator=generator)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) * sigma
    padded = F.pad(x.reshape(n, 8, 8), (m, m, m, m))
    out = torch.empty(n, 8, 8, dtype=x.dtype)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            rows = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[rows] = padded[rows, m - dy : m - dy + 8, m - dx : m - dx + 8]  # out[r, c] = x[r - dy, c - dx]
    return out.reshape(n, 64) + noise


def validation_split(data: Dataset, fraction: float, *, seed: int, stratify: bool = True) -> Dataset:
    """Hold out a ``fraction`` of ``data``'s training examples, stratified by label unless ``stratify``
    is false (scikit-learn's ``train_test_split`` with ``random_state=seed``; a stratified split needs
    two examples of every class, which a long-tailed label set such as a Zipf vocabulary lacks): a
    :class:`~regkit.data.Dataset` whose training split is the rest and whose *test* split is the
    held-out validation set (for choosing hyperparameters without touching ``data``'s test set)."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    labels = data.y_train.cpu().numpy()
    fit, held = train_test_split(
        range(len(labels)), test_size=fraction, random_state=seed, stratify=labels if stratify else None
    )
    fit, held = (torch.as_tensor(sorted(i), device=data.x_train.device) for i in (fit, held))
    x, y = data.x_train, data.y_train
    return Dataset(data.name, x[fit], y[fit], x[held], y[held], data.num_classes)


def augmented_loss(mix: Callable, shape: tuple[int, ...]) -> Callable:
    """A ``batch_loss`` for :func:`train_classifier` that trains on augmented batches:
    ``mix(view, labels)`` gets the batch viewed as ``(N, *shape)`` and returns ``(inputs, soft targets
    (N, K), ...)`` (as :func:`~regkit.regularizers.cutmix`, ``mixup``, ``cutout``), the loss then being
    the soft cross-entropy on the inputs flattened back; or ``None``: cross-entropy on the clean batch."""

    def step(model, x, y, index, epoch):
        mixed = mix(x.view(x.shape[0], *shape), y)
        if mixed is None:
            return F.cross_entropy(model(x), y)
        return soft_cross_entropy(model(mixed[0].reshape(x.shape)), mixed[1])

    return step


@torch.no_grad()
def noisy_label_metrics(model: nn.Module, data: Dataset, noisy_labels: torch.Tensor) -> dict[str, float]:
    """What early learning and memorization look like at one point of training (an ``evaluate``
    hook's metrics): ``test_accuracy`` on the clean test set and, from the model's predictions on
    the training examples whose noisy label differs from ``data.y_train`` (the clean labels), the
    fractions ``true`` / ``noisy`` / ``other`` of :func:`~regkit.workbook.metrics.noisy_label_fractions`."""
    fractions = noisy_label_fractions(model(data.x_train), data.y_train, noisy_labels)
    return {"test_accuracy": accuracy(model(data.x_test), data.y_test), **fractions}


def noisy_label_summary(history: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per run (one group of ``keys``, e.g. dataset, noise, arm, seed) of a long training
    history with columns ``epoch``, ``test_accuracy`` and the fractions ``true`` / ``noisy`` of
    :func:`~regkit.workbook.metrics.noisy_label_fractions`: ``peak_accuracy`` and ``peak_epoch`` (the
    first epoch at the highest test accuracy), ``final_accuracy``, ``final_memorized`` (``noisy``) and
    ``final_true`` at the last epoch, and ``best_true`` (the highest ``true``: how strong early learning
    is). Indexed by ``keys``, sorted."""
    rows = []
    for key, curve in history.groupby(keys):
        curve = curve.sort_values("epoch", kind="stable")
        peak = curve.loc[curve.test_accuracy.idxmax()]
        last = curve.loc[curve.epoch.idxmax()]
        rows.append(
            {
                **dict(zip(keys, key)),
                "peak_accuracy": peak.test_accuracy,
                "peak_epoch": int(peak.epoch),
                "final_accuracy": last.test_accuracy,
                "final_memorized": last.noisy,
                "final_true": last.true,
                "best_true": curve.true.max(),
            }
        )
    return pd.DataFrame(rows).set_index(keys).sort_index()


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
    return train(
        model,
        optimizer,
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=batch_size,
        generator=generator,
        loss_fn=loss_fn,
        batch_loss=batch_loss,
        evaluate=evaluate,
        progress=False,
    )


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy, NLL, ECE and AURC of ``model`` on ``(x, y)``."""
    model.eval()
    logits = model(x).float()
    probs = logits.softmax(1)
    return {
        "accuracy": accuracy(logits, y),
        "nll": nll(logits, y),
        "ece": expected_calibration_error(probs, y),
        "aurc": aurc(probs, y),
    }
