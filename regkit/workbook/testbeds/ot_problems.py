"""Optimal-transport test problems with known structure: Gaussian maps with a closed-form optimum,
random point clouds and a token → expert routing toy.

Used by the notebooks ``monge_gap`` (:class:`GaussianMapProblem`), ``sinkhorn_newton_sparse``
(:func:`uniform_cloud_cost`) and ``sparsity_constrained_ot`` (:func:`gaussian_cloud_cost`,
:func:`routing_problem`). Every random draw comes from a ``torch.Generator`` seeded from the
arguments, so a problem is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from regkit.ot import gaussian_moment_errors, l2_uvp, sqeuclidean

__all__ = ["GaussianMapProblem", "RoutingProblem", "gaussian_cloud_cost", "routing_problem", "uniform_cloud_cost"]


@dataclass
class GaussianMapProblem:
    """Transport from μ = N(0, I_d) to ν = N(m, Σ), whose optimal (Brenier) map for the squared-Euclidean
    cost is ``T*(x) = m + Σ^{1/2} x``.

    Σ has random eigenvectors (QR of a Gaussian matrix drawn from seed ``seed + 100 + d``) and
    eigenvalues ``linspace(0.5, 2, d)``; m is the all-ones vector. The samplers :meth:`source` and
    :meth:`target` share one generator seeded ``seed + d``, so the order of the calls fixes the draws.
    Samples are returned on ``device``; ``mean``, ``root`` and ``covariance`` stay float32 on the CPU.

    Attributes: ``d``; ``mean`` (d,); ``root`` (d, d), Σ^{1/2}, symmetric; ``covariance`` (d, d), Σ.
    """

    d: int
    seed: int
    device: torch.device | str = "cpu"
    mean: Tensor = field(init=False)
    root: Tensor = field(init=False)
    covariance: Tensor = field(init=False)

    def __post_init__(self) -> None:
        generator = torch.Generator().manual_seed(self.seed + 100 + self.d)
        rotation, _ = torch.linalg.qr(torch.randn(self.d, self.d, generator=generator))
        self.root = rotation @ torch.diag(torch.linspace(0.5, 2.0, self.d).sqrt()) @ rotation.T
        self.mean = torch.ones(self.d)
        self.covariance = self.root @ self.root
        self._sampler = torch.Generator().manual_seed(self.seed + self.d)

    def optimal(self, x: Tensor) -> Tensor:
        """The optimal map T*(x) = m + Σ^{1/2} x of points ``x`` (n, d), on ``x``'s device."""
        return self.mean.to(x.device) + x @ self.root.T.to(x.device)

    def source(self, n: int) -> Tensor:
        """``n`` fresh samples (n, d) of μ, on ``device``."""
        return torch.randn(n, self.d, generator=self._sampler).to(self.device)

    def target(self, n: int) -> Tensor:
        """``n`` fresh samples (n, d) of ν, on ``device``."""
        return (self.mean + torch.randn(n, self.d, generator=self._sampler) @ self.root.T).to(self.device)

    @torch.no_grad()
    def evaluate(self, transport_map, n: int = 4096) -> dict[str, float]:
        """Score a map (callable (n, d) → (n, d)) against T* on fresh μ samples (seeds ``seed + 999`` and
        ``seed + 998``, independent of the training samplers).

        Returns ``l2_uvp_percent`` (100 E‖T(x) − T*(x)‖² / tr Σ on the first batch) and, on the second
        batch, ``mean_error`` (‖mean(T♯μ) − m‖ / √tr Σ) and ``covariance_error`` (‖Cov − Σ‖_F / ‖Σ‖_F).
        """
        x = torch.randn(n, self.d, generator=torch.Generator().manual_seed(self.seed + 999)).to(self.device)
        uvp = float(l2_uvp(transport_map(x), self.optimal(x), self.covariance.trace()))
        x = torch.randn(n, self.d, generator=torch.Generator().manual_seed(self.seed + 998)).to(self.device)
        mean_error, cov_error = gaussian_moment_errors(transport_map(x).cpu(), self.mean, self.covariance)
        return {"l2_uvp_percent": uvp, "mean_error": mean_error, "covariance_error": cov_error}


def _scaled_cost(x: Tensor, y: Tensor) -> Tensor:
    cost = sqeuclidean(x, y)
    return cost / cost.max()


def uniform_cloud_cost(n: int, seed: int) -> Tensor:
    """Squared-Euclidean cost (n, n), float64, scaled to a maximum of 1, between two clouds of ``n`` uniform
    points in the unit square (generator seeded ``seed + n``: x is drawn first, then y)."""
    generator = torch.Generator().manual_seed(seed + n)
    x = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    y = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    return _scaled_cost(x, y)


def gaussian_cloud_cost(n: int, seed: int) -> Tensor:
    """Squared-Euclidean cost (n, n), float64, scaled to a maximum of 1, between ``n`` points of N(0, I_2)
    and ``n`` points of N((1, 1), I_2) (generator seeded ``seed + n``: x is drawn first, then y)."""
    generator = torch.Generator().manual_seed(seed + n)
    x = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    y = torch.randn(n, 2, generator=generator, dtype=torch.float64) + 1.0
    return _scaled_cost(x, y)


@dataclass
class RoutingProblem:
    """Tokens to route to experts: ``tokens`` (N, 2) and ``centres`` (E, 2), float64; ``cost`` (N, E), the
    squared distance scaled to a maximum of 1; uniform marginals ``a`` (N,) = 1/N and ``b`` (E,) = 1/E."""

    tokens: Tensor
    centres: Tensor
    cost: Tensor
    a: Tensor
    b: Tensor


ROUTING_CLUSTER_SIZES = (128, 96, 80, 64, 48, 40, 32, 24)


def routing_problem(seed: int, cluster_sizes=ROUTING_CLUSTER_SIZES) -> RoutingProblem:
    """A routing toy: one expert per cluster, at its centre (3 × N(0, I_2)); cluster e holds
    ``cluster_sizes[e]`` tokens drawn from N(centre_e, I_2) (512 tokens, 8 experts by default;
    generator seeded ``seed + 1000``)."""
    generator = torch.Generator().manual_seed(seed + 1000)
    experts = len(cluster_sizes)
    centres = 3.0 * torch.randn(experts, 2, generator=generator, dtype=torch.float64)
    tokens = torch.cat(
        [
            centres[e] + torch.randn(int(size), 2, generator=generator, dtype=torch.float64)
            for e, size in enumerate(cluster_sizes)
        ]
    )
    return RoutingProblem(
        tokens,
        centres,
        _scaled_cost(tokens, centres),
        torch.full((len(tokens),), 1 / len(tokens), dtype=torch.float64),
        torch.full((experts,), 1 / experts, dtype=torch.float64),
    )
