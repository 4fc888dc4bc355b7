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

**Computation.** The iterates are those of the log domain, computed in the scaling form of the
stabilized Sinkhorn algorithm (Schmitzer 2019, Alg. 2; see :func:`_iterate`): a half-step is one
matrix–vector product with the kernel of absorbed potentials, no exponential; the log-domain
half-step takes over where the scalings would lose precision. Memory: the cost plus one ``(n, m)``
kernel. ε-scaling (``eps_init``) and point clouds that are never materialized
(:class:`~regkit.ot.geometry.PointCloud`, :mod:`regkit.ot.online`) go through the same function.

Shapes: ``a`` ``(..., n)``, ``b`` ``(..., m)``, ``cost`` ``(..., n, m)``; leading dimensions are
a batch of independent problems.

Conventions shared by every solver of :mod:`regkit.ot` (:func:`sinkhorn`,
:func:`sinkhorn_divergence`, :func:`~regkit.ot.sinkhorn_newton_sparse`,
:func:`~regkit.ot.sparsity_constrained_ot`, :func:`~regkit.ot.monge_gap`):

* **Half precision.** A float16/bfloat16 cost is solved in float32: rounded to half precision,
  the potentials would misplace the plan's exponents by many units (bfloat16 keeps 8 bits), so
  a half-precision iteration cannot meet any useful tolerance. What is computed from the
  solution — plan, log-plan, transport and regularized costs — is returned in the cost's dtype
  (gradients flow back to it); the potentials, marginals and the marginal error stay float32.
  ``converged`` is true only if the plan *as returned* (rounded to half precision) meets ``tol``,
  so tolerances below the half-precision rounding of the plan (about 4e-3 in bfloat16) report
  ``converged=False``. Half-precision marginals are accepted when they sum to one within their
  own rounding (``torch.finfo(dtype).eps``).
* **Zero weights.** Entries of ``a`` or ``b`` may be 0: their rows/columns of the plan are 0, their
  potentials are the (soft) c-transforms of the other side, and the gradient of
  :attr:`SinkhornResult.regularized_cost` with respect to such a weight is the envelope gradient
  :math:`f_i - \varepsilon` (its limit from positive weights), never NaN.
* **Arguments.** Every numeric and enumerated argument is checked; a bad one raises
  ``ValueError`` naming it, its value and the valid range.

Replicated in ``notebooks/sinkhorn_newton_sparse.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch
from torch.autograd.function import once_differentiable

from regkit._checks import check_finite, check_number, check_tensor
from regkit.ot.costs import sqeuclidean
from regkit.ot.geometry import PointCloud

__all__ = ["SinkhornResult", "anneal", "check_problem", "epsilon_schedule", "sinkhorn", "sinkhorn_divergence"]

