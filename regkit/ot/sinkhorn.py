r"""Entropic optimal transport: the log-domain Sinkhorn algorithm and the Sinkhorn divergence.

For marginals :math:`a \in \Delta_n`, :math:`b \in \Delta_m`, a cost :math:`C \in \mathbb R^{n\times m}`
and :math:`\varepsilon > 0`,

.. math::

    \mathrm{OT}_\varepsilon(a, b) = \min_{P \in U(a, b)} \langle P, C\rangle
        + \varepsilon\, \mathrm{KL}(P \,\Vert\, a \otimes b)
    = \max_{f, g}\ \langle f, a\rangle + \langle g, b\rangle
        - \varepsilon \sum_{ij} a_i b_j \big(e^{(f_i + g_j - C_{ij})/\varepsilon} - 1\big).

The plan is :math:`P_{ij} = a_i b_j \exp((f_i + g_j - C_{ij})/\varepsilon)`; it is the same plan as
POT's ``ot.sinkhorn`` (whose entropy term differs from this KL by a constant on :math:`U(a, b)`).
Sinkhorn alternates the exact maximizations, in the log domain so that small
:math:`\varepsilon` neither overflows nor underflows:

.. math::

    g_j \leftarrow -\varepsilon \operatorname{LSE}_i\big(\log a_i + (f_i - C_{ij})/\varepsilon\big), \qquad
    f_i \leftarrow -\varepsilon \operatorname{LSE}_j\big(\log b_j + (g_j - C_{ij})/\varepsilon\big).

After a :math:`g` update the columns of :math:`P` are exact and the row sums are
:math:`a_i \exp((f_i - f_i^{\text{next}})/\varepsilon)`, so the L1 marginal error comes for free
with the next :math:`f` update. Gradients: the solver runs without autograd; the returned
:attr:`SinkhornResult.regularized_cost` evaluates the dual at the optimal (detached)
potentials, so by the envelope theorem its gradient with respect to the cost is the plan,
and with respect to ``a`` and ``b`` the potentials.

Shapes: ``a`` ``(..., n)``, ``b`` ``(..., m)``, ``cost`` ``(..., n, m)``; leading dimensions are
a batch of independent problems.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from regkit._checks import check_finite, check_tensor

__all__ = ["SinkhornResult", "sinkhorn", "sinkhorn_divergence", "check_problem"]


def _logsumexp_rows(work: torch.Tensor, kernel: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``logsumexp(kernel + shift[..., None, :], dim=-1)`` computed inside the preallocated ``work``
    buffer: no (n, m) temporary is allocated per call, which on large problems spares the page
    faults of fresh memory at every half-step."""
    torch.add(kernel, shift.unsqueeze(-2), out=work)
    top = work.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    work.sub_(top).exp_()
    return work.sum(dim=-1).log_() + top.squeeze(-1)


def check_problem(a, b, cost, eps: float | None = None, *, atol: float | None = None):
    """Validate an OT problem; ``None`` marginals become uniform. Returns ``(a, b, cost)``."""
    check_tensor("cost", cost, floating=True)
    if cost.ndim < 2:
        raise ValueError(f"cost must have shape (..., n, m), got {tuple(cost.shape)}")
    check_finite("cost", cost)
    n, m = cost.shape[-2:]
    a = torch.full(cost.shape[:-1], 1.0 / n, dtype=cost.dtype, device=cost.device) if a is None else a
    b = torch.full(cost.shape[:-2] + (m,), 1.0 / m, dtype=cost.dtype, device=cost.device) if b is None else b
    atol = atol if atol is not None else (1e-5 if cost.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-8)
    for name, weights, shape in (("a", a, cost.shape[:-1]), ("b", b, cost.shape[:-2] + (m,))):
        check_tensor(name, weights, floating=True)
        if weights.shape != shape:
            raise ValueError(f"{name} must have shape {tuple(shape)} to match cost {tuple(cost.shape)}, got {tuple(weights.shape)}")
        check_finite(name, weights)
        if bool((weights < 0).any()):
            raise ValueError(f"{name} must be non-negative, got a minimum of {float(weights.min())}")
        total = weights.sum(-1)
        if bool(((total - 1).abs() > atol).any()):
            raise ValueError(f"{name} must sum to one along its last dimension, got sums in [{float(total.min())}, {float(total.max())}]")
    if eps is not None and not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    return a.to(cost.dtype), b.to(cost.dtype), cost


