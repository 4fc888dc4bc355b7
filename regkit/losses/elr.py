r"""Early-Learning Regularization (ELR).

Liu, Niles-Weed, Razavian & Fernandez-Granda, "Early-Learning Regularization Prevents
Memorization of Noisy Labels", NeurIPS 2020, arXiv:2007.00151.

Early in training a network fits the clean labels; later it memorizes the noisy ones.
ELR keeps, for every training example :math:`i`, a temporal ensemble of the model's own
predictions and pulls the current prediction towards it:

.. math::

    \hat p_i &= \operatorname{clamp}(\operatorname{softmax}(z_i), \delta, 1 - \delta) \\
    t_i &\leftarrow \beta\, t_i + (1 - \beta)\, \frac{\hat p_i}{\lVert \hat p_i \rVert_1}
        \quad (\text{no gradient}) \\
    \mathcal L &= \frac1B \sum_{i \in \text{batch}} \Big[ -\log \operatorname{softmax}(z_i)_{\tilde y_i}
        + \lambda \log\big(1 - \langle \hat p_i, t_i \rangle\big) \Big]

with :math:`\delta = 10^{-4}`. The targets are updated *before* the loss is evaluated, and
the gradient flows only through :math:`\hat p_i` (the clamp included), as in the authors'
code (``shengliu66/ELR``, ``ELR/model/loss.py``). Minimizing :math:`\log(1-\langle p, t\rangle)`
raises the probability the model gives to the early-learning target, which cancels the
gradient of a memorized wrong label.

Shapes: logits ``(B, C)``, labels ``(B,)`` integer, index ``(B,)`` integer positions of the
batch examples in the training set, targets ``(N, C)``.

Replicated in ``notebooks/elr.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import (
    apply_reduction,
    as_labels,
    check_finite,
    check_number,
    check_range,
    check_reduction,
    check_tensor,
    upcast_half,
)
from regkit.distributed import sync_rows

__all__ = ["ELRLoss", "elr_loss"]


def _clamped_softmax(logits: torch.Tensor, clamp: float) -> torch.Tensor:
    return logits.softmax(dim=1).clamp(clamp, 1.0 - clamp)


def _check_batch(logits, labels) -> torch.Tensor:
    check_tensor("logits", logits, ndim=2, floating=True)
    labels = as_labels("labels", labels, ndim=1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"labels must have one entry per row of logits: labels has shape {tuple(labels.shape)}, "
            f"logits {tuple(logits.shape)}"
        )
    check_finite("logits", logits)
    check_range("labels", labels, 0, logits.shape[1])
    return labels


def _check_clamp(clamp) -> float:
    return check_number("clamp", clamp, low=0, high=0.5, high_open=True)


def elr_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    targets: torch.Tensor,
    *,
    lam: float = 3.0,
    clamp: float = 1e-4,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Cross-entropy plus the ELR term :math:`\lambda \log(1 - \langle \hat p, t\rangle)`.

    A pure function of the current (already updated) targets; :class:`ELRLoss` keeps and
    updates the targets across epochs.

    Args:
        logits: ``(B, C)`` unnormalized scores.
        labels: ``(B,)`` (possibly noisy) integer labels in ``[0, C)``.
        targets: ``(B, C)`` early-learning targets of these examples (rows sum to one);
            treated as constants.
        lam: weight :math:`\lambda \ge 0` of the regularizer.
        clamp: :math:`\delta` in the clamp of the softmax to ``[δ, 1 − δ]``.
        reduction: ``"none"`` (per-example ``(B,)``), ``"mean"`` or ``"sum"``.

    Returns:
        the loss in the logits' dtype (float16/bfloat16 computed in float32).

    Raises:
        ValueError: naming the argument: shapes, dtypes, non-finite logits or targets,
            labels outside ``[0, C)``, ``lam`` < 0, ``clamp`` outside ``[0, 0.5)``, ``reduction``.
    """
    labels = _check_batch(logits, labels)
    check_tensor("targets", targets, ndim=2, floating=True)
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the shape of logits {tuple(logits.shape)}, got {tuple(targets.shape)}")
    check_finite("targets", targets)
    lam = check_number("lam", lam, low=0)
    clamp = _check_clamp(clamp)
    check_reduction(reduction)
    z = upcast_half(logits)
    probs = _clamped_softmax(z, clamp)
    per_example = F.cross_entropy(z, labels, reduction="none") + lam * torch.log1p(
        -(upcast_half(targets).detach() * probs).sum(dim=1)
    )
    return apply_reduction(per_example, reduction).to(logits.dtype)


