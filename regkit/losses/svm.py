r"""The L2-SVM (squared hinge) output layer: a linear SVM in place of softmax + cross-entropy.

Agarap, "An Architecture Combining Convolutional Neural Network (CNN) and Support Vector Machine
(SVM) for Image Classification", 2017, arXiv:1712.03541 (slug ``cnn_svm_head``), and "A Neural
Network Architecture Combining Gated Recurrent Unit (GRU) and Support Vector Machine (SVM) for
Intrusion Detection in Network Traffic Data", 2017, arXiv:1709.03082 (slug ``gru_svm_head``),
both after Tang, "Deep Learning using Linear Support Vector Machines", 2013, arXiv:1306.0239.

The last linear layer gives scores :math:`s_{ik} = w_k^\top h_i + b_k` and is trained as :math:`K`
one-vs-rest L2-SVMs, the labels recoded to :math:`t_{ik} = +1` if :math:`k = y_i`, else
:math:`-1`; the prediction is :math:`\arg\max_k s_{ik}`. Per example,

.. math::

    \ell^{\mathrm{ovr}}_i = \sum_{k=1}^{K} \max(0,\, m - t_{ik} s_{ik})^2 ,

and the L2-SVM objective of the papers is :func:`l2_svm_objective`,

.. math::

    \tfrac12 \lVert W \rVert_F^2 + C \sum_i \ell^{\mathrm{ovr}}_i ,

which is also what scikit-learn's ``LinearSVC(loss="squared_hinge", penalty="l2")`` minimises
(one-vs-rest, ``multi_class="ovr"``; with ``fit_intercept=True`` liblinear penalises the
intercept as one more weight, of feature value ``intercept_scaling``).

What the authors' code computes (the TensorFlow 1 ``cnn-svm`` and ``gru-svm`` repositories):
both use the one-vs-rest form above with margin 1 and :math:`t \in \{-1, +1\}`; ``gru_svm.py``
minimises exactly :math:`\tfrac12\lVert W\rVert^2 + C \sum_{i,k}` (the readout weights only, not
the bias), while ``model/cnn_svm.py`` uses means instead of sums,
``mean(W**2) + C * mean_{i,k}(hinge**2)``, which is :math:`\tfrac{2}{DK}` times the objective above
with :math:`C' = C D / (2B)` (``W`` of shape ``(D, K)``, batch ``B``). Both report accuracy as
``argmax(sign(scores))``, which breaks ties between several positive (or all-negative) scores
by the first index; the plain :math:`\arg\max_k s_{ik}` of Tang (2013) and scikit-learn is the
prediction rule meant here.

The Weston–Watkins multi-class squared hinge is also provided (``formulation="weston_watkins"``),

.. math::

    \ell^{\mathrm{ww}}_i = \sum_{k \ne y_i} \max(0,\, m - s_{iy_i} + s_{ik})^2 ,

which is ``torch.nn.MultiMarginLoss(p=2, margin=m)`` **times K**: PyTorch divides each example's
sum by the number of classes :math:`K`, this module does not (so that a masked, ``-inf``, class
is the same as a removed one). It is not what these papers use.

Shapes: logits ``(B, K)``, labels ``(B,)`` class ids; ``reduction="none"`` gives ``(B,)``.

Notebook: ``notebooks/cnn_svm_head.ipynb`` (shared with ``gru_svm_head``; slug registry:
``regkit.workbook.registry``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from regkit._checks import (
    apply_reduction,
    check_choice,
    check_finite,
    check_logits_and_labels,
    check_number,
    check_reduction,
    check_tensor,
    upcast_half,
)

__all__ = ["FORMULATIONS", "l2_svm_objective", "squared_hinge_loss"]

#: The multi-class squared hinge formulations: the papers' one-vs-rest and Weston–Watkins.
FORMULATIONS = ("one_vs_rest", "weston_watkins")


def squared_hinge_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    margin: float = 1.0,
    formulation: str = "one_vs_rest",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The multi-class squared hinge (L2-SVM) loss of linear scores, summed over the classes.

    ``"one_vs_rest"`` (the papers' head, the default): :math:`\sum_k \max(0, m - t_{k} s_{k})^2`
    with :math:`t_y = +1` and :math:`t_k = -1` otherwise. ``"weston_watkins"``:
    :math:`\sum_{k \ne y} \max(0, m - s_y + s_k)^2`, equal to
    ``K * F.multi_margin_loss(logits, labels, p=2, margin=m, reduction=...)`` (PyTorch divides by
    the number of classes; this function does not).

    A ``-inf`` logit masks its class: it contributes nothing, as if the class were removed (a
    label on a masked class gives ``inf``). Half-precision logits are computed in float32 and
    the result is cast back (a squared hinge beyond float16's range is ``inf`` there).

    Args:
        logits: ``(B, K)`` scores of the linear output layer.
        labels: ``(B,)`` class ids in ``[0, K)`` (any integer dtype).
        margin: :math:`m \ge 0` (1 in the papers).
        formulation: ``"one_vs_rest"`` or ``"weston_watkins"``.
        reduction: ``"none"`` (``(B,)``), ``"mean"`` over examples, or ``"sum"``.

    Raises:
        ValueError: naming the argument: shapes/dtypes, NaN/+inf logits, labels outside
            ``[0, K)``, a negative or non-finite ``margin``, an unknown ``formulation`` or
            ``reduction``.
    """
    labels = check_logits_and_labels(logits, labels)
    margin = check_number("margin", margin, low=0)
    check_choice("formulation", formulation, FORMULATIONS)
    check_reduction(reduction)
    z = upcast_half(logits)
    is_label = F.one_hot(labels, z.shape[1]).bool()
    if formulation == "one_vs_rest":
        signs = torch.where(is_label, 1.0, -1.0).to(z.dtype)
        hinge = (margin - signs * z).clamp(min=0)
    else:
        true = z.gather(1, labels[:, None])
        # the label's own term and masked classes are zero before any arithmetic reaches them
        # (a masked label would otherwise give -inf - (-inf) = NaN)
        hinge = torch.where(is_label | (z == -torch.inf), 0.0, margin - true + z).clamp(min=0)
    losses = hinge.square().sum(1)
    return apply_reduction(losses, reduction).to(logits.dtype)


