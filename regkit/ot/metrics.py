r"""Quality of a fitted transport map against a known optimal map.

**L2-UVP** (unexplained variance percentage; Korotin et al., "Do Neural Optimal Transport
Solvers Work? A Continuous Wasserstein-2 Benchmark", NeurIPS 2021, arXiv:2106.01954, Sec. 4;
the metric of the Gaussian benchmarks of the Monge gap paper, Uscidda & Cuturi, arXiv:2302.04953):

.. math::

    \mathcal L^2\text{-UVP}(\hat T) = 100 \cdot
        \frac{\lVert \hat T - T^\star \rVert^2_{L^2(\mu)}}{\operatorname{Var}(\nu)} \ \%,
    \qquad \lVert \hat T - T^\star \rVert^2_{L^2(\mu)} = \mathbb E_{x\sim\mu} \lVert \hat T(x) - T^\star(x) \rVert_2^2,

with :math:`\operatorname{Var}(\nu) = \mathbb E \lVert y - \mathbb E y \rVert^2 = \operatorname{tr}\Sigma_\nu`
the total variance of the target (the benchmark's ``L2_UVP_fwd``, estimated on samples of μ).
0 % is the optimal map; 100 % is what the constant map :math:`x \mapsto \mathbb E\,y` scores.

:func:`gaussian_moment_errors` checks the push-forward itself: the relative errors of its mean
and covariance against a Gaussian target's.

Replicated in ``notebooks/monge_gap.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import torch

from regkit._checks import check_tensor

__all__ = ["gaussian_moment_errors", "l2_uvp"]


def _check_pair(first: str, x, second: str, y) -> None:
    check_tensor(first, x, ndim=2, floating=True)
    check_tensor(second, y, ndim=2, floating=True)
    if x.shape != y.shape or x.shape[0] == 0:
        raise ValueError(
            f"{first} and {second} must both have shape (n, d) with n >= 1, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def l2_uvp(mapped: torch.Tensor, optimal: torch.Tensor, target_variance) -> torch.Tensor:
    r"""L2-UVP (%) of a map from its images and the optimal map's images of the same points.

    Args:
        mapped: ``(n, d)`` :math:`\hat T(x_i)` for :math:`x_i \sim \mu`.
        optimal: ``(n, d)`` :math:`T^\star(x_i)` for the same points.
        target_variance: :math:`\operatorname{Var}(\nu) = \operatorname{tr}\Sigma_\nu > 0`, a number
            or a 0-dim tensor (in the squared units of the points).

    Returns:
        a 0-dim tensor (percent) in the points' dtype:
        ``100 · mean_i ‖mapped_i − optimal_i‖² / target_variance``.

    Raises:
        TypeError: a point set is not a tensor.
        ValueError: naming the argument: not floating ``(n, d)`` with ``n ≥ 1``, shapes that
            differ, or a ``target_variance`` that is not a finite positive number.
    """
    _check_pair("mapped", mapped, "optimal", optimal)
    variance = float(target_variance)
    if not variance > 0 or variance == float("inf"):
        raise ValueError(f"target_variance must be a finite number > 0, got {target_variance!r}")
    error = ((mapped - optimal) ** 2).sum(1).mean()
    return 100 * error / target_variance


def gaussian_moment_errors(mapped: torch.Tensor, mean: torch.Tensor, covariance: torch.Tensor) -> tuple[float, float]:
    r"""Relative errors of the sample mean and covariance of ``mapped`` against :math:`\mathcal N(m, \Sigma)`.

    .. math:: e_m = \frac{\lVert \bar y - m \rVert_2}{\sqrt{\operatorname{tr}\Sigma}}, \qquad
              e_\Sigma = \frac{\lVert \widehat{\operatorname{Cov}}(y) - \Sigma \rVert_F}{\lVert \Sigma \rVert_F},

    with :math:`\widehat{\operatorname{Cov}}` the unbiased sample covariance (``torch.cov``).

    Args:
        mapped: ``(n, d)`` samples :math:`y_i = \hat T(x_i)`, ``n ≥ 2`` (moved to ``mean``'s device).
        mean: ``(d,)`` :math:`m`; covariance: ``(d, d)`` :math:`\Sigma` (non-zero).

    Returns:
        ``(e_m, e_Σ)`` as Python floats (dimensionless).

    Raises:
        TypeError: an argument is not a tensor.
        ValueError: naming the argument, for shapes that do not fit together.
    """
    check_tensor("mapped", mapped, ndim=2, floating=True)
    check_tensor("mean", mean, ndim=1, floating=True)
    check_tensor("covariance", covariance, ndim=2, floating=True)
    d = mean.shape[0]
    if mapped.shape[1] != d or mapped.shape[0] < 2 or tuple(covariance.shape) != (d, d):
        raise ValueError(
            f"need mapped (n >= 2, {d}), mean ({d},) and covariance ({d}, {d}); got "
            f"{tuple(mapped.shape)}, {tuple(mean.shape)}, {tuple(covariance.shape)}"
        )
    mapped = mapped.to(mean.device)
    mean_error = float((mapped.mean(0) - mean).norm() / covariance.trace().sqrt())
    cov_error = float((torch.cov(mapped.T) - covariance).norm() / covariance.norm())
    return mean_error, cov_error
