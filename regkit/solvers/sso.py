"""Target-based surrogates and stochastic surrogate optimization (SSO).

Lavington, Vaswani, Babanezhad, Schmidt & Le Roux, *Target-based Surrogates for Stochastic Optimization*
(ICML 2023, arXiv:2302.02607). The loss :math:`\\ell` depends on the parameters :math:`\\theta` only through the
model's outputs, the *targets* :math:`z = f_\\theta(X)`, and :math:`\\nabla_z \\ell` is the expensive call. At
each outer step :math:`t` SSO draws a mini-batch, computes its targets :math:`z_t = f_{\\theta_t}(X_t)` and the
gradient :math:`\\nabla_z \\ell(z_t)` once, and builds the surrogate

.. math::
    g_t(\\theta) = \\ell(z_t) + \\langle \\nabla_z \\ell(z_t),\\, f_\\theta(X_t) - z_t \\rangle
                  + \\frac{1}{2\\eta}\\, \\lVert f_\\theta(X_t) - z_t \\rVert^2,

a global upper bound on :math:`\\ell(f_\\theta(X_t))` when :math:`\\ell` is :math:`1/\\eta`-smooth in :math:`z`
(full batch: majorization-minimization). It then takes ``m`` cheap inner gradient steps
:math:`\\theta \\leftarrow \\theta - \\alpha \\nabla_\\theta g_t(\\theta)` from :math:`\\theta_t`, needing only the
model's forward and backward passes. Since :math:`f_{\\theta_t}(X_t) = z_t`, :math:`\\nabla_\\theta g_t(\\theta_t)
= J^\\top \\nabla_z \\ell(z_t) = \\nabla_\\theta \\ell(f_{\\theta_t}(X_t))`, so one
inner step (``m = 1``) is exactly an SGD step of size :math:`\\alpha` on the loss; minimizing :math:`g_t`
exactly is the projection of the target-space SGD step :math:`z_t - \\eta \\nabla_z \\ell(z_t)` onto the model's
range (for a linear model, a least-squares fit).

Shapes: ``params`` is a flat 1-D tensor of ``d`` entries; ``model(params, inputs)`` maps the ``(b, …)`` inputs
of a batch to targets of any shape; ``loss(targets, labels)`` returns a scalar (its reduction is the user's:
with ``"mean"`` the quadratic term above is still the plain sum of squares, as in the paper and code, so
``η`` scales with the batch size). Dtype and device follow ``params0``; float64 works.

Checked against the official code, ``WilderLavington/Target-Based-Surrogates-For-Stochastic-Optimization``,
``optimizers/sgd_fmdopt.py`` (``SGD_FMDOpt.step``: the targets and ``dlt_dft = jacobian(loss, target_t)``
computed once per outer step, then ``m`` inner steps on ``surrogate``). Difference in parametrization: the
code's surrogate is ``(dlt_dft · target / eta + (target − target_t)²).mean()``, i.e. ``1/eta_code`` times
:math:`\\langle\\nabla_z\\ell, z\\rangle + \\text{eta\\_code} \\lVert z - z_t\\rVert^2` (averaged over the target
entries): the same minimizer as the paper's form with :math:`\\eta = 1/(2\\,\\text{eta\\_code})`, but a gradient
scaled by ``1/(eta_code · number of target entries)``. Here the paper's :math:`g_t` is followed literally, so
that ``m = 1`` is SGD with step ``inner_lr``. The code's inner optimizer is an Armijo line search (``LSOpt``,
step reset to 10 at each outer step); here the inner steps are plain gradient steps of size ``inner_lr`` by
default (the paper's Algorithm allows any inner optimizer), and ``line_search=True`` is the code's backtracking:
from ``inner_lr`` at each outer step, the step :math:`\alpha` shrinks by 0.9 until
:math:`g_t(\theta - \alpha\nabla g_t) \\le g_t(\\theta) - \\tfrac12\\alpha\\lVert\\nabla g_t\\rVert^2` (``c = 0.5``,
``beta_update = 0.9``; at most 100 trials or down to :math:`10^{-6}`, after which the last trial is taken), and
the next inner step starts from the accepted :math:`\alpha` (the code also multiplies it by
``expand_coeff ** (1 / n_batches_per_epoch)``, close to 1 for many batches; not done here).

Replicated in notebooks/sso_target_surrogates.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from regkit._checks import check_finite, check_number, check_tensor
from regkit.solvers.result import SolverResult

__all__ = ["sso", "target_surrogate"]


def target_surrogate(
    targets: torch.Tensor, anchor: torch.Tensor, anchor_gradient: torch.Tensor, eta: float
) -> torch.Tensor:
    """The target surrogate without its constant: ``⟨∇_z ℓ(z_t), z − z_t⟩ + ‖z − z_t‖² / (2η)``.

    ``targets`` ``z`` (any shape, floating point, differentiable), ``anchor`` ``z_t`` and
    ``anchor_gradient`` ``∇_z ℓ(z_t)`` of the same shape (treated as constants), ``eta`` > 0 the
    target-space step size. Returns a scalar tensor; adding ``ℓ(z_t)`` gives :math:`g_t` of the
    module docstring (Lavington et al. 2023, Sec. 3). Raises ``ValueError`` for shapes that differ or
    ``eta`` ≤ 0.
    """
    check_tensor("targets", targets, floating=True)
    for name, value in (("anchor", anchor), ("anchor_gradient", anchor_gradient)):
        check_tensor(name, value, floating=True)
        if value.shape != targets.shape:
            raise ValueError(f"{name} must have targets' shape {tuple(targets.shape)}, got {tuple(value.shape)}")
    eta = check_number("eta", eta, low=0, low_open=True)
    step = targets - anchor.detach()
    return torch.sum(anchor_gradient.detach() * step) + torch.sum(step * step) / (2 * eta)


def _loss_and_gradient(model, loss, params, inputs, labels):
    """The loss on ``(inputs, labels)`` and its gradient in ``params`` (the record, not the method)."""
    with torch.enable_grad():
        point = params.detach().requires_grad_(True)
        value = loss(model(point, inputs), labels)
        (gradient,) = torch.autograd.grad(value, point)
    return float(value.detach()), float(torch.linalg.vector_norm(gradient))


#: The official ``LSOpt`` constants: sufficient-decrease ``c``, backtracking factor, most trials, smallest step.
_ARMIJO_C, _ARMIJO_SHRINK, _ARMIJO_TRIALS, _ARMIJO_MIN_STEP = 0.5, 0.9, 100, 1e-6


def _armijo_step(model, inputs, anchor, anchor_gradient, eta, params, value, gradient, step):
    """The first ``step · 0.9^i`` with ``g(θ − step ∇g) ≤ g(θ) − c · step · ‖∇g‖²`` (the last trial if none).

    ``g`` is the target surrogate of the batch ``inputs`` around ``anchor``; ``value`` is ``g(params)``.
    """
    decrease = _ARMIJO_C * float(gradient @ gradient)
    with torch.no_grad():
        for _ in range(_ARMIJO_TRIALS):
            trial = target_surrogate(model(params - step * gradient, inputs), anchor, anchor_gradient, eta)
            if float(trial) <= value - step * decrease:
                return step
            step *= _ARMIJO_SHRINK
            if step < _ARMIJO_MIN_STEP:
                return step
    return step


def sso(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    params0: torch.Tensor,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eta: float,
    inner_lr: float,
    inner_steps: int = 1,
    outer_steps: int = 100,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    tol: float = 0.0,
    line_search: bool = False,
) -> SolverResult:
    """Stochastic surrogate optimization: per outer step one expensive ``∇_z ℓ`` call, then ``inner_steps``
    gradient steps on the target surrogate :math:`g_t` (Lavington et al. 2023, Algorithm SSO).

    ``model(params, inputs[idx])`` gives the targets of a batch (differentiable in ``params``, a 1-D floating
    tensor of ``d`` entries); ``loss(targets, labels[idx])`` a scalar. ``inputs`` and ``labels`` hold ``n``
    examples along dimension 0. Each outer step draws ``batch_size`` examples without replacement by
    ``torch.randperm`` from ``generator`` (the whole data set, in order, when ``batch_size`` is ``None``; a
    ``generator`` is then not needed), computes ``z_t`` and ``∇_z ℓ(z_t)`` once, and takes ``inner_steps``
    steps ``θ ← θ − inner_lr · ∇_θ g_t(θ)`` with target step size ``eta``. ``inner_steps = 1`` is SGD
    with step ``inner_lr`` on the same batches. ``line_search=True`` chooses each inner step by Armijo
    backtracking on :math:`g_t` from ``inner_lr`` (the official code's inner optimizer; module docstring).

    Returns a :class:`~regkit.solvers.SolverResult`: ``solution`` (``(d,)``), ``n_iter`` the outer steps
    (= expensive calls), ``objectives`` the loss on the whole data set at ``θ_t`` and ``errors`` the norm
    of its gradient (``n_iter + 1`` floats each; recorded for monitoring, not counted as expensive calls),
    ``converged`` whether ``errors[-1] ≤ tol`` (the run stops early there; ``tol = 0`` runs every step).

    Raises ``TypeError`` for a non-tensor ``params0``/``inputs``/``labels`` or a ``generator`` that is not
    a ``torch.Generator``; ``ValueError`` for ``params0`` not 1-D floating point or not finite, ``inputs``
    and ``labels`` with different numbers of examples, ``eta`` or ``inner_lr`` ≤ 0, ``inner_steps`` or
    ``outer_steps`` < 1, ``batch_size`` outside ``[1, n]``, a ``batch_size`` without a ``generator``,
    ``tol`` < 0, or a ``loss`` that is not a scalar; ``TypeError`` for a ``line_search`` that is not a bool.
    """
    check_tensor("params0", params0, ndim=1, floating=True)
    check_finite("params0", params0)
    check_tensor("inputs", inputs)
    check_tensor("labels", labels)
    n = inputs.shape[0] if inputs.ndim else 0
    if inputs.ndim == 0 or labels.ndim == 0 or labels.shape[0] != n or n == 0:
        raise ValueError(
            f"inputs and labels must hold the same number (≥ 1) of examples along dimension 0, got shapes "
            f"{tuple(inputs.shape)} and {tuple(labels.shape)}"
        )
    eta = check_number("eta", eta, low=0, low_open=True)
    inner_lr = check_number("inner_lr", inner_lr, low=0, low_open=True)
    inner_steps = int(check_number("inner_steps", inner_steps, low=1, integer=True))
    outer_steps = int(check_number("outer_steps", outer_steps, low=1, integer=True))
    tol = check_number("tol", tol, low=0)
    if not isinstance(line_search, bool):
        raise TypeError(f"line_search must be a bool, got {type(line_search).__name__}")
    if batch_size is not None:
        batch_size = int(check_number("batch_size", batch_size, low=1, high=n, integer=True))
        if not isinstance(generator, torch.Generator):
            got = type(generator).__name__
            raise TypeError(f"generator must be a torch.Generator when batch_size is given, got {got}")
    test = loss(model(params0.detach(), inputs[:1]), labels[:1])
    if not isinstance(test, torch.Tensor) or test.numel() != 1:
        raise ValueError(f"loss must return a scalar tensor, got {tuple(getattr(test, 'shape', ()))}")

    params = params0.detach().clone()
    value, error = _loss_and_gradient(model, loss, params, inputs, labels)
    objectives, errors = [value], [error]
    while errors[-1] > tol and len(objectives) <= outer_steps:
        if batch_size is None:
            batch_inputs, batch_labels = inputs, labels
        else:
            indices = torch.randperm(n, generator=generator)[:batch_size].to(inputs.device)
            batch_inputs, batch_labels = inputs[indices], labels[indices]
        with torch.enable_grad():
            anchor = model(params, batch_inputs).detach().requires_grad_(True)
            (anchor_gradient,) = torch.autograd.grad(loss(anchor, batch_labels), anchor)  # the expensive call
            step = inner_lr
            for _ in range(inner_steps):
                point = params.requires_grad_(True)
                surrogate = target_surrogate(model(point, batch_inputs), anchor, anchor_gradient, eta)
                (gradient,) = torch.autograd.grad(surrogate, point)
                if line_search:
                    current = float(surrogate.detach())
                    step = _armijo_step(
                        model, batch_inputs, anchor, anchor_gradient, eta, point.detach(), current, gradient, step
                    )
                params = (point - step * gradient).detach()
        value, error = _loss_and_gradient(model, loss, params, inputs, labels)
        objectives.append(value)
        errors.append(error)
    return SolverResult(params, len(objectives) - 1, errors[-1] <= tol, objectives, errors)
