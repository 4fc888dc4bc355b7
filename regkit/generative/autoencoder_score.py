"""What regularized auto-encoders learn: the score of the data density.

Alain & Bengio, *What Regularized Auto-Encoders Learn from the Data Generating Distribution*, JMLR 15 (2014)
3743-3773, arXiv:1211.4246. Replicated in ``notebooks/regularized_ae_score.ipynb``.

A reconstruction function :math:`r: \\mathbb{R}^d \\to \\mathbb{R}^d` (any auto-encoder, encoder and decoder
composed) is trained with one of two criteria:

* the *denoising* criterion (DAE, Gaussian corruption :math:`x + \\sigma\\varepsilon`)

  .. math:: \\mathcal{L}_{\\mathrm{DAE}}(r) = \\mathbb{E}_{x\\sim p,\\ \\varepsilon\\sim N(0, I)}
            \\lVert r(x + \\sigma\\varepsilon) - x \\rVert^2 ;

* the *reconstruction contractive* criterion (RCAE: the contraction is on the whole of :math:`r`, not on the
  encoder as in Rifai et al.'s CAE)

  .. math:: \\mathcal{L}_{\\mathrm{RCAE}}(r) = \\mathbb{E}_{x\\sim p}\\Big[\\lVert r(x) - x \\rVert^2
            + \\sigma^2 \\Big\\lVert \\frac{\\partial r(x)}{\\partial x} \\Big\\rVert_F^2\\Big].

The paper's results (section 3): the DAE minimiser is
:math:`r^*_\\sigma(\\tilde x) = \\mathbb{E}[x \\mid \\tilde x]` and, as :math:`\\sigma \\to 0`,
:math:`r^*_\\sigma(x) = x + \\sigma^2 \\nabla_x \\log p(x) + o(\\sigma^2)` (Theorem 1); the RCAE minimiser (over
twice-differentiable :math:`r`, :math:`p` with full support) satisfies the same expansion and
:math:`\\partial r^*_\\sigma/\\partial x = I + \\sigma^2 \\nabla^2_x \\log p(x) + o(\\sigma^2)` (Theorem 2, by the
calculus of variations; in 1-D first, then in :math:`\\mathbb{R}^d`); a Taylor expansion of
:math:`r(x + \\sigma\\varepsilon)` shows that the DAE criterion equals the RCAE criterion up to
:math:`o(\\sigma^2)` (section 3.3), so both yield the score estimate

.. math:: \\hat s(x) = \\frac{r(x) - x}{\\sigma^2} \\approx \\nabla_x \\log p(x),

which needs no partition function. For Gaussian corruption the DAE minimiser is exact at every :math:`\\sigma`
(Tweedie / Miyasawa): :math:`(r^*_\\sigma(x) - x)/\\sigma^2 = \\nabla_x \\log (p * N(0, \\sigma^2 I))(x)`, the
score of the *smoothed* density, so the bias of :math:`\\hat s` against the data score is the smoothing, which
vanishes as :math:`\\sigma \\to 0` while the variance of the DAE's regression target grows like
:math:`1/\\sigma^2`. Samples from the estimated density are drawn here by the unadjusted Langevin chain
:math:`x_{k+1} = x_k + h\\, \\hat s(x_k) + \\sqrt{2h}\\,\\xi_k` (:func:`langevin_chain`); the paper's own sampler is
an approximate Metropolis-Hastings chain on the same score (section 4, the log-density ratio of a move integrated
along the segment), not implemented here.

**Checked against.** The two criteria and the expansion against the paper's abstract (seed pages
``001_d450349a26c98d76.txt``, ``003_99a5c1fe3555050d.txt``) and the catalogue entry; the theorem numbering is
that of the JMLR version as recalled from the paper (its full text could not be opened here: Theorem 1 the DAE,
Theorem 2 the RCAE); the score estimate :math:`(r(x) - x)/\\sigma^2` as in public DAE-score code (the ``walkjump``
package's ``DenoiseModel.score``, ``(model(y) - y) / sigma**2``). There is no official code for the paper. The
Hutchinson option replaces :math:`\\lVert J \\rVert_F^2` by the unbiased
:math:`\\frac1m\\sum_{j\\le m} \\lVert J^\\top v_j \\rVert^2`, :math:`v_j \\sim N(0, I)` (not in the paper).

Shapes: points ``x`` are ``(N, d)`` floating tensors; ``reconstruct`` maps ``(N, d)`` to ``(N, d)`` *row by
row* (row ``n`` of the output depends on row ``n`` of the input only, as an MLP does; the Jacobians are computed
under this assumption). ``sigma`` is a positive number or an ``(N,)`` tensor of per-point values. Device and
dtype follow ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from regkit._checks import apply_reduction, check_choice, check_finite, check_number, check_reduction, check_tensor

__all__ = ["contractive_loss", "denoising_loss", "jacobian_frobenius_sq", "langevin_chain", "score_estimate"]

Reconstruction = Callable[[torch.Tensor], torch.Tensor]
JACOBIANS = ("exact", "hutchinson")


def _check_points(x) -> torch.Tensor:
    check_tensor("x", x, ndim=2, floating=True)
    check_finite("x", x)
    return x


def _reconstruct(reconstruct: Reconstruction, x: torch.Tensor) -> torch.Tensor:
    out = reconstruct(x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"reconstruct must map x {tuple(x.shape)} to a tensor of the same shape, got {shape}")
    return out


def _sigma(sigma, x: torch.Tensor) -> float | torch.Tensor:
    """A positive number, or a ``(N,)`` tensor of positive per-point scales returned as ``(N, 1)``."""
    if not isinstance(sigma, torch.Tensor) or sigma.numel() == 1 and sigma.ndim == 0:
        return check_number("sigma", sigma, low=0, low_open=True)
    check_tensor("sigma", sigma, ndim=1, floating=True)
    if sigma.shape[0] != x.shape[0] or not bool((sigma > 0).all()) or not bool(torch.isfinite(sigma).all()):
        raise ValueError(
            f"sigma must be a positive number or a ({x.shape[0]},) tensor of positive finite per-point scales, "
            f"got shape {tuple(sigma.shape)}"
        )
    return sigma.to(x).unsqueeze(1)


def denoising_loss(
    reconstruct: Reconstruction,
    x: torch.Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    """The denoising criterion ``‖r(x + σε) − x‖²`` per point, ``ε ~ N(0, I)`` (Alain & Bengio, Theorem 1).

    Args:
        reconstruct: the reconstruction function ``r``, ``(N, d) → (N, d)`` row by row.
        x: ``(N, d)`` clean data points, floating.
        sigma: the corruption's standard deviation, ``> 0``: a number, or a ``(N,)`` tensor of per-point values
            (e.g. an ensemble of reconstruction functions, one per noise level, stacked row-wise).
        generator: the source of ``ε`` (drawn on ``x``'s device); ``None`` uses torch's global generator.
        reduction: ``"mean"`` (default, the Monte-Carlo estimate of the criterion), ``"sum"`` or ``"none"``.

    Returns:
        ``(N,)`` squared errors summed over the ``d`` coordinates (``"none"``) or their mean/sum; ``x``'s dtype.

    Raises:
        ValueError: ``x`` not a finite floating ``(N, d)`` tensor, ``sigma ≤ 0``, an unknown ``reduction``, or
            ``reconstruct`` changing the shape.
    """
    x = _check_points(x)
    sigma = _sigma(sigma, x)
    check_reduction(reduction)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    errors = (_reconstruct(reconstruct, x + sigma * noise) - x).pow(2).sum(1)
    return apply_reduction(errors, reduction)


def jacobian_frobenius_sq(
    reconstruct: Reconstruction,
    x: torch.Tensor,
    *,
    method: str = "exact",
    n_probes: int = 1,
    generator: torch.Generator | None = None,
    create_graph: bool = True,
) -> torch.Tensor:
    """``‖∂r(x_n)/∂x_n‖²_F`` per point, ``(N,)``: exact (``d`` vector-Jacobian products) or Hutchinson's estimate.

    ``"exact"`` sums ``‖∇_x r_i(x)‖²`` over the ``d`` outputs (one backward pass each, cheap for small ``d``);
    ``"hutchinson"`` averages ``‖J^T v‖²`` over ``n_probes`` probes ``v ~ N(0, I)`` (unbiased; one backward pass
    per probe, independent of ``d``). ``create_graph=True`` (default) keeps the graph so that the result can be
    differentiated with respect to ``r``'s parameters (double backward).

    Args:
        reconstruct: ``r``, ``(N, d) → (N, d)`` row by row (row ``n`` of ``J`` is then that of ``Σ_n r(x_n)``).
        x: ``(N, d)`` points, floating.
        method: ``"exact"`` or ``"hutchinson"``.
        n_probes: probes of the Hutchinson estimate, ``≥ 1`` (ignored by ``"exact"``).
        generator: the source of the probes (``None``: torch's global generator).
        create_graph: keep the graph for a backward pass through the result.

    Returns:
        ``(N,)`` tensor in ``x``'s dtype.

    Raises:
        ValueError: bad ``x``, ``method`` not one of ``"exact"``, ``"hutchinson"``, ``n_probes < 1``, or
            ``reconstruct`` changing the shape.
    """
    x = _check_points(x)
    check_choice("method", method, JACOBIANS)
    n_probes = check_number("n_probes", n_probes, low=1, integer=True)
    with torch.enable_grad():
        inputs = x.detach().requires_grad_(True)
        out = _reconstruct(reconstruct, inputs)
        return _frobenius_sq(out, inputs, method, n_probes, generator, create_graph)


def _frobenius_sq(out, inputs, method, n_probes, generator, create_graph) -> torch.Tensor:
    """``(N,)`` squared Frobenius norms of the row-wise Jacobians of ``out`` with respect to ``inputs``."""
    if method == "exact":
        probes = []
        for i in range(inputs.shape[1]):
            probe = torch.zeros_like(inputs)
            probe[:, i] = 1
            probes.append(probe)
    else:
        probes = [
            torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype, device=inputs.device)
            for _ in range(n_probes)
        ]
    total = inputs.new_zeros(inputs.shape[0])
    for probe in probes:
        (vjp,) = torch.autograd.grad(out, inputs, probe, create_graph=create_graph, retain_graph=True)
        total = total + vjp.pow(2).sum(1)
    return total / len(probes) if method == "hutchinson" else total


def contractive_loss(
    reconstruct: Reconstruction,
    x: torch.Tensor,
    sigma: float,
    *,
    jacobian: str = "exact",
    n_probes: int = 1,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The reconstruction contractive criterion ``‖r(x) − x‖² + σ² ‖∂r(x)/∂x‖²_F`` per point (Theorem 2).

    Args:
        reconstruct: ``r``, ``(N, d) → (N, d)`` row by row.
        x: ``(N, d)`` data points, floating.
        sigma: the penalty's scale ``σ > 0`` (the weight is ``σ²``, the DAE's noise variance it stands for); a
            number or a ``(N,)`` tensor of per-point values.
        jacobian: ``"exact"`` or ``"hutchinson"`` (see :func:`jacobian_frobenius_sq`).
        n_probes: Hutchinson probes, ``≥ 1``.
        generator: the source of the Hutchinson probes.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        The per-point criterion ``(N,)`` or its mean/sum, differentiable in ``r``'s parameters; ``x``'s dtype.

    Raises:
        ValueError: bad ``x``, ``sigma ≤ 0``, unknown ``jacobian`` or ``reduction``, ``n_probes < 1``, or
            ``reconstruct`` changing the shape.
    """
    x = _check_points(x)
    sigma = _sigma(sigma, x)
    check_reduction(reduction)
    check_choice("jacobian", jacobian, JACOBIANS)
    n_probes = check_number("n_probes", n_probes, low=1, integer=True)
    with torch.enable_grad():
        inputs = x.detach().requires_grad_(True)
        out = _reconstruct(reconstruct, inputs)
        frobenius = _frobenius_sq(out, inputs, jacobian, n_probes, generator, create_graph=True)
    penalty = sigma**2 * frobenius if isinstance(sigma, float) else sigma[:, 0] ** 2 * frobenius
    return apply_reduction((out - x).pow(2).sum(1) + penalty, reduction)


def score_estimate(reconstruct: Reconstruction, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The score estimate ``(r(x) − x) / σ²`` of a DAE or RCAE trained at ``σ`` (``≈ ∇_x log p(x)``).

    Args:
        reconstruct: the trained ``r``, ``(N, d) → (N, d)``.
        x: ``(N, d)`` points, floating.
        sigma: the noise (or penalty) scale ``r`` was trained with, ``> 0``; a number or ``(N,)`` per point.

    Returns:
        ``(N, d)`` in ``x``'s dtype (differentiable when ``r`` is).

    Raises:
        ValueError: bad ``x``, ``sigma ≤ 0``, or ``reconstruct`` changing the shape.
    """
    x = _check_points(x)
    sigma = _sigma(sigma, x)
    return (_reconstruct(reconstruct, x) - x) / sigma**2


def langevin_chain(
    score: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    step: float,
    n_steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``N`` independent unadjusted Langevin chains ``x ← x + h·score(x) + √(2h)·ξ``, ``ξ ~ N(0, I)``.

    With the exact score and ``h → 0`` the chains' law tends to ``p``; with :func:`score_estimate` they sample
    the density the auto-encoder estimated. Runs without autograd.

    Args:
        score: ``(N, d) → (N, d)``, e.g. ``lambda x: score_estimate(r, x, sigma)``.
        x0: ``(N, d)`` initial states, floating.
        step: the step ``h > 0``.
        n_steps: the number of steps, ``≥ 1``.
        generator: the source of ``ξ`` (``None``: torch's global generator).

    Returns:
        ``(N, d)`` final states, ``x0``'s dtype and device.

    Raises:
        ValueError: bad ``x0``, ``step ≤ 0``, ``n_steps < 1``, or ``score`` changing the shape.
    """
    check_tensor("x0", x0, ndim=2, floating=True)
    check_finite("x0", x0)
    step = check_number("step", step, low=0, low_open=True)
    n_steps = check_number("n_steps", n_steps, low=1, integer=True)
    x = x0.detach().clone()
    with torch.no_grad():
        for _ in range(n_steps):
            drift = score(x)
            if not isinstance(drift, torch.Tensor) or drift.shape != x.shape:
                raise ValueError(f"score must map x {tuple(x.shape)} to a tensor of the same shape")
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + step * drift + (2 * step) ** 0.5 * noise
    return x
