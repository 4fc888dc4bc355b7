r"""Label-rebalancing losses: Balanced Softmax cross-entropy and Balanced MSE (batch Monte-Carlo form).

Both are the rebalancing losses of CircuitGCL (Shen et al., "Transferable Parasitic Estimation via
Graph Contrastive Learning and Label Rebalancing in AMS Circuits", code ShenShan123/CircuitGCL);
they come from two papers by Ren et al.

**Balanced Softmax** (Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition",
NeurIPS 2020, arXiv:2007.10740; code jiawei-ren/BalancedMetaSoftmax-Classification). Training on a
label distribution :math:`\pi_k = n_k / \sum_j n_j` (class counts :math:`n_k`) for a balanced test
distribution, the softmax is shifted by the log prior during training only:

.. math::

    \ell(z, y) = -\log \frac{\pi_y e^{z_y}}{\sum_k \pi_k e^{z_k}}
        = \operatorname{CE}(z + \log \pi, y),

and at test time the plain :math:`\operatorname{softmax}(z)` is used. As in the authors' code the
counts themselves can be passed (the normalization is a constant shift of every logit, which the
cross-entropy ignores); this module adds :math:`\log(n_k / \max_j n_j)`, so uniform counts add
exactly 0 and give ``F.cross_entropy`` bit for bit. A class with count 0 has prior 0: it is removed
from the softmax (its adjusted logit is −inf and its gradient 0), and a label of such a class is
rejected.

**Balanced MSE, BMC** (Ren, Zhang, Yu & Liu, "Balanced MSE for Imbalanced Visual Regression", CVPR
2022, arXiv:2203.16427; code jiawei-ren/BalancedMSE). With a Gaussian likelihood
:math:`\mathcal N(y; \hat y, \sigma^2 I)` and the training label distribution estimated by the batch
targets (batch-based Monte-Carlo), the loss of example :math:`i` is a cross-entropy over the batch:

.. math::

    \ell_i = -\log \frac{\exp(-\lVert \hat y_i - y_i \rVert^2 / 2\sigma^2)}
        {\sum_{j=1}^{B} \exp(-\lVert \hat y_i - y_j \rVert^2 / 2\sigma^2)} \cdot 2\sigma^2 ,

i.e. ``F.cross_entropy(logits, arange(B))`` with ``logits[i, j]`` :math:`= -\lVert \hat y_i - y_j\rVert^2 / 2\sigma^2`
(rows: predictions, columns: targets), then multiplied by :math:`2\sigma^2` to restore the scale of an
MSE. As in the authors' code the factor :math:`2\sigma^2` is **detached**: when :math:`\sigma` is learned
its gradient comes from the logits only. The multi-dimensional version of the authors' code uses
the Gaussian log-density as the logit; its normalizing constant is the same for every column and
cancels, so it equals the squared-distance form above. With one example (:math:`B = 1`) the loss is
0. The batch is the local one: under data parallelism each rank contrasts its own targets, as in
the authors' code.

Shapes: Balanced Softmax takes logits ``(B, K)`` (floating; −inf masks a class), labels ``(B,)``
(any integer dtype, used as int64; bool is rejected) and ``class_counts`` ``(K,)``; Balanced MSE
takes ``pred`` and ``target`` of the same shape ``(B,)``, ``(B, 1)`` or ``(B, d)`` (memory
:math:`O(B^2 d)`). float16/bfloat16 are computed in float32 and the loss is returned in the input
dtype; ``reduction`` ``"none"`` (``(B,)``), ``"mean"`` (the authors' choice) or ``"sum"``.

Raises: ``ValueError`` naming the argument for a wrong shape or dtype, NaN/+inf logits or
non-finite predictions/targets, a label outside ``[0, K)`` or of a class with count 0, counts
that are negative, non-finite or all zero, a ``noise_var`` or ``init_noise_sigma`` that is not
positive and finite, or an unknown ``reduction``.

Replicated in ``notebooks/balanced_softmax_mse.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import (
    apply_reduction,
    check_finite,
    check_logits_and_labels,
    check_number,
    check_reduction,
    check_tensor,
    upcast_half,
)

__all__ = ["BalancedMSELoss", "balanced_mse_loss", "balanced_softmax_loss"]


def _log_prior(class_counts, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """``log(n_k / max_j n_j)`` as a ``(K,)`` tensor of ``like``'s dtype and device (−inf for a zero count)."""
    if not isinstance(class_counts, torch.Tensor):
        try:
            class_counts = torch.as_tensor(class_counts, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"class_counts must be a tensor or a sequence of numbers, got {class_counts!r}") from error
    if class_counts.dtype == torch.bool or class_counts.is_complex():
        raise ValueError(f"class_counts must be real numbers, got dtype {class_counts.dtype}")
    if tuple(class_counts.shape) != (num_classes,):
        raise ValueError(
            f"class_counts must have shape ({num_classes},) (one count per column of logits), "
            f"got {tuple(class_counts.shape)}"
        )
    counts = class_counts.detach().to(device=like.device, dtype=torch.float64)
    check_finite("class_counts", counts)
    if bool((counts < 0).any()):
        raise ValueError(f"class_counts must be non-negative, got a minimum of {float(counts.min())}")
    top = counts.max()
    if not bool(top > 0):
        raise ValueError("class_counts must have at least one positive count, got all zeros")
    return torch.log(counts / top).to(like.dtype)


