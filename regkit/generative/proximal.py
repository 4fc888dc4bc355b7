"""Learned proximal networks (LPN) and proximal matching.

Fang, Buchanan, Sulam, *What's in a Prior? Learned Proximal Networks for Inverse Problems*, ICLR 2024,
arXiv:2310.14344. Replicated in ``notebooks/lpn_learned_proximal_networks.ipynb``.

**The network.** An input-convex network (ICNN) with a strongly convex quadratic,

.. math::
    z_1 = g(H_1 y),\\quad z_k = g(W_k z_{k-1} + H_k y + b_k)\\ (k = 2..K),\\quad
    \\psi_\\theta(y) = w^\\top z_K + \\langle v, y\\rangle + c + \\tfrac{\\alpha}{2}\\lVert y\\rVert^2,

is convex in :math:`y` when the hidden-to-hidden weights :math:`W_k` and the output weights :math:`w` are
non-negative and :math:`g` is convex and non-decreasing (here the softplus
:math:`g(t) = \\log(1 + e^{\\beta t})/\\beta`); :math:`H_k, b_k, v, c` are free. Its gradient
:math:`f_\\theta = \\nabla\\psi_\\theta` is then the proximal operator of some (possibly nonconvex) function
:math:`R_\\theta` (Gribonval and Nikolova), i.e. :math:`f_\\theta(y) = \\arg\\min_x \\tfrac12\\lVert x - y\\rVert^2
+ R_\\theta(x)`, and for :math:`\\alpha > 0` it is :math:`\\alpha`-strongly monotone, hence invertible.

**The regularizer.** For :math:`x` in the range of :math:`f_\\theta`,

.. math::
    R_\\theta(x) = \\langle x, f_\\theta^{-1}(x)\\rangle - \\tfrac12\\lVert x\\rVert^2
    - \\psi_\\theta(f_\\theta^{-1}(x)) = \\psi_\\theta^*(x) - \\tfrac12\\lVert x\\rVert^2,

where :math:`y = f_\\theta^{-1}(x)` minimises the convex function :math:`\\psi_\\theta(y) - \\langle x, y\\rangle`
(:func:`invert_prox`); :math:`\\psi^*` is the convex conjugate, so :math:`R_\\theta(x)` depends only on the
minimum value, even where the minimiser is not unique (α = 0). :func:`prox_regularizer` evaluates it.

**Proximal matching.** For clean :math:`x` and noisy :math:`y = x + \\sigma n`,

.. math::
    \\mathcal L_{PM}(\\theta; \\gamma)
    = \\mathbb E\\big[1 - \\exp(-\\lVert f_\\theta(y) - x\\rVert_2^2 / \\gamma^2)\\big]

(:func:`proximal_matching_loss`, the norm over all non-batch dimensions of one sample). As
:math:`\\gamma \\to 0` its minimiser tends to the MAP estimate :math:`\\arg\\max_x p(x \\mid y)
= \\operatorname{prox}_{-\\sigma^2 \\log p_x}(y)`, so :math:`R_\\theta \\to -\\sigma^2 \\log p_x` up to a constant,
where the squared ℓ2 loss gives the posterior mean (MMSE) and the ℓ1 loss the posterior median (use
``torch.nn.functional.mse_loss`` / ``l1_loss`` for those). γ is annealed by :func:`proximal_matching_gamma`:
after an ℓ1 pre-training phase, ``stages`` equal stages with :math:`\\gamma = \\gamma_{min} 2^{stages - 1 - s}`.

**Checked against** the official code, ``ZhenghanFang/learned-proximal-networks`` (the repository the
catalogue names ``Sulam-Group/learned-proximal-networks``; only the first author's copy is stored here):
``exps/laplacian/network.py`` (the 1-D LPN: first layer without bias, hidden layers
``act(W z + H y + b)``, output ``w·z + ⟨v, y⟩ + c``, softplus with ``beta``, ``wclip`` clamping every
hidden-to-hidden and output weight to ≥ 0 after each optimizer step, ``forward`` = autograd gradient of
``scalar``), ``lpn/networks/lpn_mnist.py`` (the quadratic term), ``lpn/utils/utils.py`` (``ExpDiracSrgt``:
``1 - exp(-(‖out - target‖/sigma)²)`` per sample, batch mean; ``get_loss_hparams_and_lr``: ℓ1 pre-training,
then ``num_stages`` stages with ``sigma_min·2**(num_stages - 1 - stage)``, ``stage = step // (steps //
num_stages)`` clipped to the last), ``lpn/utils/prior.py`` (``p = ⟨y, x⟩ - ½‖x‖² - psi(y)``, ``y`` the
inverse), ``lpn/utils/invert_model/invert_cvx_gd.py`` (the inverse as the minimiser of
``psi(y) - ⟨x, y⟩``) and ``exps/laplacian/laplacian_train.ipynb`` (the Laplace experiment: ℓ2, ℓ1, then
PM from the ℓ1 model with γ = 0.5, 0.4, 0.3, 0.2, 0.1). The paper's body could not be read here beyond
its abstract; the equations above follow the code and the Gribonval–Nikolova characterisation, and the
soft-thresholding test case below checks the sign conventions. Deliberate differences: the quadratic
is :math:`\\tfrac{\\alpha}{2}\\lVert y\\rVert^2` (the MNIST code adds ``alpha·‖y‖²``, i.e. its ``alpha`` is α/2);
the convex weights are used through ``clamp(min=0)`` in the forward pass, so :math:`\\psi_\\theta` is convex
for any parameter values, and :meth:`LearnedProximalNetwork.project_` (the official ``wclip``) clamps the
stored weights after an optimizer step so that none stays stuck below zero; they are initialised
non-negative (|PyTorch's default uniform|) instead of clipped from a signed draw; the inverse is
computed by a damped Newton method (the official code runs Adam for a fixed number of steps).

Shapes: inputs ``y`` and ``x`` are ``(batch, dim)`` floating tensors; ``potential`` returns ``(batch,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from regkit._checks import apply_reduction, check_finite, check_number, check_reduction, check_tensor
from regkit.solvers.result import SolverResult

__all__ = [
    "InverseResult",
    "LearnedProximalNetwork",
    "invert_prox",
    "proximal_matching_gamma",
    "proximal_matching_loss",
    "prox_regularizer",
]

Potential = Callable[[torch.Tensor], torch.Tensor]


def _uniform(shape, bound: float, generator, dtype, *, nonnegative: bool = False) -> nn.Parameter:
    u = torch.rand(shape, generator=generator, dtype=dtype)
    return nn.Parameter(u * bound if nonnegative else (2 * u - 1) * bound)


class LearnedProximalNetwork(nn.Module):
    """A learned proximal network: an input-convex potential ψ_θ and its gradient f_θ = ∇ψ_θ (the prox).

    Args:
        dim: input dimension n (inputs are ``(batch, n)``).
        hidden: units per hidden layer.
        layers: number K ≥ 1 of hidden layers.
        beta: softplus sharpness β > 0 (the official 1-D experiment uses 10).
        alpha: weight α ≥ 0 of the quadratic α‖y‖²/2 (α > 0 makes f_θ invertible on all of ℝⁿ).
        generator: the ``torch.Generator`` of the initialisation (PyTorch's default uniform
            ``U(-1/√fan_in, 1/√fan_in)``; the weights that must be non-negative are drawn from
            ``U(0, 1/√fan_in)``).
        dtype: parameter dtype (default ``torch.get_default_dtype()``).

    ``potential(y)`` is ψ_θ(y), shape ``(batch,)``; ``forward(y)`` is f_θ(y) = ∇ψ_θ(y), shape ``(batch, n)``,
    differentiable in θ (it builds the graph of the gradient). Raises ``ValueError`` for a non-positive
    ``dim``, ``hidden``, ``layers`` or ``beta``, or a negative ``alpha``.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 64,
        layers: int = 2,
        *,
        beta: float = 10.0,
        alpha: float = 0.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dim = check_number("dim", dim, low=1, integer=True)
        hidden = check_number("hidden", hidden, low=1, integer=True)
        layers = check_number("layers", layers, low=1, integer=True)
        self.beta = check_number("beta", beta, low=0, low_open=True, high=math.inf)
        self.alpha = check_number("alpha", alpha, low=0, high=math.inf)
        self.dim = dim
        dtype = dtype or torch.get_default_dtype()
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        in_bound, hid_bound = 1 / math.sqrt(dim), 1 / math.sqrt(hidden)
        self.input_weights = nn.ParameterList(
            [_uniform((hidden, dim), in_bound, gen, dtype) for _ in range(layers)]  # H_1..H_K
        )
        self.biases = nn.ParameterList([_uniform((hidden,), in_bound, gen, dtype) for _ in range(layers - 1)])
        self.hidden_weights = nn.ParameterList(  # W_2..W_K, non-negative
            [_uniform((hidden, hidden), hid_bound, gen, dtype, nonnegative=True) for _ in range(layers - 1)]
        )
        self.output_weight = _uniform((hidden,), hid_bound, gen, dtype, nonnegative=True)  # w, non-negative
        self.linear = _uniform((dim,), in_bound, gen, dtype)  # v
        self.offset = _uniform((), in_bound, gen, dtype)  # c

    def convex_weights(self) -> list[nn.Parameter]:
        """The weights that must be non-negative for convexity: W_2..W_K and w."""
        return [*self.hidden_weights, self.output_weight]

    @torch.no_grad()
    def project_(self) -> LearnedProximalNetwork:
        """Clamp the convex weights to ≥ 0 in place (call after each optimizer step, as the official
        ``wclip``); returns ``self``."""
        for weight in self.convex_weights():
            weight.clamp_(min=0)
        return self

    def _check_input(self, name: str, y: torch.Tensor) -> torch.Tensor:
        check_tensor(name, y, ndim=2, floating=True)
        if y.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (batch, {self.dim}), got {tuple(y.shape)}")
        return y

    def potential(self, y: torch.Tensor) -> torch.Tensor:
        """ψ_θ(y) for ``y`` of shape ``(batch, dim)``; returns ``(batch,)``. Raises ``ValueError`` on a
        wrong shape or a non-floating dtype."""
        self._check_input("y", y)
        act = nn.functional.softplus
        z = act(y @ self.input_weights[0].T, beta=self.beta)
        for h, w, b in zip(self.input_weights[1:], self.hidden_weights, self.biases):
            z = act(z @ w.clamp(min=0).T + y @ h.T + b, beta=self.beta)
        quadratic = 0.5 * self.alpha * (y * y).sum(1)
        return z @ self.output_weight.clamp(min=0) + y @ self.linear + self.offset + quadratic

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """f_θ(y) = ∇ψ_θ(y), the learned proximal operator, shape ``(batch, dim)``; keeps the graph so that
        a loss on it can be back-propagated to θ. Raises as :meth:`potential`."""
        with torch.enable_grad():
            y = y if y.requires_grad else y.detach().requires_grad_(True)
            return torch.autograd.grad(self.potential(y).sum(), y, create_graph=True)[0]


