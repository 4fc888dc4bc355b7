r"""PS-KD: self-knowledge distillation with progressively refined targets.

Kim, Ji, Yoon & Hwang, "Self-Knowledge Distillation with Progressive Refinement of
Targets", ICCV 2021, arXiv:2006.12000.

The model is its own teacher: at epoch :math:`t` of :math:`T` the target of example
:math:`i` is

.. math:: \tilde y_i^{(t)} = (1 - \alpha_t)\, y_i + \alpha_t\, p_i^{(t-1)}, \qquad \alpha_t = \alpha_T \frac{t}{T},

where :math:`p_i^{(t-1)}` is the model's prediction for :math:`i` saved during the previous
epoch (no teacher at epoch 0), and the loss is the cross-entropy with the soft target.

Replicated in ``notebooks/ps_kd.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import (
    apply_reduction,
    as_labels,
    check_finite,
    check_logits,
    check_number,
    check_range,
    check_reduction,
    check_tensor,
    upcast_half,
)
from regkit.distributed import sync_rows

__all__ = ["PSKD", "soft_cross_entropy"]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    r""":math:`-\sum_k \tilde y_{ik} \log \operatorname{softmax}(z_i)_k` per example, reduced over the batch.

    Args:
        logits: ``(B, K)`` floating; −inf masks a class (with target 0 it adds 0, not 0·∞).
        targets: ``(B, K)`` floating soft targets (distributions; treated as given).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        the loss in the logits' dtype (float16/bfloat16 computed in float32).

    Raises:
        ValueError: naming the argument: shapes, dtypes, NaN/+inf logits, non-finite targets, ``reduction``.
    """
    check_logits("logits", logits, ndim=2)
    check_tensor("targets", targets, floating=True)
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}")
    check_finite("targets", targets)
    check_reduction(reduction)
    log_p = upcast_half(logits).log_softmax(1)
    t = upcast_half(targets)
    losses = -(t * torch.where(t == 0, 0.0, log_p)).sum(1)
    return apply_reduction(losses, reduction).to(logits.dtype)


class PSKD(nn.Module):
    """PS-KD loss with a per-example memory of last epoch's predictions (the self-teacher).

    Args:
        num_examples: size :math:`N` of the training set (examples are addressed by ``index``).
        num_classes: K.
        epochs: T, the total number of epochs.
        alpha_T: the final weight :math:`\\alpha_T \\in [0, 1]` of the self-teacher (0.8 in the paper).
        reduction: ``"none"``, ``"mean"`` (default) or ``"sum"`` of the batch losses.

    State (buffers, moved with ``.to(device)`` and saved in ``state_dict``): ``previous`` ``(N, K)``,
    last epoch's predicted distributions (the teacher); ``current`` ``(N, K)``, this epoch's, being
    recorded; ``epoch``, a 0-dim integer tensor counting the calls of :meth:`end_epoch`.

    Calling the module, ``criterion(logits, labels, index)`` (the argument order of
    :class:`regkit.losses.ELRLoss`), returns the cross-entropy with the soft targets of
    :meth:`targets` at the current epoch and, in training mode, records the batch's predictions
    (:meth:`record`); in eval mode the state is left alone. Call :meth:`end_epoch` after every epoch.

    Recorded logits must be finite (checked before the memory is written), so one bad batch
    cannot poison next epoch's teacher.

    Under ``torch.distributed`` :meth:`record` exchanges the recorded rows between the ranks
    (:func:`regkit.distributed.sync_rows`), so every rank holds every example's prediction.

    Example::

        criterion = PSKD(len(train_set), num_classes=10, epochs=50).to(device)
        for epoch in range(50):
            for x, y, idx in loader:
                loss = criterion(model(x), y, idx)
                ...
            criterion.end_epoch()
    """

    previous: torch.Tensor
    current: torch.Tensor
    epoch: torch.Tensor

    def __init__(
        self, num_examples: int, num_classes: int, epochs: int, *, alpha_T: float = 0.8, reduction: str = "mean"
    ) -> None:
        super().__init__()
        num_examples = check_number("num_examples", num_examples, low=1, integer=True)
        num_classes = check_number("num_classes", num_classes, low=2, integer=True)
        self.epochs = check_number("epochs", epochs, low=1, integer=True)
        self.num_classes = num_classes
        self.alpha_T = check_number("alpha_T", alpha_T, low=0, high=1)
        self.reduction = check_reduction(reduction)
        self.register_buffer("previous", torch.zeros(int(num_examples), int(num_classes)))
        self.register_buffer("current", torch.zeros(int(num_examples), int(num_classes)))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        n, k = self.previous.shape
        return f"num_examples={n}, num_classes={k}, epochs={self.epochs}, alpha_T={self.alpha_T}"

    def alpha(self, epoch: int) -> float:
        """:math:`\\alpha_t = \\alpha_T t / T` (epoch counted from 0; ``0 ≤ epoch ≤ epochs``).

        Raises:
            ValueError: ``epoch`` not an integer in ``[0, epochs]``.
        """
        epoch = check_number("epoch", epoch, low=0, high=self.epochs, integer=True)
        return self.alpha_T * epoch / self.epochs

    def _index(self, index) -> torch.Tensor:
        index = as_labels("index", index, ndim=1)
        check_range("index", index, 0, self.previous.shape[0])
        return index

    def targets(self, labels: torch.Tensor, index: torch.Tensor, epoch: int | None = None) -> torch.Tensor:
        """Soft targets ``(B, K)`` (distributions) of a batch: one-hot ``labels`` ``(B,)`` at epoch 0, else
        :math:`(1 - \\alpha_t)\\,\\mathrm{onehot}(y) + \\alpha_t\\, p^{(t-1)}_{\\text{index}}`.

        ``epoch`` defaults to the module's counter (the number of :meth:`end_epoch` calls).

        Raises:
            ValueError: labels outside ``[0, K)``, index outside ``[0, N)`` or not of labels' shape, bad ``epoch``.
        """
        labels = as_labels("labels", labels, ndim=1)
        check_range("labels", labels, 0, self.num_classes)
        epoch = int(self.epoch) if epoch is None else epoch
        a = self.alpha(epoch)
        index = self._index(index)
        if index.shape != labels.shape:
            raise ValueError(f"index must have labels' shape {tuple(labels.shape)}, got {tuple(index.shape)}")
        one_hot = F.one_hot(labels, self.num_classes).to(self.previous.dtype)
        if epoch == 0:
            return one_hot
        return (1 - a) * one_hot + a * self.previous[index]

    @torch.no_grad()
    def record(self, logits: torch.Tensor, index: torch.Tensor) -> None:
        """Save this epoch's predictions ``softmax(logits)`` of a batch, logits ``(B, K)`` and index ``(B,)``
        (used as the teacher next epoch).

        Raises:
            ValueError: non-2-D, non-floating or non-finite logits, wrong number of columns, bad index.
        """
        check_tensor("logits", logits, ndim=2, floating=True)
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"logits must have num_classes={self.num_classes} columns, got {tuple(logits.shape)}")
        check_finite("logits", logits)
        index = self._index(index)
        if index.shape[0] != logits.shape[0]:
            raise ValueError(f"index must have {logits.shape[0]} entries (rows of logits), got {index.shape[0]}")
        self.current[index] = upcast_half(logits).softmax(1).to(self.current.dtype)
        sync_rows(self.current, index)  # under torch.distributed: every rank's rows (regkit.distributed)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """PS-KD loss of a batch: ``soft_cross_entropy(logits, self.targets(labels, index))`` with the
        module's ``reduction``; in training mode the batch's predictions are recorded first.

        Raises:
            ValueError: as :meth:`targets`, :meth:`record` and :func:`soft_cross_entropy`.
        """
        if self.training:
            self.record(logits, index)
        return soft_cross_entropy(logits, self.targets(labels, index), reduction=self.reduction)

    def end_epoch(self) -> None:
        """This epoch's predictions become the teacher of the next; the epoch counter advances."""
        self.previous, self.current = self.current, self.previous
        self.epoch += 1
