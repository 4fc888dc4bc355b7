"""Entropy-based test-time adaptation objectives: TENT, EATA, the wisdom-of-crowds filter and SFDA's prior loss.

* TENT (Wang et al., ICLR 2021, arXiv 2006.10726): minimize the mean prediction entropy of a test batch,
  ``L = (1/n) Σ_i H(p_i)``, ``H(p) = −Σ_k p_k log p_k``, ``p_i = softmax(f(x_i))``.
* EATA (Niu et al., ICML 2022, arXiv 2204.02610): keep a sample only if it is

  - *reliable*, ``H(p_i) < E₀`` (Eq. 3; ``E₀ = 0.4 · ln C`` in the paper's experiments), and
  - *non-redundant*, ``|cos(p_i, m_{t−1})| < ε`` (Eq. 5), ``m`` the moving average of the kept samples' mean
    probability, ``m_t = 0.9 · m_{t−1} + 0.1 · mean_i p_i`` (Eq. 4; on the first batch, ``m`` is the mean itself);

  weight it by ``S(x) = 1 / exp(H(p) − E₀)`` (Eq. 6, a constant: no gradient through the weight) and add the
  anti-forgetting penalty ``β · Σ_j ω_j (θ_j − θ_j⁰)²`` (Eq. 8) with the diagonal Fisher weights ``ω`` (Eq. 9,
  :func:`regkit.tta.fisher_diagonal`).
* Wisdom-of-crowds filter (WoC; Lee, Das, Choo, Choi, "Towards Open-Set Test-Time Adaptation Utilizing the Wisdom of
  Crowds in Entropy Minimization", ICCV 2023, arXiv 2308.06879): with ``ŷ₀ = argmax_k p⁰_k`` the prediction of the
  original (source) model ``θ₀`` and ``p`` the adapting model's probabilities on the same batch, keep a sample in the
  entropy loss only if its confidence in ``ŷ₀`` did not drop, ``g_i = p_i(ŷ₀) − p⁰_i(ŷ₀) ≥ 0``
  (:func:`woc_confidence_gain`, :func:`woc_mask`); noisy and open-set samples fail to gain confidence from the
  "crowd" of correct ones and are dropped. ``sklearn.metrics.roc_auc_score`` scores such a filter (e.g. ``−g``
  against the open-set samples).
* SFDA (Bateson, Kervadec, Dolz, Lombaert, Ben Ayed, "Source-free domain adaptation for image segmentation", MedIA
  2022 / MICCAI 2020, arXiv 2108.03152): ``L = (1/|Ω|) Σ_{i∈Ω} Σ_k w_k (−p_ik log p_ik) + λ · (1/G) Σ_g
  KL(τ̄_g ‖ τ_g)``, the mean per-pixel (per-sample) entropy plus the KL divergence from the predicted class ratio
  ``τ̄_g = mean_{i∈g} p_i`` of each group ``g`` (an image of a segmentation batch; the whole batch for
  classification) to a class-ratio prior ``τ_g`` (:func:`class_ratio`, :func:`class_ratio_kl`, :func:`sfda_loss`).

Checked against the official code: ``DequanWang/tent`` ``tent.py`` (``softmax_entropy``, loss ``.mean(0)``) and
``mr-eggplant/EATA`` ``eata.py`` (``forward_and_adapt_eata``: ``entropys < e_margin``,
``torch.abs(cosine_similarities) < d_margin`` against the moving average computed *before* this batch,
``coeff = 1 / exp(entropys.detach() − e_margin)``, the loss is the **mean** over the kept samples (the paper's
Eq. 8 writes a sum; the code, which we follow, a mean), ``update_model_probs`` with momentum 0.9 over the kept
samples, and ``fisher_alpha · Σ fisher · (θ − θ⁰)²``), and the same functions in
``mariodoebler/test-time-adaptation`` ``classification/methods/eata.py``, which sets ``E₀ = 0.4 · ln C``.

WoC: no code by the paper's authors is stored; the rule was checked against the re-implementation in
``gaozhengqing/UniEnt`` (CVPR 2024; its README says it contains WoC) ``cifar/ostta.py`` and ``imagenet/ostta.py``
(``forward_and_adapt``: ``values0, indices0 = model0(x).softmax(1).max(1)``, ``values = model(x).softmax(1)[arange,
indices0]``, ``loss = entropys[values >= values0].mean(0)``), which matches the abstract ("we filter out the samples
whose confidence values are lower in the adapted model than in the original model"). That code also adds
``− 0.5 · H(mean_i p_i)`` (a diversity term it adds to its TENT and EATA baselines too) and no entropy threshold; we
implement the filter alone, with an optional entropy threshold.

SFDA: checked against ``mathilde-b/SFDA`` ``losses.py`` (``EntKLProp``: ``loss_cons_prior = Σ est_prop · (log
est_prop − log gt_prop) / b``, i.e. KL(predicted ‖ prior) averaged over the images, the direction we follow — the
catalogue's ``KL(τ̂ ‖ τ̄_θ)`` reads the other way; ``loss_se = −Σ w_c p log p / Σ p``, the class-weighted entropy
averaged over the pixels, with ``weights_se`` e.g. ``[0.1, 0.9]`` in ``prostate.make``). Deliberate differences: the
predicted ratio is the mean probability of the paper, where the code's ``norm_soft_size`` (``utils.py``) first
divides each pixel's probabilities by their maximum and then renormalizes; no ``+ 1e-10`` smoothing (a prior must be
strictly positive, and ``0 · log 0 = 0``).

Deliberate difference: the entropy is computed from ``log_softmax`` only, with ``0 · log 0 = 0``, so that it stays
finite (and its gradient too) for masked (``−inf``) and very peaked logits, where ``softmax · log_softmax`` of the
official code gives ``0 · (−inf) = NaN``.

Mean-teacher consistency (CoTTA, RMT; the methods are in :mod:`regkit.tta.mean_teacher`): with the student's
``p = softmax(s)`` and the teacher's ``q = softmax(t)``, the symmetric cross-entropy

    ``SCE_α(s, t) = −(1 − α) Σ_k q_k log p_k − α Σ_k p_k log q_k``,

``α = 0.5`` in RMT (Döbler et al., CVPR 2023, arXiv 2211.13081: ``mariodoebler/test-time-adaptation``
``classification/methods/rmt.py``, ``softmax_entropy(x, x_ema) = −0.5 (x_ema.softmax · x.log_softmax).sum(1)
− 0.5 (x.softmax · x_ema.log_softmax).sum(1)``), and ``α = 0`` the cross-entropy from the teacher to the student
that CoTTA minimizes (Wang et al., CVPR 2022, arXiv 2203.13591: ``qinenergy/cotta`` ``cifar/cotta.py``,
``softmax_entropy(x, x_ema) = −(x_ema.softmax(1) · x.log_softmax(1)).sum(1)``, ``x`` the student's logits).

Shapes: logits ``(N, C)`` (the class dimension last), probabilities ``(N, C)``, entropies ``(N,)``, masks ``(N,)``
bool; SFDA also takes segmentation logits ``(N, C, *S)`` (class dimension 1, e.g. ``(N, C, H, W)``). Dtype and device
follow the inputs. Notebook: ``notebooks/eata_tta.ipynb`` (the CoTTA, RMT, WoC and SFDA notebooks are not built yet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from regkit._checks import apply_reduction, check_logits, check_number, check_reduction, check_tensor, upcast_half
from regkit.regularizers import soft_cross_entropy

__all__ = [
    "class_ratio",
    "class_ratio_kl",
    "eata_non_redundant",
    "eata_reliable",
    "eata_weights",
    "fisher_penalty",
    "prediction_entropy",
    "sfda_loss",
    "symmetric_cross_entropy",
    "tent_loss",
    "update_probability_average",
    "woc_confidence_gain",
    "woc_mask",
]


def _check_logits(logits: torch.Tensor, name: str = "logits") -> torch.Tensor:
    check_tensor(name, logits, ndim=2, floating=True)
    if logits.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 classes (columns), got shape {tuple(logits.shape)}")
    if bool(torch.isnan(logits).any() | (logits == math.inf).any()):
        raise ValueError(f"{name} must be finite or -inf (a masked class), got NaN or +inf entries")
    if bool((logits == -math.inf).all(dim=1).any()):
        raise ValueError(f"{name} has a row whose every class is masked (-inf); its softmax is undefined")
    return logits


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of ``softmax(logits)`` per row: ``H_i = −Σ_k p_ik log p_ik``.

    ``logits``: ``(N, C)`` float, entries finite or ``−inf`` (a masked class, ``p = 0``, contributes ``0``).
    Returns ``(N,)`` in ``[0, ln C]``, differentiable, finite with a finite gradient for masked and peaked rows.
    Raises ``ValueError`` for another rank, fewer than 2 classes, NaN/+inf entries or an all-masked row.
    Source: TENT's ``softmax_entropy`` (``DequanWang/tent`` ``tent.py``), computed from ``log_softmax`` alone.
    """
    return _entropy_terms(_check_logits(logits)).sum(dim=1)


