r"""Point-cloud geometry: a ground cost between two clouds that is never materialized.

:class:`PointCloud` describes :math:`C_{ij} = c(x_i, y_j)` for clouds ``x`` ``(..., n, d)`` and ``y``
``(..., m, d)`` (the same leading batch shape) and computes it a block of rows at a time, so that a
solver streaming over the blocks (:func:`regkit.ot.online.sinkhorn_online`) holds O((n + m)·d) for
the points plus one block, never the (n, m) matrix:

* ``cost="sqeuclidean"``: :math:`c(x, y) = \lVert x - y\rVert_2^2`, by the expansion
  :math:`\lVert x\rVert^2 + \lVert y\rVert^2 - 2\langle x, y\rangle` on clouds moved by a common
  shift (the midpoint of their means), as :func:`regkit.ot.costs.sqeuclidean` computes it (the same
  values to rounding);
* ``cost="minkowski"``: :math:`c(x, y) = \lVert x - y\rVert_p^{\,\mathrm{power}}`, from the
  differences, as :func:`regkit.ot.costs.minkowski` computes it.

**Block size.** A block of ``rows`` rows against the ``other`` points of the other cloud, over a batch
of ``B`` problems, holds ``buffers`` temporaries of ``B · rows · other`` entries of ``itemsize`` bytes
(the working dtype: float32 for half precision), so

.. math::

    \mathrm{rows} = \min\!\Big(\mathrm{length},\ \max\!\Big(1, \Big\lfloor
        \frac{\min(\mathrm{memory},\ \mathrm{buffers}\cdot \mathrm{CPU\_BLOCK\_BYTES})}
        {\mathrm{buffers}\cdot B\cdot \mathrm{other}\cdot \mathrm{itemsize}}\Big\rfloor\Big)\Big)

(``memory`` in bytes, default 256 MiB; one row is the least a block can be, so a budget below one row
is exceeded rather than refused). On the CPU each temporary is also capped at :data:`CPU_BLOCK_BYTES`
(4 MiB): a block that stays in the cache makes the four passes of a half-step (product, max, exp,
sum) cheap, measured 0.55–0.8× the time per iteration of whole-matrix blocks at n = 2000–4000 (2 cores,
AVX2); on other devices the budget alone sets the block (larger blocks amortize kernel launches).

**Fused half-steps.** :meth:`PointCloud.scaled_cost_block` returns ``h[j] + scale · C[i, j]`` up to a
per-row constant that is added after the row reduction: for the squared Euclidean cost this is one
batched matrix product (``baddbmm``: the cross term with the column offsets folded in), the row norms
left out of the block. It skips the clamp at 0 that :meth:`PointCloud.cost_rows` applies, which only
moves entries that the expansion rounds below 0 (coincident points) by that rounding.

Validation: ``x``, ``y`` finite floating tensors of shapes ``(..., n, d)``, ``(..., m, d)`` with
``n, m ≥ 1`` and equal leading shapes; ``cost`` one of the two names; ``p`` in ``[1, ∞]``; ``power``
a finite number > 0; ``memory`` an integer ≥ 1. Each rejection is a ``ValueError`` (``TypeError``
for non-tensors) naming the argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from regkit._checks import check_choice, check_finite, check_number, check_tensor
from regkit.ot.costs import minkowski

__all__ = ["COSTS", "CPU_BLOCK_BYTES", "PointCloud"]

#: The costs a :class:`PointCloud` computes.
COSTS = ("sqeuclidean", "minkowski")

#: The most bytes of one block temporary on the CPU (a cache-sized block; see the module docstring).
CPU_BLOCK_BYTES = 4 * 2**20

_HALF = (torch.float16, torch.bfloat16)


@dataclass(frozen=True, eq=False)
class PointCloud:
    """The cost between clouds ``x`` ``(..., n, d)`` and ``y`` ``(..., m, d)``, computed by blocks.

    Attributes:
        x, y: the points (gradients flow to them through :meth:`cost_rows` and the solvers' costs).
        cost: ``"sqeuclidean"`` or ``"minkowski"``.
        p: the norm of the Minkowski cost, in ``[1, ∞]`` (unused for ``"sqeuclidean"``).
        power: the exponent of the Minkowski cost, a finite number > 0.
        memory: the byte budget of one block's temporaries (see the module docstring).

    ``dtype`` is the points' promoted dtype, ``work_dtype`` the one computed in (float32 for half
    precision). The centred points in the working dtype are kept detached (``O((n + m)·d)``).
    """

    x: torch.Tensor
    y: torch.Tensor
    cost: str = "sqeuclidean"
    p: float = 2.0
    power: float = 1.0
    memory: int = 256 * 2**20
    dtype: torch.dtype = field(init=False, repr=False)
    work_dtype: torch.dtype = field(init=False, repr=False)
    _points: tuple = field(init=False, repr=False)

    def __post_init__(self):
        check_tensor("x", self.x, floating=True)
        check_tensor("y", self.y, floating=True)
        x, y = self.x, self.y
        if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-1] or x.shape[:-2] != y.shape[:-2]:
            raise ValueError(
                f"x and y must be point clouds (..., n, d) and (..., m, d) with the same d and the same leading "
                f"(batch) shape, got shapes {tuple(x.shape)} and {tuple(y.shape)}"
            )
        for name, cloud in (("x", x), ("y", y)):
            if cloud.shape[-2] == 0 or cloud.shape[-1] == 0:
                raise ValueError(f"{name} must hold at least one point of dimension >= 1, got {tuple(cloud.shape)}")
        if x.device != y.device:
            raise ValueError(f"x and y must be on the same device, got {x.device} and {y.device}")
        check_finite("x", x)
        check_finite("y", y)
        check_choice("cost", self.cost, COSTS)
        object.__setattr__(self, "p", check_number("p", self.p, low=1, high=math.inf))
        object.__setattr__(self, "power", check_number("power", self.power, low=0, low_open=True))
        object.__setattr__(self, "memory", check_number("memory", self.memory, low=1, integer=True))
        dtype = torch.promote_types(x.dtype, y.dtype)
        work = torch.float32 if dtype in _HALF else dtype
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "work_dtype", work)
        with torch.no_grad():
            xw, yw = x.detach().to(work), y.detach().to(work)
            shift = 0.5 * (xw.mean(-2, keepdim=True) + yw.mean(-2, keepdim=True))
            xc = (xw - shift).reshape(-1, *xw.shape[-2:])  # (B, n, d): the batch flattened, B = 1 without one
            yc = (yw - shift).reshape(-1, *yw.shape[-2:])
            squares = ((xc * xc).sum(-1), (yc * yc).sum(-1)) if self.cost == "sqeuclidean" else (None, None)
        # (B, n, d) and (B, m, d) centred, detached, working dtype; their squared norms (B, n), (B, m)
        object.__setattr__(self, "_points", (shift, xc.contiguous(), yc.contiguous()) + squares)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, m)``."""
        return self.x.shape[-2], self.y.shape[-2]

    @property
    def batch_shape(self) -> torch.Size:
        """The leading (batch) dimensions ``(...)``."""
        return self.x.shape[:-2]

    def max_cost_bound(self) -> float:
        """An upper bound on :math:`\\max_{ij} C_{ij}` from the points alone (O((n + m)·d)):
        :math:`(\\max_i \\lVert x_i - s\\rVert + \\max_j \\lVert y_j - s\\rVert)^q` for the shift
        :math:`s`, with the cost's norm and exponent (2 and 2 for ``"sqeuclidean"``)."""
        _, xc, yc = self._points[:3]
        p, power = (2.0, 2.0) if self.cost == "sqeuclidean" else (self.p, self.power)
        radius = float(torch.linalg.vector_norm(xc, ord=p, dim=-1).max()) + float(
            torch.linalg.vector_norm(yc, ord=p, dim=-1).max()
        )
        return radius**power

    def block_rows(self, transpose: bool = False, buffers: int = 1) -> int:
        """Rows per block (of ``x``; of ``y`` when ``transpose``) so that ``buffers`` temporaries of a
        block fit in ``memory`` bytes: the formula of the module docstring."""
        n, m = self.shape
        length, other = (m, n) if transpose else (n, m)
        batch = self._points[1].shape[0]
        itemsize = torch.empty((), dtype=self.work_dtype).element_size()
        budget = min(self.memory, buffers * CPU_BLOCK_BYTES) if self.x.device.type == "cpu" else self.memory
        return min(length, max(1, budget // (buffers * batch * other * itemsize)))

    def blocks(self, transpose: bool = False, buffers: int = 1):
        """``(start, stop)`` of the row blocks (of ``y`` when ``transpose``), sized by :meth:`block_rows`."""
        length = self.shape[1] if transpose else self.shape[0]
        rows = self.block_rows(transpose, buffers)
        return [(start, min(start + rows, length)) for start in range(0, length, rows)]

    def cost_rows(self, start: int, stop: int, transpose: bool = False) -> torch.Tensor:
        """``C[..., start:stop, :]`` ``(..., stop - start, m)`` in the points' dtype (``C^T[..., start:stop,
        :]`` ``(..., stop - start, n)`` when ``transpose``), differentiable in ``x`` and ``y``; equal
        to :func:`regkit.ot.costs.sqeuclidean` / :func:`~regkit.ot.costs.minkowski` on those rows (to
        rounding for the squared Euclidean cost, whose shift comes from the whole clouds)."""
        rows, cols = (self.y, self.x) if transpose else (self.x, self.y)
        rows = rows[..., start:stop, :]
        if self.cost == "minkowski":
            return minkowski(rows, cols, p=self.p, power=self.power)
        shift = self._points[0]
        rows, cols = rows.to(self.work_dtype) - shift, cols.to(self.work_dtype) - shift
        cross = rows @ cols.transpose(-1, -2)
        sq = (rows * rows).sum(-1, keepdim=True) + (cols * cols).sum(-1).unsqueeze(-2) - 2 * cross
        sq = sq.clamp_min(0)
        if self.x is self.y:  # the same cloud: exact zeros on the diagonal, as costs.sqeuclidean gives
            index = torch.arange(sq.shape[-1], device=sq.device)
            sq = sq.masked_fill(index[start:stop, None] == index, 0.0)
        return sq.to(self.dtype)

    def cost_matrix(self) -> torch.Tensor:
        """The dense cost ``(..., n, m)`` (for tests and small problems), differentiable in ``x``, ``y``."""
        return self.cost_rows(0, self.shape[0])

    def scaled_cost_block(
        self,
        start: int,
        stop: int,
        column_offset: torch.Tensor,
        scale: float,
        out: torch.Tensor,
        transpose: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fused block ``(block, row_offset)`` with ``block + row_offset[..., None] = column_offset[:, None, :]
        + scale · C[start:stop, :]`` (rows of ``C^T`` when ``transpose``), batch flattened to ``B``.

        ``column_offset`` ``(B, other)`` and ``out`` (a contiguous buffer of at least ``B · (stop - start) ·
        other`` entries) are in the working dtype; ``block`` ``(B, stop - start, other)`` is a view of
        ``out``; ``row_offset`` ``(B, stop - start)``, or ``None`` when 0 (Minkowski). No autograd.
        """
        _, xc, yc, x_sq, y_sq = self._points
        rows, cols = (yc, xc) if transpose else (xc, yc)
        count, other = stop - start, cols.shape[-2]
        block = out.view(-1)[: rows.shape[0] * count * other].view(rows.shape[0], count, other)
        if self.cost == "sqeuclidean":
            rows_sq, cols_sq = (y_sq, x_sq) if transpose else (x_sq, y_sq)
            offset = torch.add(column_offset, cols_sq, alpha=scale).unsqueeze(-2)
            torch.baddbmm(offset, rows[:, start:stop], cols.transpose(-1, -2), alpha=-2 * scale, out=block)
            return block, rows_sq[:, start:stop] * scale
        distance = torch.cdist(rows[:, start:stop], cols, p=self.p, compute_mode="donot_use_mm_for_euclid_dist")
        if self.power != 1:
            distance.pow_(self.power)
        torch.add(column_offset.unsqueeze(-2), distance, alpha=scale, out=block)
        return block, None