def balanced_softmax_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, class_counts, reduction: str = "mean"
) -> torch.Tensor:
    r"""Balanced Softmax cross-entropy :math:`\operatorname{CE}(z + \log \pi, y)`, :math:`\pi \propto` ``class_counts``.

    Use it for training on long-tailed labels; predict with the plain logits.

    Args:
        logits: ``(B, K)`` scores (−inf masks a class).
        labels: ``(B,)`` integer classes in ``[0, K)``.
        class_counts: ``(K,)`` training-set counts :math:`n_k \ge 0` (a tensor or a sequence; any
            positive multiple, e.g. the prior itself, gives the same loss). A zero count removes
            its class; its label is then rejected.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    labels = check_logits_and_labels(logits, labels)
    check_reduction(reduction)
    z = upcast_half(logits)
    log_prior = _log_prior(class_counts, z.shape[1], z)
    if labels.numel() and bool((log_prior[labels] == -torch.inf).any()):
        raise ValueError("labels include a class whose count in class_counts is 0 (prior 0: it cannot be a label)")
    # the reduction inside F.cross_entropy: uniform counts then give F.cross_entropy bit for bit
    return F.cross_entropy(z + log_prior, labels, reduction=reduction).to(logits.dtype)


def _check_noise_var(noise_var) -> torch.Tensor | float:
    """``noise_var`` as given (a float, or a one-element tensor reshaped to a scalar), once checked."""
    if isinstance(noise_var, torch.Tensor):
        if noise_var.numel() != 1:
            raise ValueError(f"noise_var must be a number or a one-element tensor, got shape {tuple(noise_var.shape)}")
        if not noise_var.is_floating_point():
            raise ValueError(f"noise_var must be a floating-point tensor, got dtype {noise_var.dtype}")
        check_number("noise_var", noise_var.detach(), low=0, low_open=True)
        return noise_var.reshape(())
    return check_number("noise_var", noise_var, low=0, low_open=True)


def balanced_mse_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    noise_var,
    reduction: str = "mean",
    rescale: bool = True,
) -> torch.Tensor:
    r"""Balanced MSE in its batch Monte-Carlo (BMC) form.

    :math:`\ell_i = 2\sigma^2 \cdot \operatorname{CE}_j(-\lVert \hat y_i - y_j\rVert^2 / 2\sigma^2;\ i)`
    over the batch, with :math:`2\sigma^2` detached.

    Args:
        pred: ``(B,)``, ``(B, 1)`` or ``(B, d)`` predictions :math:`\hat y` (floating, finite).
        target: targets :math:`y` of the same shape (floating, finite).
        noise_var: :math:`\sigma^2 > 0`: a number or a one-element tensor (e.g.
            ``sigma ** 2`` of a learnable ``sigma``, whose gradient then flows through the logits).
        reduction: ``"none"`` (``(B,)``), ``"mean"`` or ``"sum"``.
        rescale: multiply by the detached :math:`2\sigma^2` (the authors' default); ``False``
            returns the bare cross-entropy.
    """
    check_tensor("pred", pred, floating=True)
    check_tensor("target", target, floating=True)
    if pred.ndim not in (1, 2):
        raise ValueError(f"pred must have shape (B,), (B, 1) or (B, d), got {tuple(pred.shape)}")
    if tuple(target.shape) != tuple(pred.shape):
        raise ValueError(f"target must have the shape of pred, {tuple(pred.shape)}, got {tuple(target.shape)}")
    if pred.shape[0] == 0:
        raise ValueError("pred must hold at least one example, got an empty batch")
    if not isinstance(rescale, bool):
        raise TypeError(f"rescale must be a bool, got {rescale!r}")
    check_reduction(reduction)
    check_finite("pred", pred)
    check_finite("target", target)
    noise_var = _check_noise_var(noise_var)
    dtype = torch.promote_types(pred.dtype, target.dtype)
    y_hat = upcast_half(pred.to(dtype)).reshape(pred.shape[0], -1)
    y = upcast_half(target.to(dtype)).reshape(pred.shape[0], -1)
    if isinstance(noise_var, torch.Tensor):
        noise_var = noise_var.to(y_hat.dtype)
    squared = (y_hat[:, None, :] - y[None, :, :]).square().sum(-1)  # (B, B): row i = prediction i, column j = target j
    logits = -squared / (2 * noise_var)
    losses = F.cross_entropy(logits, torch.arange(y_hat.shape[0], device=y_hat.device), reduction="none")
    if rescale:
        scale = 2 * noise_var
        losses = losses * (scale.detach() if isinstance(scale, torch.Tensor) else scale)
    return apply_reduction(losses, reduction).to(dtype)


class BalancedMSELoss(nn.Module):
    r"""Balanced MSE (BMC) with the noise scale :math:`\sigma` held as a parameter (``noise_var`` :math:`= \sigma^2`).

    Args:
        init_noise_sigma: the initial :math:`\sigma > 0` (the authors' default is 1.0).
        learnable: hold :math:`\sigma` as an ``nn.Parameter`` (optimized jointly, as in the authors'
            code, usually with its own learning rate) or as a fixed buffer.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    ``forward(pred, target)`` is :func:`balanced_mse_loss` with ``noise_var = noise_sigma ** 2``; a
    :math:`\sigma` that training has driven to 0 or to a non-finite value raises ``ValueError``
    rather than returning NaN.
    """

    def __init__(self, init_noise_sigma: float = 1.0, *, learnable: bool = True, reduction: str = "mean"):
        super().__init__()
        sigma = check_number("init_noise_sigma", init_noise_sigma, low=0, low_open=True)
        if not isinstance(learnable, bool):
            raise TypeError(f"learnable must be a bool, got {learnable!r}")
        self.reduction = check_reduction(reduction)
        self.learnable = learnable
        value = torch.tensor(float(sigma))
        if learnable:
            self.noise_sigma = nn.Parameter(value)
        else:
            self.register_buffer("noise_sigma", value)

    @property
    def noise_var(self) -> torch.Tensor:
        """:math:`\\sigma^2`, the variance of the Gaussian likelihood."""
        return self.noise_sigma.square()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return balanced_mse_loss(pred, target, noise_var=self.noise_var, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"noise_sigma={float(self.noise_sigma):g}, learnable={self.learnable}, reduction={self.reduction!r}"
