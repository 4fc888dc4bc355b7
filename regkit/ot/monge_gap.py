r"""The Monge gap, a regularizer that makes a fitted map optimal for its own transport.

Uscidda & Cuturi, "The Monge Gap: A Regularizer to Learn All Transport Maps", ICML 2023,
arXiv:2302.04953.

For a reference measure :math:`\rho` and a map :math:`T`,

.. math::

    \mathcal M^c_\rho(T) = \int c(x, T(x))\, d\rho(x) - W_c(\rho, T_\sharp\rho) \;\ge\; 0,

zero exactly when :math:`T` is a :math:`c`-optimal map between :math:`\rho` and :math:`T_\sharp\rho`.
From samples :math:`x_1..x_n` (as in OTT-JAX's ``monge_gap_from_samples``):

.. math::

    \hat{\mathcal M} = \frac1n \sum_i c(x_i, T(x_i)) - \mathrm{OT}_\varepsilon(\hat\rho_n, T_\sharp\hat\rho_n),

with the entropic cost of :mod:`regkit.ot.sinkhorn`. The identity coupling has
:math:`\mathrm{KL} = \log n`, so :math:`\hat{\mathcal M} \ge -\varepsilon \log n`; it tends to the exact
gap as :math:`\varepsilon \to 0`. A map is fitted to a target :math:`\nu` by
:math:`\min_\theta S_\varepsilon(T_\theta\sharp\mu, \nu) + \lambda \hat{\mathcal M}_\mu(T_\theta)`
(:func:`fit_map`), with :math:`T_\theta(x) = x + \mathrm{MLP}_\theta(x)`.
Shapes: ``source``, ``mapped`` ``(n, d)``.

Conventions as for every solver of :mod:`regkit.ot` (see :mod:`regkit.ot.sinkhorn`): half-precision
points are solved in float32, and the gap — a difference of two nearly equal terms for a nearly
optimal map — is formed in float32 before it is returned in the input dtype; every numeric
argument is checked, a bad one raising ``ValueError`` that names it.

Replicated in ``notebooks/monge_gap.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from regkit._checks import check_number, check_tensor
from regkit.ot.costs import sqeuclidean
from regkit.ot.sinkhorn import sinkhorn, sinkhorn_divergence

__all__ = ["ResidualMap", "fit_map", "monge_gap"]

Cost = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def monge_gap(
    source: torch.Tensor,
    mapped: torch.Tensor,
    eps: float,
    *,
    cost_fn: Cost = sqeuclidean,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> torch.Tensor:
    """Sample Monge gap of the map ``source[i] ↦ mapped[i]``, a scalar tensor in the cost's
    dtype; differentiable in ``mapped`` (and ``source``).

    ``source``, ``mapped``: floating ``(n, d)`` with ``n ≥ 1``; ``cost_fn(x, y)`` returns the
    ``(n, n)`` cost; ``eps``, ``max_iter``, ``tol`` go to :func:`regkit.ot.sinkhorn` (validated
    there). Raises ``ValueError`` naming ``source``/``mapped`` for mismatched or empty shapes,
    ``TypeError`` for a ``cost_fn`` that is not callable.
    """
    check_tensor("source", source, ndim=2, floating=True)
    check_tensor("mapped", mapped, ndim=2, floating=True)
    if source.shape != mapped.shape or source.shape[0] == 0:
        raise ValueError(
            "source and mapped must both have shape (n, d) with n >= 1, "
            f"got {tuple(source.shape)} and {tuple(mapped.shape)}"
        )
    if not callable(cost_fn):
        raise TypeError(f"cost_fn must be callable (x, y) -> cost, got {type(cost_fn).__name__}")
    cost = cost_fn(source, mapped)
    result = sinkhorn(None, None, cost, eps, max_iter=max_iter, tol=tol)
    displacement = cost.diagonal().to(result.f.dtype).mean()  # both terms in the working dtype
    return (displacement - result._regularized_cost()).to(cost.dtype)


class ResidualMap(nn.Module):
    """:math:`T(x) = x + \\mathrm{MLP}(x)`, an unconstrained map of ℝᵈ (no convexity imposed)."""

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2) -> None:
        """``dim``, ``hidden``: integers ≥ 1; ``depth``: hidden layers, an integer ≥ 0 (``ValueError``
        naming the argument otherwise)."""
        dim = check_number("dim", dim, low=1, integer=True)
        hidden = check_number("hidden", hidden, low=1, integer=True)
        depth = check_number("depth", depth, low=0, integer=True)
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def fit_map(
    sample_source: Callable[[int], torch.Tensor],
    sample_target: Callable[[int], torch.Tensor],
    dim: int,
    *,
    lam: float,
    eps: float,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    cost_fn: Cost = sqeuclidean,
    hidden: int = 64,
    tol: float = 1e-4,
    max_iter: int = 1000,
    callback: Callable[[int, dict], None] | None = None,
) -> tuple[ResidualMap, list[dict]]:
    """Fit :math:`T_\\theta` by Adam on
    :math:`S_\\varepsilon(T\\sharp\\mu, \\nu) + \\lambda\\,\\hat{\\mathcal M}_\\mu(T)`.

    ``sample_source(n)`` / ``sample_target(n)`` draw fresh batches (use explicit generators
    inside them for reproducibility). ``tol``/``max_iter`` bound every Sinkhorn solve (the
    potentials are detached, so a loose tolerance costs only a little bias). Returns the map and the per-step
    history of the fit
    term, the Monge gap and the total loss. ``lam = 0`` is the fit-only baseline.
    ``callback(step, record)``, if given, is called after every step with the step index
    (from 0) and that step's history record (e.g. to advance a progress bar).

    Ranges (``ValueError`` naming the argument otherwise): ``lam`` finite ≥ 0, ``eps`` and ``lr``
    finite > 0, ``dim``, ``steps``, ``batch_size``, ``hidden``, ``max_iter`` integers ≥ 1,
    ``tol`` ≥ 0; ``TypeError`` for samplers or a callback that are not callable.
    """
    for name, sampler in (("sample_source", sample_source), ("sample_target", sample_target)):
        if not callable(sampler):
            raise TypeError(f"{name} must be callable (n) -> (n, d) tensor, got {type(sampler).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable (step, record) -> None, got {type(callback).__name__}")
    lam = check_number("lam", lam, low=0)
    eps = check_number("eps", eps, low=0, low_open=True)
    steps = check_number("steps", steps, low=1, integer=True)
    batch_size = check_number("batch_size", batch_size, low=1, integer=True)
    lr = check_number("lr", lr, low=0, low_open=True)
    hidden = check_number("hidden", hidden, low=1, integer=True)
    tol = check_number("tol", tol, low=0, high=math.inf)
    max_iter = check_number("max_iter", max_iter, low=1, integer=True)
    probe = sample_source(2)
    model = ResidualMap(dim, hidden).to(dtype=probe.dtype, device=probe.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for step in range(steps):
        x, y = sample_source(batch_size), sample_target(batch_size)
        mapped = model(x)
        fit = sinkhorn_divergence(mapped, y, eps, cost_fn=cost_fn, tol=tol, max_iter=max_iter)
        gap = monge_gap(x, mapped, eps, cost_fn=cost_fn, tol=tol, max_iter=max_iter) if lam > 0 else fit.new_zeros(())
        loss = fit + lam * gap
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append({"fit": float(fit.detach()), "monge_gap": float(gap.detach()), "loss": float(loss.detach())})
        if callback is not None:
            callback(step, history[-1])
    return model, history
