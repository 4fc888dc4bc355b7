r"""Sparsity-constrained optimal transport.

Liu, Puigcerver & Blondel, "Sparsity-Constrained Optimal Transport", ICLR 2023,
arXiv:2209.15466.

Every column of the plan (e.g. an expert receiving tokens) may have at most :math:`k` non-zeros:

.. math::

    \min_{T \in U(a, b)} \langle T, C\rangle + \sum_j \Omega(t_j), \qquad
    \Omega(t) = \tfrac\gamma2 \lVert t\rVert_2^2 + \iota\{\lVert t\rVert_0 \le k\}.

Its conjugate is :math:`\Omega^*_k(s) = \tfrac1{2\gamma}\sum_{i \in \operatorname{top}_k(s)} [s_i]_+^2`,
which gives two smooth concave problems, solved with L-BFGS on analytic gradients computed in
torch (scipy's L-BFGS-B driver by default, ``torch.optim.LBFGS`` on request):

* dual: :math:`\max_{\alpha,\beta}\ \alpha^\top a + \beta^\top b - \sum_j \Omega^*_k(\alpha + \beta_j\mathbf 1 - c_j)`,
  plan :math:`t_j = \tfrac1\gamma[\alpha + \beta_j - c_j]_+` on the column's top :math:`k` entries;
* semi-dual: :math:`\max_\alpha\ \alpha^\top a - \sum_j b_j \max_{\Omega}(\alpha - c_j)`, plan
  :math:`t_j = b_j\, \operatorname{Proj}_{\Delta, k}\big((\alpha - c_j)/(\gamma b_j)\big)`, the projection
  onto the simplex restricted to :math:`k`-sparse vectors.

These are POT's conventions (``ot.smooth.smooth_ot_dual(..., reg_type="sparsity_constrained",
max_nz=k)``, with ``reg = γ``). :math:`k = 1` gives an assignment-like plan (exact OT for
uniform square problems), large :math:`k` the quadratically regularized plan. The dual is a
relaxation of a non-convex problem: for small :math:`k` the plan can miss the marginals, so
always look at :attr:`SparseOTResult.marginal_error`.
Shapes: ``a`` ``(n,)``, ``b`` ``(m,)``, ``cost`` ``(n, m)``.

Conventions as for every solver of :mod:`regkit.ot` (see :mod:`regkit.ot.sinkhorn`): a
float16/bfloat16 cost is solved in float32 and the plan returned in the cost's dtype (the
potentials stay float32); zero weights are allowed — their rows and columns carry no mass in
any feasible plan, so the problem is solved without them and they get all-zero rows/columns
(their potentials are set just low enough to give them none); every numeric and enumerated
argument is checked, a bad one raising ``ValueError`` that names it.

Replicated in ``notebooks/sparsity_constrained_ot.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from regkit._checks import check_choice, check_finite, check_number, check_tensor
from regkit.ot.sinkhorn import _working_dtype, check_problem

__all__ = ["SparseOTResult", "sparse_simplex_projection", "sparsity_constrained_ot"]


@dataclass(frozen=True)
class SparseOTResult:
    """Solution of sparsity-constrained OT. ``plan`` ``(n, m)`` in the cost's dtype; ``alpha``
    ``(n,)``, ``beta`` ``(m,)`` (``None`` for the semi-dual), ``a``, ``b`` in the working dtype
    (float32 for a half-precision cost); ``cost`` as given (detached). ``objective`` is the
    (semi-)dual value; ``errors`` the gradient's largest entry after each L-BFGS function
    evaluation; ``converged`` says the solver met its stopping rule before ``max_iter`` (it does
    not vouch for the marginals: see :attr:`marginal_error`)."""

    plan: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor | None
    a: torch.Tensor
    b: torch.Tensor
    cost: torch.Tensor
    objective: float
    n_iter: int
    converged: bool
    errors: list[float]

    @property
    def marginal_error(self) -> torch.Tensor:
        """:math:`\\lVert T1-a\\rVert_1 + \\lVert T^\\top 1-b\\rVert_1` of :attr:`plan` as returned, a
        0-dim tensor in the working dtype (as :attr:`regkit.ot.SinkhornResult.marginal_error`)."""
        plan = self.plan.to(self.a.dtype)
        return (plan.sum(1) - self.a).abs().sum() + (plan.sum(0) - self.b).abs().sum()

    @property
    def transport_cost(self) -> torch.Tensor:
        """:math:`\\langle T, C\\rangle`, a 0-dim tensor in the cost's dtype (computed in the working dtype)."""
        return (self.plan.to(self.a.dtype) * self.cost.to(self.a.dtype)).sum().to(self.cost.dtype)

    @property
    def nonzeros_per_column(self) -> torch.Tensor:
        """Number of non-zero entries of each column of the plan, ``(m,)``."""
        return (self.plan > 0).sum(0)