@dataclass(frozen=True)
class SinkhornResult:
    """Potentials of an entropic OT problem and what follows from them.

    ``f`` ``(..., n)``, ``g`` ``(..., m)``; ``errors`` holds the largest (over the batch) L1
    marginal error after each iteration and ``times`` the wall time (seconds) at that point.
    """

    f: torch.Tensor
    g: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    cost: torch.Tensor
    eps: float
    n_iter: int
    converged: bool
    errors: list[float]
    times: list[float]

    @property
    def log_plan(self) -> torch.Tensor:
        """:math:`\\log P_{ij}`, ``(..., n, m)``."""
        return (
            (self.f.unsqueeze(-1) + self.g.unsqueeze(-2) - self.cost) / self.eps
            + self.a.log().unsqueeze(-1)
            + self.b.log().unsqueeze(-2)
        )

    @property
    def plan(self) -> torch.Tensor:
        """The transport plan :math:`P`, ``(..., n, m)``."""
        return self.log_plan.exp()

    @property
    def marginal_error(self) -> torch.Tensor:
        """:math:`\\lVert P1 - a\\rVert_1 + \\lVert P^\\top 1 - b\\rVert_1`, ``(...)``."""
        plan = self.plan
        return (plan.sum(-1) - self.a).abs().sum(-1) + (plan.sum(-2) - self.b).abs().sum(-1)

    @property
    def transport_cost(self) -> torch.Tensor:
        """:math:`\\langle P, C\\rangle`, ``(...)`` (what POT's ``sinkhorn2`` returns)."""
        return (self.plan * self.cost).sum((-2, -1))

    @property
    def regularized_cost(self) -> torch.Tensor:
        """:math:`\\mathrm{OT}_\\varepsilon` as the dual value at the potentials, ``(...)``.
        Differentiable in ``cost``, ``a`` and ``b`` (envelope theorem)."""
        mass = self.plan.sum((-2, -1))  # the potentials carry no gradient: only cost, a, b do
        return (self.f * self.a).sum(-1) + (self.g * self.b).sum(-1) - self.eps * (mass - 1)


def sinkhorn(
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    cost: torch.Tensor,
    eps: float,
    *,
    max_iter: int = 10_000,
    tol: float = 1e-6,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> SinkhornResult:
    """Log-domain Sinkhorn until the L1 marginal error is below ``tol`` (for every problem of
    the batch) or ``max_iter`` iterations. ``a``/``b`` = ``None`` means uniform weights;
    ``init`` = ``(f, g)`` warm-starts the potentials (the first half-step recomputes ``g`` from ``f``, so
    ``f`` is what carries the warm start).

    Example::

        x, y = torch.randn(500, 2), torch.randn(400, 2) + 1
        result = sinkhorn(None, None, sqeuclidean(x, y), eps=0.01)
        result.plan, result.transport_cost, result.converged, result.n_iter
    """
    a, b, cost = check_problem(a, b, cost, eps)
    if max_iter < 1:
        raise ValueError(f"max_iter must be positive, got {max_iter}")
    start = time.perf_counter()
    times: list[float] = []
    with torch.no_grad():
        scaled = cost.detach() / -eps  # -C / ε, computed once
        scaled_t = scaled.transpose(-1, -2).contiguous()  # both half-steps then reduce over contiguous rows
        work, work_t = torch.empty_like(scaled), torch.empty_like(scaled_t)
        log_a, log_b = a.detach().log(), b.detach().log()
        if init is None:
            f = torch.zeros_like(log_a)
        else:
            f = init[0].detach().to(cost.dtype).expand_as(log_a).clone()
        errors: list[float] = []
        converged = False
        for _ in range(max_iter):
            g = -eps * _logsumexp_rows(work_t, scaled_t, f / eps + log_a)
            f_next = -eps * _logsumexp_rows(work, scaled, g / eps + log_b)
            # rows of the plan (f, g) sum to a * exp((f - f_next) / ε); its columns are exact
            error = (a.detach() * torch.expm1((f - f_next) / eps)).abs().sum(-1).max()
            errors.append(float(error))
            times.append(time.perf_counter() - start)
            if errors[-1] < tol:
                converged = True
                break
            f = f_next
        if not converged:  # return the pair with exact rows, the last computed
            f = f_next
    return SinkhornResult(f, g, a, b, cost, float(eps), len(errors), converged, errors, times)


def sinkhorn_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    cost_fn=None,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> torch.Tensor:
    r""":math:`S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
    - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha) - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta)`
    between point clouds ``x`` ``(..., n, d)`` and ``y`` ``(..., m, d)`` (Genevay et al., 2018;
    Feydy et al., 2019): non-negative, zero iff the measures agree, differentiable in the points.
    ``cost_fn`` defaults to the squared Euclidean cost."""
    from regkit.ot.costs import sqeuclidean

    cost_fn = cost_fn or sqeuclidean
    solve = lambda p, q, u, v: sinkhorn(u, v, cost_fn(p, q), eps, max_iter=max_iter, tol=tol).regularized_cost  # noqa: E731
    return solve(x, y, a, b) - 0.5 * (solve(x, x, a, a) + solve(y, y, b, b))
