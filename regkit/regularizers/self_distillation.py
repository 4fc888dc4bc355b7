r"""PS-KD: self-knowledge distillation with progressively refined targets.

Kim, Ji, Yoon & Hwang, "Self-Knowledge Distillation with Progressive Refinement of
Targets", ICCV 2021, arXiv:2006.12000.

The model is its own teacher: at epoch :math:`t` of :math:`T` the target of example
:math:`i` is

.. math:: \tilde y_i^{(t)} = (1 - \alpha_t)\, y_i + \alpha_t\, p_i^{(t-1)}, \qquad \alpha_t = \alpha_T \frac{t}{T},

where :math:`p_i^{(t-1)}` is the model's prediction for :math:`i` saved during the previous
epoch (no teacher at epoch 0), and the loss is the cross-entropy with the soft target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regkit._checks import check_probability, check_range, check_tensor
from regkit.distributed import sync_rows

__all__ = ["PSKD", "soft_cross_entropy"]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r""":math:`-\frac1B\sum_i \sum_k \tilde y_{ik} \log \operatorname{softmax}(z_i)_k` for soft targets ``(B, K)``."""
    check_tensor("logits", logits, ndim=2, floating=True)
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}")
    return -(targets * logits.log_softmax(1)).sum(1).mean()


class PSKD:
    """Per-example memory of last epoch's predictions and the PS-KD target schedule.

    Args:
        num_examples: size of the training set (examples are addressed by index).
        num_classes: K.
        epochs: T, the total number of epochs.
        alpha_T: the final weight :math:`\\alpha_T \\in [0, 1]` of the self-teacher (0.8 in the paper).

    Under ``torch.distributed`` :meth:`record` exchanges the recorded rows between the ranks
    (:func:`regkit.distributed.sync_rows`), so every rank holds every example's prediction.
    """

    def __init__(self, num_examples: int, num_classes: int, epochs: int, alpha_T: float = 0.8, device=None):
        if epochs < 1:
            raise ValueError(f"epochs must be positive, got {epochs}")
        self.alpha_T = check_probability("alpha_T", alpha_T)
        self.epochs, self.num_classes = epochs, num_classes
        self.previous = torch.zeros(num_examples, num_classes, device=device)
        self.current = torch.zeros_like(self.previous)

    def alpha(self, epoch: int) -> float:
        """:math:`\\alpha_t = \\alpha_T t / T` (epoch counted from 0)."""
        return self.alpha_T * epoch / self.epochs

    def targets(self, labels: torch.Tensor, index: torch.Tensor, epoch: int) -> torch.Tensor:
        """Soft targets ``(B, K)`` of a batch at ``epoch``."""
        check_tensor("labels", labels, ndim=1, floating=False)
        check_range("labels", labels, 0, self.num_classes)
        one_hot = F.one_hot(labels, self.num_classes).to(self.previous.dtype)
        if epoch == 0:
            return one_hot
        a = self.alpha(epoch)
        return (1 - a) * one_hot + a * self.previous[index]

    @torch.no_grad()
    def record(self, index: torch.Tensor, logits: torch.Tensor) -> None:
        """Save this epoch's predictions of a batch (used as the teacher next epoch)."""
        self.current[index] = logits.softmax(1).to(self.current.dtype)
        sync_rows(self.current, index)  # under torch.distributed: every rank's rows (regkit.distributed)

    def end_epoch(self) -> None:
        """This epoch's predictions become the teacher of the next."""
        self.previous, self.current = self.current, self.previous
