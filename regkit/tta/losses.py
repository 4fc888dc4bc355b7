"""Entropy-based test-time adaptation objectives: TENT and EATA's selection, weights and Fisher penalty.

* TENT (Wang et al., ICLR 2021, arXiv 2006.10726): minimize the mean prediction entropy of a test batch,
  ``L = (1/n) Σ_i H(p_i)``, ``H(p) = −Σ_k p_k log p_k``, ``p_i = softmax(f(x_i))``.
* EATA (Niu et al., ICML 2022, arXiv 2204.02610): keep a sample only if it is

  - *reliable*, ``H(p_i) < E₀`` (Eq. 3; ``E₀ = 0.4 · ln C`` in the paper's experiments), and
  - *non-redundant*, ``|cos(p_i, m_{t−1})| < ε`` (Eq. 5), ``m`` the moving average of the kept samples' mean
    probability, ``m_t = 0.9 · m_{t−1} + 0.1 · mean_i p_i`` (Eq. 4; on the first batch, ``m`` is the mean itself);

  weight it by ``S(x) = 1 / exp(H(p) − E₀)`` (Eq. 6, a constant: no gradient through the weight) and add the
  anti-forgetting penalty ``β · Σ_j ω_j (θ_j − θ_j⁰)²`` (Eq. 8) with the diagonal Fisher weights ``ω`` (Eq. 9,
  :func:`regkit.tta.fisher_diagonal`).

Checked against the official code: ``DequanWang/tent`` ``tent.py`` (``softmax_entropy``, loss ``.mean(0)``) and
``mr-eggplant/EATA`` ``eata.py`` (``forward_and_adapt_eata``: ``entropys < e_margin``,
``torch.abs(cosine_similarities) < d_margin`` against the moving average computed *before* this batch,
``coeff = 1 / exp(entropys.detach() − e_margin)``, the loss is the **mean** over the kept samples (the paper's
Eq. 8 writes a sum; the code, which we follow, a mean), ``update_model_probs`` with momentum 0.9 over the kept
samples, and ``fisher_alpha · Σ fisher · (θ − θ⁰)²``), and the same functions in
``mariodoebler/test-time-adaptation`` ``classification/methods/eata.py``, which sets ``E₀ = 0.4 · ln C``.

Deliberate difference: the entropy is computed from ``log_softmax`` only, with ``0 · log 0 = 0``, so that it stays
finite (and its gradient too) for masked (``−inf``) and very peaked logits, where ``softmax · log_softmax`` of the
official code gives ``0 · (−inf) = NaN``.

Shapes: logits ``(N, C)`` (the class dimension last), probabilities ``(N, C)``, entropies ``(N,)``, masks ``(N,)``
bool. Dtype and device follow the inputs. Notebook: ``notebooks/eata_tta.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from regkit._checks import check_number, check_tensor

__all__ = [
    "eata_non_redundant",
    "eata_reliable",
    "eata_weights",
    "fisher_penalty",
    "prediction_entropy",
    "tent_loss",
    "update_probability_average",
]


def _check_logits(logits: torch.Tensor) -> torch.Tensor:
    check_tensor("logits", logits, ndim=2, floating=True)
    if logits.shape[1] < 2:
        raise ValueError(f"logits must have at least 2 classes (columns), got shape {tuple(logits.shape)}")
    if bool(torch.isnan(logits).any() | (logits == math.inf).any()):
        raise ValueError("logits must be finite or -inf (a masked class), got NaN or +inf entries")
    if bool((logits == -math.inf).all(dim=1).any()):
        raise ValueError("logits has a row whose every class is masked (-inf); its softmax is undefined")
    return logits


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of ``softmax(logits)`` per row: ``H_i = −Σ_k p_ik log p_ik``.

    ``logits``: ``(N, C)`` float, entries finite or ``−inf`` (a masked class, ``p = 0``, contributes ``0``).
    Returns ``(N,)`` in ``[0, ln C]``, differentiable, finite with a finite gradient for masked and peaked rows.
    Raises ``ValueError`` for another rank, fewer than 2 classes, NaN/+inf entries or an all-masked row.
    Source: TENT's ``softmax_entropy`` (``DequanWang/tent`` ``tent.py``), computed from ``log_softmax`` alone.
    """
    _check_logits(logits)
    log_p = F.log_softmax(logits, dim=1)
    finite = torch.isfinite(log_p)
    safe_log_p = torch.where(finite, log_p, torch.zeros_like(log_p))  # p = 0 where log p = -inf: 0 · log 0 = 0
    return -(log_p.exp() * safe_log_p).sum(dim=1)


def tent_loss(logits: torch.Tensor) -> torch.Tensor:
    """TENT's objective: the mean prediction entropy of the batch, ``(1/N) Σ_i H_i`` (a 0-dim tensor).

    ``logits``: ``(N, C)`` float; raises as :func:`prediction_entropy`. Source: ``DequanWang/tent`` ``tent.py``
    (``softmax_entropy(outputs).mean(0)``).
    """
    return prediction_entropy(logits).mean()


def _check_entropy(entropy: torch.Tensor) -> torch.Tensor:
    check_tensor("entropy", entropy, ndim=1, floating=True)
    if not bool(torch.isfinite(entropy).all()) or bool((entropy < 0).any()):
        raise ValueError("entropy must be finite and non-negative (one entropy per sample)")
    return entropy


def _check_e_margin(e_margin: float) -> float:
    return check_number("e_margin", e_margin, low=0, low_open=True, high=math.inf)