_HALF = (torch.float16, torch.bfloat16)


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the OT solvers compute in: float32 for float16/bfloat16, else ``dtype``."""
    return torch.float32 if dtype in _HALF else dtype


def _logsumexp_(work: torch.Tensor, dim: int) -> torch.Tensor:
    """``logsumexp(work, dim)``, overwriting ``work`` (no (n, m) temporary is allocated: on large
    problems that spares the page faults of fresh memory at every call)."""
    top = work.amax(dim=dim, keepdim=True).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)  # 0 where not finite
    work.sub_(top).exp_()
    return work.sum(dim=dim).log_() + top.squeeze(dim)


def _exponent_(work, cost, eps, rows=None, cols=None) -> torch.Tensor:
    """``work ← rows[..., :, None] + cols[..., None, :] − cost / ε`` in place (``None``: 0); returns ``work``."""
    if rows is None:
        torch.mul(cost, -1.0 / eps, out=work)
    else:
        torch.add(rows.unsqueeze(-1), cost, alpha=-1.0 / eps, out=work)
    return work if cols is None else work.add_(cols.unsqueeze(-2))


def _matvec(kernel: torch.Tensor, vector: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """``K v`` (``Kᵀ v`` when ``transpose``) for ``K`` ``(..., n, m)``: one BLAS gemv per problem. A batched
    product with a single column runs about 10× slower on the CPU than the same gemvs one by one (torch 2.13,
    n = 1000), so a batch of large problems loops; many small problems stay one batched product."""
    matrix = kernel.transpose(-1, -2) if transpose else kernel
    if kernel.ndim == 2:
        return torch.mv(matrix, vector)
    if kernel.shape[-1] * kernel.shape[-2] < 2**14:
        return torch.matmul(matrix, vector.unsqueeze(-1)).squeeze(-1)
    flat_matrix, flat_vector = matrix.reshape(-1, *matrix.shape[-2:]), vector.reshape(-1, vector.shape[-1])
    out = torch.empty(flat_matrix.shape[:-1], dtype=vector.dtype, device=vector.device)
    for k in range(len(out)):
        torch.mv(flat_matrix[k], flat_vector[k], out=out[k])
    return out.reshape(matrix.shape[:-1])


def _scaling_bound(dtype: torch.dtype) -> float:
    """τ such that scalings ``u, v`` in ``[e^{-τ}, e^{τ}]`` keep the kernel's underflowed entries
    negligible: an entry below ``tiny`` weighs at most ``e^{2τ} · tiny = sqrt(tiny)`` (1e-19 in
    float32, 1e-154 in float64) against the row or column sum it enters."""
    return -math.log(torch.finfo(dtype).tiny) / 4


def _sum_tolerance(dtype: torch.dtype) -> float:
    """How far from one a vector of weights in ``dtype`` may sum."""
    return torch.finfo(dtype).eps if dtype in _HALF else 1e-5 if dtype == torch.float32 else 1e-8


def check_problem(a, b, cost, eps: float | None = None, *, atol: float | None = None):
    """Validate an OT problem and return ``(a, b, cost)``.

    ``cost`` ``(..., n, m)`` must be a finite, non-empty floating tensor (``n, m ≥ 1``); ``a``
    ``(..., n)`` and ``b`` ``(..., m)`` non-negative (zeros allowed), finite, summing to one
    within ``atol`` (a number ≥ 0; default 1e-8 in float64, 1e-5 in float32,
    ``finfo(dtype).eps`` in half precision, for the less precise of the weights' and the cost's
    dtypes); ``None`` marginals become uniform. ``eps``, when given, must be a positive finite
    number with ``max |cost| / eps`` far inside the float range (else the exponents overflow).
    Returns the marginals in the working dtype (float32 for a half-precision cost, else the
    cost's dtype) and the cost unchanged. Raises ``TypeError``/``ValueError`` naming the
    argument.
    """
    check_tensor("cost", cost, floating=True)
    if cost.ndim < 2 or cost.numel() == 0:
        raise ValueError(f"cost must have shape (..., n, m) and be non-empty (n, m >= 1), got {tuple(cost.shape)}")
    if atol is not None:
        atol = check_number("atol", atol, low=0)
    n, m = cost.shape[-2:]
    work = _working_dtype(cost.dtype)
    low, high = torch.aminmax(cost.detach())  # one pass for finiteness and range: NaN and inf propagate
    bound = max(abs(float(low)), abs(float(high)))
    if not math.isfinite(bound):
        check_finite("cost", cost)
    if eps is not None:
        eps = check_number("eps", eps, low=0, low_open=True)
        limit = torch.finfo(work).max / 16  # the exponents (f + g - C) / ε must not overflow
        if bound / eps > limit:
            raise ValueError(
                f"eps = {eps:g} is too small for this cost: max |cost| / eps = {bound / eps:.3g} exceeds "
                f"{limit:.3g}, the range of {work} (rescale the cost or raise eps)"
            )
    a = torch.full(cost.shape[:-1], 1.0 / n, dtype=work, device=cost.device) if a is None else a
    b = torch.full(cost.shape[:-2] + (m,), 1.0 / m, dtype=work, device=cost.device) if b is None else b
    for name, weights, shape in (("a", a, cost.shape[:-1]), ("b", b, cost.shape[:-2] + (m,))):
        check_tensor(name, weights, floating=True)
        if weights.shape != shape:
            raise ValueError(
                f"{name} must have shape {tuple(shape)} to match cost {tuple(cost.shape)}, got {tuple(weights.shape)}"
            )
        check_finite(name, weights)
        if bool((weights < 0).any()):
            raise ValueError(f"{name} must be non-negative, got a minimum of {float(weights.min())}")
        tolerance = atol if atol is not None else max(_sum_tolerance(weights.dtype), _sum_tolerance(cost.dtype))
        total = weights.to(work).sum(-1)
        if bool(((total - 1).abs() > tolerance).any()):
            raise ValueError(
                f"{name} must sum to one along its last dimension, "
                f"got sums in [{float(total.min())}, {float(total.max())}]"
            )
    return a.to(work), b.to(work), cost


class _EntropicPlan(torch.autograd.Function):
    """:math:`P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\\varepsilon}`, formed in the log domain so
    that no factor overflows. Backward (``f``, ``g`` carry no gradient): ``∂P/∂C = -P/ε``,
    ``∂P_ij/∂a_i = b_j e^{(f_i + g_j - C_ij)/ε}`` and symmetrically for ``b`` — finite where a
    weight is 0 (the limit from positive weights), where autograd through ``log a`` gives 0·∞ = NaN."""

    @staticmethod
    def forward(ctx, f, g, cost, a, b, eps):
        log_a, log_b = a.log().unsqueeze(-1), b.log().unsqueeze(-2)
        plan = (f.unsqueeze(-1) + g.unsqueeze(-2) - cost).div_(eps).add_(log_a).add_(log_b).exp_()
        ctx.save_for_backward(f, g, cost, log_a, log_b, plan)
        ctx.eps = eps
        return plan

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        f, g, cost, log_a, log_b, plan = ctx.saved_tensors
        grad_cost = grad_a = grad_b = None
        if ctx.needs_input_grad[2]:
            grad_cost = grad * plan / -ctx.eps
        if ctx.needs_input_grad[3] or ctx.needs_input_grad[4]:
            exponent = (f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / ctx.eps
            if ctx.needs_input_grad[3]:
                grad_a = (grad * (exponent + log_b).exp()).sum(-1)
            if ctx.needs_input_grad[4]:
                grad_b = (grad * (exponent + log_a).exp()).sum(-2)
        return None, None, grad_cost, grad_a, grad_b, None


@dataclass(frozen=True)
class SinkhornResult:
    """Potentials of an entropic OT problem and what follows from them.

    ``f`` ``(..., n)``, ``g`` ``(..., m)``, ``a``, ``b`` in the working dtype (float32 for a
    half-precision cost, else the cost's dtype); ``cost`` as given. ``errors`` holds the largest
    (over the batch) L1 marginal error after each iteration and ``times`` the wall time
    (seconds) at that point. The properties are computed in the working dtype and returned in
    the cost's dtype (but :attr:`marginal_error`).
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

    def _plan(self) -> torch.Tensor:
        """The plan in the working dtype; differentiable in ``cost``, ``a`` and ``b``."""
        cost = self.cost.to(self.f.dtype)
        return _EntropicPlan.apply(self.f.detach(), self.g.detach(), cost, self.a, self.b, self.eps)

    def _marginal_error(self) -> torch.Tensor:
        """L1 marginal error, working dtype, of the plan as returned (rounded to the cost's dtype)."""
        plan = self._plan().detach().to(self.cost.dtype).to(self.a.dtype)
        return (plan.sum(-1) - self.a).abs().sum(-1) + (plan.sum(-2) - self.b).abs().sum(-1)

    def _regularized_cost(self) -> torch.Tensor:
        """:attr:`regularized_cost` in the working dtype."""
        mass = self._plan().sum((-2, -1))  # the potentials carry no gradient: only cost, a, b do
        return (self.f.detach() * self.a).sum(-1) + (self.g.detach() * self.b).sum(-1) - self.eps * (mass - 1)

    @property
    def log_plan(self) -> torch.Tensor:
        """:math:`\\log P_{ij}`, ``(..., n, m)`` (``-inf`` on the rows/columns of zero weights)."""
        cost = self.cost.to(self.f.dtype)
        log_plan = (
            (self.f.unsqueeze(-1) + self.g.unsqueeze(-2) - cost) / self.eps
            + self.a.log().unsqueeze(-1)
            + self.b.log().unsqueeze(-2)
        )
        return log_plan.to(self.cost.dtype)

    @property
    def plan(self) -> torch.Tensor:
        """The transport plan :math:`P`, ``(..., n, m)``."""
        return self._plan().to(self.cost.dtype)

    @property
    def marginal_error(self) -> torch.Tensor:
        """:math:`\\lVert P1 - a\\rVert_1 + \\lVert P^\\top 1 - b\\rVert_1` of :attr:`plan` as
        returned (rounded to the cost's dtype), ``(...)``, in the working dtype (a diagnostic to
        compare with ``tol``: in half precision its own rounding would blur that comparison)."""
        return self._marginal_error()

    @property
    def transport_cost(self) -> torch.Tensor:
        """:math:`\\langle P, C\\rangle`, ``(...)`` (what POT's ``sinkhorn2`` returns)."""
        return (self._plan() * self.cost.to(self.f.dtype)).sum((-2, -1)).to(self.cost.dtype)

    @property
    def regularized_cost(self) -> torch.Tensor:
        """:math:`\\mathrm{OT}_\\varepsilon` as the dual value at the potentials, ``(...)``.
        Differentiable in ``cost``, ``a`` and ``b`` (envelope theorem): the gradients are the
        plan and :math:`f - \\varepsilon`, :math:`g - \\varepsilon` at convergence, also at
        zero weights."""
        return self._regularized_cost().to(self.cost.dtype)


def _rounded_plan_error(f, g, a, b, cost, eps) -> float:
    """Largest (over the batch) L1 marginal error of the plan of ``(f, g)`` once rounded to the
    cost's dtype: what ``converged`` must vouch for when the cost is in half precision."""
    return float(SinkhornResult(f, g, a, b, cost, eps, 0, False, [], [])._marginal_error().max())


def _check_init(init, n_shape, m_shape, dtype):
    """Validate warm-start potentials ``(f, g)``: finite floating tensors that broadcast to
    ``n_shape`` and ``m_shape``; returns ``f`` (detached, expanded, in ``dtype``)."""
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise ValueError(f"init must be a pair (f, g) of potentials, got {type(init).__name__}")
    for name, value, shape in (("init[0]", init[0], n_shape), ("init[1]", init[1], m_shape)):
        check_tensor(name, value, floating=True)
        try:
            fits = torch.broadcast_shapes(value.shape, shape) == shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{name} must broadcast to shape {tuple(shape)}, got {tuple(value.shape)}")
        check_finite(name, value)
    return init[0].detach().to(dtype).expand(n_shape).clone()


def sinkhorn(
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    cost: torch.Tensor | PointCloud,
    eps: float,
    *,
    max_iter: int = 10_000,
    tol: float = 1e-6,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    eps_init: float | None = None,
    eps_decay: float = 0.5,
) -> SinkhornResult:
    """Log-domain Sinkhorn until the L1 marginal error is below ``tol`` (for every problem of
    the batch) or ``max_iter`` iterations.

    Args:
        a, b: marginals ``(..., n)``, ``(..., m)``, non-negative (zeros allowed), summing to one;
            ``None`` means uniform weights.
        cost: ``(..., n, m)`` finite floating cost; float16/bfloat16 is solved in float32 (see
            the module docstring). A :class:`~regkit.ot.geometry.PointCloud` instead solves online,
            never forming the ``(n, m)`` cost (:func:`~regkit.ot.online.sinkhorn_online`, which
            returns an :class:`~regkit.ot.online.OnlineSinkhornResult` with a lazy plan).
        eps: regularization ε, a positive finite number.
        max_iter: most iterations, an integer ≥ 1.
        tol: L1 marginal error to reach, a number ≥ 0 (0 runs all ``max_iter`` iterations).
        init: ``(f, g)`` warm-starts the potentials (the first half-step recomputes ``g`` from
            ``f``, so ``f`` is what carries the warm start).
        eps_init, eps_decay: ε-scaling (:func:`epsilon_schedule`): one iteration at each of
            ``eps_init · eps_decay^k`` above ``eps``, then iterations at ``eps``; the counts,
            errors and times of every stage are in the result. ``None`` (default): plain Sinkhorn.

    Returns:
        A :class:`SinkhornResult`; ``converged`` says the returned plan meets ``tol`` at ``eps``.

    Raises:
        ValueError: naming the argument, for any argument out of range (see :func:`check_problem`).

    Example::

        x, y = torch.randn(500, 2), torch.randn(400, 2) + 1
        result = sinkhorn(None, None, sqeuclidean(x, y), eps=0.01)
        result.plan, result.transport_cost, result.converged, result.n_iter
    """
    if isinstance(cost, PointCloud):
        from regkit.ot.online import sinkhorn_online  # which builds on this module

        options = dict(max_iter=max_iter, tol=tol, init=init, eps_init=eps_init, eps_decay=eps_decay)
        return sinkhorn_online(a, b, cost, eps, **options)
    a, b, cost = check_problem(a, b, cost, eps)
    eps = check_number("eps", eps, low=0, low_open=True)
    max_iter = check_number("max_iter", max_iter, low=1, integer=True)
    tol = check_number("tol", tol, low=0, high=math.inf)
    f = None if init is None else _check_init(init, a.shape, b.shape, a.dtype)
    schedule = epsilon_schedule(eps, eps_init, eps_decay)
    return anneal(lambda *stage: _iterate(a, b, cost, *stage), schedule, max_iter, tol, f)


def epsilon_schedule(eps: float, eps_init: float | None = None, eps_decay: float = 0.5) -> list[float]:
    """ε-scaling: ``[ε₀, ε₀·decay, ε₀·decay², …, ε]``, geometric from ``eps_init`` down to (and
    ending at) the target ``eps``; ``[eps]`` when ``eps_init`` is ``None`` or ``≤ eps``. As in
    GeomLoss's ``epsilon_schedule`` and OTT-JAX's ``Epsilon(init, decay)`` scheduler, Sinkhorn runs
    one iteration at each ε above the target, warm-started from the previous one (Schmitzer 2019;
    Feydy 2020, §3.3). A good ``eps_init`` is the cost's largest entry (the cloud's squared diameter).
    Raises ``ValueError`` naming ``eps_init`` (positive, finite) or ``eps_decay`` (in (0, 1))."""
    eps = check_number("eps", eps, low=0, low_open=True)
    if eps_init is None:
        return [eps]
    eps_init = check_number("eps_init", eps_init, low=0, low_open=True)
    eps_decay = check_number("eps_decay", eps_decay, low=0, high=1, low_open=True, high_open=True)
    stages = max(0, math.ceil(math.log(eps / eps_init) / math.log(eps_decay) - 1e-9))
    return [eps_init * eps_decay**k for k in range(stages)] + [eps]


def anneal(solve, schedule: list[float], max_iter: int, tol: float, f: torch.Tensor | None):
    """Run ``solve(eps, max_iter, tol, f_init) -> result`` along an ε ``schedule``: one iteration
    (``tol = 0``) at each ε but the last, each warm-started from the previous potential ``f``,
    then up to the remaining ``max_iter`` iterations at the target. Returns the last result with
    the iteration count, error and time histories of all stages (``times`` from the start)."""
    start = time.perf_counter()
    n_iter, errors, times = 0, [], []
    for k, eps_k in enumerate(schedule):
        last = k == len(schedule) - 1 or n_iter + 1 >= max_iter
        offset = time.perf_counter() - start
        result = solve(eps_k, max_iter - n_iter if last else 1, tol if last else 0.0, f)
        n_iter += result.n_iter
        errors += result.errors
        times += [offset + t for t in result.times]
        if last:
            return replace(result, n_iter=n_iter, errors=errors, times=times)
        f = result.f


def _iterate(a, b, cost, eps, max_iter, tol, f) -> SinkhornResult:
    r"""Sinkhorn iterations on a validated dense problem from the potential ``f`` (``None``: 0).

    The iterations are those of the log domain (module docstring), run in the scaling form of
    the stabilized Sinkhorn algorithm (Schmitzer 2019, Alg. 2): with the kernel
    :math:`K_{ij} = e^{(f^0_i + g^0_j - C_{ij})/\varepsilon}` of absorbed potentials
    :math:`f^0, g^0` and the scalings :math:`u = e^{(f - f^0)/\varepsilon}`,
    :math:`v = e^{(g - g^0)/\varepsilon}`, a half-step is one matrix–vector product,
    :math:`v \leftarrow 1 / K^\top(a \odot u)`, :math:`u \leftarrow 1 / K(b \odot v)`: no
    exponential, one pass over memory. A half-step whose scalings leave
    :math:`[e^{-\tau}, e^{\tau}]` (:func:`_scaling_bound`; also ``inf``/``0`` where a row of
    ``K`` underflowed entirely) is redone in the log domain, and the kernel is rebuilt from the
    new potentials (absorption). The only ``(n, m)`` buffer is ``K``, which also serves the
    log-domain half-steps."""
    start = time.perf_counter()
    half = cost.dtype in _HALF
    with torch.no_grad():
        work_cost = cost.detach().to(a.dtype)  # the cost itself, or its float32 copy in half precision
        kernel = torch.empty_like(work_cost)
        a_, b_ = a.detach(), b.detach()
        log_a, log_b = a_.log(), b_.log()
        # a zero weight's row is empty: its term of the error is 0 (not 0 · expm1(...), which may be 0 · ∞)
        positive = a_ > 0 if bool((a_ == 0).any()) else None
        f = torch.zeros_like(log_a) if f is None else f
        bound = _scaling_bound(a.dtype)
        low, high = math.exp(-bound), math.exp(bound)
        # half precision: the plan is returned rounded, so the float32 solve aims at half the tolerance
        # and stops only once the rounded plan meets it too
        target = tol / 2 if half else tol
        errors: list[float] = []
        times: list[float] = []
        converged, fresh = False, True  # fresh: the kernel is to be rebuilt from the explicit potential f
        for _ in range(max_iter):
            for attempt in (0, 1):
                if fresh:  # g half-step in the log domain, then absorb (f, g) into the kernel
                    g0 = -eps * _logsumexp_(_exponent_(kernel, work_cost, eps, f / eps + log_a), dim=-2)
                    f0 = f
                    _exponent_(kernel, work_cost, eps, f0 / eps, g0 / eps).exp_()
                    u, v = torch.ones_like(f0), torch.ones_like(g0)
                    fresh = False
                else:
                    v = _matvec(kernel, a_ * u, transpose=True).reciprocal_()
                u_next = _matvec(kernel, b_ * v).reciprocal_()
                # rows of the plan (f, g) sum to a * u / u_next; its columns are exact
                row_error = a_ * (u / u_next - 1)
                if positive is not None:
                    row_error = torch.where(positive, row_error, 0.0)
                error, u_low, u_high, v_low, v_high = torch.stack(
                    [row_error.abs().sum(-1).max(), *torch.aminmax(u_next), *torch.aminmax(v)]
                ).tolist()
                if attempt == 0 and not (low <= v_low and v_high <= high):  # redo from f in the log domain
                    f, fresh = f0 + eps * u.log(), True
                    continue
                break
            f_next = None  # the explicit potentials are formed only where needed (small problems: few ops)
            if not (low <= u_low and u_high <= high):  # the f half-step in the log domain; the kernel is
                g = g0 + eps * v.log()  # rebuilt at the next g half-step
                f_next = -eps * _logsumexp_(_exponent_(kernel, work_cost, eps, None, g / eps + log_b), dim=-1)
                row_error = a_ * torch.expm1((f0 + eps * u.log() - f_next) / eps)
                if positive is not None:
                    row_error = torch.where(positive, row_error, 0.0)
                error, fresh = float(row_error.abs().sum(-1).max()), True
            errors.append(error)
            times.append(time.perf_counter() - start)
            if error < target and (
                not half or _rounded_plan_error(f0 + eps * u.log(), g0 + eps * v.log(), a, b, cost, eps) < tol
            ):
                converged = True
                break
            if fresh:
                f = f_next
            else:
                u = u_next
        g = g0 + eps * v.log()
        if f_next is None:
            f_next = f0 + eps * u_next.log()
        f_now = f0 + eps * u.log()
        f = f_next if not converged else f_now if positive is None else torch.where(positive, f_now, f_next)
    return SinkhornResult(f, g, a, b, cost, eps, len(errors), converged, errors, times)


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
    online: bool = False,
    eps_init: float | None = None,
    eps_decay: float = 0.5,
) -> torch.Tensor:
    r""":math:`S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
    - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha) - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta)`
    between point clouds ``x`` ``(..., n, d)`` and ``y`` ``(..., m, d)`` with weights ``a``
    ``(..., n)``, ``b`` ``(..., m)`` (``None``: uniform; zeros allowed) (Genevay et al., 2018;
    Feydy et al., 2019): non-negative, zero iff the measures agree, differentiable in the points
    and the weights. Returns a tensor ``(...)`` in the cost's dtype; the three terms are combined
    in the working dtype (float32 for half precision), where their difference does not cancel
    away. ``cost_fn(x, y)`` (a callable) defaults to the squared Euclidean cost, invariant to
    translating both clouds. ``online=True`` solves the three problems on
    :class:`~regkit.ot.geometry.PointCloud` geometries (squared Euclidean; ``cost_fn`` must then
    be ``None``), in memory O((n + m)·d): the GeomLoss use case, a loss between clouds of
    10⁴–10⁵ points, with gradients computed blockwise. It equals GeomLoss's
    ``SamplesLoss("sinkhorn", p=2, blur=sqrt(eps / 2), debias=True)`` times 2 (GeomLoss's cost is
    :math:`\lVert x - y\rVert^2 / 2`). ``eps``, ``max_iter``, ``tol``, ``eps_init``, ``eps_decay``
    are passed to :func:`sinkhorn` (validated there, errors name them)."""
    for name, cloud in (("x", x), ("y", y)):
        if isinstance(cloud, torch.Tensor) and cloud.ndim >= 2 and cloud.shape[-2] == 0:
            raise ValueError(f"{name} must hold at least one point, got shape {tuple(cloud.shape)}")
    if online and cost_fn is not None:
        raise ValueError("cost_fn must be None when online=True (the online cost is squared Euclidean)")
    cost_fn = sqeuclidean if cost_fn is None else cost_fn
    if not callable(cost_fn):
        raise TypeError(f"cost_fn must be callable (x, y) -> cost, got {type(cost_fn).__name__}")
    options = dict(max_iter=max_iter, tol=tol, eps_init=eps_init, eps_decay=eps_decay)

    def solve(p, q, u, v):
        cost = PointCloud(p, q) if online else cost_fn(p, q)
        return sinkhorn(u, v, cost, eps, **options)._regularized_cost(), cost.dtype

    (xy, dtype), (xx, _), (yy, _) = solve(x, y, a, b), solve(x, x, a, a), solve(y, y, b, b)
    return (xy - 0.5 * (xx + yy)).to(dtype)