def _entropy_terms(logits: torch.Tensor) -> torch.Tensor:
    """``−p_ik log p_ik`` of checked ``(N, C)`` logits, ``0`` where ``p_ik = 0``."""
    log_p = F.log_softmax(logits, dim=1)
    finite = torch.isfinite(log_p)
    safe_log_p = torch.where(finite, log_p, torch.zeros_like(log_p))  # p = 0 where log p = -inf: 0 · log 0 = 0
    return -(log_p.exp() * safe_log_p)


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


def woc_confidence_gain(logits: torch.Tensor, source_logits: torch.Tensor) -> torch.Tensor:
    """WoC's confidence gain ``g_i = p_i(ŷ₀) − p⁰_i(ŷ₀)``, ``ŷ₀ = argmax_k p⁰_ik``, detached: ``(N,)`` in ``[−1, 1]``.

    ``logits``: the adapting model's ``(N, C)``; ``source_logits``: the original (source) model's ``(N, C)`` on the
    same samples; both finite or ``−inf`` (masked). ``g ≥ 0``: the adapting model is at least as confident in the
    source prediction (kept by :func:`woc_mask`). Raises ``ValueError`` naming ``logits`` or ``source_logits`` (bad
    entries, or shapes that differ). Source: Lee et al., ICCV 2023, Sec. 3 (re-implementation
    ``gaozhengqing/UniEnt`` ``cifar/ostta.py``: ``values - values0``, kept where ``values >= values0``).
    """
    _check_logits(logits)
    _check_logits(source_logits, "source_logits")
    if source_logits.shape != logits.shape:
        raise ValueError(
            f"source_logits must have the shape of logits, {tuple(logits.shape)}, got {tuple(source_logits.shape)}"
        )
    with torch.no_grad():
        source_probs = F.softmax(source_logits, dim=1)
        source_confidence, source_class = source_probs.max(dim=1, keepdim=True)
        confidence = F.softmax(logits, dim=1).gather(1, source_class)
        return (confidence - source_confidence).squeeze(1)


