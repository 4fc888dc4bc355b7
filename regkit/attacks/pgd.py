r"""Projected gradient attacks: robust-accuracy metrics and the inner maximization of adversarial training.

Projected gradient ascent of a loss over the input (PGD; Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards
Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018, arXiv:1706.06083):

.. math::

    x^{(0)} = x + \delta_0,\qquad
    x^{(t+1)} = \Pi_{B_p(x, \epsilon) \cap [\text{lo}, \text{hi}]}
        \Big(x^{(t)} + \alpha\, s\big(\nabla_{x} \ell(f(x^{(t)}), y)\big)\Big),

with :math:`s(g) = \operatorname{sign}(g)` for :math:`p = \infty` and :math:`s(g) = g / \lVert g\rVert_2`
(per example) for :math:`p = 2`; :math:`\delta_0` uniform in the ball (``random_start``) or 0. The
projection onto the ball is a clamp (:math:`\ell_\infty`) or a radial rescaling (:math:`\ell_2`),
followed by the optional box clamp (which keeps the point in the ball, since the box holds
:math:`x`). The last iterate is returned, as in Madry et al. and ``torchattacks``.

The attacks are a family package of their own, ``regkit.attacks``, rather than a module of
:mod:`regkit.losses`: they call a model, where every loss is a function of logits; they serve both
the methods (the inner maximization of adversarial training objectives, such as the smooth
adversarial comp-sum loss of :mod:`regkit.losses.comp_sum`, PGD-AT or TRADES) and the notebooks'
robustness metric (accuracy at PGD points), which must live in the library because a method may
not import the workbook; and a family package keeps the house's mirror rule
(``regkit/attacks/pgd.py`` is tested in ``tests/attacks/test_pgd.py``) with room for other attacks.

**The model is left as it was found.** The attack runs every submodule in eval mode (BatchNorm
uses and keeps its running statistics, dropout is off) and restores each submodule's own
``training`` flag afterwards, also when the loss raises; gradients are taken with
``torch.autograd.grad`` with respect to the input only, so no parameter's ``.grad`` is touched
and no parameter or buffer changes. Gradients are enabled inside the attack, so it works from
evaluation code running under ``torch.no_grad()``.

Shapes: ``x`` ``(B, ...)`` floating (the norm of an example is over all its non-batch entries);
``labels`` any tensor with ``B`` rows that ``loss_fn`` accepts (class ids for the default
``F.cross_entropy``). Randomness comes only from ``generator`` (the random start; drawn on the
generator's device and moved to ``x``'s, so a CPU generator gives the same start on any device),
or from torch's global generator when it is ``None``.

Used by ``notebooks/comp_sum_losses.ipynb`` (ADV-comp-sum training and its PGD robust accuracy).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from regkit._checks import check_choice, check_number, check_tensor
from regkit.losses.comp_sum import DISTANCES, margin_vector_distance
from regkit.losses.trades import trades_kl

__all__ = ["pgd_attack", "smoothness_attack", "trades_attack"]

#: the supported perturbation norms
NORMS = ("inf", "2")


@contextlib.contextmanager
def _eval_mode(model):
    """Every submodule of ``model`` in eval mode inside; each one's own ``training`` flag restored after."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, training in flags:
            module.training = training


def _check_clamp(clamp, x: torch.Tensor):
    if clamp is None:
        return None
    if not (isinstance(clamp, tuple | list) and len(clamp) == 2):
        raise ValueError(f"clamp must be None or a pair (low, high), got {clamp!r}")
    low = check_number("clamp[0]", clamp[0])
    high = check_number("clamp[1]", clamp[1])
    if not low < high:
        raise ValueError(f"clamp must have low < high, got {clamp!r}")
    if x.numel() and bool(((x < low) | (x > high)).any()):
        raise ValueError(
            f"x must lie inside clamp [{low:g}, {high:g}], got values in [{float(x.min()):g}, {float(x.max()):g}]"
        )
    return low, high


