r"""Comp-sum losses and the smooth adversarial comp-sum loss.

Mao, Mohri & Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis and Applications",
ICML 2023, arXiv:2304.07288. No official code was found (Papers with Code lists none, and the
code index searched holds no implementation); every formula below is written out and tested.

**Comp-sum losses.** For scores :math:`h \in \mathbb{R}^K` and label :math:`y`,

.. math::

    \ell^\tau(h, y) = \Phi^\tau\Big(\sum_{y' \ne y} e^{h_{y'} - h_y}\Big), \qquad
    \Phi^\tau(u) = \begin{cases}
        \log(1 + u) & \tau = 1, \\[2pt]
        \dfrac{(1 + u)^{1 - \tau} - 1}{1 - \tau} & \tau \ge 0,\ \tau \ne 1,
    \end{cases}

with the members :math:`\tau = 0`: sum-exponential loss :math:`\sum_{y' \ne y} e^{h_{y'} - h_y}`;
:math:`\tau = 1`: logistic loss, i.e. cross-entropy of the softmax; :math:`\tau \in (1, 2)`:
generalized cross-entropy :math:`(1 - p_y^{q})/q` with :math:`q = \tau - 1` (Zhang & Sabuncu 2018);
:math:`\tau = 2`: the mean absolute error :math:`1 - p_y` (:math:`p = \operatorname{softmax}(h)`;
half of :func:`regkit.losses.mae_loss`, which is :math:`\lVert e_y - p\rVert_1`).
Since :math:`1 + u = 1/p_y`, :math:`\ell^\tau = (p_y^{\tau - 1} - 1)/(1 - \tau)`.

*Computation.* With :math:`a = \log u = \operatorname{LSE}_{k \ne y} h_k - h_y` and
:math:`L = \log(1 + u) = \operatorname{softplus}(a) = -\log p_y \ge 0` (no cancellation at
either end), :math:`\Phi^\tau = \int_0^{L} e^{(1-\tau)s}\,ds = \operatorname{expm1}((1 - \tau)L)/(1 - \tau)`,
accurate for every :math:`\tau` including :math:`\tau \to 1` (no threshold is needed: ``expm1``
keeps full relative accuracy for a tiny argument). The gradient is written out (a custom
autograd function whose backward is itself differentiable, so Hessians work):

.. math::

    \frac{\partial \ell^\tau}{\partial h_k} = e^{h_k - h_y - \tau L} \ (k \ne y), \qquad
    \frac{\partial \ell^\tau}{\partial h_y} = -e^{a - \tau L} = -\sum_{k \ne y} \frac{\partial \ell^\tau}{\partial h_k},

i.e. :math:`p_y^{\tau - 1}(p - e_y)`, each entry one ``exp`` of a difference, so a masked class
(score :math:`-\infty`) gets exactly 0 and an overflowing entry is ``inf``, never ``inf·0 = NaN``.

*Range.* For :math:`\tau \ge 1` the loss is finite and its gradient bounded by 1 in every entry
for any finite scores (tested at :math:`\pm 10^4` and beyond); for :math:`\tau > 1` it is also
bounded, :math:`\ell^\tau < 1/(\tau - 1)`. For :math:`\tau < 1` the value and gradient grow like
:math:`e^{(1 - \tau)(h_{y'} - h_y)}` and overflow, honestly, to ``inf`` (no NaN) once a wrong class
leads by about :math:`88/(1-\tau)` (float32) or :math:`709/(1-\tau)` (float64).

*Properties* (elementary from the integral form, tested): :math:`\ell^\tau \ge 0`; non-increasing
in :math:`\tau` for fixed scores (strictly where :math:`L > 0`); non-decreasing in every wrong
class's score and non-increasing in the true class's score; continuous in :math:`\tau`,
including at :math:`\tau = 1`; :math:`\Phi^\tau` is concave for :math:`\tau \ge 0`.

**Smooth adversarial comp-sum loss.** The adversarial part adds to the comp-sum loss at the clean
input a smoothness term on the *margin vector* (its form: see *Provenance* below)
:math:`\Delta_h(x, y) = \big(h(x)_{k} - h(x)_y\big)_{k=1}^{K}`:

.. math::

    \tilde\ell^{\tau}(h, x, y) = \ell^\tau\big(h(x)/\rho,\ y\big)
        + \nu \sup_{\lVert x' - x\rVert \le \gamma} \big\lVert \Delta_h(x', y) - \Delta_h(x, y)\big\rVert_2 ,

minimized with a regularizer on :math:`h` (the ADV-comp-sum algorithms). :func:`adv_comp_sum_loss`
computes it from the clean logits :math:`h(x)` and the logits :math:`h(x')` at the maximizer of the
smoothness term, which :func:`regkit.attacks.smoothness_attack` finds by PGD. ``rho = 1`` (the
default) is the plain comp-sum loss; ``distance="logits"`` replaces the margin-vector distance by
:math:`\lVert h(x') - h(x)\rVert_2` (a TRADES-like reading, which also penalizes a common shift of
all scores; :math:`\lVert\Delta' - \Delta\rVert_2 \le (1 + \sqrt{K})\lVert h(x') - h(x)\rVert_2`).

*Provenance.* The comp-sum family above is the paper's (its special cases are checked in the
tests against cross-entropy, :func:`regkit.losses.gce_loss` and brute force). The full text of the
paper could not be read from the sandbox this module was written in, so the equation numbers are
not cited and the form of the adversarial term (the margin-vector norm, the :math:`\rho` scaling)
follows the catalogue entry and the authors' description ("derived from their comp-sum
counterparts by adding in a related smooth term"), not a checked equation. What is proved here,
and tested, is why the form works: for :math:`\tau \ge 1`,
:math:`v \mapsto \Phi^\tau(\sum_{k \ne y} e^{v_k/\rho})` has gradient entries summing to
:math:`u/(\rho(1+u)^\tau) < 1/\rho`, so it is :math:`(1/\rho)`-Lipschitz in :math:`\lVert\cdot\rVert_2`
and, for :math:`\nu \ge 1/\rho`, :math:`\tilde\ell^\tau \ge \sup_{x'} \ell^\tau(h(x')/\rho, y)`, the
adversarial comp-sum loss (for :math:`\tau < 1` there is no such global constant).

Shapes: logits and adversarial logits ``(B, K)`` (floating; −inf marks a masked class), labels
``(B,)`` (any integer dtype; bool rejected). float16/bfloat16 are computed in float32 and the
loss is returned in the logits' dtype. Raises ``ValueError`` naming the argument for a wrong
shape or dtype, NaN/+inf logits, a label outside ``[0, K)``, an unknown ``reduction`` or
``distance``, or a scalar outside its range (``tau`` < 0 or NaN, ``nu`` < 0, ``rho`` <= 0).

Replicated in ``notebooks/comp_sum_losses.ipynb`` (slug ``comp_sum_losses`` of the catalogue).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regkit._checks import (
    apply_reduction,
    check_choice,
    check_logits,
    check_logits_and_labels,
    check_number,
    check_reduction,
    upcast_half,
)

__all__ = ["adv_comp_sum_loss", "comp_sum_loss", "margin_vector_distance"]

#: the distances the smoothness term can use
DISTANCES = ("margins", "logits")


def _log_u(z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`a = \\log \\sum_{k \\ne y} e^{z_k - z_y}` per row (``-inf`` where no other class is left)
    and :math:`\\operatorname{LSE}_{k \\ne y} z_k` (0 in such a row)."""
    is_label = torch.zeros_like(z, dtype=torch.bool).scatter_(1, labels[:, None], True)
    others = torch.where(is_label, -torch.inf, z)
    none_left = (others == -torch.inf).all(1)
    lse_others = torch.logsumexp(torch.where(none_left[:, None], 0.0, others), 1)
    z_y = z.gather(1, labels[:, None]).squeeze(1)
    return torch.where(none_left, -torch.inf, lse_others - z_y), lse_others