def proximal_matching_loss(
    input: torch.Tensor, target: torch.Tensor, gamma: float, *, reduction: str = "mean"
) -> torch.Tensor:
    """The proximal matching loss 1 − exp(−‖input − target‖²/γ²) per sample.

    Args:
        input: the denoised estimate f_θ(y), shape ``(batch, *)``, floating.
        target: the clean signal x, the same shape.
        gamma: the width γ > 0 (annealed towards 0 during training, :func:`proximal_matching_gamma`).
        reduction: ``"mean"`` (the official batch mean), ``"sum"`` or ``"none"`` (shape ``(batch,)``).

    The norm runs over all non-batch dimensions. Values lie in [0, 1): 0 for an exact match, → 1 when
    the distance is ≫ γ. Raises ``ValueError`` for ``gamma ≤ 0``, mismatched shapes, a 0-d input or
    an unknown ``reduction``. Source: ``ExpDiracSrgt`` of the official code (module docstring).
    """
    gamma = check_number("gamma", gamma, low=0, low_open=True)
    check_reduction(reduction)
    check_tensor("input", input, floating=True)
    check_tensor("target", target, floating=True)
    if input.ndim == 0 or input.shape != target.shape:
        raise ValueError(
            f"input and target must have the same shape (batch, *), got {tuple(input.shape)} and {tuple(target.shape)}"
        )
    squared = (input - target).pow(2).reshape(input.shape[0], -1).sum(1)
    return apply_reduction(-torch.expm1(-squared / gamma**2), reduction)