def _per_example_norm(v: torch.Tensor) -> torch.Tensor:
    """``‖v_i‖₂`` over the non-batch dimensions, shaped to broadcast against ``v``."""
    return torch.linalg.vector_norm(v.reshape(v.shape[0], -1), dim=1).reshape(-1, *([1] * (v.ndim - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "inf":
        return delta.clamp(-eps, eps)
    scale = (eps / _per_example_norm(delta).clamp_min(torch.finfo(delta.dtype).tiny)).clamp(max=1.0)
    return delta * scale


def _random_start(x: torch.Tensor, eps: float, norm: str, generator) -> torch.Tensor:
    device = generator.device if generator is not None else x.device
    shape = x.shape
    if norm == "inf":
        delta = (2 * torch.rand(shape, generator=generator, device=device, dtype=torch.float32) - 1) * eps
    else:  # uniform in the ℓ2 ball: a uniform direction and a radius eps · U^(1/d)
        direction = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
        direction = direction / _per_example_norm(direction).clamp_min(torch.finfo(torch.float32).tiny)
        dim = max(1, math.prod(shape[1:]))
        radius = eps * torch.rand(shape[0], generator=generator, device=device, dtype=torch.float32) ** (1.0 / dim)
        delta = direction * radius.reshape(-1, *([1] * (len(shape) - 1)))
    return delta.to(device=x.device, dtype=x.dtype)


def pgd_attack(
    model,
    x,
    labels,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "inf",
    loss_fn=F.cross_entropy,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clamp=None,
) -> torch.Tensor:
    r"""Projected gradient ascent of ``loss_fn(model(x'), labels)`` over :math:`\lVert x' - x\rVert_p \le \epsilon`.

    Returns the perturbed inputs (the last iterate), detached, with ``x``'s shape, dtype and
    device; ``x`` itself is not modified. The model's parameters, buffers, gradients and
    train/eval modes are unchanged afterwards (module docstring). Typical use, robust accuracy::

        x_adv = pgd_attack(model, x, y, eps=0.1, step_size=0.01, steps=20, generator=g, clamp=(0, 1))
        robust_correct = (model(x_adv).argmax(1) == y).sum()

    Args:
        model: a callable ``(B, ...) -> (B, K)``, usually an ``nn.Module`` (whose modes are switched to eval
            and restored; a plain function wrapping a module is called as it is, modes untouched).
        x: ``(B, ...)`` floating inputs (inside ``clamp`` when it is given).
        labels: what ``loss_fn`` takes as its second argument (``B`` rows).
        eps: radius :math:`\epsilon \ge 0` of the ball (0 returns a copy of ``x``).
        step_size: step :math:`\alpha > 0` (in the norm's units: per coordinate for ``"inf"``,
            the step's ℓ2 length for ``"2"``).
        steps: number of steps, an integer :math:`\ge 1`.
        norm: ``"inf"`` (:math:`\ell_\infty`, sign steps) or ``"2"`` (:math:`\ell_2`, normalized steps).
        loss_fn: ``loss_fn(logits, labels)``, maximized; a per-example result is summed, a mean is
            fine too (the steps do not depend on the gradient's scale). For a loss that needs the
            clean logits, close over them (see :func:`smoothness_attack`).
        random_start: start from a point drawn uniformly in the ball (else from ``x``).
        generator: the ``torch.Generator`` of the random start (``None``: torch's global one).
        clamp: ``None`` or ``(low, high)``, the box of valid inputs (e.g. ``(0, 1)`` for images).

    Raises:
        ValueError: naming ``eps``, ``step_size``, ``steps``, ``norm``, ``clamp``, ``x`` or
            ``labels`` for a value outside its range (negative or NaN ``eps``, ``steps < 1`` or
            not an integer, a norm other than ``"inf"``/``"2"``, ``x`` outside ``clamp``, ...).
        TypeError: ``model`` or ``loss_fn`` is not callable, ``x`` is not a tensor.
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    eps = check_number("eps", eps, low=0)
    step_size = check_number("step_size", step_size, low=0, low_open=True)
    steps = check_number("steps", steps, low=1, integer=True)
    norm = check_choice("norm", norm, NORMS)
    check_tensor("x", x, floating=True)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must have a non-empty batch dimension, got shape {tuple(x.shape)}")
    if not isinstance(labels, torch.Tensor) or labels.ndim < 1 or labels.shape[0] != x.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor with {x.shape[0]} rows (the batch of x), got {shape}")
    if not isinstance(random_start, bool):
        raise TypeError(f"random_start must be a bool, got {random_start!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    box = _check_clamp(clamp, x)

    x0 = x.detach()
    if eps == 0:
        return x0.clone()
    delta = _random_start(x0, eps, norm, generator) if random_start else torch.zeros_like(x0)
    x_adv = x0 + _project(delta, eps, norm)
    if box is not None:
        x_adv = x_adv.clamp(*box)
    with _eval_mode(model):
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                loss = loss_fn(model(x_adv), labels)
                if not isinstance(loss, torch.Tensor):
                    raise TypeError(f"loss_fn must return a tensor, got {type(loss).__name__}")
                (grad,) = torch.autograd.grad(loss.sum(), x_adv)
            with torch.no_grad():
                if norm == "inf":
                    direction = grad.sign()
                else:
                    direction = grad / _per_example_norm(grad).clamp_min(torch.finfo(grad.dtype).tiny)
                x_adv = x0 + _project(x_adv + step_size * direction - x0, eps, norm)
                if box is not None:
                    x_adv = x_adv.clamp(*box)
    return x_adv.detach()


def smoothness_attack(
    model,
    x,
    labels,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "inf",
    distance: str = "margins",
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clamp=None,
) -> torch.Tensor:
    r"""PGD on the smoothness term of ADV-comp-sum, :math:`\max_{x'} \lVert\Delta_h(x', y) - \Delta_h(x, y)\rVert_2`.

    The clean logits :math:`h(x)` are computed once, in the attack's eval mode and without
    gradients, and :func:`pgd_attack` maximizes :func:`regkit.losses.margin_vector_distance` from them (same
    mode, so the distance is 0 at :math:`x' = x`). Its gradient there is 0, so keep
    ``random_start=True`` (from ``x`` the attack cannot move). Feed the result to
    :func:`regkit.losses.adv_comp_sum_loss` as ``model(x_adv)``.

    Args:
        model, x, labels, eps, step_size, steps, norm, random_start, generator, clamp: as in
            :func:`pgd_attack` (``labels``: ``(B,)`` integer classes).
        distance: ``"margins"`` or ``"logits"``, as in :func:`regkit.losses.margin_vector_distance`.
    """
    check_choice("distance", distance, DISTANCES)
    clean = []  # h(x), computed at the first step: after pgd_attack's checks, inside its eval mode

    def distance_to_clean(adv_logits, labels):
        if not clean:
            with torch.no_grad():
                clean.append(model(x.detach()))
        return margin_vector_distance(clean[0], adv_logits, labels, distance=distance, reduction="sum")

    return pgd_attack(
        model,
        x,
        labels,
        eps=eps,
        step_size=step_size,
        steps=steps,
        norm=norm,
        loss_fn=distance_to_clean,
        random_start=random_start,
        generator=generator,
        clamp=clamp,
    )


def trades_attack(
    model,
    x,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "inf",
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clamp=None,
) -> torch.Tensor:
    r"""PGD on the KL term of TRADES, :math:`\max_{x'} \operatorname{KL}\big(p(x) \,\|\, p(x')\big)`.

    The inner maximization of :func:`regkit.losses.trades_loss` (Zhang et al. 2019; the authors'
    ``trades.py``): the clean logits :math:`h(x)` are computed once, in the attack's eval mode and
    without gradients, and :func:`pgd_attack` maximizes :func:`regkit.losses.trades_kl` from them.
    No labels: the KL compares the model with itself. Its gradient at :math:`x' = x` (the minimum)
    is 0 up to rounding, whose sign would steer the first step, so keep ``random_start=True``; the
    start is uniform in the ball, where the reference starts at :math:`x + 0.001\,\mathcal{N}(0, I)`
    (both leave the minimum; the steps do the rest).

    Args:
        model, x, eps, step_size, steps, norm, random_start, generator, clamp: as in :func:`pgd_attack`.
    """
    clean = []  # h(x), computed at the first step: after pgd_attack's checks, inside its eval mode

    def kl_from_clean(adv_logits, _rows):
        if not clean:
            with torch.no_grad():
                clean.append(model(x.detach()))
        return trades_kl(clean[0], adv_logits, reduction="sum")

    return pgd_attack(
        model,
        x,
        x,  # pgd_attack's labels: rows that the KL ignores
        eps=eps,
        step_size=step_size,
        steps=steps,
        norm=norm,
        loss_fn=kl_from_clean,
        random_start=random_start,
        generator=generator,
        clamp=clamp,
    )
