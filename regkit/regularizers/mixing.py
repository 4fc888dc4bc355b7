r"""Input-mixing augmentations with soft targets: Mixup, CutMix, Cutout.

* Mixup (Zhang et al., ICLR 2018, arXiv:1710.09412): :math:`\tilde x = \lambda x + (1-\lambda) x_{\pi}`,
  :math:`\tilde y = \lambda y + (1-\lambda) y_{\pi}`, :math:`\lambda \sim \mathrm{Beta}(\alpha, \alpha)`.
* CutMix (Yun et al., ICCV 2019, arXiv:1905.04899): paste a box of :math:`x_\pi` into :math:`x`;
  the box has area ratio :math:`1 - \lambda` and a uniform centre, is clipped to the input, and
  the labels are mixed by the area **actually pasted**, :math:`\lambda' = 1 - |\text{box}| / |x|`.
  It is applied to a batch with probability ``prob`` (:func:`maybe_cutmix`; 0.5 in the paper's CIFAR
  setting, ``cutmix_prob`` of the official ``train.py``): one uniform draw :math:`r`, CutMix iff :math:`r < p`.
* Cutout (DeVries & Taylor, 2017, arXiv:1708.04552): zero one box per example (size fixed,
  centre uniform, clipped); the targets stay one-hot.

One λ and one permutation per batch, as in the papers. Inputs are images ``(N, C, H, W)`` or
1-D signals ``(N, C, L)`` (boxes become intervals); labels ``(N,)`` integers; soft targets
``(N, K)`` rows summing to one. Randomness comes only from the explicit ``generator``.

Replicated in ``notebooks/cutmix.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from regkit._checks import as_labels, check_number, check_range, check_tensor

__all__ = ["cutmix", "cutout", "maybe_cutmix", "mixup", "one_hot_targets"]


def _check(x, labels, num_classes) -> torch.Tensor:
    check_tensor("x", x, floating=True)
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be (N, C, L) or (N, C, H, W), got shape {tuple(x.shape)}")
    num_classes = check_number("num_classes", num_classes, low=1, integer=True)
    labels = as_labels("labels", labels, ndim=1)
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have one entry per example: {labels.shape[0]} labels for {x.shape[0]} inputs")
    check_range("labels", labels, 0, num_classes)
    return labels


def _beta(alpha: float, generator: torch.Generator) -> float:
    alpha = check_number("alpha", alpha, low=0, low_open=True)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def one_hot_targets(labels: torch.Tensor, num_classes: int, dtype=torch.float32) -> torch.Tensor:
    """``(N, K)`` one-hot targets of ``(N,)`` labels (any integer dtype; bool rejected) in a floating ``dtype``.

    Raises:
        ValueError: naming ``labels``, ``num_classes`` or ``dtype``.
    """
    labels = as_labels("labels", labels, ndim=1)
    num_classes = check_number("num_classes", num_classes, low=1, integer=True)
    check_range("labels", labels, 0, num_classes)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return F.one_hot(labels, num_classes).to(dtype)


def _box(shape, ratio: float, generator: torch.Generator) -> tuple[slice, ...]:
    """A box covering ``ratio`` of the spatial ``shape`` before clipping, uniform centre."""
    side = ratio ** (1 / len(shape))
    slices = []
    for size in shape:
        length = round(size * side)
        centre = int(torch.randint(0, size, (1,), generator=generator))
        slices.append(slice(max(centre - length // 2, 0), min(centre + length - length // 2, size)))
    return tuple(slices)


def mixup(x, labels, num_classes: int, *, alpha: float = 1.0, generator: torch.Generator):
    """Mixup: returns ``(mixed inputs, soft targets (N, K), λ)``."""
    labels = _check(x, labels, num_classes)
    lam = _beta(alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    targets = one_hot_targets(labels, num_classes, x.dtype)
    return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm], lam


def cutmix(x, labels, num_classes: int, *, alpha: float = 1.0, generator: torch.Generator):
    """CutMix: returns ``(mixed inputs, soft targets (N, K), λ' = share of each input kept)``."""
    labels = _check(x, labels, num_classes)
    lam = _beta(alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    box = _box(x.shape[2:], 1 - lam, generator)
    mixed = x.clone()
    mixed[(slice(None), slice(None), *box)] = x[perm][(slice(None), slice(None), *box)]
    pasted = float(np.prod([s.stop - s.start for s in box]))
    kept = 1 - pasted / float(np.prod(x.shape[2:]))
    targets = one_hot_targets(labels, num_classes, x.dtype)
    return mixed, kept * targets + (1 - kept) * targets[perm], kept


def maybe_cutmix(x, labels, num_classes: int, *, prob: float, alpha: float = 1.0, generator: torch.Generator):
    """CutMix applied to the batch with probability ``prob``, as in the official code
    (clovaai/CutMix-PyTorch ``train.py``: ``r = np.random.rand(1); if beta > 0 and r < cutmix_prob``).

    Draws one ``r ~ U[0, 1)`` from ``generator`` (``torch.rand``); when ``r < prob`` returns
    :func:`cutmix`'s ``(mixed inputs, soft targets (N, K), λ')`` (drawn from ``generator`` next),
    otherwise ``None``: train on the clean batch with its labels.

    Raises:
        ValueError: naming ``prob`` (not in [0, 1]) or an argument of :func:`cutmix`.
    """
    prob = check_number("prob", prob, low=0, high=1)
    _check(x, labels, num_classes)
    if float(torch.rand(1, generator=generator)) < prob:
        return cutmix(x, labels, num_classes, alpha=alpha, generator=generator)
    return None


def cutout(x, labels, num_classes: int, *, size: float = 0.5, generator: torch.Generator):
    """Cutout: zero a box of side ``size`` × each spatial extent (before clipping) in every
    example; returns ``(inputs, one-hot targets (N, K), mean share of each input kept)``."""
    labels = _check(x, labels, num_classes)
    size = check_number("size", size, low=0, high=1, low_open=True)
    out = x.clone()
    kept = []
    for i in range(x.shape[0]):
        box = _box(x.shape[2:], size ** len(x.shape[2:]), generator)
        out[(i, slice(None), *box)] = 0
        kept.append(1 - np.prod([s.stop - s.start for s in box]) / np.prod(x.shape[2:]))
    return out, one_hot_targets(labels, num_classes, x.dtype), float(np.mean(kept))