def _phi_of_log1p(big_l: torch.Tensor, tau: float) -> torch.Tensor:
    """:math:`\\Phi^\\tau` as a function of :math:`L = \\log(1 + u)`: ``expm1((1 - τ) L)/(1 - τ)``, or ``L``."""
    if tau == 1.0:
        return big_l
    return torch.expm1((1.0 - tau) * big_l) / (1.0 - tau)


class _CompSum(torch.autograd.Function):
    r"""Per-example comp-sum losses ``(B,)`` with the written-out gradient (module docstring).

    The exponents are assembled from terms that are each exact or bounded: with
    :math:`a - \tau L = \log\sigma(a) + (1 - \tau) L`,

    .. math::

        \partial_{h_k} \ell^\tau
        = \exp\big((h_k - \operatorname{LSE}_{j \ne y} h_j) + \log\sigma(a) + (1 - \tau)L\big),

    whose first two terms are :math:`\le 0`; so for :math:`\tau \ge 1` no exponent is positive even
    where :math:`h_k - h_y` and :math:`L` are both huge and would cancel to a rounding error.
    """

    @staticmethod
    def forward(ctx, z, labels, tau):
        log_u, _ = _log_u(z, labels)
        big_l = F.softplus(log_u)
        ctx.save_for_backward(z, labels)
        ctx.tau = tau
        return _phi_of_log1p(big_l, tau)

    @staticmethod
    def backward(ctx, grad_out):  # torch ops on the saved input: differentiable again (double backward)
        z, labels = ctx.saved_tensors
        tau = ctx.tau
        log_u, lse_others = _log_u(z, labels)
        big_l = F.softplus(log_u)
        # a row whose own class is masked (z_y = -inf) has a constant (or infinite) loss: gradient 0
        label_masked = log_u == torch.inf
        growth = (1.0 - tau) * big_l if tau != 1.0 else torch.zeros_like(big_l)
        own_exponent = torch.where(label_masked, -torch.inf, F.logsigmoid(log_u) + growth)  # a - tau L
        exponent = (z - lse_others[:, None]) + own_exponent[:, None]
        grad = torch.exp(exponent).scatter(1, labels[:, None], -torch.exp(own_exponent)[:, None])
        scaled = grad_out[:, None] * grad
        # a zero upstream gradient times an overflowed (inf) entry is 0, not NaN
        return torch.where(grad_out[:, None] == 0, 0.0, scaled), None, None


