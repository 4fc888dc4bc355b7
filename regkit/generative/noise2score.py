"""Noise2Score: a score learned from noisy images only, then Tweedie's formula as the denoiser.

Kim & Ye, *Noise2Score: Tweedie's Approach to Self-Supervised Image Denoising without Clean Images*, NeurIPS 2021,
arXiv:2106.07009. Replicated in ``notebooks/noise2score_tweedie.ipynb``.

**Step 1: the score of the noisy images** by the amortized residual denoising auto-encoder (AR-DAE, Lim et al.
2020). A network :math:`R_\\theta` (same shape in and out) is trained on noisy images :math:`y` alone with

.. math::
    \\mathcal L(\\theta) = \\mathbb E_{y,\\,u\\sim\\mathcal N(0, I)}
    \\big\\lVert u + \\sigma_a R_\\theta(y + \\sigma_a u) \\big\\rVert^2,

whose minimiser over all functions is :math:`R^\\star(\\tilde y) = -\\mathbb E[u \\mid \\tilde y]/\\sigma_a =
\\nabla \\log p_{\\sigma_a}(\\tilde y)`, the score of the noisy-image density smoothed by
:math:`\\mathcal N(0, \\sigma_a^2 I)`; it tends to the score :math:`\\nabla \\log p(y)` as :math:`\\sigma_a \\to 0`.
:math:`\\sigma_a` is annealed linearly from ``sigma_max`` to ``sigma_min`` (:func:`annealed_sigma`), and the score
is read off the network *unperturbed*: :math:`\\hat s(y) = R_\\theta(y)`.

**Step 2: Tweedie's formula.** For an exponential-family likelihood
:math:`p(y \\mid \\eta) = b(y)\\, e^{\\eta T(y) - A(\\eta)}` with :math:`T(y) = y`, the posterior mean of the natural
parameter is :math:`\\mathbb E[\\eta \\mid y] = \\nabla \\log p(y) - \\nabla \\log b(y)`, whatever the prior. Per
noise model (pixelwise; :math:`\\hat s = \\nabla_y \\log p(y)` throughout, the score *with respect to the observed
y*):

* Gaussian, :math:`y = x + \\sigma n`: :math:`\\eta = x/\\sigma^2`, so
  :math:`\\hat x = y + \\sigma^2 \\hat s(y)` (:func:`gaussian_tweedie`): the posterior mean
  :math:`\\mathbb E[x\\mid y]`.
* Poisson with scale :math:`\\zeta`, :math:`y = \\zeta z,\\ z \\sim \\mathrm{Poisson}(x/\\zeta)`: :math:`\\eta =
  \\log(x/\\zeta)`, :math:`b(z) = 1/z!` and :math:`-\\tfrac{d}{dz}\\log z! = -\\psi(z + 1)` is replaced by
  :math:`-\\log(z + \\tfrac12)`, so :math:`\\mathbb E[\\log(x/\\zeta) \\mid z] \\approx \\log(z + \\tfrac12) +
  \\zeta \\hat s(y)` and :math:`\\hat x = (y + \\zeta/2)\\, e^{\\zeta \\hat s(y)}` (:func:`poisson_tweedie`):
  :math:`\\zeta e^{\\mathbb E[\\log(x/\\zeta)\\mid y]}` up to the error
  :math:`\\lvert\\psi(z+1) - \\log(z+\\tfrac12)\\rvert \\le 1/(24 (z + \\tfrac12)^2)` in the exponent.
* Gamma with shape :math:`k`, :math:`y = x g,\\ g \\sim \\mathrm{Gamma}(k, \\text{rate } k)` (mean :math:`x`,
  variance :math:`x^2/k`): :math:`\\eta = -k/x`, :math:`b(y) \\propto y^{k-1}`, so
  :math:`\\mathbb E[k/x \\mid y] = (k - 1)/y - \\hat s(y)` and :math:`\\hat x = k y / ((k - 1) - y\\, \\hat s(y))`
  (:func:`gamma_tweedie`): :math:`1/\\mathbb E[1/x \\mid y]`, exact.

Only the Gaussian case is the posterior mean of :math:`x`; the other two map the posterior mean of the natural
parameter back to :math:`x`.

**Checked against** the official code ``cubeyoung/Noise2Score``: ``models/networks.py`` (``UNet.forward(x, std)``:
``x_bar = x + std * mu`` with ``mu ~ N(0, I)``, ``loss = F.mse_loss(std * log_prob, -mu)``, i.e. the loss above
averaged over pixels; evaluation calls ``netf(y, 0)``: the unperturbed read-off); ``models/Gaussian_model.py``
(``recon = (sigma/255)**2 * netf(y, 0) + y``; ``set_sigma``: ``perc = min((iter + 1)/sigma_annealing, 1)``,
``sigma = sigma_max (1 - perc) + sigma_min perc``, ``sigma_max = 0.05``, ``sigma_min = 0.001``,
``sigma_annealing = 22000``); ``models/Poisson_model.py`` (the network sees ``z = y/eta``;
``recon = (eta/2 + eta z) exp(netf(z, 0))``, ``sigma_max = 1``, ``sigma_min = 0.5`` on that count scale);
``models/Gamma_model.py`` (``recon = zeta y / ((zeta - 1) - y netf(y, 0))`` with ``zeta`` the shape k;
``sigma_max = 0.05``, ``sigma_min = 0.001``); ``Datageneration.ipynb`` (the noise models:
``poisson(clean/zeta) * zeta`` with zeta in {0.01, 0.05}, ``clean * gamma(k, 1/k)`` with k in {50, 100}). The
Poisson formula here takes the score with respect to :math:`y` (the official network is trained on
:math:`z = y/\\zeta`, whose score is :math:`\\zeta \\hat s(y)`: the same estimate). Deliberate differences: the
official ``train.py`` passes the within-epoch image count to ``set_sigma`` (the schedule restarts every epoch);
:func:`annealed_sigma` counts whatever steps the caller passes. The paper's own text could not be read here beyond
its abstract, so no equation numbers are given: each formula above was transcribed from the official files named
and re-derived from the exponential-family Tweedie identity (the derivation is in this docstring), and the tests
check each one against a brute-force posterior (quadrature) under a prior.

Shapes: ``y`` and the score are floating tensors of one shape ``(B, ...)`` (batch first; images ``(B, C, H, W)``);
the denoisers work elementwise and return that shape and dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from regkit._checks import apply_reduction, check_finite, check_number, check_reduction, check_tensor

__all__ = ["annealed_sigma", "ardae_score_loss", "gamma_tweedie", "gaussian_tweedie", "poisson_tweedie"]


def annealed_sigma(step: int, total_steps: int, *, sigma_max: float, sigma_min: float) -> float:
    """The AR-DAE perturbation level at ``step``, annealed linearly as in the official ``set_sigma``:
    :math:`p = \\min((\\text{step} + 1)/\\text{total\\_steps}, 1)`,
    :math:`\\sigma_a = \\sigma_{max}(1 - p) + \\sigma_{min}\\, p` (constant at ``sigma_min`` after the last step).

    Args:
        step: the training step, an integer ≥ 0.
        total_steps: the annealing length, an integer ≥ 1.
        sigma_max: the initial level, > 0.
        sigma_min: the final level, in (0, sigma_max].

    Returns:
        σ_a as a Python float.

    Raises:
        ValueError: naming the argument out of range.
    """
    step = check_number("step", step, low=0, integer=True)
    total_steps = check_number("total_steps", total_steps, low=1, integer=True)
    sigma_max = check_number("sigma_max", sigma_max, low=0, low_open=True)
    sigma_min = check_number("sigma_min", sigma_min, low=0, low_open=True, high=sigma_max)
    progress = min((step + 1) / total_steps, 1.0)
    return sigma_max * (1.0 - progress) + sigma_min * progress


def ardae_score_loss(
    score_model: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    sigma: float,
    *,
    generator: torch.Generator,
    reduction: str = "mean",
) -> torch.Tensor:
    """The amortized residual DAE loss of Noise2Score,
    :math:`\\lVert u + \\sigma_a R_\\theta(y + \\sigma_a u)\\rVert^2`.

    ``u ~ N(0, I)`` is drawn with ``generator`` (on the generator's device, then moved to ``y``'s) in ``y``'s dtype;
    the squared residual is averaged over the non-batch dimensions of each example (the official
    ``F.mse_loss(std * R, -u)`` is its ``"mean"``). At the minimum, ``score_model`` is the score of the noisy
    images smoothed by :math:`\\mathcal N(0, \\sigma_a^2 I)`; read it off unperturbed, ``score_model(y)``.

    Args:
        score_model: maps a tensor of ``y``'s shape to one of the same shape (the score :math:`R_\\theta`).
        y: noisy examples ``(B, ...)``, floating, finite, with at least one non-batch dimension.
        sigma: the perturbation level σ_a > 0 (e.g. from :func:`annealed_sigma`).
        generator: the source of ``u``.
        reduction: ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (per example, ``(B,)``).

    Returns:
        A scalar (``"mean"``/``"sum"``) or ``(B,)`` tensor in ``y``'s dtype, differentiable in the model.

    Raises:
        ValueError: ``y`` not floating, not finite or without a non-batch dimension; ``sigma`` ≤ 0; an unknown
            ``reduction``; ``score_model``'s output of another shape than ``y``.
        TypeError: ``y`` not a tensor or ``generator`` not a ``torch.Generator``.
    """
    check_tensor("y", y, floating=True)
    if y.ndim < 2:
        raise ValueError(f"y must be (B, ...) with at least one non-batch dimension, got shape {tuple(y.shape)}")
    check_finite("y", y)
    sigma = check_number("sigma", sigma, low=0, low_open=True)
    check_reduction(reduction)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    u = torch.randn(y.shape, generator=generator, device=generator.device, dtype=y.dtype).to(y.device)
    residual_score = score_model(y + sigma * u)
    if not isinstance(residual_score, torch.Tensor) or residual_score.shape != y.shape:
        shape = tuple(residual_score.shape) if isinstance(residual_score, torch.Tensor) else type(residual_score)
        raise ValueError(f"score_model must return a tensor of y's shape {tuple(y.shape)}, got {shape}")
    per_example = (u + sigma * residual_score).square().flatten(1).mean(1)
    return apply_reduction(per_example, reduction)


def _check_pair(y, score) -> None:
    check_tensor("y", y, floating=True)
    check_tensor("score", score, floating=True)
    if score.shape != y.shape:
        raise ValueError(f"score must have y's shape {tuple(y.shape)}, got {tuple(score.shape)}")
    check_finite("y", y)
    check_finite("score", score)


def _check_nonnegative(y: torch.Tensor, family: str) -> None:
    if y.numel() and bool((y < 0).any()):
        raise ValueError(f"y must be non-negative for {family} noise, got a minimum of {float(y.min()):g}")


def gaussian_tweedie(y: torch.Tensor, score: torch.Tensor, sigma: float) -> torch.Tensor:
    """Tweedie's denoiser for additive Gaussian noise :math:`y = x + \\sigma n`:
    :math:`\\hat x = y + \\sigma^2 \\hat s(y)`, the posterior mean :math:`\\mathbb E[x \\mid y]`
    when ``score`` is :math:`\\nabla_y \\log p(y)`.

    Args:
        y: noisy values, floating, any shape.
        score: :math:`\\hat s(y)`, the score of the noisy density at ``y``, same shape and dtype kind.
        sigma: the noise standard deviation σ > 0 (official: ``parameter/255``).

    Returns:
        :math:`\\hat x`, ``y``'s shape.

    Raises:
        ValueError: non-floating, non-finite or mismatched tensors; ``sigma`` ≤ 0.
        TypeError: ``y`` or ``score`` not a tensor.
    """
    _check_pair(y, score)
    sigma = check_number("sigma", sigma, low=0, low_open=True)
    return y + sigma**2 * score


def poisson_tweedie(y: torch.Tensor, score: torch.Tensor, zeta: float) -> torch.Tensor:
    """Noise2Score's denoiser for scaled Poisson noise :math:`y = \\zeta z,\\ z \\sim \\mathrm{Poisson}(x/\\zeta)`:
    :math:`\\hat x = (y + \\zeta/2)\\, \\exp(\\zeta\\, \\hat s(y))`.

    This is :math:`\\zeta \\exp \\mathbb E[\\log(x/\\zeta) \\mid y]` with :math:`\\psi(z + 1)` replaced by
    :math:`\\log(z + 1/2)` (module docstring). ``score`` is the score *with respect to y*; a network trained on the
    counts :math:`z = y/\\zeta` (as in the official ``Poisson_model.py``) gives :math:`\\zeta \\hat s(y)` directly:
    pass it divided by ζ.

    Args:
        y: noisy values ≥ 0 (multiples of ζ), floating, any shape.
        score: :math:`\\hat s(y) = \\nabla_y \\log p(y)` at ``y``, same shape.
        zeta: the Poisson scale ζ > 0 (official: 0.01 or 0.05 for images in [0, 1]).

    Returns:
        :math:`\\hat x` ≥ 0, ``y``'s shape.

    Raises:
        ValueError: non-floating, non-finite or mismatched tensors; a negative ``y``; ``zeta`` ≤ 0.
        TypeError: ``y`` or ``score`` not a tensor.
    """
    _check_pair(y, score)
    zeta = check_number("zeta", zeta, low=0, low_open=True)
    _check_nonnegative(y, "Poisson")
    return (y + zeta / 2) * torch.exp(zeta * score)


def gamma_tweedie(y: torch.Tensor, score: torch.Tensor, k: float) -> torch.Tensor:
    """Noise2Score's denoiser for multiplicative Gamma noise
    :math:`y = x g,\\ g \\sim \\mathrm{Gamma}(k, \\text{rate } k)`:
    :math:`\\hat x = k y / ((k - 1) - y\\, \\hat s(y))`, i.e. :math:`1/\\mathbb E[1/x \\mid y]` (exact).

    The denominator is :math:`y\\, \\mathbb E[k/x \\mid y] > 0` for the true score; an estimated score can make it
    vanish or turn negative (a huge or negative :math:`\\hat x`): clip to the data range afterwards, as the official
    code does (``torch.clamp(recon, 0, 1)``). ``y = 0`` gives :math:`\\hat x = 0`.

    Args:
        y: noisy values ≥ 0, floating, any shape.
        score: :math:`\\hat s(y) = \\nabla_y \\log p(y)` at ``y``, same shape.
        k: the Gamma shape k > 1 (the noise variance is :math:`x^2/k`; official: 50 or 100).

    Returns:
        :math:`\\hat x`, ``y``'s shape.

    Raises:
        ValueError: non-floating, non-finite or mismatched tensors; a negative ``y``; ``k`` ≤ 1.
        TypeError: ``y`` or ``score`` not a tensor.
    """
    _check_pair(y, score)
    k = check_number("k", k, low=1, low_open=True)
    _check_nonnegative(y, "Gamma")
    return k * y / ((k - 1) - y * score)
