"""The image-denoising testbed of ``noise2score_tweedie``: small digit images, three noise models, a tiny CNN,
the blind-spot (Noise2Self-style) baseline's loss, the classical filters and a per-image PSNR.

* :func:`load_digit_images`: scikit-learn's 1,797 8×8 digits scaled to [0, 1] (pixel / 16) and upsampled to
  16×16 bilinearly (``align_corners=False``, so values stay in [0, 1]), split train / validation / test
  (stratified by digit), ``(N, 1, 16, 16)``.
* :func:`add_noise` and the three noise models, each drawn from an explicit ``torch.Generator``:
  Gaussian ``y = x + σ n``; Poisson with scale ζ, ``y = ζ · Poisson(x/ζ)``; Gamma with shape k,
  ``y = x · Gamma(k, rate k)`` (the official ``Datageneration.ipynb``'s parameterizations). Gamma variates come from
  the Marsaglia–Tsang method on generator-driven normals and uniforms (``torch`` has no seeded gamma sampler).
* :func:`denoiser_cnn`: the one network of every trained arm (3×3 convolutions, ReLU, ``channels`` wide).
* :func:`blind_spot_loss`: masked-pixel self-supervision (Batson & Royer, Noise2Self, 2019): a grid of pixels
  spaced ``spacing`` apart (random phase) is replaced by the mean of its 8 neighbours and the loss is the squared
  error on those pixels only, so the prediction at a masked pixel never sees that pixel's noisy value.
* :func:`gaussian_filter_denoise` (``scipy.ndimage.gaussian_filter``) and :func:`tv_denoise` (scikit-image's
  ``denoise_tv_chambolle``): the classical arms, per image.
* :func:`psnr`: per-image PSNR ``10 log10(range² / MSE)`` (checked against scikit-image's
  ``peak_signal_noise_ratio`` in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import check_choice, check_number, check_tensor

__all__ = [
    "NOISE_FAMILIES",
    "DigitImages",
    "add_noise",
    "blind_spot_loss",
    "denoiser_cnn",
    "gamma_noise",
    "gaussian_filter_denoise",
    "gaussian_noise",
    "load_digit_images",
    "poisson_noise",
    "psnr",
    "tv_denoise",
]

NOISE_FAMILIES = ("gaussian", "poisson", "gamma")


@dataclass(frozen=True)
class DigitImages:
    """Clean images in [0, 1], ``(N, 1, size, size)`` each: ``train``, ``validation`` and ``test``."""

    train: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor


def load_digit_images(
    *,
    size: int = 16,
    validation_size: float = 0.1,
    test_size: float = 0.25,
    split_seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> DigitImages:
    """scikit-learn's digits as ``size``×``size`` images in [0, 1] (bilinear upsampling of pixel/16), split
    stratified by digit into train / validation / test (fractions of all 1,797 images). With the defaults:
    1,167 / 180 / 450 images. Raises ``ValueError`` for a size < 8, fractions outside (0, 1) or summing to ≥ 1."""
    size = check_number("size", size, low=8, integer=True)
    validation_size = check_number("validation_size", validation_size, low=0, high=1, low_open=True, high_open=True)
    test_size = check_number("test_size", test_size, low=0, high=1, low_open=True, high_open=True)
    if validation_size + test_size >= 1:
        raise ValueError(f"validation_size + test_size must be < 1, got {validation_size} + {test_size}")
    split_seed = check_number("split_seed", split_seed, low=0, integer=True)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    pixels, labels = load_digits(return_X_y=True)
    images = torch.as_tensor(pixels / 16.0, dtype=torch.float64).reshape(-1, 1, 8, 8)
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1).to(dtype)
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_size, random_state=split_seed, stratify=labels)
    train, validation = train_test_split(
        rest, test_size=validation_size / (1 - test_size), random_state=split_seed, stratify=labels[rest]
    )
    pick = lambda part: images[torch.as_tensor(np.sort(part))]
    return DigitImages(pick(train), pick(validation), pick(test))


def _standard_normal(shape, generator: torch.Generator, dtype) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)


def gaussian_noise(x: torch.Tensor, sigma: float, *, generator: torch.Generator) -> torch.Tensor:
    """``x + sigma · n``, ``n ~ N(0, I)`` from ``generator``. Raises ``ValueError`` for ``sigma`` ≤ 0."""
    sigma = check_number("sigma", sigma, low=0, low_open=True)
    return x + sigma * _standard_normal(x.shape, generator, x.dtype).to(x.device)


def poisson_noise(x: torch.Tensor, zeta: float, *, generator: torch.Generator) -> torch.Tensor:
    """``zeta · Poisson(x / zeta)`` from ``generator`` (mean ``x``, variance ``zeta · x``); ``x`` ≥ 0.
    Raises ``ValueError`` for ``zeta`` ≤ 0 or a negative ``x``."""
    zeta = check_number("zeta", zeta, low=0, low_open=True)
    if bool((x < 0).any()):
        raise ValueError(f"x must be non-negative for Poisson noise, got a minimum of {float(x.min()):g}")
    rates = (x / zeta).to(generator.device)
    return zeta * torch.poisson(rates, generator=generator).to(x.device)


def _standard_gamma(shape, k: float, generator: torch.Generator, dtype) -> torch.Tensor:
    """Gamma(k, 1) variates by Marsaglia & Tsang (2000); for k < 1, Gamma(k + 1) · U^(1/k)."""
    boost = k < 1
    d = (k + 1 if boost else k) - 1 / 3
    c = 1 / math.sqrt(9 * d)
    out = torch.empty(shape, dtype=torch.float64, device=generator.device).reshape(-1)
    todo = torch.arange(out.numel(), device=generator.device)
    while todo.numel():
        n = _standard_normal(todo.shape, generator, torch.float64)
        u = torch.rand(todo.shape, generator=generator, device=generator.device, dtype=torch.float64)
        v = (1 + c * n) ** 3
        accept = (v > 0) & (torch.log(u) < 0.5 * n**2 + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        out[todo[accept]] = d * v[accept]
        todo = todo[~accept]
    if boost:
        u = torch.rand(out.shape, generator=generator, device=generator.device, dtype=torch.float64)
        out = out * u ** (1 / k)
    return out.reshape(shape).to(dtype)


def gamma_noise(x: torch.Tensor, k: float, *, generator: torch.Generator) -> torch.Tensor:
    """``x · g``, ``g ~ Gamma(shape k, rate k)`` from ``generator`` (mean ``x``, variance ``x² / k``); ``x`` ≥ 0.
    Raises ``ValueError`` for ``k`` ≤ 0 or a negative ``x``."""
    k = check_number("k", k, low=0, low_open=True)
    if bool((x < 0).any()):
        raise ValueError(f"x must be non-negative for Gamma noise, got a minimum of {float(x.min()):g}")
    return x * (_standard_gamma(x.shape, k, generator, x.dtype) / k).to(x.device)


def add_noise(x: torch.Tensor, family: str, level: float, *, generator: torch.Generator) -> torch.Tensor:
    """``family``'s noise at ``level`` (Gaussian σ, Poisson ζ or Gamma k) on ``x``. Raises ``ValueError`` for an
    unknown family (valid: :data:`NOISE_FAMILIES`) and what the noise model raises."""
    check_choice("family", family, NOISE_FAMILIES)
    noise = {"gaussian": gaussian_noise, "poisson": poisson_noise, "gamma": gamma_noise}[family]
    return noise(x, level, generator=generator)


def denoiser_cnn(*, channels: int = 32, layers: int = 4) -> nn.Sequential:
    """``layers`` 3×3 convolutions (padding 1) ``1 → channels → … → channels → 1`` with ReLUs between them: maps
    ``(N, 1, H, W)`` to ``(N, 1, H, W)``. Raises ``ValueError`` for ``channels`` < 1 or ``layers`` < 2."""
    channels = check_number("channels", channels, low=1, integer=True)
    layers = check_number("layers", layers, low=2, integer=True)
    widths = [1] + [channels] * (layers - 1) + [1]
    modules: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        modules += [nn.Conv2d(fan_in, fan_out, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*modules[:-1])


def blind_spot_loss(model: nn.Module, y: torch.Tensor, *, generator: torch.Generator, spacing: int = 4) -> torch.Tensor:
    """The Noise2Self masked-pixel loss on noisy images ``y`` ``(N, C, H, W)``.

    One grid phase ``(a, b)`` is drawn uniformly from ``generator``; the pixels ``(i, j)`` with
    ``i % spacing == a`` and ``j % spacing == b`` are replaced by the mean of their 8 neighbours (reflect padding),
    and the loss is the mean squared error between ``model`` on the masked images and ``y`` over the masked pixels.
    With ``spacing`` ≥ 3 no masked pixel's replacement uses another masked pixel, so the prediction at a masked
    pixel does not depend on that pixel's value (J-invariance). Raises ``ValueError`` for ``spacing`` < 3 or a
    ``y`` that is not 4-D.
    """
    spacing = check_number("spacing", spacing, low=3, integer=True)
    check_tensor("y", y, ndim=4, floating=True)
    a, b = torch.randint(0, spacing, (2,), generator=generator).tolist()
    mask = torch.zeros(y.shape[-2:], dtype=torch.bool, device=y.device)
    mask[a::spacing, b::spacing] = True
    kernel = torch.ones(3, 3, dtype=y.dtype, device=y.device)
    kernel[1, 1] = 0
    kernel = (kernel / 8).expand(y.shape[1], 1, 3, 3)
    neighbours = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), kernel, groups=y.shape[1])
    prediction = model(torch.where(mask, neighbours, y))
    return (prediction - y)[..., mask].square().mean()


def gaussian_filter_denoise(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each image of ``y`` ``(N, C, H, W)`` smoothed by ``scipy.ndimage.gaussian_filter`` with width ``sigma``
    (pixels) over ``H, W`` (``mode="reflect"``). Raises ``ValueError`` for ``sigma`` < 0."""
    from scipy.ndimage import gaussian_filter

    sigma = check_number("sigma", sigma, low=0)
    check_tensor("y", y, ndim=4)
    smoothed = gaussian_filter(y.detach().cpu().double().numpy(), sigma=(0, 0, sigma, sigma))
    return torch.as_tensor(smoothed, dtype=y.dtype, device=y.device)