def _check_tau(tau) -> float:
    return check_number("tau", tau, low=0)


def comp_sum_loss(logits, labels, *, tau: float, reduction: str = "mean") -> torch.Tensor:
    r"""The comp-sum loss :math:`\Phi^\tau\big(\sum_{y' \ne y} e^{h_{y'} - h_y}\big)` of Mao, Mohri & Zhong (2023).

    ``tau = 0``: sum-exponential; ``1``: cross-entropy (equal to ``F.cross_entropy``);
    ``1.5``: generalized cross-entropy with :math:`q = 0.5`; ``2``: :math:`1 - p_y` (MAE form).
    Computed from :math:`L = \operatorname{softplus}(\operatorname{LSE}_{k \ne y} h_k - h_y) = -\log p_y`
    as ``expm1((1 - τ) L) / (1 - τ)``; see the module docstring for the gradient and the range.

    Args:
        logits: ``(B, K)`` scores (−inf masks a class: the same as removing it).
        labels: ``(B,)`` integer classes in ``[0, K)``.
        tau: :math:`\tau \ge 0` (finite); NaN, negative and infinite values are rejected.
        reduction: ``"none"`` (``(B,)``), ``"mean"`` or ``"sum"``.
    """
    tau = _check_tau(tau)
    check_reduction(reduction)
    labels = check_logits_and_labels(logits, labels)
    losses = _CompSum.apply(upcast_half(logits), labels, tau)
    return apply_reduction(losses, reduction).to(logits.dtype)


def _distance(logits, adv_logits, labels, distance: str) -> torch.Tensor:
    """Checked inputs to the per-example distance ``(B,)`` in the computation dtype (float32 for half)."""
    check_logits("adv_logits", adv_logits, ndim=2)
    if adv_logits.shape != logits.shape:
        raise ValueError(
            f"adv_logits must have the shape of logits {tuple(logits.shape)}, got {tuple(adv_logits.shape)}"
        )
    if bool(((logits == -torch.inf) != (adv_logits == -torch.inf)).any()):
        raise ValueError("adv_logits must be masked (−inf) exactly where logits is")
    z, z_adv = upcast_half(logits), upcast_half(adv_logits)
    common = torch.promote_types(z.dtype, z_adv.dtype)
    z, z_adv = z.to(common), z_adv.to(common)
    masked = z == -torch.inf
    diff = z_adv - torch.where(masked, 0.0, z)  # h(x') - h(x)
    if distance == "margins":
        diff = diff - diff.gather(1, labels[:, None])  # Δ_h(x', y) - Δ_h(x, y)
    return torch.linalg.vector_norm(torch.where(masked, 0.0, diff), dim=1)  # a masked class is no class