def woc_mask(logits: torch.Tensor, source_logits: torch.Tensor, e_margin: float | None = None) -> torch.Tensor:
    """WoC's sample filter ``p_i(ŷ₀) ≥ p⁰_i(ŷ₀)`` (and ``H(p_i) < e_margin`` if given): ``(N,)`` bool.

    ``logits``, ``source_logits``: as :func:`woc_confidence_gain`; ``e_margin``: ``None`` (the filter alone, as in
    the re-implementation) or an entropy threshold ``> 0`` on the adapting model's predictions (EATA's reliability
    rule). Raises ``ValueError`` naming ``logits``, ``source_logits`` or ``e_margin``.
    """
    keep = woc_confidence_gain(logits, source_logits) >= 0
    if e_margin is not None:
        keep = keep & (prediction_entropy(logits.detach()) < _check_e_margin(e_margin))
    return keep


def _flatten_classes(logits: torch.Tensor) -> torch.Tensor:
    """``(N, C)`` or ``(N, C, *S)`` logits as checked ``(N·|S|, C)`` rows (class dimension 1 moved last)."""
    check_tensor("logits", logits, floating=True)
    if logits.ndim < 2:
        raise ValueError(f"logits must be (N, C) or (N, C, *S), got shape {tuple(logits.shape)}")
    return _check_logits(logits.movedim(1, -1).reshape(-1, logits.shape[1]))