def _top_k_columns(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ``k`` largest entries of every column, with their rows (None: all rows, k ≥ n)."""
    if k >= values.shape[0]:
        return values, None
    return values.topk(k, dim=0)


def _scatter_columns(top: torch.Tensor, rows: torch.Tensor | None, shape) -> torch.Tensor:
    if rows is None:
        return top
    return torch.zeros(shape, dtype=top.dtype, device=top.device).scatter_(0, rows, top)


def sparse_simplex_projection(values: torch.Tensor, k: int) -> torch.Tensor:
    """Project every column of ``values`` ``(n, m)`` onto the probability simplex restricted
    to vectors with at most ``k`` non-zeros: keep the column's ``k`` largest entries and
    project them onto the simplex (sort-based threshold), the rest are zero.

    ``values`` must be a finite floating tensor with ``n ≥ 1`` (half precision is computed in
    float32 and returned in its dtype), ``k`` an integer ≥ 1. Returns ``(n, m)``, every column
    non-negative, summing to one, with at most ``k`` non-zeros. Raises ``ValueError`` naming
    ``values`` or ``k``.
    """
    check_tensor("values", values, ndim=2, floating=True)
    if values.shape[0] == 0:
        raise ValueError(f"values must have at least one row, got shape {tuple(values.shape)}")
    check_finite("values", values)
    k = check_number("k", k, low=1, integer=True)
    return _project(values.to(_working_dtype(values.dtype)), k).to(values.dtype)


def _project(values: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`sparse_simplex_projection` without the checks (the solvers' inner loop)."""
    top, rows = _top_k_columns(values, k)
    top, order = top.sort(dim=0, descending=True)
    rows = order if rows is None else rows.gather(0, order)
    cumulative = top.cumsum(0) - 1
    count = torch.arange(1, top.shape[0] + 1, dtype=top.dtype, device=top.device).unsqueeze(1)
    # ≥ 1 in exact arithmetic (the largest entry is always kept); the clamp keeps an overflowed
    # column (inf - inf = NaN compares false everywhere) from indexing row -1
    support = (top - cumulative / count > 0).sum(0, keepdim=True).clamp_min_(1)
    threshold = cumulative.gather(0, support - 1) / support
    return _scatter_columns((top - threshold).clamp_min(0), rows, values.shape)


def _dual_value_and_grad(params, a, b, cost, k, gamma):
    n = a.shape[0]
    alpha, beta = params[:n], params[n:]
    top, rows = _top_k_columns((alpha.unsqueeze(1) - cost).add_(beta), k)
    transported = top.clamp_min_(0).div_(gamma)  # the plan's non-zero candidates, (k, m)
    value = alpha @ a + beta @ b - 0.5 * gamma * transported.pow(2).sum()
    if rows is None:
        row_sums = transported.sum(1)
    else:  # the row sums without materializing the (n, m) plan: it is only built for the result
        row_sums = torch.zeros_like(a).index_add_(0, rows.flatten(), transported.flatten())
    grad = torch.cat([a - row_sums, b - transported.sum(0)])
    return value, grad, lambda: _scatter_columns(transported, rows, cost.shape)


def _semi_dual_value_and_grad(alpha, a, b, cost, k, gamma):
    shifted = alpha.unsqueeze(1) - cost
    # a column with b_j = 0 carries no mass and adds b_j · max_Ω(...) = 0: project it with any
    # finite scale (1) instead of dividing by 0, then its plan column and term are exactly 0
    scale = gamma * b
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    simplex = _project(shifted / scale, k)
    per_column = (shifted * simplex).sum(0) - 0.5 * scale * (simplex * simplex).sum(0)
    plan = simplex * b
    return alpha @ a - per_column @ b, a - plan.sum(1), lambda: plan


def _embed(z, keep_a, keep_b, b, cost, gamma, formulation):
    """Potentials of the problem without its zero weights → potentials of the whole problem
    that give the zero-weight rows and columns no mass and leave the rest of the plan as is."""
    n_kept = int(keep_a.sum())
    alpha = cost.new_zeros(keep_a.shape[0])
    alpha[keep_a] = z[:n_kept]
    # a margin above the rounding of α + β − c, so that "no mass" survives the evaluation's own rounding
    slack = 16 * torch.finfo(cost.dtype).eps * (float(cost.abs().max()) + float(z.abs().max()) + 1)
    if formulation == "dual":
        beta = cost.new_zeros(keep_b.shape[0])
        beta[keep_b] = z[n_kept:]
        # α_i + β_j − c_ij < 0 on every entry of a zero-weight column, then of a zero-weight row
        beta[~keep_b] = (cost[keep_a][:, ~keep_b] - alpha[keep_a].unsqueeze(1)).amin(0) - slack
        alpha[~keep_a] = (cost[~keep_a] - beta).amin(1) - slack
        return torch.cat([alpha, beta])
    # semi-dual: a zero-weight row sits 2 below the top of every column's (α − c_j)/(γ b_j), under the
    # projection's threshold (at most 1 below the top) and under every row that carries mass
    top = (alpha[keep_a].unsqueeze(1) - cost[keep_a][:, keep_b]).amax(0)
    alpha[~keep_a] = (cost[~keep_a][:, keep_b] + top - 2 * gamma * b[keep_b]).amin(1) - slack
    return alpha


@functools.lru_cache(maxsize=1)
def _threadpools():
    """The process's thread pools, inspected once (inspection reads the loaded libraries: milliseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _lbfgs_scipy(evaluate, params, errors, *, max_iter, tol, history_size):
    import numpy as np
    from scipy.optimize import minimize

    def negated(z):
        with torch.no_grad():
            value, grad, _ = evaluate(torch.as_tensor(z, dtype=params.dtype, device=params.device))
        errors.append(float(grad.abs().max()))
        return -float(value), -grad.cpu().numpy()

    # L-BFGS-B's vector BLAS calls are tiny: a threaded BLAS only fights torch's threads for the cores
    with _threadpools().limit(limits=1, user_api="blas"):
        result = minimize(
            negated,
            np.zeros(params.numel()),
            jac=True,
            method="L-BFGS-B",
            tol=tol,
            options={"maxiter": max_iter, "maxcor": history_size},
        )
    return torch.as_tensor(result.x, dtype=params.dtype, device=params.device), int(result.nit), bool(result.success)


def _lbfgs_torch(evaluate, params, errors, *, max_iter, tol, history_size):
    params = params.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [params],
        lr=1,
        max_iter=max_iter,
        max_eval=2 * max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-14,
        history_size=history_size,
        line_search_fn="strong_wolfe",
    )

    def closure():
        with torch.no_grad():
            value, grad, _ = evaluate(params)
        params.grad = -grad  # L-BFGS minimizes: the negated (semi-)dual
        errors.append(float(grad.abs().max()))
        return -value

    optimizer.step(closure)
    n_iter = int(optimizer.state[params]["n_iter"])
    return params.detach(), n_iter, n_iter < max_iter


def sparsity_constrained_ot(
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    cost: torch.Tensor,
    k: int,
    gamma: float,
    *,
    formulation: str = "dual",
    max_iter: int = 1000,
    tol: float = 1e-9,
    history_size: int = 10,
    solver: str = "scipy",
) -> SparseOTResult:
    """Solve sparsity-constrained OT; every column of the plan has at most ``k`` non-zeros.

    Args:
        a, b, cost: the problem (``None`` marginals are uniform; zero weights allowed; a
            float16/bfloat16 cost is solved in float32), as checked by
            :func:`regkit.ot.sinkhorn.check_problem`.
        k: the largest number of non-zeros per column, an integer ``k ≥ 1``.
        gamma: weight :math:`\\gamma > 0` (finite) of the squared-ℓ² regularizer.
        formulation: ``"dual"`` (potentials α, β) or ``"semi_dual"`` (α only).
        max_iter: most L-BFGS iterations, an integer ≥ 1; ``tol`` (≥ 0): stop when every
            gradient entry is below it (and, with scipy, when the relative objective change is
            below it).
        history_size: L-BFGS memory, an integer ≥ 1.
        solver: ``"scipy"`` — scipy's L-BFGS-B driving the torch objective and gradient (the
            driver POT uses: same iterations, fastest on the CPU); ``"torch"`` —
            ``torch.optim.LBFGS`` with a strong-Wolfe line search, everything on the tensors'
            device.

    Returns:
        A :class:`SparseOTResult`.

    Raises:
        ValueError: naming the argument, for any of them out of range or a batched cost.
    """
    a, b, cost = check_problem(a, b, cost)
    if cost.ndim != 2:
        raise ValueError(f"cost must be an (n, m) matrix, got shape {tuple(cost.shape)}")
    k = check_number("k", k, low=1, integer=True)
    gamma = check_number("gamma", gamma, low=0, low_open=True)
    formulation = check_choice("formulation", formulation, ("dual", "semi_dual"))
    max_iter = check_number("max_iter", max_iter, low=1, integer=True)
    tol = check_number("tol", tol, low=0, high=math.inf)
    history_size = check_number("history_size", history_size, low=1, integer=True)
    solver = check_choice("solver", solver, ("scipy", "torch"))
    n = a.shape[0]
    a, b, C = a.detach(), b.detach(), cost.detach().to(a.dtype)  # float32 for half precision
    value_and_grad = _dual_value_and_grad if formulation == "dual" else _semi_dual_value_and_grad
    # rows and columns of zero weight carry no mass in any feasible plan: solve the problem without
    # them (left in, L-BFGS would have to drive their potentials to -inf and may stop with mass there)
    keep_a, keep_b = a > 0, b > 0
    whole = bool(keep_a.all()) and bool(keep_b.all())
    a_kept, b_kept, C_kept = (a, b, C) if whole else (a[keep_a], b[keep_b], C[keep_a][:, keep_b])
    # the plan is unchanged when cost and γ are scaled together, the potentials scale with them: solve
    # at unit cost scale, where L-BFGS-B's first (absolute) step suits the potentials' size
    scale = float(C_kept.abs().max())
    scale = scale if scale > 0 else 1.0
    size = a_kept.shape[0] + (b_kept.shape[0] if formulation == "dual" else 0)
    params = torch.zeros(size, dtype=C.dtype, device=C.device)
    errors: list[float] = []
    lbfgs = _lbfgs_scipy if solver == "scipy" else _lbfgs_torch
    C_unit = C_kept / scale
    z, n_iter, converged = lbfgs(
        lambda z: value_and_grad(z, a_kept, b_kept, C_unit, k, gamma / scale),
        params,
        errors,
        max_iter=max_iter,
        tol=tol,
        history_size=history_size,
    )
    z = z * scale
    with torch.no_grad():
        if not whole:
            z = _embed(z, keep_a, keep_b, b, C, gamma, formulation)
        value, _, make_plan = value_and_grad(z, a, b, C, k, gamma)
        plan = make_plan()
    return SparseOTResult(
        plan=plan.to(cost.dtype),
        alpha=z[:n],
        beta=z[n:] if formulation == "dual" else None,
        a=a,
        b=b,
        cost=cost.detach(),
        objective=float(value),
        n_iter=n_iter,
        converged=converged,
        errors=errors,
    )
