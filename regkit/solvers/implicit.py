"""Implicit differentiation of any root or fixed-point solver.

Blondel, Berthet, Cuturi, Frostig, Hoyer, Llinares-López, Pedregosa & Vert, *Efficient and Modular
Implicit Differentiation*, NeurIPS 2022, arXiv:2105.15183. The user states the optimality conditions of
a problem as a mapping :math:`F` whose root is the solution,

.. math::
    F(x^\\star(\\theta), \\theta) = 0 \\qquad (1)

(stationarity :math:`F = \\nabla_1 f` of :math:`x^\\star(\\theta) = \\arg\\min_x f(x, \\theta)`, or a fixed point
:math:`F(x, \\theta) = T(x, \\theta) - x` of a proximal-gradient or mirror-descent step :math:`T`). The
implicit function theorem differentiates (1) at the solution: :math:`-\\partial_1 F\\, \\partial x^\\star(\\theta) =
\\partial_2 F`, i.e.

.. math::
    A J = B,\\qquad A = -\\partial_1 F(x^\\star, \\theta) \\in \\mathbb{R}^{d\\times d},\\
    B = \\partial_2 F(x^\\star, \\theta) \\in \\mathbb{R}^{d\\times n},\\ J = \\partial x^\\star(\\theta) \\qquad (2)

and a vector–Jacobian product :math:`v^\\top J` (what reverse-mode autodiff needs) is :math:`u^\\top B` with
:math:`A^\\top u = v` (§2.2): one linear solve with products by :math:`(\\partial_1 F)^\\top` (a VJP of
:math:`F`), then one VJP of :math:`F` in :math:`\\theta`. The solver that produced :math:`x^\\star` is never
differentiated — it runs under ``torch.no_grad`` and may be any black box (scipy L-BFGS, a C library);
the gradient costs the same whatever the number of its iterations.

Here :func:`custom_root` decorates ``solver(init, *params) -> x*`` (a tensor, or a
:class:`~regkit.solvers.SolverResult` whose ``solution`` is ``x*``) so that ``x*`` carries this gradient to
every tensor in ``params``; :func:`custom_fixed_point` does the same for ``F(x, θ) = T(x, θ) − x``;
:func:`root_vjp` is the backward rule itself. Shapes: ``x*`` any shape ``S`` (treated as a flat vector of
``d`` entries), ``optimality_fn(x, *params)`` returns shape ``S``; ``params`` anything, of which the
floating tensors get gradients.

The linear solve ``solve``:

- ``"cg"``: conjugate gradient (:func:`~regkit.solvers.conjugate_gradient`) on :math:`(\\partial_1 F)^\\top u =
  -v`, one VJP of :math:`F` a step; valid only when :math:`\\partial_1 F` is symmetric positive definite
  (:math:`F = \\nabla_1 f` of a strongly convex :math:`f`);
- ``"normal_cg"`` (default, as jaxopt's ``solve_normal_cg``): conjugate gradient on the normal equations
  :math:`(\\partial_1 F)(\\partial_1 F)^\\top u = -(\\partial_1 F) v`, one VJP and one JVP (``torch.func.jvp``) a
  step; any invertible :math:`\\partial_1 F` (fixed points, non-symmetric conditions);
- ``"dense"``: materialise :math:`\\partial_1 F` (``torch.func.jacrev``, ``d`` VJPs) and call
  ``torch.linalg.solve``; any invertible :math:`\\partial_1 F`, for small ``d``.

Checked against the official code: google/jaxopt ``jaxopt/_src/implicit_diff.py`` (``root_vjp``: solves
``Aᵀu = −v`` with ``matvec = vjp of optimality_fun in sol`` and returns the VJP of ``optimality_fun`` in
``args`` at ``u``; ``custom_root(optimality_fun, has_aux, solve)`` wraps ``solver_fun(init_params, *args)``
and returns no gradient for ``init_params``; ``custom_fixed_point`` uses ``optimality_fun(x, *args) =
fixed_point_fun(x, *args) − x``; the default ``solve`` is ``solve_normal_cg`` in the version read) and
metaopt/torchopt ``torchopt/diff/implicit/decorator.py`` (``_root_vjp``: the same ``Aᵀu = −v``; the solver runs
inside ``autograd.Function.forward``; ``argnums`` names the differentiated arguments). Differences: the paper writes
:math:`A = -\\partial_1 F` and solves :math:`A^\\top u = v`, jaxopt solves :math:`(\\partial_1 F)^\\top u = -v`
and returns :math:`u^\\top \\partial_2 F` — the same product, and this module follows jaxopt's signs. Here a
``SolverResult`` plays the role of jaxopt's ``has_aux`` (the other fields ride along, not differentiated),
``params`` are positional only (every floating tensor among them that requires a gradient gets one, instead
of torchopt's ``argnums``), and the backward is first order (``once_differentiable``: no Hessians of
``x*``). No GMRES: ``normal_cg`` covers the non-symmetric case with the shared conjugate gradient.

Replicated in ``notebooks/implicit_differentiation.ipynb``.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable

from regkit._checks import check_choice, check_number
from regkit.solvers.linear import conjugate_gradient
from regkit.solvers.result import SolverResult

__all__ = ["custom_fixed_point", "custom_root", "root_vjp"]

#: The linear solvers of the backward pass.
SOLVES = ("cg", "dense", "normal_cg")


def root_vjp(
    optimality_fn: Callable,
    solution: torch.Tensor,
    params: tuple,
    cotangent: torch.Tensor,
    *,
    solve: str = "normal_cg",
    tol: float = 1e-10,
    max_iter: int | None = None,
) -> tuple:
    """The vector–Jacobian product ``cotangentᵀ ∂x*/∂params`` of a root ``optimality_fn(x*, *params) = 0``.

    ``solution``: the root ``x*``, any shape ``S``, floating; ``params``: a tuple of the other arguments of
    ``optimality_fn``; ``cotangent``: shape ``S``. Solves ``(∂₁F)ᵀ u = −cotangent`` by ``solve`` (``"cg"``,
    ``"normal_cg"`` or ``"dense"``, see the module docstring) to relative residual ``tol`` in ``[0, 1)``
    within ``max_iter`` conjugate-gradient steps (default ``10·d``), then returns ``(∂₂F)ᵀ u``
    (jaxopt ``root_vjp``; the paper's ``uᵀB`` with ``Aᵀu = v``, Eq. (2)).

    Returns a tuple with one entry per ``params`` entry: a tensor shaped like it for a floating tensor,
    ``None`` otherwise. Warns (``RuntimeWarning``) when conjugate gradient stops before ``tol``. Raises
    ``TypeError`` for a non-callable ``optimality_fn`` or a non-tensor ``solution``/``cotangent``,
    ``ValueError`` for a bad ``solve``, ``tol`` or ``max_iter``, a ``cotangent`` or an ``optimality_fn``
    output not shaped like ``solution``, a singular ``∂₁F`` (``"dense"``) or, with ``"cg"``, a ``∂₁F`` that is
    not positive definite.
    """
    _check_callable("optimality_fn", optimality_fn)
    solve, tol, max_iter = _check_solve_options(solve, tol, max_iter)
    for name, value in (("solution", solution), ("cotangent", cotangent)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
    if cotangent.shape != solution.shape:
        raise ValueError(f"cotangent must have solution's shape {tuple(solution.shape)}, got {tuple(cotangent.shape)}")
    return _root_vjp(optimality_fn, solution.detach(), tuple(params), cotangent.detach(), solve, tol, max_iter)


def custom_root(
    optimality_fn: Callable,
    *,
    solve: str = "normal_cg",
    tol: float = 1e-10,
    max_iter: int | None = None,
) -> Callable[[Callable], Callable]:
    """Decorator: make ``solver(init, *params)`` differentiable in ``params`` by the implicit function theorem.

    ``optimality_fn(x, *params)`` returns a tensor shaped like ``x`` that vanishes at the solution (Eq. (1)).
    The decorated ``solver(init, *params)`` returns ``x*`` (a floating tensor) or a
    :class:`~regkit.solvers.SolverResult` whose ``solution`` is ``x*``; it runs under ``torch.no_grad`` on
    detached ``params`` (any black box; one that uses autograd inside wraps that part in
    ``torch.enable_grad()``). The wrapper returns the same object with ``x*`` replaced by a
    tensor whose backward is :func:`root_vjp` (``solve``, ``tol``, ``max_iter`` as there): gradients flow to
    every floating tensor in ``params`` that requires one, none to ``init`` (as jaxopt's ``custom_root``).
    The gradient is exact for an exact root; an inexact ``x*`` gives an error of the order of its residual.

    Raises ``TypeError`` for a non-callable ``optimality_fn`` or ``solver``, or a ``solver`` that returns
    neither a floating tensor nor a ``SolverResult``; ``ValueError`` for a ``solve`` outside ``"cg"``,
    ``"dense"``, ``"normal_cg"``, ``tol`` outside ``[0, 1)``, ``max_iter`` < 1, or (at the call) an
    ``optimality_fn`` output not shaped like ``x*``.
    """
    _check_callable("optimality_fn", optimality_fn)
    options = _check_solve_options(solve, tol, max_iter)

    def decorator(solver: Callable) -> Callable:
        _check_callable("solver", solver)

        @functools.wraps(solver)
        def wrapped(init, *params):
            with torch.no_grad():
                detached = tuple(p.detach() if isinstance(p, torch.Tensor) else p for p in params)
                out = solver(init.detach() if isinstance(init, torch.Tensor) else init, *detached)
                root = out.solution if isinstance(out, SolverResult) else out
                if not isinstance(root, torch.Tensor) or not root.is_floating_point():
                    raise TypeError(
                        "solver must return a floating-point torch.Tensor or a SolverResult, "
                        f"got {type(root).__name__ if not isinstance(root, torch.Tensor) else root.dtype}"
                    )
                _check_shape(optimality_fn(root, *detached), root)
            tensors = [i for i, p in enumerate(params) if isinstance(p, torch.Tensor)]
            static = tuple(None if i in tensors else p for i, p in enumerate(params))
            spec = (optimality_fn, static, tensors, options)
            solution = _ImplicitRoot.apply(spec, root, *(params[i] for i in tensors))
            return dataclasses.replace(out, solution=solution) if isinstance(out, SolverResult) else solution

        return wrapped

    return decorator


def custom_fixed_point(
    fixed_point_fn: Callable,
    *,
    solve: str = "normal_cg",
    tol: float = 1e-10,
    max_iter: int | None = None,
) -> Callable[[Callable], Callable]:
    """Decorator: :func:`custom_root` for a fixed point ``x* = fixed_point_fn(x*, *params)``.

    The optimality mapping is ``F(x, θ) = fixed_point_fn(x, θ) − x`` (jaxopt ``custom_fixed_point``), so
    ``∂₁F = ∂₁T − I`` is in general neither symmetric nor definite: keep ``solve="normal_cg"`` or
    ``"dense"``. Arguments, returns and errors as :func:`custom_root` (``fixed_point_fn`` for
    ``optimality_fn``).
    """
    _check_callable("fixed_point_fn", fixed_point_fn)

    def optimality_fn(x, *params):
        return fixed_point_fn(x, *params) - x

    return custom_root(optimality_fn, solve=solve, tol=tol, max_iter=max_iter)


class _ImplicitRoot(torch.autograd.Function):
    """Identity on the root in the forward pass; :func:`root_vjp` in the backward pass."""

    @staticmethod
    def forward(ctx, spec, root, *tensors):
        ctx.spec = spec
        ctx.save_for_backward(root, *tensors)
        return root.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        optimality_fn, params, tensors, (solve, tol, max_iter) = ctx.spec
        root, *saved = ctx.saved_tensors
        needed = ctx.needs_input_grad[2:]
        if not any(needed):
            return (None, None, *(None for _ in saved))
        args = list(params)
        for i, tensor in zip(tensors, saved, strict=True):
            args[i] = tensor.detach()
        # Only the tensors that need a gradient are differentiated; the others are closed over.
        wanted = [i for i, need in zip(tensors, needed, strict=True) if need and args[i].is_floating_point()]

        def restricted(x, *diff):
            full = list(args)
            for i, value in zip(wanted, diff, strict=True):
                full[i] = value
            return optimality_fn(x, *full)

        vjps = _root_vjp(restricted, root, tuple(args[i] for i in wanted), grad, solve, tol, max_iter)
        by_position = dict(zip(wanted, vjps, strict=True))
        return (None, None, *(by_position.get(i) for i in tensors))


def _root_vjp(optimality_fn, solution, params, cotangent, solve, tol, max_iter) -> tuple:
    """:func:`root_vjp` on checked, detached inputs."""
    diff = [i for i, p in enumerate(params) if isinstance(p, torch.Tensor) and p.is_floating_point()]
    cotangent = cotangent.to(solution.dtype)
    with torch.enable_grad():
        value, vjp_x = torch.func.vjp(lambda x: optimality_fn(x, *params), solution)
        _check_shape(value, solution)

        def transpose_product(u):  # (∂₁F)ᵀ u
            return vjp_x(u)[0]

        def product(w):  # (∂₁F) w
            return torch.func.jvp(lambda x: optimality_fn(x, *params), (solution,), (w,))[1]

        if solve == "dense":
            d = solution.numel()
            jacobian = torch.func.jacrev(lambda x: optimality_fn(x, *params))(solution).reshape(d, d)
            try:
                u = torch.linalg.solve(jacobian.T, -cotangent.reshape(d)).reshape(solution.shape)
            except RuntimeError as error:  # torch.linalg.LinAlgError subclasses RuntimeError
                raise ValueError(f"∂₁F is singular at the solution: {error}") from error
        else:
            steps = max_iter if max_iter is not None else 10 * max(solution.numel(), 1)
            if solve == "cg":
                result = conjugate_gradient(transpose_product, -cotangent, tol=tol, max_iter=steps)
            else:
                result = conjugate_gradient(
                    lambda u: product(transpose_product(u)), -product(cotangent), tol=tol, max_iter=steps
                )
            if not result.converged:
                warnings.warn(
                    f"implicit differentiation: conjugate gradient ({solve}) stopped after {result.n_iter} steps "
                    f"at relative residual {result.error:.3g} > tol={tol:g}; the gradient is approximate",
                    RuntimeWarning,
                    stacklevel=3,
                )
            u = result.solution

        def in_params(*values):
            full = list(params)
            for i, value in zip(diff, values, strict=True):
                full[i] = value
            return optimality_fn(solution, *full)

        vjps = torch.func.vjp(in_params, *(params[i] for i in diff))[1](u) if diff else ()
    by_position = dict(zip(diff, vjps, strict=True))
    return tuple(by_position.get(i) for i in range(len(params)))


def _check_callable(name: str, value) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")


def _check_solve_options(solve, tol, max_iter):
    check_choice("solve", solve, SOLVES)
    tol = check_number("tol", tol, low=0, high=1, high_open=True)
    if max_iter is not None:
        max_iter = int(check_number("max_iter", max_iter, low=1, integer=True))
    return solve, tol, max_iter


def _check_shape(value, root) -> None:
    """An ``optimality_fn`` output must be a tensor shaped like the root (a square ``∂₁F``)."""
    if not isinstance(value, torch.Tensor) or value.shape != root.shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"optimality_fn must return a tensor of the solution's shape {tuple(root.shape)}, got {got}")
