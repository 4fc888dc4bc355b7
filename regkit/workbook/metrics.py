r"""Classification metrics: accuracy, top-k accuracy, negative log-likelihood, calibration, noisy-label fits.

Expected calibration error with :math:`M` equal-width confidence bins :math:`B_m`:

.. math:: \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,\big|\operatorname{acc}(B_m) - \operatorname{conf}(B_m)\big|

where the confidence of an example is its largest predicted probability (Guo et al., 2017).
Shapes: logits/probabilities ``(n, C)``, labels ``(n,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max is the label."""
    return float((logits.argmax(dim=1) == labels).float().mean())


def top_k_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks) -> dict[int, float]:
    """Per ``k`` in ``ks``: the fraction of rows whose label is among the ``k`` highest scores ``(n, C)``.

    Ties count against the label: its rank is the number of other classes scoring at least as high, and
    it is in the top ``k`` iff that rank is below ``k`` (a constant row is a miss for every ``k < C``).
    Any monotone map of the scores (softmax, log-probabilities) gives the same result."""
    target = scores.gather(1, labels[:, None])
    rank = (scores >= target).sum(1) - 1
    return {int(k): float((rank < k).double().mean()) for k in ks}


def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood (cross-entropy) of the labels."""
    return float(F.cross_entropy(logits.float(), labels))


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per-bin data of a reliability diagram; empty bins have ``count == 0`` and NaN means."""

    edges: np.ndarray  # (M + 1,)
    confidence: np.ndarray  # (M,) mean confidence in the bin
    accuracy: np.ndarray  # (M,) accuracy in the bin
    count: np.ndarray  # (M,) examples in the bin

    @property
    def ece(self) -> float:
        filled = self.count > 0
        weights = self.count[filled] / self.count.sum()
        return float(np.sum(weights * np.abs(self.accuracy[filled] - self.confidence[filled])))


def reliability_diagram(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> ReliabilityDiagram:
    """Bin examples by confidence into ``n_bins`` equal-width bins of (0, 1]."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    probs = probs.detach().cpu()
    confidence, prediction = probs.to(torch.promote_types(probs.dtype, torch.float32)).max(dim=1)
    correct = (prediction == labels.cpu()).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=confidence.dtype)
    # bin m holds (edges[m], edges[m+1]]; a confidence of exactly 0 cannot occur
    bins = torch.bucketize(confidence, edges, right=False).clamp(1, n_bins) - 1
    count = torch.bincount(bins, minlength=n_bins).double()
    conf_sum = torch.bincount(bins, weights=confidence.double(), minlength=n_bins)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ReliabilityDiagram(
            edges=edges.double().numpy(),
            confidence=(conf_sum / count).numpy(),
            accuracy=(acc_sum / count).numpy(),
            count=count.long().numpy(),
        )


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE of the top-label confidence with ``n_bins`` equal-width bins."""
    return reliability_diagram(probs, labels, n_bins).ece


def noisy_label_fractions(
    logits: torch.Tensor, clean_labels: torch.Tensor, noisy_labels: torch.Tensor
) -> dict[str, float]:
    """On the examples whose label was corrupted, the fractions predicted as their true
    label (``"true"``), as their noisy label (``"noisy"``, memorized) and as anything else
    (``"other"``): the three curves of the ELR paper's Figure 1. They sum to one."""
    corrupted = clean_labels != noisy_labels
    if not bool(corrupted.any()):
        raise ValueError("noisy_labels equal clean_labels everywhere: there are no noisy examples to measure")
    prediction = logits[corrupted].argmax(dim=1)
    true = float((prediction == clean_labels[corrupted]).float().mean())
    noisy = float((prediction == noisy_labels[corrupted]).float().mean())
    return {"true": true, "noisy": noisy, "other": 1.0 - true - noisy}


def pass_at_k(logits: torch.Tensor, labels: torch.Tensor, ks) -> dict[int, float]:
    r"""Expected pass@k of sampling from ``softmax(logits)``: the mean over examples of
    :math:`1 - (1 - p_y)^k`, the chance that ``k`` independent samples contain the label."""
    log_p = torch.log_softmax(logits.double(), 1).gather(1, labels[:, None]).squeeze(1)
    log_miss = torch.log1p(-log_p.exp().clamp(max=1.0))  # log(1 - p)
    return {int(k): float((-torch.expm1(k * log_miss)).mean()) for k in ks}


def aurc(probs: torch.Tensor, labels: torch.Tensor) -> float:
    r"""Area under the risk–coverage curve (Geifman & El-Yaniv): rank examples by confidence
    (largest probability), and average over coverages :math:`i/n` the error rate of the
    :math:`i` most confident. Lower is better; it rewards ranking errors last."""
    confidence, prediction = probs.max(1)
    order = torch.argsort(confidence, descending=True, stable=True)
    errors = (prediction[order] != labels[order]).double()
    risks = errors.cumsum(0) / torch.arange(1, len(errors) + 1, dtype=torch.float64, device=errors.device)
    return float(risks.mean())


def label_probability(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean softmax probability of the label, :math:`\\frac1n\\sum_i p_{y_i}`; logits ``(n, C)``, labels ``(n,)``."""
    return float(logits.softmax(1).gather(1, labels[:, None]).mean())


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    r"""Relative Frobenius error :math:`\lVert a - b\rVert_F / \lVert b\rVert_F` of ``estimate`` against
    ``reference`` (same shape). Raises ``ValueError`` on a shape mismatch."""
    if estimate.shape != reference.shape:
        raise ValueError(
            f"estimate and reference must have the same shape, got {tuple(estimate.shape)} and {tuple(reference.shape)}"
        )
    return float((estimate - reference).norm() / reference.norm())


def collapsed_fraction(losses: torch.Tensor) -> float:
    """Share of per-example losses ``(n,)`` that are exactly 0: Softmax Collapse (Prieto et al., ICLR 2025,
    arXiv:2501.04697, §3), where :math:`p_y` has rounded to 1 in the loss's precision and the gradient on
    the label's logit vanishes."""
    return float((losses == 0).float().mean())


def parameter_norm(model: torch.nn.Module) -> float:
    r"""Euclidean norm of all parameters together, :math:`\sqrt{\sum_w \lVert w\rVert^2}`."""
    return float(sum(w.detach().pow(2).sum() for w in model.parameters()).sqrt())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by an optimizer's per-parameter state tensors (momentum, second moments), not counting
    scalar tensors such as step counters."""
    return sum(
        t.numel() * t.element_size()
        for s in optimizer.state.values()
        for t in s.values()
        if torch.is_tensor(t) and t.numel() > 1
    )
