r"""Dice loss and the self-adjusting Dice loss (DSC) of Li et al., "Dice Loss for Data-imbalanced NLP
Tasks" (ACL 2020, arXiv:1911.02855; official code ``ShannonAI/dice_loss_for_NLP``, ``loss/dice_loss.py``).

With :math:`p_i` the predicted probability of the positive class, :math:`y_i \in \{0, 1\}` its label and
a smoothing constant :math:`\gamma > 0` (the paper's; ``smooth``), the paper's per-example losses are

.. math::
    \mathrm{DSC}:\; 1 - \frac{2\,\tilde p_i\, y_i + \gamma}{\tilde p_i + y_i + \gamma}, \qquad
    \mathrm{DL}:\; 1 - \frac{2\,\tilde p_i\, y_i + \gamma}{\tilde p_i^2 + y_i^2 + \gamma}
    \quad (\text{Milletari et al.'s squared denominator; } ``square\_denominator=True``),

and the *set-level* form over the batch (``set_level=True``; the official binary path)

.. math:: 1 - \frac{2 \sum_i \tilde p_i y_i + \gamma}{\sum_i \tilde p_i^{(2)} + \sum_i y_i^{(2)} + \gamma},

where :math:`\tilde p_i = (1 - p_i)^\alpha\, p_i` is the self-adjusting weighting of the paper's DSC
(``alpha``): :math:`\alpha = 0` gives the plain soft Dice (:math:`\tilde p = p`, the paper's DL with
``square_denominator``), and the paper's "decaying factor :math:`(1 - p)`" is :math:`\alpha = 1`; the
general exponent is the official code's ``alpha``. As in the official code the weighted probability
enters the denominator as well (squared with ``square_denominator``). The official experiment scripts
(every ``scripts/*/bert*_dice.sh``) all use ``--dice_square``, ``smooth=1`` and ``alpha=0.01``, with OHEM
(``dice_ohem`` 0.1 or 0.3) for SQuAD and three of the NER sets; the defaults here are the paper's DSC
form (linear denominator), :math:`\gamma = 1` and plain Dice, so pass ``square_denominator=True,
alpha=0.01`` for the official recipe.

**Behaviour of α > 0 (from the formula, not a bug here).** :math:`\tilde p = (1-p)^\alpha p` is largest
at :math:`p = 1/(1 + \alpha)` and is 0 at :math:`p = 1`: a positive example's loss is smallest at
:math:`p = 1/(1+\alpha)` (0.5 for :math:`\alpha = 1`), its loss at :math:`p = 1` is :math:`1/(1+\gamma)`
(not 0), and a *confidently wrong* negative (:math:`p \to 1`) has a loss that tends to 0 like an easy
one. Small :math:`\alpha` (the official 0.01) confines this to :math:`p > 0.99`.

**Inputs (the family's loss contract).** ``logits``: ``(B,)`` scores of the positive class of a binary
problem (:math:`p = \sigma(z)`) or ``(B, C)`` class scores, :math:`C \ge 2`, of a multi-class problem
(:math:`p = \operatorname{softmax}(z)`, −inf masks a class); ``labels``: ``(B,)`` integer class ids. For
multi-class each class is scored one-vs-rest (:math:`y_{ic} = [\text{label}_i = c]`) and, as in the
official code, the per-class losses are **summed** over the classes. Padded positions are removed by
the caller (``logits[mask], labels[mask]``); the official ``mask`` argument is not taken.

**Reduction.** Per example (default): ``"none"`` returns the ``(B,)`` losses (each summed over the
classes), ``"mean"``/``"sum"`` reduce over the batch — the official code's ``reduction``. Set-level:
the loss is a batch quantity per class; ``"none"`` returns ``(C,)`` (``(1,)`` binary) and ``"mean"``/``"sum"``
reduce over the classes.

**Deviations from the official code.** (1) The official multi-class path without
``square_denominator`` divides a per-example numerator by a denominator summed over the whole batch
(``flat_input.sum()`` without a dimension), a mixture of the two forms; here the per-example form
is per example throughout and the set-level form is set-level throughout. (2) The official binary
path is always set-level; here binary and multi-class take either form. (3) OHEM
(``ohem_ratio``) and ``mask`` are not implemented. (4) The official ``smooth`` default is ``1e-4``; here
it is 1, the value of the official experiment scripts. (5) Logits only (no ``with_logits=False``).

**Numerics.** :math:`1 - (2\tilde p y + \gamma)/(\tilde p^{(2)} + y + \gamma)` is evaluated as
:math:`|\tilde p - y|^{(2)} / (\tilde p^{(2)} + y + \gamma)` (equal for :math:`y \in \{0,1\}`), with
:math:`1 - \tilde p` from :math:`\log \tilde p = \log p + \alpha \log(1-p)` (``-expm1``), :math:`\log(1-p)` from
``logsigmoid(-z)`` (binary) or, for the largest class of a row, from the log-sum-exp of the other
classes, so nothing cancels at saturated logits and every gradient is finite. float16/bfloat16
logits are computed in float32 and the loss is returned in the logits' dtype.

Raises: ``ValueError`` naming the argument for a wrong shape or dtype, NaN/inf logits (−inf is a
masked class in the multi-class case), a row with every class masked, binary labels outside
``{0, 1}``, multi-class labels outside ``[0, C)``, ``smooth`` not positive, ``alpha`` negative, an
unknown ``reduction``; ``TypeError`` for ``square_denominator`` or ``set_level`` not a bool.

Replicated in ``notebooks/dice_loss_imbalanced.ipynb`` (catalogue slug ``dice_loss_imbalanced``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from regkit._checks import (
    apply_reduction,
    as_labels,
    check_finite,
    check_logits_and_labels,
    check_number,
    check_reduction,
    check_tensor,
    upcast_half,
)

__all__ = ["dice_loss"]


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def _binary_inputs(logits, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log p``, ``log(1 - p)`` and the 0/1 targets, each ``(B, 1)``, of a binary problem."""
    check_tensor("logits", logits, ndim=1, floating=True)
    labels = as_labels("labels", labels, ndim=1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must have {logits.shape[0]} entries (the length of logits), got {labels.shape[0]}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 1):
        raise ValueError(
            f"labels must lie in {{0, 1}} for binary (B,) logits, "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    z = upcast_half(logits)
    check_finite("logits", z)
    return F.logsigmoid(z)[:, None], F.logsigmoid(-z)[:, None], labels[:, None].to(z.dtype)


def _multiclass_inputs(logits, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log p``, ``log(1 - p)`` and the one-hot targets, each ``(B, C)``, of a softmax problem.

    :math:`\\log(1 - p_c)` is ``log1p(-p_c)`` for every class but the row's largest (where
    :math:`p_c \\le 1/2`, so it is accurate with a bounded gradient) and the log-sum-exp of the
    other classes minus that of all for the largest, which never rounds to :math:`\\log 0` while
    another class has a finite logit; there :math:`\\log p` is ``log1p(-(1 - p))`` once
    :math:`1 - p < 1/2`. A row with one unmasked class has :math:`\\log(1 - p) = -\\infty` there.
    """
    if isinstance(logits, torch.Tensor) and logits.ndim == 2 and logits.shape[1] < 2:
        raise ValueError(
            f"logits must have C >= 2 columns for multi-class (use shape (B,) for binary), got {logits.shape[1]}"
        )
    labels = check_logits_and_labels(logits, labels)
    z = upcast_half(logits)
    log_p = z.log_softmax(1)
    is_top = torch.zeros_like(z, dtype=torch.bool).scatter_(1, z.argmax(1, keepdim=True), True)
    others = torch.where(is_top, -torch.inf, z)
    none_left = (others == -torch.inf).all(1, keepdim=True)
    lse_others = torch.logsumexp(torch.where(none_left, 0.0, others), 1, keepdim=True)
    log_1mp_top = torch.where(none_left, -torch.inf, lse_others - torch.logsumexp(z, 1, keepdim=True))
    p_rest = torch.where(is_top, 0.0, log_p.exp())  # the largest class is taken out before log1p
    log_1mp = torch.where(is_top, log_1mp_top, torch.log1p(-p_rest))
    near_one = is_top & (log_1mp < -math.log(2))
    log_p = torch.where(near_one, torch.log1p(-torch.exp(log_1mp.clamp(max=-math.log(2)))), log_p)
    return log_p, log_1mp, F.one_hot(labels, z.shape[1]).to(z.dtype)


def dice_loss(
    logits,
    labels,
    *,
    smooth: float = 1.0,
    alpha: float = 0.0,
    square_denominator: bool = False,
    set_level: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Dice loss (``alpha=0``) or self-adjusting Dice loss (``alpha > 0``) on logits.

    Args:
        logits: ``(B,)`` positive-class scores (binary, sigmoid) or ``(B, C)`` class scores,
            ``C >= 2`` (softmax; −inf masks a class).
        labels: ``(B,)`` integer labels (any integer dtype; bool is rejected): ``{0, 1}`` for binary
            logits, ``[0, C)`` otherwise.
        smooth: the smoothing constant :math:`\gamma > 0` added to numerator and denominator (the
            official experiment scripts use 1).
        alpha: the self-adjusting exponent :math:`\alpha \ge 0` of :math:`\tilde p = (1 - p)^\alpha p`
            (0: plain Dice; the official scripts use 0.01).
        square_denominator: :math:`\tilde p^2 + y^2` in the denominator (the paper's DL, Milletari
            et al.) instead of :math:`\tilde p + y` (the paper's DSC).
        set_level: one Dice coefficient per class over the whole batch (sums inside the ratio)
            instead of one per example.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``, over the examples (per-example form, the
            losses summed over the classes) or over the classes (set-level form).

    Returns:
        The loss, in the dtype of ``logits``: ``(B,)`` per example or ``(C,)``/``(1,)`` set-level
        with ``reduction="none"``, a scalar otherwise.
    """
    smooth = check_number("smooth", smooth, low=0, low_open=True)
    alpha = check_number("alpha", alpha, low=0)
    _check_bool("square_denominator", square_denominator)
    _check_bool("set_level", set_level)
    check_reduction(reduction)
    if isinstance(logits, torch.Tensor) and logits.ndim == 1:
        log_p, log_1mp, y = _binary_inputs(logits, labels)
    elif isinstance(logits, torch.Tensor) and logits.ndim == 2:
        log_p, log_1mp, y = _multiclass_inputs(logits, labels)
    else:
        check_tensor("logits", logits)
        raise ValueError(
            f"logits must have shape (B,) (binary) or (B, C) with C >= 2 (multi-class), got {tuple(logits.shape)}"
        )
    if alpha == 0:
        pt, one_minus_pt = log_p.exp(), log_1mp.exp()
    else:
        # log p~ = log p + alpha log(1 - p); alpha log(1 - p) is -inf (p~ = 0) where 1 - p is exactly 0
        log_pt = log_p + alpha * log_1mp
        pt, one_minus_pt = log_pt.exp(), -torch.expm1(log_pt)
    if square_denominator:
        gap = y * one_minus_pt.square() + (1 - y) * pt.square()  # (p~ - y)^2 for y in {0, 1}
        size = pt.square()
    else:
        gap = y * one_minus_pt + (1 - y) * pt  # |p~ - y|
        size = pt
    if set_level:
        losses = gap.sum(0) / (size.sum(0) + y.sum(0) + smooth)
    else:
        losses = (gap / (size + y + smooth)).sum(1)
    return apply_reduction(losses, reduction).to(logits.dtype)
