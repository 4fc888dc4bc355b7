r"""Fixed classification heads: Equiangular Basis Vectors and the simplex ETF.

Shen, Sun & Wei, "Equiangular Basis Vectors", CVPR 2023, arXiv:2303.11637 (slug
``equiangular_basis_vectors``; official code: github.com/NJUST-VIPGroup/Equiangular-Basis-Vectors).

**EBVs.** :math:`N` unit vectors :math:`w_1, \dots, w_N \in \mathbb{R}^d`, one per class, with
:math:`|w_i^\top w_j| \le \alpha` for every :math:`i \ne j` — "as orthogonal as possible", also
when :math:`N \gg d`. They are generated once, before training, by the procedure of the
official ``Generate_EBV.py``: start from Gaussian rows, and repeat

.. math::

    \hat W \leftarrow \operatorname{normalize\_rows}(W), \qquad
    L(\hat W) = \sum_{i \ne j} \max\bigl(0,\, |\hat w_i^\top \hat w_j| - \alpha\bigr), \qquad
    W \leftarrow \hat W - \eta\, \nabla L(\hat W),

the sum over ordered pairs, :math:`\nabla_{\hat w_i} L = 2 \sum_{j \ne i}
\operatorname{sign}(\hat w_i^\top \hat w_j)\, [\,|\hat w_i^\top \hat w_j| > \alpha\,]\, \hat w_j`
(plain SGD on the normalised rows; renormalising is the projection back to the sphere), until
:math:`\max_{i \ne j} |\hat w_i^\top \hat w_j| \le \alpha + \text{tol}` (official: tol
:math:`10^{-4}`, :math:`\eta = 10^{-3}`, at most 100,000 steps; :math:`\alpha = 0.002` for
:math:`N = d = 1000`). The official script sums the same loss over row slices to save memory;
here the :math:`N \times N` Gram matrix is formed at once.

No set of :math:`N > d` unit vectors does better than the Welch bound,
:math:`\max_{i \ne j} |w_i^\top w_j| \ge \sqrt{(N - d) / (d (N - 1))}` (:func:`welch_bound`), so
a smaller :math:`\alpha` is rejected. Above the bound the procedure may still fail, because it
lowers the hinge *sum*, not the maximum: the sum keeps falling while a few pairs become almost
parallel, where the pair's own gradient is radial and renormalising cancels it. Measured (float32,
seed 0): :math:`N = 100, d = 32, \alpha = 0.2` converges in 331 steps at :math:`\eta = 10^{-3}`;
:math:`N = 100, d = 32, \alpha = 0.16` (bound 0.146) climbs past 0.75; :math:`N = 1000, d = 32`
(bound 0.174) fails: :math:`\alpha = 0.2` at :math:`\eta = 10^{-3}` ends 10,000 steps at 0.99997,
and :math:`\alpha \in \{0.2, 0.25, 0.3\}` at :math:`\eta \in \{10^{-4}, 10^{-5}\}` end 4,000
steps between 0.78 and 1.0, and :math:`\alpha = 0.3` at :math:`\eta \in \{10^{-3}, 10^{-2}\}` ends
1,500 steps at 1.0; :math:`\alpha = 0.35` at :math:`\eta = 10^{-3}` converges in 336–475 steps on seeds
0–7 and 200–206 (3–4.5 s of one CPU thread; the notebook's many-class setting). A failed run says
``converged=False`` and reports its true maximum.

**Training.** Features are normalised and scored by cosine against the fixed EBVs with a
temperature, :math:`z_{k} = \hat f^\top w_k / \tau`, and trained with cross-entropy
(:func:`ebv_loss`, :class:`FixedHead`); the prediction is the nearest EBV,
:math:`\arg\max_k \hat f^\top w_k`. The official ImageNet script uses :math:`\tau = 0.07`
(``image_preds @ d.t() / 0.07``) with label smoothing 0.1 and Mixup/CutMix on top.

**Simplex ETF** (:func:`simplex_etf`): :math:`N` unit vectors with every pairwise cosine
exactly :math:`-1/(N-1)` — the fixed classifier of the neural-collapse literature, the
:math:`N \le d + 1` minimiser of the largest *signed* cosine; for the largest :math:`|\cos|` it is
optimal only at :math:`N = d + 1`, where it meets the Welch bound (for :math:`N \le d` orthonormal
vectors do better).

Shapes: EBVs/basis ``(N, d)``, features ``(B, d)``, labels ``(B,)``, logits ``(B, N)``.

Notebook: ``notebooks/equiangular_basis_vectors.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import (
    apply_reduction,
    as_labels,
    check_finite,
    check_number,
    check_probability,
    check_range,
    check_reduction,
    check_tensor,
    upcast_half,
)

__all__ = [
    "EBVResult",
    "FixedHead",
    "ebv_loss",
    "equiangular_basis_vectors",
    "max_abs_cosine",
    "simplex_etf",
    "welch_bound",
]

#: the temperature of the official ImageNet training script
OFFICIAL_TEMPERATURE = 0.07


@dataclass(frozen=True)
class EBVResult:
    """The output of :func:`equiangular_basis_vectors`.

    ``vectors`` ``(N, d)`` unit rows; ``max_abs_cosine`` the achieved
    :math:`\\max_{i \\ne j} |w_i^\\top w_j|` of ``vectors`` as returned (computed in float64);
    ``target`` the requested :math:`\\alpha`; ``steps`` the gradient steps taken; ``converged``
    whether the maximum reached :math:`\\alpha + \\text{tol}` (in the working dtype).
    """

    vectors: torch.Tensor
    max_abs_cosine: float
    target: float
    steps: int
    converged: bool


def _check_dtype(dtype) -> torch.dtype:
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _randn(shape, generator, dtype, device) -> torch.Tensor:
    """Gaussian draws from ``generator`` (on its own device), moved to ``device``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    source = generator.device if generator is not None else (device or torch.device("cpu"))
    x = torch.randn(shape, generator=generator, dtype=dtype, device=source)
    return x if device is None else x.to(device)