def tv_denoise(y: torch.Tensor, weight: float) -> torch.Tensor:
    """Each image of ``y`` ``(N, C, H, W)`` denoised by scikit-image's ``denoise_tv_chambolle`` (isotropic total
    variation, Chambolle's projection) with ``weight`` on each ``(H, W)`` plane. Raises ``ValueError`` for
    ``weight`` ≤ 0."""
    from skimage.restoration import denoise_tv_chambolle

    weight = check_number("weight", weight, low=0, low_open=True)
    check_tensor("y", y, ndim=4)
    planes = y.detach().cpu().double().numpy().reshape(-1, *y.shape[-2:])
    out = np.stack([denoise_tv_chambolle(plane, weight=weight) for plane in planes]).reshape(y.shape)
    return torch.as_tensor(out, dtype=y.dtype, device=y.device)


def psnr(clean: torch.Tensor, estimate: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR ``10 log10(data_range² / mean((clean − estimate)²))`` over all but the first dimension:
    ``(N, ...)`` → ``(N,)`` float64 (``inf`` for an exact image). Raises ``ValueError`` for mismatched shapes or
    ``data_range`` ≤ 0."""
    data_range = check_number("data_range", data_range, low=0, low_open=True)
    if clean.shape != estimate.shape:
        raise ValueError(f"estimate must have clean's shape {tuple(clean.shape)}, got {tuple(estimate.shape)}")
    mse = (clean.double() - estimate.double()).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)
