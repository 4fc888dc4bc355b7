"""Imbalanced binary classification tasks, the metrics at a threshold and a validation-tuned threshold.

Three bundled or generated tasks, each split (stratified) into training, validation and test examples,
with the features standardized by the training statistics (:func:`load`):

* ``"digits9"``: scikit-learn's digits, the digit 9 against the rest (180 of 1,797, 10.0 % positive);
* ``"synthetic"``: ``make_classification(n_samples=4000, weights=[0.95, 0.05], random_state=0)``
  (20 features, scikit-learn's defaults otherwise: 2 informative, 1 % of the labels flipped; 5.5 % positive);
* ``"breast_cancer"``: scikit-learn's breast cancer, malignant (the positive class) subsampled to
  10 % of the examples: 40 of the 212 malignant tumours (drawn with the seed) and all 357 benign ones.

The seed draws the breast-cancer subsample and the splits; the synthetic task itself is fixed.
:func:`binary_metrics` scores probabilities at a threshold (F1 and balanced accuracy, by scikit-learn)
and :func:`tune_threshold` picks the F1-maximizing threshold of any scores (probabilities or logits) on a
validation split.

Used by the notebooks ``anyloss_metric_losses`` (tasks, metrics, threshold) and ``dice_loss_imbalanced``
(threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from regkit._checks import check_number

__all__ = ["DATASETS", "BinarySplits", "binary_metrics", "load", "tune_threshold"]

DATASETS = ("digits9", "synthetic", "breast_cancer")


@dataclass(frozen=True)
class BinarySplits:
    """A binary task split three ways: ``x_*`` ``(n, d)`` standardized features, ``y_*`` ``(n,)`` int64 in
    ``{0, 1}`` (1 = the minority, positive class); ``positive_rate``, the share of positives in the task."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    positive_rate: float

    @property
    def num_features(self) -> int:
        """Number of input features ``d``."""
        return self.x_train.shape[1]

    def to(self, device: torch.device | str) -> BinarySplits:
        """The same splits on ``device``."""
        tensors = {f.name: getattr(self, f.name).to(device) for f in fields(self) if f.name.startswith(("x_", "y_"))}
        return replace(self, **tensors)


def _task(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The features ``(n, d)`` float64 and 0/1 labels ``(n,)`` of the whole task."""
    from sklearn import datasets

    if name == "digits9":
        x, target = datasets.load_digits(return_X_y=True)
        return x.astype(np.float64), (target == 9).astype(np.int64)
    if name == "synthetic":
        x, y = datasets.make_classification(n_samples=4000, weights=[0.95, 0.05], random_state=0)
        return x, y.astype(np.int64)
    x, target = datasets.load_breast_cancer(return_X_y=True)
    y = (target == 0).astype(np.int64)  # scikit-learn's target 0 is malignant
    negatives, positives = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    keep = round(len(negatives) / 9)  # positives = 10 % of the kept examples
    chosen = np.random.default_rng(seed).choice(positives, size=keep, replace=False)
    rows = np.sort(np.concatenate([negatives, chosen]))
    return x[rows], y[rows]


def load(
    name: str, *, seed: int = 0, test_size: float = 0.3, val_size: float = 0.2, dtype: torch.dtype = torch.float32
) -> BinarySplits:
    """The task ``name`` (one of :data:`DATASETS`) split into test (``test_size`` of the examples), validation
    (``val_size`` of the rest) and training examples, stratified, with the seed's draw; standardized by the
    training features' mean and standard deviation (constant features stay at zero).

    With the defaults: digits9 1,005 / 252 / 540, synthetic 2,240 / 560 / 1,200 and breast_cancer
    221 / 56 / 120 examples (training / validation / test).
    Raises ``ValueError`` for an unknown ``name``, sizes outside ``(0, 1)`` or a non-floating ``dtype``.
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    test_size = check_number("test_size", test_size, low=0, high=1, low_open=True, high_open=True)
    val_size = check_number("val_size", val_size, low=0, high=1, low_open=True, high_open=True)
    seed = check_number("seed", seed, low=0, integer=True)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    from sklearn.model_selection import train_test_split

    x, y = _task(name, seed)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_size, random_state=seed, stratify=y_rest
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std < 1e-8] = 1.0
    as_x = lambda a: torch.as_tensor((a - mean) / std, dtype=dtype)
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)
    return BinarySplits(
        name,
        as_x(x_train),
        as_y(y_train),
        as_x(x_val),
        as_y(y_val),
        as_x(x_test),
        as_y(y_test),
        positive_rate=float(y.mean()),
    )


def _numpy(name: str, values) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    return array


def binary_metrics(probs, labels, threshold: float = 0.5) -> dict[str, float]:
    """``f1`` and ``balanced_accuracy`` (scikit-learn, ``zero_division=0``) of the predictions
    ``probs >= threshold`` against the 0/1 ``labels`` (both ``(n,)``, tensors or arrays).
    Raises ``ValueError`` for a ``threshold`` outside ``[0, 1]`` or mismatched 1-D inputs."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    threshold = check_number("threshold", threshold, low=0, high=1)
    p, y = _numpy("probs", probs), _numpy("labels", labels)
    if p.shape != y.shape:
        raise ValueError(f"probs and labels must have the same shape, got {p.shape} and {y.shape}")
    predicted = (p >= threshold).astype(np.int64)
    return {
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
    }


def tune_threshold(scores, labels) -> float:
    """The decision threshold that maximizes F1 on a validation split ``(scores, labels)``.

    ``scores`` ``(n,)``: any increasing confidence of the positive class (probabilities or logits);
    ``labels`` ``(n,)``: 0/1. Every cut of the sorted distinct scores is evaluated at once by scikit-learn's
    ``precision_recall_curve`` (predictions ``scores >= cut``); of the cuts with the highest F1 the lowest
    is taken, and the threshold returned lies midway between that cut and the next lower distinct score
    (the middle of the interval of thresholds that make the same validation predictions), or is the cut
    itself when it is the lowest score. Exact for saturated scores (a grid of probabilities cannot separate
    0.995 from 0.999). With no positive label every threshold has F1 = 0: the largest score plus one is
    returned (nothing predicted positive). Returned as a float in the scores' units; predict with
    ``scores >= threshold``. Raises ``ValueError`` for mismatched, empty or non-1-D inputs or NaN scores."""
    from sklearn.metrics import precision_recall_curve

    s, y = _numpy("scores", scores).astype(np.float64), _numpy("labels", labels).astype(np.int64)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same shape, got {s.shape} and {y.shape}")
    if np.isnan(s).any():
        raise ValueError("scores must not contain NaN")
    if not y.any():
        return float(s.max() + 1.0)
    precision, recall, cuts = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no cut
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    best = int(np.argmax(f1))  # cuts increase: the first maximum is the lowest cut
    distinct = np.unique(s)
    below = distinct[distinct < cuts[best]]
    return float((cuts[best] + below[-1]) / 2) if below.size else float(cuts[best])