def welch_bound(num_vectors: int, dim: int) -> float:
    r"""The least possible :math:`\max_{i \ne j} |w_i^\top w_j|` of ``num_vectors`` unit vectors in
    :math:`\mathbb{R}^{\mathrm{dim}}`: :math:`\sqrt{(N - d) / (d (N - 1))}` for :math:`N > d`, else 0
    (Welch, 1974). Attained only by equiangular tight frames (e.g. the simplex at :math:`N = d + 1`).

    Raises:
        ValueError: ``num_vectors`` < 2 or ``dim`` < 1, naming the argument.
    """
    n = check_number("num_vectors", num_vectors, low=2, integer=True)
    d = check_number("dim", dim, low=1, integer=True)
    return math.sqrt((n - d) / (d * (n - 1))) if n > d else 0.0


def max_abs_cosine(vectors: torch.Tensor) -> float:
    r""":math:`\max_{i \ne j} |\cos(v_i, v_j)|` over the rows of ``vectors`` ``(N, d)``, in float64.

    Raises:
        ValueError: ``vectors`` not a floating ``(N, d)`` tensor with N ≥ 2, non-finite, or
            with a zero row.
    """
    check_tensor("vectors", vectors, ndim=2, floating=True)
    if vectors.shape[0] < 2:
        raise ValueError(f"vectors must have at least 2 rows, got shape {tuple(vectors.shape)}")
    check_finite("vectors", vectors)
    v = vectors.detach().double()
    norms = v.norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError(f"vectors has {int((norms == 0).sum())} zero rows (no direction, no cosine)")
    v = v / norms[:, None]
    gram = (v @ v.T).abs()
    gram.fill_diagonal_(0)
    return float(gram.max())


