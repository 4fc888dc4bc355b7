r"""AnyLoss: confusion-matrix metrics as differentiable losses (Han, Moniz & Chawla, 2024, arXiv:2405.14745).

The paper makes a confusion matrix differentiable by pushing each predicted probability towards
0 or 1 with its *approximation function*

.. math::  A(p) = \frac{1}{1 + e^{-L (p - 0.5)}} = \sigma\big(L (p - 0.5)\big),

with an amplifier :math:`L > 0`, and then counts with the amplified predictions
:math:`\hat y = A(p)` and the 0/1 labels :math:`y`:

.. math::
    \mathrm{TN} = \sum_i (1 - y_i)(1 - \hat y_i), \quad \mathrm{FN} = \sum_i y_i (1 - \hat y_i), \quad
    \mathrm{FP} = \sum_i (1 - y_i)\, \hat y_i, \quad \mathrm{TP} = \sum_i y_i\, \hat y_i .

Any metric :math:`M(\mathrm{TN}, \mathrm{FN}, \mathrm{FP}, \mathrm{TP})` of these soft counts is a
differentiable function of the network's output, and the loss is :math:`1 - M`. The metrics here:

* ``"accuracy"``: :math:`(\mathrm{TP} + \mathrm{TN}) / N`;
* ``"fbeta"``: :math:`F_\beta = (1 + \beta^2)\mathrm{TP} / ((1 + \beta^2)\mathrm{TP} + \beta^2 \mathrm{FN}
  + \mathrm{FP})` and ``"f1"``, its :math:`\beta = 1` case;
* ``"balanced_accuracy"``: :math:`(\mathrm{TPR} + \mathrm{TNR}) / 2` with
  :math:`\mathrm{TPR} = \mathrm{TP}/(\mathrm{TP} + \mathrm{FN})` and
  :math:`\mathrm{TNR} = \mathrm{TN} / (\mathrm{TN} + \mathrm{FP})`;
* ``"gmean"``: the geometric mean :math:`\sqrt{\mathrm{TPR} \cdot \mathrm{TNR}}`.

**Input: probabilities, as in the paper.** The paper applies :math:`A` to the *sigmoid output* of
the network (its experiments end the model in a sigmoid and compile the loss on that output), so
the first argument is a probability. ``from_logits=True`` applies the sigmoid (binary) or the
softmax (multi-class) first, for a model that returns scores.

**Amplifier.** ``amplifier=73`` is the value of the authors' experiment notebooks (their code
repository, ``doheonhan/anyloss_extension``; their later README recommends :math:`L \in [2, 70]`).
A hard 0/1 input gives :math:`A(1) = \sigma(L/2)`, within :math:`e^{-36.5} \approx 10^{-16}` of 1 at
:math:`L = 73`, so each loss equals 1 − the metric of the hard predictions to float64 rounding.

**Without the approximation** (``amplifier=None``): :math:`\hat y = p`, the raw probabilities, so the counts
are the "soft" confusion matrix of earlier metric surrogates (``metric="f1"`` is the soft-F1 loss
:math:`1 - 2\sum_i y_i p_i / (\sum_i y_i + \sum_i p_i)`). It is the paper's ablation baseline: the same
loss without :math:`A`, whose counts stay fractional wherever the network is unsure.

**Multi-class (our extension; the paper is binary only).** One-vs-rest: class :math:`c` is the
positive class of its own binary problem, with the labels :math:`y_{ic} = [\text{label}_i = c]` and the
predictions :math:`A(p_{ic})` (:math:`p_{ic}` the probability of class :math:`c`, a softmax column, or
any per-class score in :math:`[0, 1]`). Each class gets the binary metric of its problem and the
``"mean"`` reduction is their macro average; for ``"f1"``/``"fbeta"`` that is scikit-learn's
``average="macro"``. For the other metrics it is the macro average of the one-vs-rest binary scores,
which is **not** scikit-learn's multi-class ``accuracy_score`` (micro) nor its multi-class
``balanced_accuracy_score`` (the mean per-class recall): it scores each class's specificity too.
Note that the one-vs-rest threshold is :math:`p_{ic} = 0.5`, not the argmax.

**Reduction.** The loss is a property of the batch, not of an example: ``reduction="none"`` returns
one loss per scored class, shape ``(C,)`` (``(1,)`` for a binary input, whose only scored class is
the positive one); ``"mean"`` (the macro average) and ``"sum"`` reduce over those classes.

**Degenerate batches** follow scikit-learn: a recall whose class is absent from the batch's labels
is left out of the balanced accuracy and of the geometric mean (which are then the other class's
recall), and :math:`F_\beta` is 0 when its denominator is 0 (``zero_division=0``). The square root of
the geometric mean is taken of the product clamped at the smallest positive float, so its gradient
is finite (and 0 where the product is 0). The authors' later code drops the square root
(:math:`\mathrm{TPR} \cdot \mathrm{TNR}`, a monotone transform); this module keeps the metric itself.

Raises: ``ValueError`` naming the argument for an unknown ``metric`` or ``reduction``, ``beta`` or
``amplifier`` neither ``None`` nor a positive finite number, ``beta`` other than 1 with ``metric="f1"``, probabilities
outside ``[0, 1]`` or non-finite, a wrong shape or dtype, binary labels outside ``{0, 1}`` or
multi-class labels outside ``[0, C)``, or an empty batch; ``TypeError`` for a ``from_logits`` that is
not a bool.

Replicated in ``notebooks/anyloss_metric_losses.ipynb`` (catalogue slug ``anyloss_metric_losses``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from regkit._checks import (
    apply_reduction,
    as_labels,
    check_choice,
    check_finite,
    check_logits,
    check_number,
    check_range,
    check_reduction,
    check_tensor,
    upcast_half,
)

__all__ = ["ANYLOSS_METRICS", "SoftConfusion", "anyloss", "anyloss_approximation", "soft_confusion_matrix"]

#: The metrics :func:`anyloss` turns into losses.
ANYLOSS_METRICS = ("f1", "fbeta", "balanced_accuracy", "gmean", "accuracy")

#: The amplifier of the authors' experiments.
DEFAULT_AMPLIFIER = 73.0


class SoftConfusion(NamedTuple):
    """The smooth confusion-matrix entries, each of shape ``(C,)`` (``(1,)`` for a binary input):
    sums over the batch of products of the 0/1 labels and the amplified predictions :math:`A(p)`
    (the probabilities :math:`p` themselves with ``amplifier=None``)."""

    tn: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor
    tp: torch.Tensor


def anyloss_approximation(probs: torch.Tensor, amplifier: float = DEFAULT_AMPLIFIER) -> torch.Tensor:
    r"""The paper's approximation function :math:`A(p) = 1 / (1 + e^{-L (p - 0.5)})`, elementwise.

    Args:
        probs: probabilities in :math:`[0, 1]` (any shape, floating).
        amplifier: :math:`L > 0` (finite); 73 in the authors' experiments.
    """
    amplifier = check_number("amplifier", amplifier, low=0, low_open=True)
    check_tensor("probs", probs, floating=True)
    return torch.sigmoid(amplifier * (probs - 0.5))


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def _probabilities_and_targets(probs, labels, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``(B, C)`` probabilities (in float32 for half inputs) and ``(B, C)`` 0/1 targets."""
    _check_bool("from_logits", from_logits)
    check_tensor("probs", probs, floating=True)
    if probs.ndim not in (1, 2):
        raise ValueError(
            f"probs must have shape (B,) (binary) or (B, C) with C >= 2 (multi-class), got {tuple(probs.shape)}"
        )
    if probs.shape[0] == 0:
        raise ValueError("probs must hold at least one example (the metrics are batch quantities), got 0")
    binary = probs.ndim == 1
    if not binary and probs.shape[1] < 2:
        raise ValueError(
            f"probs must have C >= 2 columns for multi-class (use shape (B,) for binary), got {probs.shape[1]}"
        )
    labels = as_labels("labels", labels, ndim=1)
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(f"labels must have {probs.shape[0]} entries (rows of probs), got {labels.shape[0]}")
    num_classes = 2 if binary else probs.shape[1]
    if binary and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 1):
        raise ValueError(
            f"labels must lie in {{0, 1}} for a binary input, got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    check_range("labels", labels, 0, num_classes)
    x = upcast_half(probs)
    if from_logits:
        if binary:
            check_finite("probs", x)
            p = torch.sigmoid(x)
        else:
            check_logits("probs", x)
            p = x.softmax(1)
    else:
        check_finite("probs", x)
        if bool(((x < 0) | (x > 1)).any()):
            raise ValueError(
                f"probs must lie in [0, 1] (pass from_logits=True for scores), got values in "
                f"[{float(x.min()):g}, {float(x.max()):g}]"
            )
        p = x
    if binary:
        return p[:, None], labels[:, None].to(p.dtype)
    return p, torch.nn.functional.one_hot(labels, num_classes).to(p.dtype)


def soft_confusion_matrix(
    probs, labels, *, amplifier: float | None = DEFAULT_AMPLIFIER, from_logits: bool = False
) -> SoftConfusion:
    r"""The smooth confusion matrix :math:`(\mathrm{TN}, \mathrm{FP}, \mathrm{FN}, \mathrm{TP})` of the paper.

    Args:
        probs: ``(B,)`` probabilities of the positive class (binary) or ``(B, C)`` per-class
            probabilities (one-vs-rest multi-class); scores instead with ``from_logits=True``.
        labels: ``(B,)`` integer labels, in ``{0, 1}`` (binary) or ``[0, C)``.
        amplifier: :math:`L > 0` of :func:`anyloss_approximation`, or ``None``: count with the
            probabilities themselves (no approximation).
        from_logits: apply the sigmoid (binary) or softmax (multi-class) to ``probs`` first.

    Returns:
        :class:`SoftConfusion` with entries of shape ``(1,)`` (binary) or ``(C,)``, one per class
        (class :math:`c` against the rest), in the dtype of the computation (float32 for half inputs).
    """
    amplifier = _check_amplifier(amplifier)
    p, y = _probabilities_and_targets(probs, labels, from_logits)
    return _soft_confusion(p, y, amplifier)


def _check_amplifier(amplifier) -> float | None:
    """``None`` (no approximation) or a positive finite :math:`L`."""
    return None if amplifier is None else check_number("amplifier", amplifier, low=0, low_open=True)


def _soft_confusion(p: torch.Tensor, y: torch.Tensor, amplifier: float | None) -> SoftConfusion:
    a = p if amplifier is None else torch.sigmoid(amplifier * (p - 0.5))
    tp = (y * a).sum(0)
    fn = (y * (1 - a)).sum(0)
    fp = ((1 - y) * a).sum(0)
    tn = ((1 - y) * (1 - a)).sum(0)
    return SoftConfusion(tn=tn, fp=fp, fn=fn, tp=tp)


def _metric(name: str, cm: SoftConfusion, n_pos: torch.Tensor, n_neg: torch.Tensor, beta: float) -> torch.Tensor:
    """The metric per class from the soft counts and the exact label counts."""
    tiny = torch.finfo(cm.tp.dtype).tiny
    if name == "accuracy":
        return (cm.tp + cm.tn) / (n_pos + n_neg)
    if name in ("f1", "fbeta"):
        b2 = beta * beta
        return (1 + b2) * cm.tp / ((1 + b2) * cm.tp + b2 * cm.fn + cm.fp).clamp_min(tiny)
    # TP + FN = n_pos and TN + FP = n_neg exactly; a recall of an absent class is left out (scikit-learn)
    has_pos, has_neg = n_pos > 0, n_neg > 0
    tpr = cm.tp / n_pos.clamp_min(1)
    tnr = cm.tn / n_neg.clamp_min(1)
    one_sided = torch.where(has_pos, tpr, tnr)
    both = has_pos & has_neg
    if name == "balanced_accuracy":
        return torch.where(both, (tpr + tnr) / 2, one_sided)
    # gmean: sqrt of the product clamped at tiny, a finite gradient (0 where the product is 0)
    return torch.where(both, torch.sqrt((tpr * tnr).clamp_min(tiny)), one_sided)


def anyloss(
    probs,
    labels,
    *,
    metric: str = "f1",
    beta: float = 1.0,
    amplifier: float | None = DEFAULT_AMPLIFIER,
    from_logits: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""AnyLoss: :math:`1 - M(\mathrm{TN}, \mathrm{FN}, \mathrm{FP}, \mathrm{TP})` of the amplified soft counts.

    Args:
        probs: ``(B,)`` probabilities of the positive class (binary, the paper's setting) or
            ``(B, C)`` per-class probabilities, ``C >= 2`` (one-vs-rest multi-class); with
            ``from_logits=True``, scores that go through a sigmoid (binary) or softmax (multi-class).
        labels: ``(B,)`` integer labels (any integer dtype; bool is rejected), in ``{0, 1}`` for a
            binary input and in ``[0, C)`` otherwise.
        metric: ``"f1"``, ``"fbeta"``, ``"balanced_accuracy"``, ``"gmean"`` or ``"accuracy"``.
        beta: :math:`\beta > 0` of ``"fbeta"`` (must be 1 with ``"f1"``; unused by the others).
        amplifier: :math:`L > 0` of the approximation function (73 in the authors' experiments), or
            ``None``: no approximation, the soft metric of the raw probabilities (soft-F1 for ``"f1"``).
        from_logits: whether ``probs`` are scores (see above); ``False`` as in the paper.
        reduction: over the scored classes: ``"none"`` (shape ``(1,)`` binary, ``(C,)`` multi-class),
            ``"mean"`` (the macro average) or ``"sum"``.

    Returns:
        :math:`1 - M` per class or reduced, in the dtype of ``probs``.
    """
    check_choice("metric", metric, ANYLOSS_METRICS)
    beta = check_number("beta", beta, low=0, low_open=True)
    if metric == "f1" and beta != 1.0:
        raise ValueError(f"beta must be 1 with metric='f1' (use metric='fbeta' for beta != 1), got {beta!r}")
    amplifier = _check_amplifier(amplifier)
    check_reduction(reduction)
    p, y = _probabilities_and_targets(probs, labels, from_logits)
    cm = _soft_confusion(p, y, amplifier)
    # exact label counts per class (TP + FN and TN + FP without the rounding of the soft sums)
    n_pos = y.sum(0)
    n_neg = y.shape[0] - n_pos
    losses = 1 - _metric(metric, cm, n_pos, n_neg, beta)
    return apply_reduction(losses, reduction).to(probs.dtype)
