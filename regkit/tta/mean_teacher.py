"""Mean-teacher test-time adaptation: CoTTA and the Robust Mean Teacher (RMT).

Both adapt a *student* (the wrapped copy of the source model, :class:`~regkit.tta.TTAMethod`) on each test batch
against the predictions of a *teacher*, an exponential moving average of the student's adapted parameters taken
after every optimizer step,

    ``θ_teacher ← α · θ_teacher + (1 − α) · θ_student``  (``α = ema_momentum``, 0.999 in both official codes),

which starts at the source parameters and never receives gradients (:func:`ema_update_`).

* :class:`CoTTA` (Wang, Fink, Van Gool & Dai, "Continual Test-Time Domain Adaptation", CVPR 2022,
  arXiv 2203.13591; official ``qinenergy/cotta`` ``cifar/cotta.py``, and ``mariodoebler/test-time-adaptation``
  ``classification/methods/cotta.py``). Per step, on the batch ``x``:

  1. the *confidence* ``c = mean_i max_k softmax(f_source(x_i))_k`` of the frozen source ("anchor") model;
  2. the pseudo-label logits ``t = f_teacher(x)`` if ``c ≥ p_th``, else the mean of the teacher's **logits** over
     ``N`` augmented copies, ``t = (1/N) Σ_n f_teacher(aug_n(x))`` (the official code averages logits, not
     probabilities, and leaves the un-augmented forward out of the average);
  3. the student loss ``(1/n) Σ_i −Σ_k softmax(t_i)_k log softmax(f_student(x_i))_k``
     (:func:`regkit.tta.symmetric_cross_entropy` with ``α = 0``; ``cifar/cotta.py``'s ``softmax_entropy``), one
     optimizer step, then the teacher's EMA update;
  4. *stochastic restore*: every entry of every adapted parameter is reset to its source value with probability
     ``p`` (an independent Bernoulli mask per entry, ``torch.rand(shape) < p``; :func:`stochastic_restore_`).

  It returns ``t``, the teacher's pseudo-label logits computed before this step's update (as the official code
  returns ``outputs_ema``). Defaults follow the official CIFAR setting: all parameters adapt, Adam with learning
  rate 1e-3 and β₁ = 0.9, ``α = 0.999``, ``p = 0.01``, ``N = 32``; ``p_th = 0.9`` (the official class default;
  its CIFAR-10 config uses 0.92). The augmentations of the teacher are drawn only when they are used (as in
  ``mariodoebler``'s ``cotta.py``; ``qinenergy``'s computes them always and discards them above the threshold).
  The confidence is the source model's, as in the official code (not the teacher's). Note: as long as the student
  equals its teacher and no augmentation is used, the gradient ``softmax(s) − softmax(t)`` is zero, so CoTTA with
  ``confidence_threshold=0`` (never averaging) on a model without dropout never leaves the source (the official
  code behaves the same for such a model).
* :class:`RMT` (Döbler, Marsden & Yang, "Robust Mean Teacher for Continual and Gradual Test-Time Adaptation",
  CVPR 2023, arXiv 2211.13081; official ``mariodoebler/test-time-adaptation``
  ``classification/methods/rmt.py``). Per step, the student forwards ``x`` and one augmented copy ``aug(x)``, the
  teacher ``x``; the loss is the symmetric cross-entropy averaged over both views,

      ``L = ½ · mean_i SCE(s_i, t_i) + ½ · mean_i SCE(s_i^aug, t_i)``,
      ``SCE(s, t) = −½ Σ_k q_k log p_k − ½ Σ_k p_k log q_k``,

  (``rmt.py``'s ``symmetric_entropy``: four terms weighted 0.25), one step, then the EMA update (``α = 0.999``,
  the benchmark's ``M_TEACHER.MOMENTUM``). It returns the ensemble ``f_student(x) + f_teacher(x)``, the sum of the
  two models' logits before this step's update (as ``rmt.py`` returns ``outputs_test + outputs_ema``).
  ``consistency="ce"`` replaces SCE by the teacher-to-student cross-entropy (``α = 0``: the plain mean teacher the
  paper compares against); ``augmented_view=False`` drops the augmented view. **Omitted** from the full method:
  the contrastive loss that pulls test features towards class prototypes of the source data (it needs labelled
  source data, a feature extractor / classifier split and a projection head), the replay of labelled source
  batches (``lambda_ce_src``) and the warm-up of the mean teacher on source data; with these omitted the official
  loss reduces to the symmetric cross-entropy term above (``lambda_ce_trg = 1``).

Augmentations are a callable ``augment(x, generator) → x_aug`` of the same shape; the default,
:func:`cotta_augment`, is a light version of CoTTA's ``get_tta_transforms`` for image batches ``(N, C, H, W)``
(random rotation, translation and scale by ``affine_grid``/``grid_sample`` with edge padding, contrast jitter,
Gaussian noise). All randomness (augmentations, restore masks) comes from one ``torch.Generator`` on the CPU,
seeded by ``seed``: the same seed gives the same draws on every device, bit for bit on the CPU. :meth:`reset` (and
``episodic=True``) restores the generator's state with the model, the teacher and the optimizer.

State: the student (``model``), the teacher (``teacher``) and CoTTA's frozen source copy (``anchor``) are
submodules; the counters of :class:`~regkit.tta.TTAMethod` and CoTTA's ``num_augmented`` (steps that used the
augmentation average) and ``num_restored`` (parameter entries restored, summed) are buffers, all in
``state_dict()``. A rejected batch (see :class:`~regkit.tta.TTAMethod`), an augmentation that changes the shape or
dtype or gives non-finite values, or a teacher whose logits are not finite raises ``ValueError`` before any
update. Shapes: ``x`` ``(N, ...)``, logits ``(N, C)``. Notebooks (``cotta``,
``rmt_robust_mean_teacher``): not built yet.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import check_choice, check_number, check_tensor
from regkit.tta.adaptation import TTAMethod
from regkit.tta.losses import symmetric_cross_entropy

__all__ = ["RMT", "CoTTA", "cotta_augment", "ema_update_", "stochastic_restore_"]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
CONSISTENCY = ("sce", "ce")


def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_interval(name: str, value, *, positive: bool) -> tuple[float, float]:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    first = check_number(name, value[0], low=0, low_open=positive, high=math.inf, high_open=True)
    second = check_number(name, value[1], low=first, high=math.inf, high_open=True)
    return first, second


def cotta_augment(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    degrees: float = 15.0,
    translate: float = 1 / 16,
    scale: tuple[float, float] = (0.9, 1.1),
    contrast: tuple[float, float] = (0.7, 1.3),
    noise_std: float = 0.005,
) -> torch.Tensor:
    """A random augmentation of each image of ``x`` ``(N, C, H, W)``, drawn from ``generator``; same shape and dtype.

    Per image, independently: a rotation by an angle uniform in ``[−degrees, degrees]``, a scaling uniform in
    ``scale`` and a translation uniform in ``[−translate, translate]`` of the width and the height (one affine map,
    bilinear ``grid_sample`` with edge padding), then a contrast factor ``c`` uniform in ``contrast`` around the
    image's mean (``m + c (x − m)``), then Gaussian noise of standard deviation ``noise_std``. The defaults are
    those of CoTTA's ``get_tta_transforms`` (``qinenergy/cotta`` ``cifar/cotta.py``: ``RandomAffine`` ±15°,
    translate 1/16, scale 0.9–1.1 on an edge-padded image; contrast 0.7–1.3; noise 0.005). Left out: brightness,
    saturation, hue and gamma jitter (meant for RGB images in ``[0, 1]``; inputs here may be standardized), the
    Gaussian blur, the horizontal flip (not label-preserving for digits) and the clipping to ``[0, 1]``.

    The draws are made on the generator's device (float64) and moved to ``x``'s device and dtype. Raises
    ``ValueError`` naming ``x``, ``generator`` or the parameter out of range (``degrees`` in ``[0, 180]``,
    ``translate`` in ``[0, 1]``, ``scale`` ``0 < low ≤ high``, ``contrast`` ``0 ≤ low ≤ high``, ``noise_std ≥ 0``).
    """
    check_tensor("x", x, ndim=4, floating=True)
    _check_generator(generator)
    degrees = check_number("degrees", degrees, low=0, high=180)
    translate = check_number("translate", translate, low=0, high=1)
    scale = _check_interval("scale", scale, positive=True)
    contrast = _check_interval("contrast", contrast, positive=False)
    noise_std = check_number("noise_std", noise_std, low=0, high=math.inf, high_open=True)
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        draw = torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device)
        return low + (high - low) * draw

    angle = uniform(-degrees, degrees) * (math.pi / 180)
    zoom = uniform(*scale)
    shift_x, shift_y = uniform(-translate, translate) * 2, uniform(-translate, translate) * 2  # [-1, 1] spans 2
    factor = uniform(*contrast)
    cos, sin = angle.cos() / zoom, angle.sin() / zoom  # output pixel p samples the input at A p + b
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = mean + factor.to(device=x.device, dtype=x.dtype).view(n, 1, 1, 1) * (out - mean)
    if noise_std > 0:
        noise = torch.randn(tuple(x.shape), generator=generator, dtype=torch.float64, device=generator.device)
        out = out + noise_std * noise.to(device=x.device, dtype=x.dtype)
    return out


def _check_pairs(name: str, targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor], source_name: str):
    targets, sources = list(targets), list(sources)
    if not targets or not all(isinstance(t, torch.Tensor) for t in targets):
        raise ValueError(f"{name} must be a non-empty sequence of tensors")
    if len(sources) != len(targets):
        raise ValueError(f"{source_name} must have one tensor per {name} tensor ({len(targets)}), got {len(sources)}")
    for j, (t, s) in enumerate(zip(targets, sources, strict=True)):
        if not isinstance(s, torch.Tensor) or s.shape != t.shape:
            shape = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise ValueError(f"{source_name}[{j}] must have the shape of {name}[{j}], {tuple(t.shape)}, got {shape}")
    return targets, sources


@torch.no_grad()
def ema_update_(teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor], momentum: float) -> None:
    """The mean teacher's update, in place: ``t_j ← momentum · t_j + (1 − momentum) · s_j`` for every pair.

    ``teacher``, ``student``: sequences of equal length whose ``j``-th tensors share one shape (the student is
    read without gradient); ``momentum`` in ``[0, 1)``. After ``k`` updates against a fixed student,
    ``t = momentum^k · t₀ + (1 − momentum^k) · s``. Raises ``ValueError`` naming ``teacher``, ``student`` or
    ``momentum``. Source: ``update_ema_variables`` in ``qinenergy/cotta`` ``cifar/cotta.py`` and
    ``mariodoebler/test-time-adaptation`` ``classification/methods/rmt.py``.
    """
    momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
    teacher, student = _check_pairs("teacher", teacher, student, "student")
    for t, s in zip(teacher, student, strict=True):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)


@torch.no_grad()
def stochastic_restore_(
    params: Sequence[torch.Tensor], source: Sequence[torch.Tensor], prob: float, generator: torch.Generator
) -> int:
    """CoTTA's stochastic restore, in place: each entry of each ``params[j]`` becomes ``source[j]``'s with
    probability ``prob``, independently (mask ``U < prob``, ``U ~ Uniform[0, 1)`` drawn from ``generator`` in
    float64, one tensor per parameter in order; nothing is drawn when ``prob = 0``).

    ``params``, ``source``: sequences of equal length with matching shapes; ``prob`` in ``[0, 1]`` (``1`` restores
    everything). Returns the number of entries restored. Raises ``ValueError`` naming the argument. Source:
    ``qinenergy/cotta`` ``cifar/cotta.py`` (``mask = (torch.rand(p.shape) < self.rst).float()``,
    ``p = source · mask + p · (1 − mask)``).
    """
    prob = check_number("prob", prob, low=0, high=1)
    params, source = _check_pairs("params", params, source, "source")
    _check_generator(generator)
    if prob == 0:
        return 0
    restored = 0
    for p, s in zip(params, source, strict=True):
        draw = torch.rand(tuple(p.shape), generator=generator, dtype=torch.float64, device=generator.device)
        mask = (draw < prob).to(p.device)
        p.copy_(torch.where(mask, s.to(p.dtype), p))
        restored += int(mask.sum())
    return restored


def _frozen_copy(model: nn.Module) -> nn.Module:
    frozen = copy.deepcopy(model)
    frozen.requires_grad_(False)
    return frozen


class _MeanTeacher(TTAMethod):
    """Shared by :class:`CoTTA` and :class:`RMT`: the EMA teacher, the augmentation and the seeded generator.

    Their shared keywords and defaults: ``ema_momentum=0.999``, ``augment=None`` (:func:`cotta_augment`),
    ``seed=0``, ``adapt="all"``, ``optimizer="adam"``, ``lr=1e-3``, and those of :class:`~regkit.tta.TTAMethod`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        ema_momentum: float = 0.999,
        augment: Augment | None = None,
        seed: int = 0,
        adapt: str = "all",
        optimizer: str = "adam",
        lr: float = 1e-3,
        **kwargs,
    ):
        super().__init__(model, adapt=adapt, optimizer=optimizer, lr=lr, **kwargs)
        if self.optimizer is None:
            raise ValueError(f"adapt must select parameters to adapt for {type(self).__name__}, got adapt='none'")
        self.ema_momentum = check_number("ema_momentum", ema_momentum, low=0, high=1, high_open=True)
        if augment is not None and not callable(augment):
            raise ValueError(f"augment must be a callable (x, generator) -> x_aug or None, got {augment!r}")
        self.augment = cotta_augment if augment is None else augment
        self.seed = check_number("seed", seed, low=0, high=2**63 - 1, integer=True)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.teacher = _frozen_copy(self.model)  # after TTAMethod configured the normalization layers
        adapted = {name for name, p in self.model.named_parameters() if p.requires_grad}
        self.teacher_params = [p for name, p in self.teacher.named_parameters() if name in adapted]

    def save_state(self) -> None:
        """Save the state as :class:`~regkit.tta.TTAMethod` does, and the generator's."""
        super().save_state()
        self._saved["generator"] = self.generator.get_state()

    def reset(self) -> None:
        """Restore the saved model, teacher, optimizer, buffers and generator state exactly."""
        super().reset()
        if self._saved is not None:
            self.generator.set_state(self._saved["generator"])

    def _augmented(self, x: torch.Tensor) -> torch.Tensor:
        x_aug = self.augment(x, self.generator)
        if not isinstance(x_aug, torch.Tensor) or x_aug.shape != x.shape or x_aug.dtype != x.dtype:
            got = f"{tuple(x_aug.shape)} {x_aug.dtype}" if isinstance(x_aug, torch.Tensor) else type(x_aug).__name__
            expected = f"{tuple(x.shape)} {x.dtype}"
            raise ValueError(f"augment must return a tensor of x's shape and dtype {expected}, got {got}")
        if not bool(torch.isfinite(x_aug).all()):
            raise ValueError("augment returned non-finite entries (NaN or inf)")
        return x_aug

    def _teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._predict(x, self.teacher)

    def _step(self, loss: torch.Tensor, used: int) -> None:
        """One optimizer step of the student, then the teacher's EMA update."""
        self._update(loss, used)
        ema_update_(self.teacher_params, self.params, self.ema_momentum)