class ELRLoss(nn.Module):
    r"""ELR loss with per-example temporal-ensemble targets.

    Args:
        num_examples: size :math:`N` of the training set; ``index`` values address it.
        num_classes: number of classes :math:`C`.
        lam: regularization weight :math:`\lambda` (3 in the paper's CIFAR-10 setting).
        beta: momentum :math:`\beta \in [0, 1)` of the temporal ensemble (0.7 for CIFAR-10).
        clamp: :math:`\delta \in [0, 0.5)` of the softmax clamp.
        reduction: ``"none"``, ``"mean"`` (default) or ``"sum"`` of the batch losses.

    Non-finite logits are rejected before the targets are updated, so one bad batch cannot
    poison the state; a constant (e.g. all-zero) row updates its target toward uniform.

    The targets (buffer ``targets``, ``(N, C)``, starting at zero) are updated on every call
    in training mode and left alone in eval mode. Move the module with ``.to(device)``.
    Under ``torch.distributed`` every update is exchanged between the ranks
    (:func:`regkit.distributed.sync_rows`), so all ranks hold the same targets.

    Example::

        criterion = ELRLoss(len(train_set), num_classes=10)
        loss = criterion(model(x[idx]), y[idx], idx)
    """

    targets: torch.Tensor

    def __init__(
        self,
        num_examples: int,
        num_classes: int,
        *,
        lam: float = 3.0,
        beta: float = 0.7,
        clamp: float = 1e-4,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        num_examples = check_number("num_examples", num_examples, low=1, integer=True)
        num_classes = check_number("num_classes", num_classes, low=2, integer=True)
        self.lam = check_number("lam", lam, low=0)
        self.beta = check_number("beta", beta, low=0, high=1, high_open=True)
        self.clamp = _check_clamp(clamp)
        self.reduction = check_reduction(reduction)
        self.register_buffer("targets", torch.zeros(int(num_examples), int(num_classes)))

    def extra_repr(self) -> str:
        n, c = self.targets.shape
        return f"num_examples={n}, num_classes={c}, lam={self.lam}, beta={self.beta}, clamp={self.clamp}"

    @torch.no_grad()
    def update_targets(self, logits: torch.Tensor, index: torch.Tensor) -> None:
        """Temporal-ensemble step :math:`t_i \\leftarrow \\beta t_i + (1-\\beta)\\,\\hat p_i / \\|\\hat p_i\\|_1`."""
        check_tensor("logits", logits, ndim=2, floating=True)
        check_finite("logits", logits)
        index = as_labels("index", index, ndim=1)
        check_range("index", index, 0, self.targets.shape[0])
        if index.shape[0] != logits.shape[0] or logits.shape[1] != self.targets.shape[1]:
            raise ValueError(
                f"logits must be ({index.shape[0]}, {self.targets.shape[1]}) for index of shape "
                f"{tuple(index.shape)}, got {tuple(logits.shape)}"
            )
        probs = _clamped_softmax(upcast_half(logits.detach()), self.clamp).to(self.targets.dtype)
        probs = probs / probs.sum(dim=1, keepdim=True)
        self.targets[index] = self.beta * self.targets[index] + (1.0 - self.beta) * probs
        sync_rows(self.targets, index)  # under torch.distributed: every rank's rows (regkit.distributed)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """ELR loss of a batch (``reduction``); ``index`` ``(B,)`` gives each row's position in
        the training set (any integer dtype, no repeats)."""
        labels = _check_batch(logits, labels)
        if logits.shape[1] != self.targets.shape[1]:
            raise ValueError(
                f"logits must have num_classes={self.targets.shape[1]} columns, got shape {tuple(logits.shape)}"
            )
        index = as_labels("index", index, ndim=1)
        if index.shape[0] != logits.shape[0]:
            raise ValueError(
                f"index must have one entry per row of logits: index has shape {tuple(index.shape)}, "
                f"logits {tuple(logits.shape)}"
            )
        check_range("index", index, 0, self.targets.shape[0])
        if index.unique().numel() != index.numel():
            raise ValueError("index must not repeat an example within a batch")
        if self.training:
            self.update_targets(logits, index)
        return elr_loss(
            logits,
            labels,
            self.targets[index].to(logits.dtype),
            lam=self.lam,
            clamp=self.clamp,
            reduction=self.reduction,
        )