def class_ratio(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class ratios ``τ̄_g = mean_{i∈g} softmax(logits)_i``: ``(N, C)`` for ``(N, C, *S)``, else ``(1, C)``.

    A segmentation batch ``(N, C, *S)`` has one group per image (the mean over its pixels); a classification batch
    ``(N, C)`` is one group (the mean over its samples). Differentiable. Raises ``ValueError`` naming ``logits``.
    Source: Bateson et al., MedIA 2022, the class-ratio estimate ``τ̂(t, k, θ) = (1/|Ω_t|) Σ_i s_θ(t, i, k)``.
    """
    _flatten_classes(logits)
    probs = F.softmax(logits, dim=1)
    if probs.ndim == 2:
        return probs.mean(dim=0, keepdim=True)
    return probs.flatten(2).mean(dim=2)


def _check_prior(prior: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    check_tensor("prior", prior, floating=True)
    groups, classes = ratio.shape
    if prior.shape not in ((classes,), (groups, classes)):
        allowed = f"({classes},)" if groups == 1 else f"({classes},) or ({groups}, {classes})"
        raise ValueError(f"prior must have shape {allowed} (class ratios per group), got {tuple(prior.shape)}")
    if not bool(torch.isfinite(prior).all()) or bool((prior <= 0).any()):
        raise ValueError("prior must hold strictly positive finite class ratios (KL to a zero ratio is infinite)")
    total = prior.sum(dim=-1)
    if not bool(torch.allclose(total, torch.ones_like(total), atol=1e-5)):
        raise ValueError(f"prior must be a probability vector (ratios summing to 1), got sums {total.tolist()}")
    return prior.to(ratio.dtype).expand_as(ratio)


def class_ratio_kl(logits: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """SFDA's prior term ``(1/G) Σ_g KL(τ̄_g ‖ τ_g) = (1/G) Σ_g Σ_k τ̄_gk log(τ̄_gk / τ_gk)``, a 0-dim tensor.

    ``logits``: ``(N, C)`` (one group, the batch) or ``(N, C, *S)`` (one group per image), see :func:`class_ratio`;
    ``prior``: ``(C,)`` shared, or ``(N, C)`` per image for segmentation logits; strictly positive rows summing to 1.
    Zero when every predicted ratio equals its prior, positive otherwise; differentiable in ``logits``. Raises
    ``ValueError`` naming ``logits`` or ``prior``. Source: ``mathilde-b/SFDA`` ``losses.py`` (``EntKLProp``:
    ``Σ est_prop (log est_prop − log gt_prop) / b``).
    """
    ratio = class_ratio(logits)
    prior = _check_prior(prior, ratio)
    per_group = (torch.xlogy(ratio, ratio) - ratio * prior.log()).sum(dim=1)
    return per_group.mean()


def sfda_loss(
    logits: torch.Tensor,
    prior: torch.Tensor,
    kl_weight: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """SFDA's objective: mean per-pixel (per-sample) entropy ``+ kl_weight ·`` :func:`class_ratio_kl`, a 0-dim tensor.

    ``L = (1/|Ω|) Σ_i Σ_k w_k (−p_ik log p_ik) + λ (1/G) Σ_g KL(τ̄_g ‖ τ_g)`` over the ``|Ω|`` pixels of all images
    (samples of the batch). ``logits``: ``(N, C)`` or ``(N, C, *S)``; ``prior``: as :func:`class_ratio_kl`;
    ``kl_weight``: ``λ ≥ 0`` finite (``0``: plain entropy minimization; 1 in the official configurations);
    ``class_weights``: ``(C,)`` non-negative entropy weights ``w`` or ``None`` (all 1). Raises ``ValueError`` naming
    the argument. Source: Bateson et al., MedIA 2022; ``mathilde-b/SFDA`` ``losses.py`` (``EntKLProp``).
    """
    kl_weight = check_number("kl_weight", kl_weight, low=0, high=None)
    terms = _entropy_terms(_flatten_classes(logits))
    if class_weights is not None:
        check_tensor("class_weights", class_weights, ndim=1, floating=True)
        if class_weights.shape[0] != logits.shape[1] or not bool(torch.isfinite(class_weights).all()):
            raise ValueError(f"class_weights must be {logits.shape[1]} finite entries, got {class_weights.tolist()}")
        if bool((class_weights < 0).any()):
            raise ValueError("class_weights must be non-negative")
        terms = terms * class_weights.to(terms.dtype)
    entropy = terms.sum(dim=1).mean()
    return entropy + kl_weight * class_ratio_kl(logits, prior)


def symmetric_cross_entropy(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, alpha: float = 0.5, *, reduction: str = "mean"
) -> torch.Tensor:
    """Mean-teacher consistency ``−(1 − α) Σ_k q_k log p_k − α Σ_k p_k log q_k`` per row, ``p = softmax(student)``,
    ``q = softmax(teacher)``.

    ``α = 0.5``: RMT's symmetric cross-entropy; ``α = 0``: the cross-entropy of the student against the teacher's
    soft pseudo-label (CoTTA); ``α = 1``: the reverse direction. ``student_logits``, ``teacher_logits``: ``(N, C)``
    float, ``C ≥ 2``, entries finite or ``−inf`` (a masked class; ``0 · log 0 = 0``, and ``+inf`` where one side
    puts mass on a class the other masks). Gradients flow into both arguments: pass a teacher computed without
    gradient, as the methods do. ``reduction``: ``"mean"`` (over rows), ``"sum"`` or ``"none"`` (``(N,)``).
    Raises ``ValueError`` naming ``student_logits``, ``teacher_logits``, ``alpha`` (outside ``[0, 1]``) or
    ``reduction``. Source: ``rmt.py`` and ``cotta.py`` (``softmax_entropy``), see the module docstring.
    """
    for name, logits in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        check_logits(name, logits, ndim=2)
        if logits.shape[1] < 2:
            raise ValueError(f"{name} must have at least 2 classes (columns), got shape {tuple(logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits must have the shape of student_logits {tuple(student_logits.shape)}, "
            f"got {tuple(teacher_logits.shape)}"
        )
    alpha = check_number("alpha", alpha, low=0, high=1)
    check_reduction(reduction)
    losses = torch.zeros(student_logits.shape[0], dtype=student_logits.dtype, device=student_logits.device)
    if alpha < 1:  # teacher → student: −Σ q log p (a zero weight skips the term, so 0 · inf never appears)
        targets = upcast_half(teacher_logits).softmax(dim=1)
        losses = losses + (1 - alpha) * soft_cross_entropy(student_logits, targets, reduction="none")
    if alpha > 0:  # student → teacher: −Σ p log q
        targets = upcast_half(student_logits).softmax(dim=1)
        losses = losses + alpha * soft_cross_entropy(teacher_logits, targets, reduction="none")
    return apply_reduction(losses, reduction)