class CoTTA(_MeanTeacher):
    """CoTTA: a mean teacher with augmentation-averaged pseudo-labels and stochastic restore (module docstring).

    Args:
        model: the source classifier (deep-copied); it needs BatchNorm layers unless ``batch_stats=False``.
        ema_momentum: the teacher's EMA rate ``α`` in ``[0, 1)`` (official ``mt_alpha``, 0.999).
        restore_prob: the stochastic-restore probability ``p`` in ``[0, 1]`` (official ``rst_m``, 0.01); ``0``
            disables the restore.
        confidence_threshold: ``p_th`` in ``[0, 1]`` (official ``ap``, 0.9): the augmentation average is used when
            the source model's mean confidence on the batch is below it (``0``: never).
        n_augmentations: ``N ≥ 1`` augmented teacher forwards (official 32).
        augment: ``(x, generator) → x_aug`` of ``x``'s shape and dtype; ``None``: :func:`cotta_augment`.
        seed: seeds the generator of the augmentations and the restore masks (an integer ``≥ 0``).
        adapt, optimizer, lr, further keywords: as :class:`~regkit.tta.TTAMethod`; defaults follow the official
            code: all parameters, Adam, learning rate 1e-3 (β₁ = ``momentum`` = 0.9).

    ``forward(x)`` returns the teacher's pseudo-label logits ``(N, C)``. Buffers ``num_augmented`` and
    ``num_restored`` count the steps that used the augmentation average and the restored entries. Raises
    ``ValueError`` naming the argument.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        restore_prob: float = 0.01,
        confidence_threshold: float = 0.9,
        n_augmentations: int = 32,
        **kwargs,
    ):
        super().__init__(model, **kwargs)  # ema_momentum, augment, seed, adapt, optimizer, lr, ...
        self.restore_prob = check_number("restore_prob", restore_prob, low=0, high=1)
        self.confidence_threshold = check_number("confidence_threshold", confidence_threshold, low=0, high=1)
        self.n_augmentations = check_number("n_augmentations", n_augmentations, low=1, integer=True)
        self.anchor = _frozen_copy(self.model)  # the source model, for the confidence and the restore
        adapted = {name for name, p in self.model.named_parameters() if p.requires_grad}
        self.source_params = [p for name, p in self.anchor.named_parameters() if name in adapted]
        self.register_buffer("num_augmented", torch.zeros((), dtype=torch.int64))
        self.register_buffer("num_restored", torch.zeros((), dtype=torch.int64))

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """One CoTTA step on ``x``; returns the teacher's pseudo-label logits ``(N, C)`` (before the update)."""
        with torch.enable_grad():
            student = self._predict(x)
        with torch.no_grad():
            confidence = self._predict(x, self.anchor).softmax(dim=1).amax(dim=1).mean()
            averaged = bool(confidence < self.confidence_threshold)
            if averaged:
                views = [self._teacher_logits(self._augmented(x)) for _ in range(self.n_augmentations)]
                pseudo = torch.stack(views).mean(dim=0)
            else:
                pseudo = self._teacher_logits(x)
        with torch.enable_grad():
            self._step(symmetric_cross_entropy(student, pseudo, alpha=0.0), x.shape[0])
        restored = stochastic_restore_(self.params, self.source_params, self.restore_prob, self.generator)
        with torch.no_grad():
            self.num_augmented += int(averaged)
            self.num_restored += restored
        return pseudo