def margin_vector_distance(logits, adv_logits, labels, *, distance: str = "margins", reduction: str = "none"):
    r""":math:`\lVert \Delta_h(x', y) - \Delta_h(x, y)\rVert_2` per example, the smoothness term's distance.

    :math:`\Delta_h(x, y)_k = h(x)_k - h(x)_y`; so the distance is
    :math:`\lVert d - d_y \mathbf{1}\rVert_2` with :math:`d = h(x') - h(x)`, invariant to adding a
    constant to all of :math:`h(x')`'s scores. ``distance="logits"`` gives :math:`\lVert d\rVert_2`.
    The gradient at a zero distance is 0 (``torch.linalg.vector_norm``'s subgradient), so a PGD
    search for its maximum needs a random start.

    Args:
        logits: ``(B, K)`` clean scores :math:`h(x)`.
        adv_logits: ``(B, K)`` scores :math:`h(x')`, masked (−inf) exactly where ``logits`` is.
        labels: ``(B,)`` integer classes in ``[0, K)``.
        distance: ``"margins"`` (the paper's margin vector) or ``"logits"``.
        reduction: ``"none"`` (default, ``(B,)``), ``"mean"`` or ``"sum"``.
    """
    check_choice("distance", distance, DISTANCES)
    check_reduction(reduction)
    labels = check_logits_and_labels(logits, labels)
    dist = _distance(logits, adv_logits, labels, distance)
    return apply_reduction(dist, reduction).to(logits.dtype)


def adv_comp_sum_loss(
    logits,
    adv_logits,
    labels,
    *,
    tau: float,
    nu: float,
    rho: float = 1.0,
    distance: str = "margins",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The smooth adversarial comp-sum loss :math:`\ell^\tau(h(x)/\rho, y) + \nu \lVert \Delta' - \Delta\rVert_2`.

    :math:`\Delta = \Delta_h(x, y)` and :math:`\Delta' = \Delta_h(x', y)` are the margin vectors
    :math:`(h_k - h_y)_k` at the clean and the perturbed input (:func:`margin_vector_distance`).

    ``adv_logits`` are the scores :math:`h(x')` at the (approximate) maximizer of the smoothness
    term over the perturbation ball, e.g. from :func:`regkit.attacks.smoothness_attack`; with
    ``adv_logits = logits`` this is :func:`comp_sum_loss` of ``logits / rho``. For
    :math:`\tau \ge 1` and :math:`\nu \ge 1/\rho` it upper-bounds the comp-sum loss at the
    perturbed point, :math:`\ell^\tau(h(x')/\rho, y)` (module docstring). One ADV-comp-sum
    training step::

        x_adv = smoothness_attack(model, x, y, eps=0.1, step_size=0.025, steps=10, generator=g)
        loss = adv_comp_sum_loss(model(x), model(x_adv), y, tau=1.0, nu=6.0)

    Args:
        logits: ``(B, K)`` clean scores :math:`h(x)`.
        adv_logits: ``(B, K)`` scores :math:`h(x')` (gradients flow through both).
        labels: ``(B,)`` integer classes in ``[0, K)``.
        tau: :math:`\tau \ge 0` of the comp-sum part.
        nu: weight :math:`\nu \ge 0` of the smoothness term.
        rho: scale :math:`\rho > 0` of the scores in the comp-sum part (1: unscaled).
        distance: ``"margins"`` (the margin vector :math:`\Delta_h`) or ``"logits"``
            (:math:`\lVert h(x') - h(x)\rVert_2`).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    tau = _check_tau(tau)
    nu = check_number("nu", nu, low=0)
    rho = check_number("rho", rho, low=0, low_open=True)
    check_choice("distance", distance, DISTANCES)
    check_reduction(reduction)
    labels = check_logits_and_labels(logits, labels)
    smooth = _distance(logits, adv_logits, labels, distance)
    comp = _CompSum.apply(upcast_half(logits) / rho, labels, tau)
    losses = comp + nu * smooth
    return apply_reduction(losses, reduction).to(logits.dtype)