def equiangular_basis_vectors(
    num_classes: int,
    dim: int,
    *,
    max_cosine: float,
    steps: int = 10_000,
    lr: float = 1e-3,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> EBVResult:
    r"""Generate ``num_classes`` unit vectors in :math:`\mathbb{R}^{\mathrm{dim}}` with pairwise
    :math:`|\cos| \le` ``max_cosine`` by the paper's procedure (module docstring): projected SGD
    on :math:`\sum_{i \ne j} \max(0, |\hat w_i^\top \hat w_j| - \alpha)`, stopping as soon as the
    maximum is at most ``max_cosine + tol``.

    Args:
        num_classes: :math:`N \ge 2`.
        dim: :math:`d \ge 1`.
        max_cosine: :math:`\alpha \in (0, 1)`, at least :func:`welch_bound` ``(N, d)``.
        steps: the most gradient steps, ≥ 1 (the official script allows 100,000).
        lr: the SGD step :math:`\eta > 0` (official: :math:`10^{-3}`).
        tol: stopping slack, ≥ 0 (official: :math:`10^{-4}`).
        generator: the source of the Gaussian start (its device draws it); ``None``: torch's
            global generator.
        dtype: the working and returned dtype, float32 or float64.
        device: where to compute and return; ``None``: the generator's device (CPU without one).

    Returns:
        :class:`EBVResult`: the vectors, the achieved maximum (the true one, whether or not it
        converged), the target, the steps taken and ``converged``.

    Raises:
        ValueError: naming the argument: ``num_classes`` < 2, ``dim`` < 1, ``max_cosine``
            outside (0, 1) or below the Welch bound, ``steps`` < 1, ``lr`` ≤ 0, ``tol`` < 0,
            another ``dtype``.
        TypeError: ``generator`` not a ``torch.Generator``.
    """
    n = check_number("num_classes", num_classes, low=2, integer=True)
    d = check_number("dim", dim, low=1, integer=True)
    alpha = check_number("max_cosine", max_cosine, low=0, high=1, low_open=True, high_open=True)
    bound = welch_bound(n, d)
    if alpha < bound:
        raise ValueError(
            f"max_cosine must be at least the Welch bound sqrt((N - d) / (d (N - 1))) = {bound:.6g} "
            f"for N = {n} unit vectors in dimension d = {d} (no set does better), got {max_cosine!r}"
        )
    steps = check_number("steps", steps, low=1, integer=True)
    lr = check_number("lr", lr, low=0, low_open=True)
    tol = check_number("tol", tol, low=0)
    dtype = _check_dtype(dtype)

    w = _randn((n, d), generator, dtype, device)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=w.device)
    taken, converged = 0, False
    while True:
        w = F.normalize(w, dim=1)
        gram = w @ w.T
        above = (gram.abs() > alpha) & off_diagonal
        worst = float(torch.where(off_diagonal, gram.abs(), 0).max())
        if worst <= alpha + tol:
            converged = True
            break
        if taken == steps:
            break
        # ∇L(Ŵ) = 2 S Ŵ with S_ij = sign(ŵ_i·ŵ_j) [|ŵ_i·ŵ_j| > α] (i ≠ j); S is symmetric
        w = w - lr * 2 * (torch.where(above, gram.sign(), 0) @ w)
        taken += 1
    return EBVResult(w, max_abs_cosine(w), alpha, taken, converged)