def proximal_matching_gamma(step: int, *, total_steps: int, gamma_min: float, stages: int = 4) -> float:
    """The γ of proximal-matching step ``step`` (counted after the ℓ1 pre-training): ``stages`` equal
    stages of ``total_steps // stages`` steps with γ = ``gamma_min``·2^(stages − 1 − stage), the last
    stage running to the end (the official ``get_loss_hparams_and_lr``).

    Raises ``ValueError`` for ``step < 0``, ``gamma_min ≤ 0``, ``stages < 1`` or ``total_steps < stages``.
    """
    stages = check_number("stages", stages, low=1, integer=True)
    total_steps = check_number("total_steps", total_steps, low=stages, integer=True)
    step = check_number("step", step, low=0, integer=True)
    gamma_min = check_number("gamma_min", gamma_min, low=0, low_open=True)
    stage = min(step // (total_steps // stages), stages - 1)
    return gamma_min * 2.0 ** (stages - 1 - stage)


@dataclass(frozen=True)
class InverseResult(SolverResult):
    """The result of :func:`invert_prox`: ``solution`` y with f(y) ≈ x, shape ``(batch, dim)``;
    ``objectives`` the summed ψ(y) − ⟨x, y⟩ and ``errors`` the largest residual max_i ‖f(y_i) − x_i‖
    per iteration; ``minimum`` the per-sample minimum value ψ(y_i) − ⟨x_i, y_i⟩, shape ``(batch,)``."""

    minimum: torch.Tensor


def _value_and_gradient(potential: Potential, x: torch.Tensor, y: torch.Tensor, create_graph: bool = False):
    with torch.enable_grad():
        y = y.detach().requires_grad_(True)
        psi = potential(y)
        grad = torch.autograd.grad(psi.sum(), y, create_graph=create_graph)[0]
    return y, (psi - (x * y).sum(1)).detach(), grad - x


def _hessians(y: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Per-sample Hessians ∂²ψ(y_i), shape (batch, n, n): the problem is separable over the batch, so
    one backward pass per coordinate j gives column j of every sample's Hessian."""
    columns = [
        torch.autograd.grad(residual[:, j].sum(), y, retain_graph=j < y.shape[1] - 1)[0] for j in range(y.shape[1])
    ]
    return torch.stack(columns, dim=2)


def invert_prox(
    potential: Potential,
    x: torch.Tensor,
    *,
    init: torch.Tensor | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
    damping: float = 1e-10,
) -> InverseResult:
    """f^{-1}(x) for f = ∇ψ, by minimising the convex ψ(y) − ⟨x, y⟩ per sample (damped Newton).

    Args:
        potential: ψ, a callable from ``(batch, n)`` to ``(batch,)``, convex and twice differentiable
            in each sample (a :meth:`LearnedProximalNetwork.potential`, or any such function).
        x: the points to invert, ``(batch, n)``, floating (float64 recommended); each must lie in the
            range of f (always true for an LPN with α > 0).
        init: the starting point (default ``x``), same shape.
        tol: stop when max_i ‖f(y_i) − x_i‖ ≤ ``tol``.
        max_iter: Newton steps at most.
        damping: Levenberg term added to each Hessian, relative to its largest diagonal entry
            (keeps the step defined where ψ is flat, e.g. α = 0).

    Each step solves (∇²ψ(y_i) + δI) d_i = x_i − f(y_i) for every sample (n backward passes for the n
    columns of the Hessians) and halves the step t_i of each sample until
    h(y_i + t_i d_i) ≤ h(y_i) + 10⁻⁴ t_i ⟨∇h(y_i), d_i⟩, h = ψ − ⟨x_i, ·⟩ (at most 40 halvings; the full
    step is taken when the predicted decrease is below the roundoff of h, where Newton converges locally).
    Cost per step: n + 1 backward passes; meant for small n (the 1-D and patch experiments).

    Returns an :class:`InverseResult`. Raises ``ValueError`` for a non-2-D or non-finite ``x``, a
    mismatched ``init``, or ``tol``, ``max_iter``, ``damping`` out of range.
    """
    check_tensor("x", x, ndim=2, floating=True)
    check_finite("x", x)
    tol = check_number("tol", tol, low=0, low_open=True)
    max_iter = check_number("max_iter", max_iter, low=0, integer=True)
    damping = check_number("damping", damping, low=0)
    if init is None:
        y = x.detach().clone()
    else:
        check_tensor("init", init, floating=True)
        if init.shape != x.shape:
            raise ValueError(f"init must have the shape of x {tuple(x.shape)}, got {tuple(init.shape)}")
        y = init.detach().clone()
    x = x.detach()
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    y, value, residual = _value_and_gradient(potential, x, y, create_graph=True)
    objectives, errors = [float(value.sum())], [float(residual.detach().norm(dim=1).max())]
    n_iter = 0
    while errors[-1] > tol and n_iter < max_iter:
        hess = _hessians(y, residual)
        scale = hess.diagonal(dim1=1, dim2=2).abs().amax(1).clamp_min(1.0)
        direction = torch.linalg.solve(hess + damping * scale[:, None, None] * eye, -residual.detach().unsqueeze(2))
        direction = direction.squeeze(2)
        slope = (residual.detach() * direction).sum(1)
        roundoff = -slope <= 1e-12 * (1 + value.abs())  # decrease below roundoff: take the Newton step
        base, step = y.detach(), torch.ones_like(value)
        pending = torch.ones_like(value, dtype=torch.bool)
        new_value = value.clone()
        for _ in range(40):
            with torch.no_grad():
                trial = base + step[:, None] * direction
                trial_value = potential(trial) - (x * trial).sum(1)
            accept = pending & ((trial_value <= value + 1e-4 * step * slope) | roundoff)
            new_value = torch.where(accept, trial_value, new_value)
            pending = pending & ~accept
            if not bool(pending.any()):
                break
            step = torch.where(pending, step / 2, step)
        step = torch.where(pending, torch.zeros_like(step), step)  # no decrease found: stay
        y, value, residual = _value_and_gradient(potential, x, base + step[:, None] * direction, create_graph=True)
        n_iter += 1
        objectives.append(float(value.sum()))
        errors.append(float(residual.detach().norm(dim=1).max()))
        if not bool((step > 0).any()):
            break
    return InverseResult(
        solution=y.detach(),
        n_iter=n_iter,
        converged=errors[-1] <= tol,
        objectives=objectives,
        errors=errors,
        minimum=value,
    )


def prox_regularizer(potential: Potential, x: torch.Tensor, **solver) -> tuple[torch.Tensor, InverseResult]:
    """The regularizer R whose prox is f = ∇ψ: R(x) = ⟨x, f^{-1}(x)⟩ − ½‖x‖² − ψ(f^{-1}(x)).

    Args:
        potential: ψ as in :func:`invert_prox` (e.g. ``lpn.potential``).
        x: ``(batch, n)`` floating points in the range of f.
        **solver: keyword arguments of :func:`invert_prox` (``init``, ``tol``, ``max_iter``, ``damping``).

    Returns ``(R(x), result)``: R of shape ``(batch,)`` (computed as −min_y[ψ(y) − ⟨x, y⟩] − ½‖x‖², i.e.
    ψ*(x) − ½‖x‖², well defined even where f^{-1}(x) is a set) and the :class:`InverseResult` (check
    ``result.converged``). R is exact, including its constant: f(y) = argmin_x ½‖x − y‖² + R(x).
    Raises what :func:`invert_prox` raises.
    """
    result = invert_prox(potential, x, **solver)
    return -result.minimum - 0.5 * (x.detach() * x.detach()).sum(1), result
