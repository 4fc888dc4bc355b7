"""Online test-time adaptation: a model wrapper that predicts each incoming test batch and adapts on it.

The interface follows the online TTA benchmark ``mariodoebler/test-time-adaptation``
(``classification/methods/base.py``, ``TTAMethod``): ``method(x)`` runs ``steps`` times
``forward_and_adapt(x)`` (forward the batch, compute the method's loss, one optimizer step) and returns the logits
of the last forward, which, as in TENT and EATA, are computed *before* that step's update. ``episodic=True``
restores the saved state (model, optimizer and the method's buffers) after every batch, so that each batch is
adapted from the source state (the benchmark resets before each batch: the same predictions).

* :class:`TTAMethod`: the base. It adapts a deep copy of the source model (the source stays untouched). Which
  parameters adapt is explicit: ``adapt="bn_affine"`` (the affine scale and shift of the BatchNorm layers, TENT's
  default), ``"all"`` or ``"none"``. With ``batch_stats=True`` every BatchNorm layer normalizes with the test
  batch's own statistics, as TENT's ``configure_model`` does (``track_running_stats = False``, running statistics
  removed), in train and eval mode alike; the rest of the model stays in eval mode (no dropout).
* :class:`SourceOnly` (the frozen source model), :class:`BNAdapt` (test-batch BatchNorm statistics, no
  optimization; Schneider et al., 2020), :class:`Tent` (entropy minimization; Wang et al., ICLR 2021,
  ``DequanWang/tent`` ``tent.py``) and :class:`EATA` (reliable, non-redundant, re-weighted entropy minimization with a
  Fisher anti-forgetting penalty; Niu et al., ICML 2022, ``mr-eggplant/EATA`` ``eata.py``; the formulas are in
  :mod:`regkit.tta.losses`). ``Tent(..., filter="woc")`` and ``EATA(..., filter="woc")`` add the wisdom-of-crowds
  filter (Lee et al., ICCV 2023): a frozen copy of the source model scores each sample, and only samples whose
  confidence in the source prediction did not drop enter the loss (``last_mask``, ``last_confidence_gain``).
  :class:`SFDA`: entropy plus the KL divergence from the batch's predicted class ratio to a prior (Bateson et al.,
  MedIA 2022, ``mathilde-b/SFDA`` ``losses.py``).
* :func:`fisher_diagonal`: EATA's Fisher weights (Eq. 9) as the official code computes them: for each batch of
  unlabelled samples, the squared gradient of the mean cross-entropy against the model's own argmax predictions,
  averaged over the batches (``mr-eggplant/EATA`` ``main.py`` and ``mariodoebler`` ``eata.py``; one sample per batch
  gives the paper's per-sample average).

State: the counters ``num_samples`` (test samples seen), ``num_backward`` (samples that entered a backward pass) and
``num_updates`` (optimizer steps), and the method's own state (EATA's moving average, Fisher weights and anchors, the
WoC filter's frozen source copy and ``num_filter_kept``, SFDA's prior) are module buffers and submodules, in
``state_dict()``; ``last_mask`` and ``last_confidence_gain`` are plain attributes (their length follows the batch).
A rejected batch (not a floating tensor, NaN/inf entries, fewer than 2 samples under test-batch statistics, another
per-sample shape than the first batch, a shape the model rejects, logits that are not ``(N, C)`` finite at the first
forward) raises ``ValueError`` before anything changes: every update follows the first forward, which checks the
logits.

Shapes: ``x`` ``(N, ...)`` the model's input, logits ``(N, C)``. Device and dtype follow the model's parameters.
Notebook: ``notebooks/eata_tta.ipynb``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from regkit._checks import check_choice, check_number, check_tensor
from regkit.tta.losses import (
    eata_non_redundant,
    eata_reliable,
    eata_weights,
    fisher_penalty,
    prediction_entropy,
    sfda_loss,
    tent_loss,
    update_probability_average,
    woc_confidence_gain,
)

__all__ = ["EATA", "SFDA", "BNAdapt", "SourceOnly", "TTAMethod", "Tent", "fisher_diagonal"]

ADAPT = ("bn_affine", "all", "none")
OPTIMIZERS = ("sgd", "adam")
FILTERS = ("woc",)


def _batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


class TTAMethod(nn.Module):
    """Base of the online test-time adaptation methods: wraps a copy of ``model`` and adapts it batch by batch.

    Args:
        model: the source classifier, ``(N, ...) → (N, C)`` logits; deep-copied, never modified.
        adapt: which parameters adapt: ``"bn_affine"`` (BatchNorm weight and bias; needs BatchNorm layers with
            ``affine=True``), ``"all"`` or ``"none"``.
        batch_stats: BatchNorm layers normalize with the test batch's statistics (needs BatchNorm layers).
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"`` (betas ``(momentum, 0.999)``), over the adapted
            parameters.
        lr: learning rate ``> 0``; momentum: in ``[0, 1)``.
        steps: forward-and-adapt steps per batch, ``≥ 1``.
        episodic: restore the saved state after every batch (each batch adapts from the source state).

    Raises ``ValueError`` naming the argument (e.g. ``adapt="bn_affine"`` for a model without BatchNorm layers).
    Subclasses implement :meth:`forward_and_adapt`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        adapt: str = "bn_affine",
        batch_stats: bool = True,
        optimizer: str = "sgd",
        lr: float = 1e-3,
        momentum: float = 0.9,
        steps: int = 1,
        episodic: bool = False,
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        adapt = check_choice("adapt", adapt, ADAPT)
        optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
        lr = check_number("lr", lr, low=0, low_open=True, high=math.inf)
        momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
        self.steps = check_number("steps", steps, low=1, integer=True)
        self.episodic = bool(episodic)
        self.model = copy.deepcopy(model)
        norms = _batchnorm_layers(self.model)
        if adapt == "bn_affine" and not any(m.affine for m in norms):
            raise ValueError(
                "adapt='bn_affine' needs a model with affine BatchNorm layers; this model has none "
                "(use adapt='all' or a model with normalization layers)"
            )
        if batch_stats and not norms:
            raise ValueError("batch_stats=True needs a model with BatchNorm layers; this model has none")
        self.model.eval()
        self.model.requires_grad_(False)
        if batch_stats:
            for m in norms:  # TENT's configure_model: normalize with the test batch's statistics in any mode
                m.track_running_stats = False
                m.running_mean, m.running_var, m.num_batches_tracked = None, None, None
        if adapt == "all":
            self.model.requires_grad_(True)
        elif adapt == "bn_affine":
            for m in norms:
                m.requires_grad_(True)
        self.adapt = adapt
        self.batch_stats = bool(batch_stats)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            self.optimizer = None
        elif optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.params, lr=lr, momentum=momentum)
        else:
            self.optimizer = torch.optim.Adam(self.params, lr=lr, betas=(momentum, 0.999))
        for name in ("num_samples", "num_backward", "num_updates"):
            self.register_buffer(name, torch.zeros((), dtype=torch.int64))
        self.input_shape: tuple[int, ...] | None = None
        self._saved: dict | None = None

    # ----------------------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_batch(x)
        if self._saved is None:
            self.save_state()
        for _ in range(self.steps):
            logits = self.forward_and_adapt(x)  # the first forward validates the logits before any update
        self.input_shape = tuple(x.shape[1:])
        with torch.no_grad():
            self.num_samples += x.shape[0]
        if self.episodic:
            self.reset()
        return logits

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """One step on the batch ``x``: forward, the method's loss and update; returns the logits ``(N, C)``."""
        raise NotImplementedError

    def save_state(self) -> None:
        """Save the model's, the optimizer's and the method's state for :meth:`reset` (done on the first batch)."""
        self._saved = {
            "module": copy.deepcopy(self.state_dict()),
            "optimizer": None if self.optimizer is None else copy.deepcopy(self.optimizer.state_dict()),
        }

    def reset(self) -> None:
        """Restore the state saved by :meth:`save_state` exactly (a no-op before the first batch)."""
        if self._saved is None:
            return
        self.load_state_dict(self._saved["module"], strict=True)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(self._saved["optimizer"]))

    # ----------------------------------------------------------------------------------------------------------
    def _check_batch(self, x) -> None:
        check_tensor("x", x, floating=True)
        if x.ndim < 2:
            raise ValueError(f"x must be a batch (N, ...) with at least 2 dimensions, got shape {tuple(x.shape)}")
        if self.batch_stats and x.shape[0] < 2:
            raise ValueError(f"x must hold at least 2 samples for test-batch statistics, got {x.shape[0]}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x has non-finite entries (NaN or inf)")
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"x must have per-sample shape {self.input_shape} like the first batch, got {tuple(x.shape[1:])}"
            )

    def _predict(self, x: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
        """The logits ``(N, C)`` of ``model`` (default: the adapted model) for ``x``, checked (finite, one row each)."""
        try:
            logits = (self.model if model is None else model)(x)
        except RuntimeError as error:
            raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model: {error}") from error
        if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"the model must return logits (N, C) = ({x.shape[0]}, C), got {tuple(logits.shape)}")
        if not bool(torch.isfinite(logits).all()):
            raise ValueError("the model's logits for x are not finite (NaN or inf)")
        return logits

    def _setup_filter(self, filter: str | None) -> None:
        """A sample filter on top of the method's loss: ``None`` (none) or ``"woc"`` (wisdom of crowds).

        ``"woc"`` keeps a frozen copy of the configured source model as the submodule ``source_model`` (the same
        normalization as the adapting model: test-batch statistics under ``batch_stats=True``, as the WoC
        re-implementation's ``model0 = deepcopy(model)`` after ``configure_model``) and the buffer ``num_filter_kept``
        (samples the filter kept, summed over steps).
        """
        self.filter = None if filter is None else check_choice("filter", filter, FILTERS)
        self.last_mask: torch.Tensor | None = None
        self.last_confidence_gain: torch.Tensor | None = None
        if self.filter is not None:
            self.source_model = copy.deepcopy(self.model).requires_grad_(False)
            self.register_buffer("num_filter_kept", torch.zeros((), dtype=torch.int64))

    def _filter_mask(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        """The filter's keep mask ``(N,)`` for this forward (``None`` without a filter), recorded as ``last_mask``.

        WoC: ``g = p(ŷ₀) − p⁰(ŷ₀) ≥ 0`` (:func:`regkit.tta.woc_confidence_gain`, kept in ``last_confidence_gain``)
        against the frozen ``source_model``'s logits on ``x``.
        """
        if self.filter is None:
            return None
        with torch.no_grad():
            source_logits = self.source_model(x)
        gain = woc_confidence_gain(logits.detach(), source_logits)  # raises before any update on bad logits
        keep = gain >= 0
        self.last_confidence_gain, self.last_mask = gain, keep
        with torch.no_grad():
            self.num_filter_kept += int(keep.sum())
        return keep

    def _update(self, loss: torch.Tensor, used: int) -> None:
        """Backward ``loss`` through the adapted parameters and take one optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.num_backward += used
            self.num_updates += 1


class SourceOnly(TTAMethod):
    """The frozen source model in eval mode (its running BatchNorm statistics): the no-adaptation baseline."""

    def __init__(self, model: nn.Module):
        super().__init__(model, adapt="none", batch_stats=False)

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """The source model's logits ``(N, C)``; nothing changes."""
        with torch.no_grad():
            return self._predict(x)


class BNAdapt(TTAMethod):
    """Test-batch BatchNorm statistics, no parameter update (Schneider et al., 2020; ``norm.py`` of the benchmark).

    Raises ``ValueError`` naming ``model`` if it has no BatchNorm layers.
    """

    def __init__(self, model: nn.Module):
        super().__init__(model, adapt="none", batch_stats=True)

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """The logits ``(N, C)`` with the batch's statistics; nothing changes."""
        with torch.no_grad():
            return self._predict(x)


class Tent(TTAMethod):
    """TENT: minimize the batch's mean prediction entropy (:func:`regkit.tta.tent_loss`) over the adapted parameters.

    Arguments as :class:`TTAMethod` (default: BatchNorm affine parameters, test-batch statistics, SGD with momentum
    0.9), and ``filter``: ``None`` or ``"woc"``, the wisdom-of-crowds filter (Lee et al., ICCV 2023): the mean
    entropy over the samples whose confidence in the source prediction did not drop, no step when none is kept;
    ``last_mask`` and ``last_confidence_gain`` hold the filter's mask and scores of the last step (see
    :meth:`TTAMethod._setup_filter`). Source: Wang et al., "Tent: Fully Test-Time Adaptation by Entropy
    Minimization", ICLR 2021 (``DequanWang/tent`` ``tent.py``: ``forward_and_adapt``); the filter as in
    ``gaozhengqing/UniEnt`` ``cifar/ostta.py`` (without its diversity term).
    """

    def __init__(self, model: nn.Module, *, filter: str | None = None, **kwargs):
        super().__init__(model, **kwargs)
        self._setup_filter(filter)

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """Forward ``x``, one step on the mean entropy; returns the logits ``(N, C)`` of this (pre-update) forward."""
        with torch.enable_grad():
            logits = self._predict(x)
            keep = self._filter_mask(x, logits)
            if keep is None:
                self._update(tent_loss(logits), x.shape[0])
            elif bool(keep.any()):
                self._update(tent_loss(logits[keep]), int(keep.sum()))
        return logits.detach()


def fisher_diagonal(
    model: nn.Module, params: list[torch.Tensor], batches: Iterable[torch.Tensor]
) -> list[torch.Tensor]:
    """EATA's diagonal Fisher weights ``ω`` (Eq. 9) as the official code computes them.

    ``ω = (1/B) Σ_b (∇_θ CE(f(x_b), argmax f(x_b)))²``: for each batch ``x_b`` (a ``(n_b, ...)`` tensor), the squared
    gradient of the batch's mean cross-entropy against the model's own predictions, averaged over the ``B`` batches.
    ``params``: parameters of ``model`` (``requires_grad``); returns one tensor per parameter, same shape, ``≥ 0``.
    The model is called as it is (train/eval mode and normalization as configured). Raises ``ValueError`` naming
    ``params`` or ``batches`` (empty). Source: ``mr-eggplant/EATA`` ``main.py`` and ``mariodoebler`` ``eata.py``.
    """
    params = list(params)
    if not params or not all(isinstance(p, torch.Tensor) and p.requires_grad for p in params):
        raise ValueError("params must be a non-empty list of parameters that require grad")
    total = [torch.zeros_like(p) for p in params]
    count = 0
    with torch.enable_grad():
        for x in batches:
            logits = model(x)
            loss = F.cross_entropy(logits, logits.detach().argmax(dim=1))
            for acc, grad in zip(total, torch.autograd.grad(loss, params, allow_unused=True), strict=True):
                if grad is not None:
                    acc += grad.detach().pow(2)
            count += 1
    if count == 0:
        raise ValueError("batches must hold at least one batch")
    return [acc / count for acc in total]


class EATA(TTAMethod):
    """EATA: entropy minimization on reliable, non-redundant samples, re-weighted, with a Fisher penalty.

    Per batch (``mr-eggplant/EATA`` ``eata.py``, ``forward_and_adapt_eata``): entropies ``H`` of the logits; keep
    ``H < e_margin`` and ``|cos(p, m)| < d_margin`` (``m``: the buffer ``prob_average``, unset until the first kept
    sample); ``loss = mean_kept (exp(e_margin − H) · H) + fisher_alpha · Σ ω (θ − θ⁰)²``; one step only if a sample was
    kept; then ``m ← 0.9 m + 0.1 · mean_kept p``. Buffers: ``prob_average`` ``(C,)``, ``has_average``,
    ``num_reliable`` and ``num_selected`` (counts summed over batches), and with a Fisher penalty ``fisher_j``,
    ``anchor_j`` for the ``j``-th adapted parameter.

    Args:
        model: as :class:`TTAMethod`; num_classes: ``C ≥ 2``.
        e_margin: ``E₀`` in ``(0, ln C]``; ``None``: ``0.4 · ln C`` (the paper, and the benchmark's setting).
        d_margin: ``ε`` in ``(0, 1]`` (0.05 in the official code).
        fisher_data: unlabelled in-distribution samples ``(M, ...)`` for the Fisher weights, or ``None``: no penalty
            (ETA). fisher_batch_size: batch size over ``fisher_data`` (``≥ 2``). fisher_alpha: ``β ≥ 0``
            (2000 in the official ImageNet setting).
        filter: ``None`` or ``"woc"``: a sample must also pass the wisdom-of-crowds filter (see :class:`Tent`).
        further keywords: as :class:`TTAMethod`.

    Raises ``ValueError`` naming the argument.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        *,
        e_margin: float | None = None,
        d_margin: float = 0.05,
        fisher_data: torch.Tensor | None = None,
        fisher_batch_size: int = 64,
        fisher_alpha: float = 2000.0,
        filter: str | None = None,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self._setup_filter(filter)
        self.num_classes = check_number("num_classes", num_classes, low=2, integer=True)
        log_c = math.log(self.num_classes)
        self.e_margin = (
            0.4 * log_c if e_margin is None else check_number("e_margin", e_margin, low=0, high=log_c, low_open=True)
        )
        self.d_margin = check_number("d_margin", d_margin, low=0, high=1, low_open=True)
        self.fisher_alpha = check_number("fisher_alpha", fisher_alpha, low=0, high=math.inf)
        if self.optimizer is None:
            raise ValueError("adapt must select parameters to adapt for EATA, got adapt='none'")
        reference = self.params[0]
        self.register_buffer(
            "prob_average", torch.zeros(self.num_classes, dtype=reference.dtype, device=reference.device)
        )
        self.register_buffer("has_average", torch.zeros((), dtype=torch.bool, device=reference.device))
        self.register_buffer("num_reliable", torch.zeros((), dtype=torch.int64))
        self.register_buffer("num_selected", torch.zeros((), dtype=torch.int64))
        self.num_fisher = 0
        if fisher_data is not None:
            check_tensor("fisher_data", fisher_data, floating=True)
            size = check_number("fisher_batch_size", fisher_batch_size, low=2, integer=True)
            if fisher_data.shape[0] < 2 or not bool(torch.isfinite(fisher_data).all()):
                raise ValueError("fisher_data must hold at least 2 finite samples (M, ...)")
            try:
                fisher = fisher_diagonal(self.model, self.params, fisher_data.split(size))
            except RuntimeError as error:
                raise ValueError(
                    f"fisher_data of shape {tuple(fisher_data.shape)} does not fit the model: {error}"
                ) from error
            for j, (w, p) in enumerate(zip(fisher, self.params, strict=True)):
                self.register_buffer(f"fisher_{j}", w)
                self.register_buffer(f"anchor_{j}", p.detach().clone())
            self.num_fisher = len(fisher)

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """Forward ``x``; select, weight and step (if any sample is kept); returns the pre-update logits ``(N, C)``."""
        with torch.enable_grad():
            logits = self._predict(x)
            if logits.shape[1] != self.num_classes:
                raise ValueError(
                    f"the model must return num_classes = {self.num_classes} logits, got {logits.shape[1]}"
                )
            entropy = prediction_entropy(logits)
            probs = logits.detach().softmax(dim=1)
            average = self.prob_average if bool(self.has_average) else None
            reliable = eata_reliable(entropy.detach(), self.e_margin)
            keep = reliable & eata_non_redundant(probs, average, self.d_margin)
            selected = self._filter_mask(x, logits)
            if selected is not None:
                keep = keep & selected
            kept = int(keep.sum())
            if kept:
                weights = eata_weights(entropy[keep].detach(), self.e_margin)
                loss = (weights * entropy[keep]).mean()
                if self.num_fisher and self.fisher_alpha > 0:
                    fisher = [getattr(self, f"fisher_{j}") for j in range(self.num_fisher)]
                    anchors = [getattr(self, f"anchor_{j}") for j in range(self.num_fisher)]
                    loss = loss + fisher_penalty(self.params, fisher, anchors, self.fisher_alpha)
                self._update(loss, kept)
        with torch.no_grad():
            updated = update_probability_average(average, probs[keep])
            if updated is not None:
                self.prob_average.copy_(updated)
                self.has_average.fill_(True)
            self.num_reliable += int(reliable.sum())
            self.num_selected += kept
        return logits.detach()


class SFDA(TTAMethod):
    """Source-free entropy minimization with a class-ratio prior (Bateson et al., MedIA 2022) for classifiers.

    Per batch, one step on :func:`regkit.tta.sfda_loss`: the mean prediction entropy plus
    ``kl_weight · KL(mean_i p_i ‖ prior)``, the batch's predicted class ratio against the prior. The segmentation
    form (one ratio per image) is the function itself; this wrapper takes ``(N, C)`` logits like every
    :class:`TTAMethod`. Buffers: ``prior`` ``(C,)`` and ``class_weights`` (if given).

    Args:
        model: as :class:`TTAMethod`; prior: ``(C,)`` class ratios, strictly positive, summing to 1.
        kl_weight: ``λ ≥ 0`` (1 in the official configurations; 0 gives TENT's loss); class_weights: ``(C,)``
            entropy weights or ``None``.
        further keywords: as :class:`TTAMethod` (``adapt`` must select parameters).

    Raises ``ValueError`` naming the argument. Source: ``mathilde-b/SFDA`` ``losses.py`` (``EntKLProp``).
    """

    def __init__(
        self,
        model: nn.Module,
        prior: torch.Tensor,
        *,
        kl_weight: float = 1.0,
        class_weights: torch.Tensor | None = None,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        if self.optimizer is None:
            raise ValueError("adapt must select parameters to adapt for SFDA, got adapt='none'")
        check_tensor("prior", prior, ndim=1, floating=True)
        reference = self.params[0]
        # the loss checks prior, kl_weight and class_weights as it will see them
        sfda_loss(prior.new_zeros(2, prior.shape[0]), prior, kl_weight, class_weights)
        self.kl_weight = float(kl_weight)
        self.register_buffer("prior", prior.detach().to(reference.device, reference.dtype).clone())
        weights = None if class_weights is None else class_weights.detach().to(reference.device, reference.dtype)
        self.register_buffer("class_weights", None if weights is None else weights.clone())

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """Forward ``x``, one step on the SFDA loss; returns the pre-update logits ``(N, C)``."""
        with torch.enable_grad():
            logits = self._predict(x)
            if logits.shape[1] != self.prior.shape[0]:
                raise ValueError(
                    f"the model must return one logit per prior class, {self.prior.shape[0]}, got {logits.shape[1]}"
                )
            self._update(sfda_loss(logits, self.prior, self.kl_weight, self.class_weights), x.shape[0])
        return logits.detach()