def simplex_etf(
    num_classes: int,
    dim: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""The simplex equiangular tight frame: ``num_classes`` unit rows in :math:`\mathbb{R}^{\mathrm{dim}}`
    with every pairwise cosine :math:`-1/(N-1)`, randomly rotated.

    The textbook construction is :math:`M = \sqrt{N/(N-1)}\, U (I_N - \tfrac1N \mathbf 1 \mathbf 1^\top)`
    with :math:`U \in \mathbb{R}^{d \times N}` of orthonormal columns (needs :math:`d \ge N`); its
    columns span only the :math:`(N-1)`-dimensional complement of :math:`\mathbf 1`, so here
    :math:`M^\top = \sqrt{N/(N-1)}\, B U^\top` with :math:`B \in \mathbb{R}^{N \times (N-1)}` an
    orthonormal basis of :math:`\mathbf 1^\perp` and :math:`U \in \mathbb{R}^{d \times (N-1)}` Haar-random
    with orthonormal columns — the same frame, down to :math:`d = N - 1`. Gram matrix:
    :math:`\tfrac{N}{N-1} B B^\top = \tfrac{N}{N-1}(I - \tfrac1N \mathbf 1 \mathbf 1^\top)`. Built in
    float64, returned in ``dtype``.

    Args:
        num_classes: :math:`N \ge 2`.
        dim: :math:`d \ge N - 1`.
        generator: the source of the random rotation; ``None``: torch's global generator.
        dtype: float32 or float64.
        device: where to return it; ``None``: the generator's device (CPU without one).

    Raises:
        ValueError: naming the argument: ``num_classes`` < 2, ``dim`` < ``num_classes`` − 1,
            another ``dtype``.
        TypeError: ``generator`` not a ``torch.Generator``.
    """
    n = check_number("num_classes", num_classes, low=2, integer=True)
    d = check_number("dim", dim, low=1, integer=True)
    if d < n - 1:
        raise ValueError(
            f"dim must be at least num_classes - 1 = {n - 1} for a simplex ETF of {n} vectors, got {dim!r}"
        )
    dtype = _check_dtype(dtype)
    gaussian = _randn((d, n - 1), generator, torch.float64, device)
    u, r = torch.linalg.qr(gaussian)
    u = u * torch.where(r.diagonal() < 0, -1.0, 1.0).to(u)  # sign fix: Haar-distributed U
    centring = torch.eye(n, dtype=torch.float64, device=u.device) - 1.0 / n
    b, _ = torch.linalg.qr(centring[:, : n - 1])  # any n - 1 columns of the centring matrix span 1^⊥
    return (math.sqrt(n / (n - 1)) * b @ u.T).to(dtype)


def _check_basis(basis) -> torch.Tensor:
    check_tensor("basis", basis, ndim=2, floating=True)
    if basis.shape[0] < 2:
        raise ValueError(f"basis must have at least 2 rows (classes), got shape {tuple(basis.shape)}")
    check_finite("basis", basis)
    if bool((basis.norm(dim=1) == 0).any()):
        raise ValueError("basis has a zero row: every class needs a direction")
    return basis


def _check_temperature(temperature) -> float:
    return check_number("temperature", temperature, low=0, low_open=True)


def _cosine_logits(features: torch.Tensor, basis: torch.Tensor, temperature: float) -> torch.Tensor:
    """``normalize(features) @ normalize(basis).T / temperature`` in the working dtype (float32
    for half-precision features)."""
    dtype = torch.promote_types(upcast_half(features).dtype, upcast_half(basis).dtype)
    return F.normalize(features.to(dtype), dim=-1) @ F.normalize(basis.to(dtype), dim=-1).T / temperature


def _check_features(features, dim: int) -> torch.Tensor:
    check_tensor("features", features, floating=True)
    if features.ndim < 1 or features.shape[-1] != dim:
        raise ValueError(f"features must have last dimension {dim} (the basis dimension), got {tuple(features.shape)}")
    return features


class FixedHead(nn.Module):
    r"""A fixed, parameter-free classifier: ``logits = normalize(features) @ basis.T / temperature``.

    ``basis`` ``(N, d)`` (EBVs from :func:`equiangular_basis_vectors`, a :func:`simplex_etf`, ...)
    is stored row-normalised as the buffer ``basis``: it moves with ``.to()`` and is saved in
    the ``state_dict``, but it is not a parameter, so the head has nothing to train whatever
    the number of classes. Features ``(..., d)`` give logits ``(..., N)``; train them with
    ``F.cross_entropy`` (that is :func:`ebv_loss`). Half-precision features are computed in
    float32 and the logits cast back.

    Args:
        basis: ``(N, d)`` class vectors, N ≥ 2, finite, no zero row.
        temperature: :math:`\tau > 0` (0.07 in the official ImageNet script).

    Raises:
        ValueError: naming ``basis`` or ``temperature``; calling it with features whose last
            dimension is not ``d`` names ``features``.
    """

    basis: torch.Tensor

    def __init__(self, basis: torch.Tensor, *, temperature: float = OFFICIAL_TEMPERATURE):
        super().__init__()
        _check_basis(basis)
        self.temperature = _check_temperature(temperature)
        self.register_buffer("basis", F.normalize(basis.detach().clone(), dim=1))

    @property
    def num_classes(self) -> int:
        """N, the number of rows of the basis."""
        return self.basis.shape[0]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _check_features(features, self.basis.shape[1])
        return _cosine_logits(features, self.basis, self.temperature).to(features.dtype)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """The nearest basis vector in cosine, :math:`\\arg\\max_k \\hat f^\\top w_k`: class ids ``(...)``."""
        return self(features).argmax(-1)

    def extra_repr(self) -> str:
        return f"num_classes={self.basis.shape[0]}, dim={self.basis.shape[1]}, temperature={self.temperature:g}"


def ebv_loss(
    features: torch.Tensor,
    basis: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = OFFICIAL_TEMPERATURE,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The EBV training loss: cross-entropy of the cosine logits,
    :math:`-\log \dfrac{\exp(\hat f^\top w_y / \tau)}{\sum_k \exp(\hat f^\top w_k / \tau)}`,
    with :math:`\hat f` and the rows of ``basis`` normalised.

    Args:
        features: ``(B, d)`` embeddings (normalised here).
        basis: ``(N, d)`` fixed class vectors (normalised here; no gradient is needed).
        labels: ``(B,)`` class ids in ``[0, N)``.
        temperature: :math:`\tau > 0` (official: 0.07).
        label_smoothing: in [0, 1], as ``F.cross_entropy`` (0 in the paper's loss; the official
            ImageNet script trains with 0.1).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: naming the argument: shapes/dtypes, non-finite values, labels outside
            ``[0, N)``, ``temperature`` ≤ 0, ``label_smoothing`` outside [0, 1], ``reduction``.
    """
    check_tensor("features", features, ndim=2, floating=True)
    _check_basis(basis)
    _check_features(features, basis.shape[1])
    check_finite("features", features)
    labels = as_labels("labels", labels, ndim=1)
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must have {features.shape[0]} entries (rows of features), got {labels.shape[0]}")
    check_range("labels", labels, 0, basis.shape[0])
    temperature = _check_temperature(temperature)
    label_smoothing = check_probability("label_smoothing", label_smoothing)
    check_reduction(reduction)
    logits = _cosine_logits(features, basis, temperature)
    losses = F.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction="none")
    return apply_reduction(losses, reduction).to(features.dtype)