def eata_reliable(entropy: torch.Tensor, e_margin: float) -> torch.Tensor:
    """EATA's reliable-sample mask ``H_i < E₀`` (Eq. 3): ``(N,)`` bool.

    ``entropy``: ``(N,)`` float (finite, ``≥ 0``); ``e_margin``: ``E₀ > 0`` (the paper: ``0.4 · ln C``).
    Raises ``ValueError`` naming ``entropy`` or ``e_margin``. Source: ``mr-eggplant/EATA`` ``eata.py``
    (``torch.where(entropys < e_margin)``).
    """
    _check_entropy(entropy)
    return entropy < _check_e_margin(e_margin)


def eata_non_redundant(probs: torch.Tensor, average: torch.Tensor | None, d_margin: float) -> torch.Tensor:
    """EATA's non-redundant-sample mask ``|cos(p_i, m)| < ε`` (Eq. 5): ``(N,)`` bool.

    ``probs``: ``(N, C)`` float, the samples' predicted probabilities; ``average``: ``(C,)``, the moving average
    ``m_{t−1}`` of earlier kept samples, or ``None`` before the first update (every sample is kept);
    ``d_margin``: ``ε`` in ``(0, 1]`` (cosines of probability vectors lie in ``[0, 1]``; the official default is
    0.05). Raises ``ValueError`` naming ``probs``, ``average`` or ``d_margin``. Source: ``mr-eggplant/EATA``
    ``eata.py`` (``F.cosine_similarity(current_model_probs.unsqueeze(0), probs, dim=1)``).
    """
    check_tensor("probs", probs, ndim=2, floating=True)
    d_margin = check_number("d_margin", d_margin, low=0, low_open=True, high=1)
    if average is None:
        return torch.ones(probs.shape[0], dtype=torch.bool, device=probs.device)
    check_tensor("average", average, ndim=1, floating=True)
    if average.shape[0] != probs.shape[1]:
        raise ValueError(f"average must have probs.shape[1] = {probs.shape[1]} entries, got {average.shape[0]}")
    cosine = F.cosine_similarity(average.unsqueeze(0), probs, dim=1)
    return cosine.abs() < d_margin


def eata_weights(entropy: torch.Tensor, e_margin: float) -> torch.Tensor:
    """EATA's sample weights ``S_i = 1 / exp(H_i − E₀)`` (Eq. 6), detached: ``(N,)`` like ``entropy``.

    Raises ``ValueError`` naming ``entropy`` or ``e_margin`` (see :func:`eata_reliable`). Source:
    ``mr-eggplant/EATA`` ``eata.py`` (``coeff = 1 / torch.exp(entropys.clone().detach() - e_margin)``).
    """
    _check_entropy(entropy)
    return torch.exp(_check_e_margin(e_margin) - entropy.detach())


def update_probability_average(
    average: torch.Tensor | None, probs: torch.Tensor, momentum: float = 0.9
) -> torch.Tensor | None:
    """EATA's moving average of the kept samples' probabilities (Eq. 4), without gradient.

    ``m ← momentum · m + (1 − momentum) · mean_i p_i``; ``m = mean_i p_i`` when ``average`` is ``None``; ``m``
    unchanged (``None`` stays ``None``) when ``probs`` has no rows. ``probs``: ``(N, C)`` float; ``average``:
    ``(C,)`` or ``None``; ``momentum`` in ``[0, 1]``. Returns ``(C,)`` or ``None``. Raises ``ValueError`` naming
    the argument. Source: ``mr-eggplant/EATA`` ``eata.py`` (``update_model_probs``, momentum 0.9).
    """
    check_tensor("probs", probs, ndim=2, floating=True)
    momentum = check_number("momentum", momentum, low=0, high=1)
    if average is not None:
        check_tensor("average", average, ndim=1, floating=True)
        if average.shape[0] != probs.shape[1]:
            raise ValueError(f"average must have probs.shape[1] = {probs.shape[1]} entries, got {average.shape[0]}")
    with torch.no_grad():
        if probs.shape[0] == 0:
            return None if average is None else average.clone()
        batch_mean = probs.mean(dim=0)
        return batch_mean if average is None else momentum * average + (1 - momentum) * batch_mean


def fisher_penalty(
    params: Sequence[torch.Tensor], fisher: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor], beta: float
) -> torch.Tensor:
    """EATA's anti-forgetting term ``β · Σ_j ω_j (θ_j − θ_j⁰)²`` (Eq. 8), a 0-dim tensor differentiable in ``params``.

    ``params``, ``fisher`` (``ω``, ``≥ 0``) and ``anchors`` (``θ⁰``): sequences of equal length whose ``j``-th
    tensors share one shape; ``beta ≥ 0``. Raises ``ValueError`` naming the argument whose length or shapes
    differ, or ``beta``. Source: ``mr-eggplant/EATA`` ``eata.py``
    (``fisher_alpha * (fishers[name][0] * (param - fishers[name][1]) ** 2).sum()``).
    """
    beta = check_number("beta", beta, low=0, high=math.inf)
    params, fisher, anchors = list(params), list(fisher), list(anchors)
    if not params:
        raise ValueError("params must hold at least one tensor")
    for name, seq in (("fisher", fisher), ("anchors", anchors)):
        if len(seq) != len(params):
            raise ValueError(f"{name} must have one tensor per parameter ({len(params)}), got {len(seq)}")
        for j, (p, t) in enumerate(zip(params, seq, strict=True)):
            if t.shape != p.shape:
                raise ValueError(
                    f"{name}[{j}] must have the shape of params[{j}], {tuple(p.shape)}, got {tuple(t.shape)}"
                )
    if any(bool((w < 0).any()) for w in fisher):
        raise ValueError("fisher must be non-negative (squared gradients)")
    total = sum((w * (p - a).pow(2)).sum() for p, w, a in zip(params, fisher, anchors, strict=True))
    return beta * total
