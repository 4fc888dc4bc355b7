r"""Online (never-materialized) log-domain Sinkhorn between point clouds.

The same problem, iterations, stopping rule and conventions as :func:`regkit.ot.sinkhorn` (see
:mod:`regkit.ot.sinkhorn`), with the cost :math:`C_{ij} = c(x_i, y_j)` given by a
:class:`~regkit.ot.geometry.PointCloud` instead of an (n, m) tensor. Each half-step

.. math::

    g_j \leftarrow -\varepsilon \operatorname{LSE}_i\big(\log a_i + (f_i - C_{ij})/\varepsilon\big), \qquad
    f_i \leftarrow -\varepsilon \operatorname{LSE}_j\big(\log b_j + (g_j - C_{ij})/\varepsilon\big)

is a streaming log-sum-exp over blocks of rows (rows of ``y`` against all of ``x`` for the ``g``
update, rows of ``x`` against all of ``y`` for the ``f`` update), each block computed by
:meth:`~regkit.ot.geometry.PointCloud.scaled_cost_block` into one preallocated buffer: for the
squared Euclidean cost :math:`-C_{ij}/\varepsilon + h_j = (h_j - \lVert y_j\rVert^2/\varepsilon)
+ \tfrac{2}{\varepsilon}\langle x_i, y_j\rangle - \lVert x_i\rVert^2/\varepsilon`, one ``baddbmm``
per block with the row term added after the reduction, then an in-place max-shifted ``exp2`` (base 2:
see :func:`_log2_sum_exp2_`) and a row sum. Memory: the points, the potentials and one block (sized to
the geometry's ``memory`` budget), O((n + m)·d + budget), never O(n·m).

The L1 marginal error comes for free from ``f`` and ``f_next`` as in the dense solver: after a ``g``
update the columns of the plan are exact and its rows sum to :math:`a_i e^{(f_i - f^{\text{next}}_i)/\varepsilon}`.
The plan stays lazy (:class:`OnlineSinkhornResult`): its action on vectors, marginals, transport cost,
top entries, and :attr:`OnlineSinkhornResult.regularized_cost`, whose gradients by the envelope theorem
(:math:`\sum_j P_{ij}\nabla_x c(x_i, y_j)` for a point :math:`x_i`, :math:`f_i - \varepsilon` for a
weight :math:`a_i` at convergence) are computed blockwise by a custom autograd function.

Not compiled: ``torch.compile`` of the block kernel (product, max, exp, sum fused by inductor) took 8–30 s
to compile and ran slower than these eager in-place passes over a cache-sized block (131 vs 56 ms per
float32 half-step at n = 4000, 486 vs 57 ms in float64; torch 2.13, 2 cores, AVX2). ``pykeops`` is not used.

Shapes: ``a`` ``(..., n)``, ``b`` ``(..., m)``, points ``(..., n, d)``, ``(..., m, d)``; leading dimensions
are a batch of independent problems. Half precision points are solved in float32, zero weights allowed,
as in :mod:`regkit.ot.sinkhorn`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from regkit._checks import check_finite, check_number, check_tensor
from regkit.ot.geometry import PointCloud
from regkit.ot.sinkhorn import _HALF, _check_init, _sum_tolerance, anneal, epsilon_schedule

__all__ = ["OnlineSinkhornResult", "sinkhorn_online"]


def _log2_sum_exp2_(block: torch.Tensor) -> torch.Tensor:
    """``log2(sum(2 ** block, dim=-1))`` computed in place in ``block`` (overwritten): max, shift, ``exp2``, sum.

    Base 2 because ``exp2`` is 1.6–1.9× faster than ``exp`` on the CPU (AVX2: 0.54 vs 1.03 ns per
    float32, 1.6 vs 2.5 ns per float64) and the factor ``log2 e`` folds into the block's scale for free.
    The shifted exponents are clamped at ``log2(finfo.tiny) + 8`` (-118 in float32, -1014 in float64) so
    that ``exp2`` never produces subnormals, which are many times slower (``exp`` of float32 values in
    [-200, 0]: 15 ns instead of 1). An entry below the floor then counts as ``2^floor`` instead of its
    value: a relative change of the sum below ``other · 2^floor`` (< 1e-30 in float32 for 10⁵ columns),
    far under the working precision."""
    top = block.amax(dim=-1, keepdim=True).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)  # 0 where not finite
    block.sub_(top).clamp_min_(_EXP2_FLOOR[block.dtype]).exp2_()
    return block.sum(dim=-1).log2_().add_(top.squeeze(-1))


def _exp2_plan_(block: torch.Tensor) -> torch.Tensor:
    """``2 ** block`` in place for a block of log2-plan entries, entries below ``2^floor`` (1e-34 in float32,
    1e-303 in float64) flushed to 0: without their subnormal values, many times slower to produce."""
    return torch.nn.functional.threshold_(block, _EXP2_FLOOR[block.dtype], -math.inf).exp2_()


LOG2E, LN2 = 1.0 / math.log(2.0), math.log(2.0)
_EXP2_FLOOR = {dtype: math.log2(torch.finfo(dtype).tiny) + 8 for dtype in (torch.float32, torch.float64)}


def _buffer(geometry: PointCloud, buffers: int = 1) -> torch.Tensor:
    """One flat block buffer, large enough for the blocks of both orientations."""
    n, m = geometry.shape
    batch = geometry._points[1].shape[0]
    size = batch * max(geometry.block_rows(False, buffers) * m, geometry.block_rows(True, buffers) * n)
    return torch.empty(size, dtype=geometry.work_dtype, device=geometry.x.device)


def _softmin(
    geometry: PointCloud,
    potential: torch.Tensor,
    log_weights: torch.Tensor,
    eps: float,
    transpose: bool,
    buffer: torch.Tensor | None = None,
) -> torch.Tensor:
    """The soft c-transform ``-ε LSE_j(log w_j + (potential_j - C_ij)/ε)`` for every row ``i`` of ``x`` (of
    ``y`` when ``transpose``), ``(B, length)``; ``potential``, ``log_weights`` ``(B, other)``. Computed in
    base 2: ``-ε ln 2 · log2 Σ_j 2^{log2(e) (log w_j + (potential_j - C_ij)/ε)}``. ``buffer``: a block buffer
    from :func:`_buffer` to reuse across calls (``None``: a fresh one)."""
    buffer = _buffer(geometry, _BUFFERS[geometry.cost]) if buffer is None else buffer
    column_offset = (potential / eps + log_weights).mul_(LOG2E)
    length = geometry.shape[1] if transpose else geometry.shape[0]
    out = torch.empty(column_offset.shape[0], length, dtype=column_offset.dtype, device=column_offset.device)
    for start, stop in geometry.blocks(transpose, _BUFFERS[geometry.cost]):
        block, row_offset = geometry.scaled_cost_block(start, stop, column_offset, -LOG2E / eps, buffer, transpose)
        lse = _log2_sum_exp2_(block)
        out[:, start:stop] = lse if row_offset is None else lse.add_(row_offset)
    return out.mul_(-eps * LN2)


#: Block temporaries of one half-step: the fused block (Minkowski: plus the distances).
_BUFFERS = {"sqeuclidean": 1, "minkowski": 2}


def _check_weights(name: str, weights, shape: torch.Size, geometry: PointCloud) -> torch.Tensor:
    """Marginal ``(..., length)`` non-negative, finite, summing to one (``None``: uniform), in the working dtype."""
    work = geometry.work_dtype
    if weights is None:
        return torch.full(shape, 1.0 / shape[-1], dtype=work, device=geometry.x.device)
    check_tensor(name, weights, floating=True)
    if weights.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)} to match the point clouds, got {tuple(weights.shape)}")
    check_finite(name, weights)
    if bool((weights < 0).any()):
        raise ValueError(f"{name} must be non-negative, got a minimum of {float(weights.min())}")
    tolerance = max(_sum_tolerance(weights.dtype), _sum_tolerance(geometry.dtype))
    total = weights.to(work).sum(-1)
    if bool(((total - 1).abs() > tolerance).any()):
        raise ValueError(
            f"{name} must sum to one along its last dimension, got sums in [{float(total.min())}, {float(total.max())}]"
        )
    return weights.to(work)


class _RegularizedCost(torch.autograd.Function):
    """The dual value :math:`\\langle f, a\\rangle + \\langle g, b\\rangle - \\varepsilon(\\sum_{ij} P_{ij} - 1)`
    at fixed (detached) potentials, ``(B,)``, with the envelope gradients computed blockwise in backward:
    ``x_i``: :math:`\\sum_j P_{ij} \\nabla_x c(x_i, y_j)`; ``y_j``: :math:`\\sum_i P_{ij}\\nabla_y c(x_i, y_j)`;
    ``a_i``: :math:`f_i - \\varepsilon e^{(f_i - \\tilde f_i)/\\varepsilon}` with :math:`\\tilde f` the soft
    c-transform of ``g`` (:math:`f_i - \\varepsilon` at convergence, finite at a zero weight); ``b`` likewise."""

    @staticmethod
    def forward(ctx, x, y, a, b, result):  # x, y: the geometry's points, inputs so that gradients reach them
        f, g, log_a, log_b = result._flat()
        geometry, eps = result.geometry, result.eps
        f_tilde = _softmin(geometry, g, log_b, eps, False)
        row_sums = torch.exp((f - f_tilde) / eps).mul_(a.detach().reshape(f.shape))
        ctx.result, ctx.f_tilde, ctx.row_sums = result, f_tilde, row_sums
        a_, b_ = a.detach().reshape(f.shape), b.detach().reshape(g.shape)
        return (f * a_).sum(-1) + (g * b_).sum(-1) - eps * (row_sums.sum(-1) - 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        result, f_tilde, row_sums = ctx.result, ctx.f_tilde, ctx.row_sums
        geometry, eps = result.geometry, result.eps
        f, g, log_a, log_b = result._flat()
        grad_x = grad_y = grad_a = grad_b = None
        if ctx.needs_input_grad[2]:
            grad_a = grad[:, None] * (f - eps * torch.exp((f - f_tilde) / eps))
            grad_a = grad_a.reshape(result.a.shape).to(result.a.dtype)
        if ctx.needs_input_grad[3]:
            g_tilde = _softmin(geometry, f, log_a, eps, True)
            grad_b = grad[:, None] * (g - eps * torch.exp((g - g_tilde) / eps))
            grad_b = grad_b.reshape(result.b.shape).to(result.b.dtype)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_x, grad_y = result._point_gradients(row_sums)
            grad_x = (grad[:, None, None] * grad_x).reshape(geometry.x.shape).to(geometry.x.dtype)
            grad_y = (grad[:, None, None] * grad_y).reshape(geometry.y.shape).to(geometry.y.dtype)
        return grad_x, grad_y, grad_a, grad_b, None


@dataclass(frozen=True, eq=False)
class OnlineSinkhornResult:
    """Potentials of an online entropic OT problem and the lazy plan
    :math:`P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\\varepsilon}`.

    ``f`` ``(..., n)``, ``g`` ``(..., m)``, ``a``, ``b`` in the working dtype (float32 for half-precision
    points, else theirs); ``geometry`` the :class:`~regkit.ot.geometry.PointCloud`; ``errors`` the largest
    (over the batch) L1 marginal error after each iteration and ``times`` the wall time (seconds) then.
    Everything but :meth:`dense` (for small problems) is computed blockwise within the geometry's memory
    budget, never holding (n, m), in the working dtype, and returned in the points' dtype.
    """

    f: torch.Tensor
    g: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    geometry: PointCloud
    eps: float
    n_iter: int
    converged: bool
    errors: list[float]
    times: list[float]

    def _flat(self):
        """``f, g, log a, log b`` detached with the batch flattened: ``(B, n)``, ``(B, m)``."""
        n, m = self.geometry.shape
        f, g = self.f.detach().reshape(-1, n), self.g.detach().reshape(-1, m)
        return f, g, self.a.detach().reshape(-1, n).log(), self.b.detach().reshape(-1, m).log()

    def _log2_plan_blocks(self, transpose: bool = False, buffers: int = 1):
        """Yield ``(start, stop, block)``: ``log2 P`` on rows ``start:stop`` (of ``P^T`` when ``transpose``),
        ``(B, stop - start, other)``, in one reused buffer (valid until the next block)."""
        geometry = self.geometry
        f, g, log_a, log_b = self._flat()
        rows_potential, rows_log, cols_potential, cols_log = (g, log_b, f, log_a) if transpose else (f, log_a, g, log_b)
        column_offset = (cols_potential / self.eps + cols_log).mul_(LOG2E)
        row_part = (rows_potential / self.eps + rows_log).mul_(LOG2E)
        buffer, scale = _buffer(geometry, buffers), -LOG2E / self.eps
        for start, stop in geometry.blocks(transpose, buffers):
            block, row_offset = geometry.scaled_cost_block(start, stop, column_offset, scale, buffer, transpose)
            rows = row_part[:, start:stop] if row_offset is None else row_part[:, start:stop] + row_offset
            yield start, stop, block.add_(rows.unsqueeze(-1))

    def _plan_apply(self, vectors, transpose: bool) -> torch.Tensor:
        """``P @ V`` (``P^T @ V`` when ``transpose``) for ``V`` ``(B, other, k)``: ``(B, length, k)``."""
        n, m = self.geometry.shape
        out = vectors.new_empty(vectors.shape[0], m if transpose else n, vectors.shape[-1])
        for start, stop, block in self._log2_plan_blocks(transpose, _BUFFERS[self.geometry.cost]):
            torch.bmm(_exp2_plan_(block), vectors, out=out[:, start:stop])
        return out

    def _apply(self, name: str, vectors, transpose: bool) -> torch.Tensor:
        """Validate ``vectors`` ``(..., other)`` or ``(..., other, k)`` and apply ``P`` (or ``P^T``)."""
        geometry = self.geometry
        n, m = geometry.shape
        other, length = (n, m) if transpose else (m, n)
        batch = geometry.batch_shape
        check_tensor(name, vectors)
        matrix = vectors.ndim == len(batch) + 2
        if vectors.shape[: len(batch) + 1] != batch + (other,) or vectors.ndim not in (len(batch) + 1, len(batch) + 2):
            raise ValueError(
                f"{name} must have shape {tuple(batch + (other,))} or {tuple(batch + (other,))} + (k,), "
                f"got {tuple(vectors.shape)}"
            )
        with torch.no_grad():
            work = vectors.detach().to(geometry.work_dtype).reshape(-1, other, vectors.shape[-1] if matrix else 1)
            out = self._plan_apply(work, transpose)
        shape = batch + (length,) + ((vectors.shape[-1],) if matrix else ())
        return out.reshape(shape).to(geometry.dtype)

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`P v` for ``v`` ``(..., m)`` or ``(..., m, k)``: ``(..., n)`` or ``(..., n, k)`` in the points'
        dtype (no autograd). Raises ``ValueError`` naming ``v`` for a wrong shape."""
        return self._apply("v", v, transpose=False)

    def apply_transpose(self, u: torch.Tensor) -> torch.Tensor:
        """:math:`P^\\top u` for ``u`` ``(..., n)`` or ``(..., n, k)``: ``(..., m)`` or ``(..., m, k)``."""
        return self._apply("u", u, transpose=True)

    def marginals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(P 1, P^T 1)``, ``(..., n)`` and ``(..., m)`` in the points' dtype, from the soft c-transforms
        (one streaming log-sum-exp per side): :math:`a_i e^{(f_i - \\tilde f_i)/\\varepsilon}`."""
        geometry, eps = self.geometry, self.eps
        f, g, log_a, log_b = self._flat()
        with torch.no_grad():
            buffer = _buffer(geometry, _BUFFERS[geometry.cost])
            rows = torch.exp((f - _softmin(geometry, g, log_b, eps, False, buffer)) / eps + log_a)
            cols = torch.exp((g - _softmin(geometry, f, log_a, eps, True, buffer)) / eps + log_b)
        return rows.reshape(self.a.shape).to(geometry.dtype), cols.reshape(self.b.shape).to(geometry.dtype)

    def _marginal_error(self, rounded: bool) -> torch.Tensor:
        """L1 marginal error ``(B,)`` of the plan, each entry rounded to the points' dtype when ``rounded``."""
        f, *_ = self._flat()
        n, m = self.geometry.shape
        rows = torch.zeros_like(f)
        cols = f.new_zeros(f.shape[0], m)
        with torch.no_grad():
            for start, stop, block in self._log2_plan_blocks():
                plan = _exp2_plan_(block).to(self.geometry.dtype).to(f.dtype) if rounded else _exp2_plan_(block)
                rows[:, start:stop] = plan.sum(-1)
                cols += plan.sum(-2)
        a, b = self.a.detach().reshape(-1, n), self.b.detach().reshape(-1, m)
        return (rows - a).abs().sum(-1) + (cols - b).abs().sum(-1)

    @property
    def marginal_error(self) -> torch.Tensor:
        """:math:`\\lVert P1 - a\\rVert_1 + \\lVert P^\\top 1 - b\\rVert_1` of the plan as returned (rounded to the
        points' dtype), ``(...)``, working dtype."""
        return self._marginal_error(self.geometry.dtype in _HALF).reshape(self.geometry.batch_shape)

    @property
    def transport_cost(self) -> torch.Tensor:
        """:math:`\\langle P, C\\rangle` ``(...)`` in the points' dtype, blockwise (no autograd: use
        :attr:`regularized_cost` for gradients)."""
        geometry = self.geometry
        f, *_ = self._flat()
        total = torch.zeros(f.shape[0], dtype=f.dtype, device=f.device)
        zero = f.new_zeros(f.shape[0], geometry.shape[1])
        cost_buffer = _buffer(geometry, _BUFFERS[geometry.cost] + 1)
        with torch.no_grad():
            for start, stop, block in self._log2_plan_blocks(False, _BUFFERS[geometry.cost] + 1):
                cost, row_offset = geometry.scaled_cost_block(start, stop, zero, 1.0, cost_buffer)
                if row_offset is not None:
                    cost.add_(row_offset.unsqueeze(-1))
                total += (_exp2_plan_(block).mul_(cost)).sum((-2, -1))
        return total.reshape(geometry.batch_shape).to(geometry.dtype)

    @property
    def regularized_cost(self) -> torch.Tensor:
        """:math:`\\mathrm{OT}_\\varepsilon` as the dual value at the potentials, ``(...)`` in the points' dtype.
        Differentiable in the points ``x``, ``y`` and the weights ``a``, ``b`` (envelope theorem, computed
        blockwise): the gradients the dense :attr:`regkit.ot.SinkhornResult.regularized_cost` gives through
        the dense cost."""
        return self._regularized_cost().to(self.geometry.dtype)

    def _regularized_cost(self) -> torch.Tensor:
        """:attr:`regularized_cost` in the working dtype (float32 for half-precision points)."""
        geometry = self.geometry
        return _RegularizedCost.apply(geometry.x, geometry.y, self.a, self.b, self).reshape(geometry.batch_shape)

    def _point_gradients(self, row_sums: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Σ_j P_ij ∇_x c(x_i, y_j), Σ_i P_ij ∇_y c(x_i, y_j))``, ``(B, n, d)`` and ``(B, m, d)``, working dtype.

        Squared Euclidean: ``2 (r_i x_i - (P y)_i)`` and ``2 (c_j y_j - (P^T x)_j)`` on the centred points, one
        pass (``r``, ``c`` the row and column sums). Minkowski: autograd of ``Σ P_ij c(x_i, y_j)`` through
        :func:`regkit.ot.costs.minkowski` block by block (its subgradient conventions at 0)."""
        geometry = self.geometry
        _, xc, yc = geometry._points[:3]
        grad_x, grad_y = torch.empty_like(xc), torch.zeros_like(yc)
        if geometry.cost == "sqeuclidean":
            col_sums = yc.new_zeros(yc.shape[:-1])
            for start, stop, block in self._log2_plan_blocks():
                plan = _exp2_plan_(block)
                torch.bmm(plan, yc, out=grad_x[:, start:stop])
                grad_y.baddbmm_(plan.transpose(-1, -2), xc[:, start:stop])
                col_sums += plan.sum(-2)
            grad_x = 2 * (row_sums.unsqueeze(-1) * xc - grad_x)
            grad_y = 2 * (col_sums.unsqueeze(-1) * yc - grad_y)
            return grad_x, grad_y
        with torch.enable_grad():
            y = yc.detach().requires_grad_(True)
            for start, stop, block in self._log2_plan_blocks(False, 4):
                rows = xc[:, start:stop].detach().requires_grad_(True)
                cost = torch.cdist(rows, y, p=geometry.p, compute_mode="donot_use_mm_for_euclid_dist")
                total = (_exp2_plan_(block) * _power(cost, geometry.power)).sum()
                grad_rows, grad_cols = torch.autograd.grad(total, (rows, y))
                grad_x[:, start:stop] = grad_rows
                grad_y += grad_cols
        return grad_x, grad_y

    def top_entries(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``k`` largest plan entries per problem, in decreasing order: ``(rows, cols, values)``, each
        ``(..., k)`` (int64 indices, values in the points' dtype). ``k`` an integer in ``[1, n·m]``."""
        n, m = self.geometry.shape
        k = check_number("k", k, low=1, high=n * m, integer=True)
        best_values = best_index = None
        with torch.no_grad():
            for start, _, block in self._log2_plan_blocks():
                flat = block.reshape(block.shape[0], -1)
                values, index = flat.topk(min(k, flat.shape[-1]), dim=-1)
                index = index + start * m
                if best_values is not None:
                    values, index = torch.cat((best_values, values), -1), torch.cat((best_index, index), -1)
                    values, order = values.topk(k, dim=-1)
                    index = index.gather(-1, order)
                best_values, best_index = values, index
        shape = self.geometry.batch_shape + (k,)
        rows, cols = (best_index // m).reshape(shape), (best_index % m).reshape(shape)
        return rows, cols, best_values.exp2().reshape(shape).to(self.geometry.dtype)

    def dense(self) -> torch.Tensor:
        """The plan ``(..., n, m)`` in the points' dtype (materialized: for small problems and tests)."""
        n, m = self.geometry.shape
        with torch.no_grad():
            blocks = [_exp2_plan_(block).clone() for _, _, block in self._log2_plan_blocks()]
        return torch.cat(blocks, -2).reshape(self.geometry.batch_shape + (n, m)).to(self.geometry.dtype)


def _power(distance: torch.Tensor, power: float) -> torch.Tensor:
    """``distance ** power`` with the subgradient 0 at 0 for ``power < 1``, as :func:`regkit.ot.costs.minkowski`."""
    if power == 1:
        return distance
    if power < 1:
        positive = distance > 0
        safe = torch.where(positive, distance, torch.ones_like(distance))
        return torch.where(positive, safe.pow(power), torch.zeros_like(distance))
    return distance.pow(power)


def sinkhorn_online(
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    geometry: PointCloud,
    eps: float,
    *,
    max_iter: int = 10_000,
    tol: float = 1e-6,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    eps_init: float | None = None,
    eps_decay: float = 0.5,
) -> OnlineSinkhornResult:
    """Log-domain Sinkhorn on a :class:`~regkit.ot.geometry.PointCloud` cost, never forming (n, m): the
    iterations, stopping rule (L1 marginal error below ``tol`` for every problem of the batch, or
    ``max_iter`` iterations) and warm start of :func:`regkit.ot.sinkhorn`, each half-step a streaming
    log-sum-exp over blocks sized to ``geometry.memory``.

    Args:
        a, b: marginals ``(..., n)``, ``(..., m)``, non-negative (zeros allowed), summing to one (to 1e-8
            in float64, 1e-5 in float32); ``None`` means uniform weights.
        geometry: the point clouds and their cost (float16/bfloat16 points are solved in float32).
        eps: regularization ε, a positive finite number, with ``max C / eps`` inside the working dtype's
            range (checked on an upper bound of the cost from the points).
        max_iter: most iterations, an integer ≥ 1.
        tol: L1 marginal error to reach, a number ≥ 0 (0 runs all ``max_iter`` iterations).
        init: ``(f, g)`` warm-starts the potentials (``f`` carries the warm start, as in :func:`regkit.ot.sinkhorn`).
        eps_init, eps_decay: ε-scaling, as in :func:`regkit.ot.sinkhorn` (:func:`~regkit.ot.epsilon_schedule`).

    Returns:
        An :class:`OnlineSinkhornResult`; ``converged`` says the returned plan meets ``tol``.

    Raises:
        TypeError: ``geometry`` is not a :class:`~regkit.ot.geometry.PointCloud`.
        ValueError: naming the argument, for any argument out of range.

    Example::

        x, y = torch.randn(100_000, 2), torch.randn(100_000, 2) + 1
        result = sinkhorn_online(None, None, PointCloud(x, y), eps=0.01)
        result.transport_cost, result.apply(torch.ones(100_000)), result.converged
    """
    if not isinstance(geometry, PointCloud):
        raise TypeError(f"geometry must be a regkit.ot.geometry.PointCloud, got {type(geometry).__name__}")
    n, m = geometry.shape
    batch = geometry.batch_shape
    a = _check_weights("a", a, batch + (n,), geometry)
    b = _check_weights("b", b, batch + (m,), geometry)
    eps = check_number("eps", eps, low=0, low_open=True)
    bound, limit = geometry.max_cost_bound(), torch.finfo(geometry.work_dtype).max / 16
    if bound / eps > limit:
        raise ValueError(
            f"eps = {eps:g} is too small for this cost: max cost / eps may reach {bound / eps:.3g}, beyond "
            f"{limit:.3g}, the range of {geometry.work_dtype} (rescale the points or raise eps)"
        )
    max_iter = check_number("max_iter", max_iter, low=1, integer=True)
    tol = check_number("tol", tol, low=0, high=math.inf)
    f = None if init is None else _check_init(init, a.shape, b.shape, a.dtype)
    schedule = epsilon_schedule(eps, eps_init, eps_decay)
    return anneal(lambda *stage: _iterate(a, b, geometry, *stage), schedule, max_iter, tol, f)


def _iterate(a, b, geometry: PointCloud, eps, max_iter, tol, f) -> OnlineSinkhornResult:
    """Sinkhorn iterations on a validated online problem from the potential ``f`` (``None``: 0)."""
    n, m = geometry.shape
    start = time.perf_counter()
    times: list[float] = []
    with torch.no_grad():
        a_, b_ = a.detach().reshape(-1, n), b.detach().reshape(-1, m)
        log_a, log_b = a_.log(), b_.log()
        positive = a_ > 0 if bool((a_ == 0).any()) else None
        f = torch.zeros_like(log_a) if f is None else f.reshape(-1, n)
        buffer = _buffer(geometry, _BUFFERS[geometry.cost])
        half = geometry.dtype in _HALF
        target = tol / 2 if half else tol
        errors: list[float] = []
        converged = False
        for _ in range(max_iter):
            g = _softmin(geometry, f, log_a, eps, True, buffer)
            f_next = _softmin(geometry, g, log_b, eps, False, buffer)
            row_error = a_ * torch.expm1((f - f_next) / eps)
            if positive is not None:
                row_error = torch.where(positive, row_error, 0.0)
            errors.append(float(row_error.abs().sum(-1).max()))
            times.append(time.perf_counter() - start)
            if errors[-1] < target and (not half or _rounded_error(f, g, a, b, geometry, eps) < tol):
                converged = True
                break
            f = f_next
        if not converged:
            f = f_next
        elif positive is not None:
            f = torch.where(positive, f, f_next)
    return OnlineSinkhornResult(
        f.reshape(a.shape), g.reshape(b.shape), a, b, geometry, eps, len(errors), converged, errors, times
    )


def _rounded_error(f, g, a, b, geometry, eps) -> float:
    """Largest (over the batch) L1 marginal error of the plan of ``(f, g)`` rounded to the points' dtype."""
    result = OnlineSinkhornResult(f.reshape(a.shape), g.reshape(b.shape), a, b, geometry, eps, 0, False, [], [])
    return float(result._marginal_error(rounded=True).max())