def l2_svm_objective(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | Sequence[torch.Tensor],
    *,
    C: float = 1.0,
    margin: float = 1.0,
    formulation: str = "one_vs_rest",
) -> torch.Tensor:
    r"""The papers' L2-SVM objective :math:`\tfrac12 \sum \lVert w \rVert^2 + C \sum_i \ell_i`.

    :math:`\ell_i` is :func:`squared_hinge_loss` (one-vs-rest by default), summed over the
    examples; the penalty is half the squared Frobenius norm of ``weight`` (a tensor, or a
    sequence of tensors whose penalties add up, e.g. ``(W, b)`` to penalise the bias too, as
    liblinear does). With ``logits = X @ W.T`` this is the objective that scikit-learn's
    ``LinearSVC(loss="squared_hinge", C=C, fit_intercept=False)`` minimises; Agarap's GRU-SVM
    code minimises it with the readout ``W`` only (see the module docstring for the CNN-SVM
    code's scaling).

    Args:
        logits: ``(B, K)`` scores.
        labels: ``(B,)`` class ids.
        weight: the penalised parameters: a floating tensor or a sequence of them.
        C: the SVM penalty parameter, > 0.
        margin: :math:`m \ge 0`.
        formulation: ``"one_vs_rest"`` or ``"weston_watkins"``.

    Raises:
        ValueError: naming the argument: those of :func:`squared_hinge_loss`, ``C`` not
            positive and finite, a non-floating or non-finite ``weight``.
    """
    C = check_number("C", C, low=0, low_open=True)
    weights = [weight] if isinstance(weight, torch.Tensor) else list(weight)
    if not weights:
        raise ValueError("weight must be a tensor or a non-empty sequence of tensors, got an empty sequence")
    for i, w in enumerate(weights):
        name = "weight" if isinstance(weight, torch.Tensor) else f"weight[{i}]"
        check_finite(name, check_tensor(name, w, floating=True))
    data = squared_hinge_loss(logits, labels, margin=margin, formulation=formulation, reduction="sum")
    penalty = sum(0.5 * upcast_half(w).square().sum() for w in weights)
    return (penalty + C * data.to(penalty.dtype)).to(torch.promote_types(logits.dtype, weights[0].dtype))