class RMT(_MeanTeacher):
    """Robust Mean Teacher: symmetric cross-entropy between the student and an EMA teacher (module docstring).

    Args:
        model: the source classifier (deep-copied); it needs BatchNorm layers unless ``batch_stats=False``.
        ema_momentum: the teacher's EMA rate ``α`` in ``[0, 1)`` (the benchmark's ``M_TEACHER.MOMENTUM``, 0.999).
        consistency: ``"sce"`` (RMT, weights ½ and ½) or ``"ce"`` (the teacher-to-student cross-entropy).
        augmented_view: add the augmented view's term (as ``rmt.py``); ``False``: the un-augmented term only.
        augment: ``(x, generator) → x_aug`` of ``x``'s shape and dtype; ``None``: :func:`cotta_augment` (``rmt.py``
            uses CoTTA's transforms).
        seed: seeds the augmentations' generator (an integer ``≥ 0``).
        adapt, optimizer, lr, further keywords: as :class:`~regkit.tta.TTAMethod`; defaults follow the official
            CIFAR configuration: all parameters, Adam, learning rate 1e-3 (β₁ = ``momentum`` = 0.9).

    ``forward(x)`` returns the ensemble logits ``f_student(x) + f_teacher(x)`` ``(N, C)``. The source-prototype
    contrastive loss, source replay and warm-up of the full method are omitted (module docstring). Raises
    ``ValueError`` naming the argument.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        consistency: str = "sce",
        augmented_view: bool = True,
        **kwargs,
    ):
        super().__init__(model, **kwargs)  # ema_momentum, augment, seed, adapt, optimizer, lr, ...
        self.consistency = check_choice("consistency", consistency, CONSISTENCY)
        self.sce_alpha = 0.5 if self.consistency == "sce" else 0.0
        self.augmented_view = bool(augmented_view)

    def forward_and_adapt(self, x: torch.Tensor) -> torch.Tensor:
        """One RMT step on ``x``; returns the student + teacher logits ``(N, C)`` (before the update)."""
        with torch.enable_grad():
            student = self._predict(x)
            student_aug = self._predict(self._augmented(x)) if self.augmented_view else None
        teacher = self._teacher_logits(x)
        with torch.enable_grad():
            loss = symmetric_cross_entropy(student, teacher, alpha=self.sce_alpha)
            if student_aug is not None:
                loss = 0.5 * (loss + symmetric_cross_entropy(student_aug, teacher, alpha=self.sce_alpha))
            self._step(loss, x.shape[0])
        return student.detach() + teacher
