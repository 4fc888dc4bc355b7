r"""Spherical-family classification losses: the Z-loss, the log-spherical softmax and the log-Taylor softmax.

de Brébisson & Vincent, "The Z-loss: a shift and scale invariant classification loss belonging to
the Spherical Family", 2016, arXiv:1604.08859, and the losses it compares against, from de Brébisson
& Vincent, "An Exploration of Softmax Alternatives Belonging to the Spherical Loss Family", ICLR
2016, arXiv:1511.05042.

A loss of the output vector :math:`o \in \mathbb R^D` and the target class :math:`c` is *spherical*
(Vincent et al., 2015) when it depends on :math:`o` only through :math:`o_c`, :math:`\sum_k o_k` and
:math:`\sum_k o_k^2`; with a factored output layer these cost :math:`O(d^2)` per example whatever
the number of classes :math:`D`. The losses here take the logits (:math:`O(D)` per example), except
:func:`spherical_z_loss_factored`, which evaluates the Z-loss of a linear output layer from those three
moments in :math:`O(d^2)` per example; the factored *update* of the weights (Vincent et al., 2015) is
not part of this module.

**Z-loss** (:func:`spherical_z_loss`). The outputs are standardized per row,

.. math::

    \mu = \frac1D \sum_k o_k, \qquad \sigma = \sqrt{\frac1D \sum_k (o_k - \mu)^2}, \qquad
    z_k = \frac{o_k - \mu}{\sigma},

(the population standard deviation, :math:`\sigma^2 = \sum_k o_k^2 / D - \mu^2`, as in the paper and
the authors' example code) and

.. math::

    L_Z(o, c) = \frac1a \operatorname{softplus}\big(a (b - z_c)\big)
        = -\frac1a \log \operatorname{sigmoid}\big(a (z_c - b)\big),

with a slope :math:`a > 0` and an offset :math:`b`. It is invariant to :math:`o \to \alpha o + \beta`
for every :math:`\alpha > 0` (a negative :math:`\alpha` flips the sign of :math:`z`). The standardized
score is bounded, :math:`|z_c| \le \sqrt{D - 1}`, with equality when every other output is equal;
as :math:`a \to \infty` the loss tends to the hinge :math:`\max(0, b - z_c)`. The defaults
``a = 1, b = 0`` are those of the authors' Theano example (``softplus((mu - o_c) / sigma)``, in
``pascal20100/factored_output_layer``); the paper treats :math:`a` and :math:`b` as hyperparameters to
tune for the task metric (e.g. top-k error). This is **not** PaLM's auxiliary "z-loss"
:math:`(\log Z)^2` (``linear_cross_entropy(..., z_loss=...)`` in this library).

**Log-spherical softmax** (:func:`spherical_softmax_cross_entropy`):
:math:`p_k = (o_k^2 + \epsilon) / \sum_j (o_j^2 + \epsilon)` and the loss :math:`-\log p_c`. The
:math:`\epsilon > 0` of arXiv:1511.05042 keeps :math:`p` defined and the gradient bounded at
:math:`o = 0`; its default here, ``0.01``, is this library's choice (the paper tunes it).

**Log-Taylor softmax** (:func:`taylor_softmax_cross_entropy`): the second-order Taylor expansion of
``exp``, :math:`p_k \propto 1 + o_k + o_k^2 / 2 = ((o_k + 1)^2 + 1) / 2 \ge 1/2`, and the loss
:math:`-\log p_c`. It needs no :math:`\epsilon`.

Numerics. Both normalized maps are evaluated in log space, :math:`\log(x^2 + \epsilon)` as
:math:`2 \log|x| + \operatorname{log1p}((\sqrt\epsilon / x)^2)` for :math:`|x| \ge \sqrt\epsilon` and as
:math:`\log \epsilon + \operatorname{log1p}((x / \sqrt\epsilon)^2)` below, so nothing overflows for
any finite logit (±1e30 in float32 included). The Z-loss standardizes a copy of the row first
divided by its largest magnitude and shifted by its maximum (constants for autograd: the
standardization is invariant to them, so the gradient is exact), so the variance cannot overflow
or cancel; its result is exactly shift and scale invariant up to rounding. Its last step, the
softplus of the ``B`` target scores, runs in float64, so any finite :math:`a` (1e-300 or 1e300) gives
the loss or its rounding to ±inf in the logits' dtype, never NaN.

Masked classes: a −inf logit is a removed class for all three losses (the Z-loss standardizes over
the remaining classes, :math:`D` counting only them; the maps give it probability 0), with a zero
gradient. A label on a masked class gives a loss of +inf.

Constant rows (the Z-loss): when every unmasked logit of a row is equal (or only one class is
unmasked), :math:`\sigma = 0` and :math:`z` is undefined. This module defines :math:`z = 0` for such a
row, so its loss is :math:`\operatorname{softplus}(a b) / a` (:math:`\log 2` at the defaults), and its
gradient as 0: the loss is scale invariant, so near a constant row its gradient grows like
:math:`1/\sigma` and has no finite limit. A network whose output layer starts at exactly zero
therefore gets no gradient from the Z-loss; initialize it randomly. The spherical and Taylor maps
have no such case (a constant row gives the uniform distribution).

Shapes: logits ``(B, K)`` (floating; float16/bfloat16 are computed in float32 and the loss is
returned in the logits' dtype), labels ``(B,)`` (any integer dtype, used as int64; bool is
rejected); ``reduction`` ``"none"`` (``(B,)``), ``"mean"`` or ``"sum"``. The maps take any shape and
a ``dim``.

Raises (the losses): ``ValueError`` naming the argument for a wrong shape or dtype, NaN/+inf
logits, a row with every class masked, a label outside ``[0, K)``, an unknown ``reduction`` or a
scalar argument outside its range (``a`` and ``eps`` positive and finite, ``eps`` at least the
smallest normal number of the computing dtype, ``b`` finite).

Replicated in ``notebooks/z_loss_spherical.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from regkit._checks import (
    apply_reduction,
    as_labels,
    check_finite,
    check_logits,
    check_logits_and_labels,
    check_number,
    check_range,
    check_reduction,
    check_tensor,
    upcast_half,
)

__all__ = [
    "log_spherical_softmax",
    "log_taylor_softmax",
    "spherical_softmax",
    "spherical_softmax_cross_entropy",
    "spherical_z_loss",
    "spherical_z_loss_factored",
    "standardize_logits",
    "taylor_softmax",
    "taylor_softmax_cross_entropy",
]


def _log_square_plus(x: torch.Tensor, eps: float) -> torch.Tensor:
    r""":math:`\log(x^2 + \epsilon)` for finite ``x``, without overflow or cancellation, with finite gradients."""
    root = math.sqrt(eps)
    large = x.abs() >= root
    x_large = torch.where(large, x, 1.0)  # the unselected branch never sees 0 (log|0|) nor a huge x
    x_small = torch.where(large, 0.0, x)
    value_large = 2 * torch.log(x_large.abs()) + torch.log1p((root / x_large).square())
    value_small = math.log(eps) + torch.log1p((x_small / root).square())
    return torch.where(large, value_large, value_small)


def _log_normalized(log_weight: torch.Tensor, masked: torch.Tensor, dim: int) -> torch.Tensor:
    """``log(w / sum w)`` from ``log w``, with masked entries at −inf (and a zero gradient)."""
    log_weight = torch.where(masked, -torch.inf, log_weight)
    return log_weight - torch.logsumexp(log_weight, dim=dim, keepdim=True)


def _log_spherical(z: torch.Tensor, eps: float, dim: int) -> torch.Tensor:
    masked = z == -torch.inf
    return _log_normalized(_log_square_plus(torch.where(masked, 0.0, z), eps), masked, dim)


def _log_taylor(z: torch.Tensor, dim: int) -> torch.Tensor:
    # 1 + o + o²/2 = ((o + 1)² + 1) / 2; the constant 1/2 cancels in the normalization
    masked = z == -torch.inf
    return _log_normalized(_log_square_plus(torch.where(masked, 0.0, z) + 1, 1.0), masked, dim)


def _check_eps(eps, dtype: torch.dtype) -> float:
    """``eps`` positive and finite, and a normal number of the computing ``dtype`` (else its square root
    underflows to 0 there)."""
    eps = check_number("eps", eps, low=0, low_open=True)
    tiny = torch.finfo(dtype).tiny
    if eps < tiny:
        raise ValueError(f"eps must be at least {tiny:g} (the smallest normal {dtype}), got {eps!r}")
    return eps


def _check_map_input(logits, dim: int = -1) -> torch.Tensor:
    check_tensor("logits", logits)
    if logits.ndim == 0:
        raise ValueError("logits must have at least 1 dimension, got a 0-dimensional tensor")
    check_logits("logits", logits.movedim(dim, -1))
    return upcast_half(logits)


def log_spherical_softmax(logits: torch.Tensor, dim: int = -1, *, eps: float = 0.01) -> torch.Tensor:
    r"""``log`` of the spherical softmax :math:`(o_k^2 + \epsilon) / \sum_j (o_j^2 + \epsilon)` along ``dim``.

    −inf entries are masked classes (log-probability −inf); float16/bfloat16 are computed in float32
    and returned in their dtype. Raises ``ValueError`` for NaN/+inf logits, a slice with every
    entry masked, or ``eps`` not positive and finite (and at least the smallest normal number of the
    computing dtype, 1.2e-38 in float32).
    """
    z = _check_map_input(logits, dim)
    return _log_spherical(z, _check_eps(eps, z.dtype), dim).to(logits.dtype)


def spherical_softmax(logits: torch.Tensor, dim: int = -1, *, eps: float = 0.01) -> torch.Tensor:
    r"""Spherical softmax :math:`(o_k^2 + \epsilon) / \sum_j (o_j^2 + \epsilon)` along ``dim``: positive
    (zero for a masked −inf entry), summing to one, and even in each logit."""
    z = _check_map_input(logits, dim)
    return _log_spherical(z, _check_eps(eps, z.dtype), dim).exp().to(logits.dtype)


def log_taylor_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""``log`` of the Taylor softmax :math:`(1 + o_k + o_k^2/2) / \sum_j (1 + o_j + o_j^2/2)` along ``dim``.

    Evaluated as the log-normalization of :math:`\log((o_k + 1)^2 + 1)`; −inf entries are masked
    classes. Raises ``ValueError`` for NaN/+inf logits or a slice with every entry masked.
    """
    return _log_taylor(_check_map_input(logits, dim), dim).to(logits.dtype)


def taylor_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Taylor softmax :math:`(1 + o_k + o_k^2/2) / \sum_j (1 + o_j + o_j^2/2)` along ``dim``: every
    weight is at least 1/2, so every unmasked probability is positive; they sum to one."""
    return _log_taylor(_check_map_input(logits, dim), dim).exp().to(logits.dtype)


def _nll(log_p: torch.Tensor, labels: torch.Tensor, reduction: str, dtype: torch.dtype) -> torch.Tensor:
    losses = -log_p.gather(1, labels[:, None]).squeeze(1)
    return apply_reduction(losses, reduction).to(dtype)


def spherical_softmax_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, *, eps: float = 0.01, reduction: str = "mean"
) -> torch.Tensor:
    r"""The log-spherical-softmax loss :math:`-\log\big((o_c^2 + \epsilon) / \sum_j (o_j^2 + \epsilon)\big)`.

    Args:
        logits: ``(B, K)`` scores (−inf masks a class).
        labels: ``(B,)`` integer classes in ``[0, K)``.
        eps: :math:`\epsilon > 0` (finite, at least the smallest normal number of the computing
            dtype); a small one makes the gradient steep near :math:`o_c = 0` (the target's term
            is :math:`-2 o_c / (o_c^2 + \epsilon)`).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    labels = check_logits_and_labels(logits, labels)
    check_reduction(reduction)
    z = upcast_half(logits)
    return _nll(_log_spherical(z, _check_eps(eps, z.dtype), 1), labels, reduction, logits.dtype)


def taylor_softmax_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    r"""The log-Taylor-softmax loss :math:`-\log\big((1 + o_c + o_c^2/2) / \sum_j (1 + o_j + o_j^2/2)\big)`.

    Args:
        logits: ``(B, K)`` scores (−inf masks a class).
        labels: ``(B,)`` integer classes in ``[0, K)``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """
    labels = check_logits_and_labels(logits, labels)
    check_reduction(reduction)
    return _nll(_log_taylor(upcast_half(logits), 1), labels, reduction, logits.dtype)


def _standardize(z: torch.Tensor) -> torch.Tensor:
    """Per-row z-scores of the last dimension over the unmasked entries; 0 on constant rows, −inf
    where masked. ``z`` is float32/float64 with no NaN/+inf and at least one finite entry per row."""
    finite = z != -torch.inf
    with torch.no_grad():  # constants of an affine map the z-scores are invariant to
        top = torch.where(finite, z.abs(), 0.0).amax(-1, keepdim=True)
        top = torch.where(top > 0, top, 1.0)
        y = torch.where(finite, z, 0.0) / top  # in [-1, 1]: no overflow below
        high = torch.where(finite, y, -torch.inf).amax(-1, keepdim=True)
        low = torch.where(finite, y, torch.inf).amin(-1, keepdim=True)
        spread = high - low  # in [0, 2]
        constant = spread == 0
        spread = torch.where(constant, 1.0, spread)
    u = torch.where(finite, (z / top - high) / spread, 0.0)  # in [-1, 0] on unmasked entries
    count = finite.sum(-1, keepdim=True)
    deviation = torch.where(finite, u - u.sum(-1, keepdim=True) / count, 0.0)
    variance = deviation.square().sum(-1, keepdim=True) / count
    # where before sqrt and division: a constant row's unselected branch must not carry 0/0 into the gradient
    scores = deviation / torch.where(constant, 1.0, variance).sqrt()
    scores = torch.where(constant, 0.0, scores)
    return torch.where(finite, scores, -torch.inf)


def standardize_logits(logits: torch.Tensor) -> torch.Tensor:
    r"""Per-row z-scores :math:`z_k = (o_k - \mu) / \sigma` of ``logits (..., K)`` along the last dimension.

    :math:`\mu` and the population :math:`\sigma` are taken over the unmasked entries (a −inf entry
    stays −inf); a constant row gives zeros (and a zero gradient), see the module docstring.
    Invariant to ``logits → α·logits + β`` for ``α > 0``. float16/bfloat16 are computed in float32
    and returned in their dtype. Raises ``ValueError`` for NaN/+inf logits or a row with every
    entry masked.
    """
    z = _check_map_input(logits)
    return _standardize(z).to(logits.dtype)


def spherical_z_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    a: float = 1.0,
    b: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The Z-loss of de Brébisson & Vincent: :math:`\frac1a \operatorname{softplus}(a (b - z_c))`, with
    :math:`z` the per-row standardized logits (:func:`standardize_logits`).

    Not PaLM's :math:`(\log Z)^2` penalty (that is ``linear_cross_entropy(..., z_loss=...)``).

    Args:
        logits: ``(B, K)`` scores (−inf masks a class; the statistics use the other classes).
        labels: ``(B,)`` integer classes in ``[0, K)``.
        a: the slope :math:`a > 0` (finite); large :math:`a` approaches the hinge
            :math:`\max(0, b - z_c)`.
        b: the offset :math:`b` (finite): the loss flattens once :math:`z_c` exceeds about
            :math:`b`; since :math:`z_c \le \sqrt{K - 1}`, a :math:`b` beyond that keeps pushing.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    A row whose unmasked logits are all equal has :math:`z = 0`: loss
    :math:`\operatorname{softplus}(a b)/a` and a zero gradient (see the module docstring).
    """
    labels = check_logits_and_labels(logits, labels)
    check_reduction(reduction)
    a = check_number("a", a, low=0, low_open=True)
    b = check_number("b", b)
    scores = _standardize(upcast_half(logits))
    return _z_loss_of_scores(scores.gather(1, labels[:, None]).squeeze(1), a, b, reduction, logits.dtype)


def _z_loss_of_scores(target: torch.Tensor, a: float, b: float, reduction: str, dtype: torch.dtype) -> torch.Tensor:
    """``softplus(a (b - z_c)) / a`` of the ``(B,)`` target scores, reduced, in ``dtype``."""
    # in float64: any finite a and b (1e-300, 1e300) without 0 * inf, for B numbers only
    losses = -F.logsigmoid(a * (target.double() - b)) / a
    return apply_reduction(losses, reduction).to(dtype)


def _check_moment(name: str, value, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    check_tensor(name, value, ndim=len(shape), floating=True)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} (from weight), got {tuple(value.shape)}")
    check_finite(name, value)
    return value.to(dtype)


def spherical_z_loss_factored(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    gram: torch.Tensor | None = None,
    weight_sum: torch.Tensor | None = None,
    a: float = 1.0,
    b: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The Z-loss of the linear output layer :math:`o = W h` from three moments of :math:`o`, in
    :math:`O(d^2)` per example whatever the number of classes :math:`D`: equal to
    ``spherical_z_loss(hidden @ weight.T, labels, a=a, b=b)`` without forming the ``(B, D)`` logits.

    The Z-loss depends on :math:`o` only through :math:`o_c`, :math:`\sum_k o_k` and
    :math:`\sum_k o_k^2` (the spherical family). With the column sum :math:`s = W^\top \mathbf 1`
    (``weight_sum``, ``(d,)``) and the Gram matrix :math:`G = W^\top W` (``gram``, ``(d, d)``),

    .. math::

        o_c = w_c \cdot h, \qquad \sum_k o_k = s \cdot h, \qquad \sum_k o_k^2 = h^\top G h,

    so :math:`\mu = s \cdot h / D`, :math:`\sigma^2 = h^\top G h / D - \mu^2` and
    :math:`z_c = (o_c - \mu)/\sigma` cost :math:`O(d^2)` per example once :math:`s` and :math:`G` are
    known. The variance is evaluated in centred form, :math:`\sigma^2 = h^\top C h / D` with
    :math:`C = G - s s^\top / D` (the Gram matrix of the rows of :math:`W` minus their mean
    :math:`\bar w = s / D`), and :math:`o_c - \mu = (w_c - \bar w) \cdot h`. Without ``gram``,
    :math:`C` is formed from the centred rows themselves, so a large common component of the rows (a
    large :math:`|\mu|`) costs no precision; a given ``gram`` is centred by subtraction, which
    loses about :math:`\log_{10}(\mu^2/\sigma^2)` digits, as any use of the uncentred moments does.

    Cost: :math:`s` and :math:`G` cost :math:`O(D d)` and :math:`O(D d^2)` when computed here (``None``);
    precomputed, the call reads only the ``B`` target rows of ``weight`` (``weight[labels]``, the
    only ones checked for finiteness) and costs :math:`O(B d^2)`. The moments change with
    :math:`W`: keeping them current in :math:`O(d^2)` per example is the factored update of
    Vincent et al. (2015), ``W = V U``, which this function does not do. Training ``W`` with an
    ordinary optimizer still costs :math:`O(D d)` per step; what is :math:`D`-independent here is
    the loss evaluation (and its gradient w.r.t. ``hidden``).

    Gradients: w.r.t. ``hidden``, exact. W.r.t. ``weight``, the full gradient (that of the dense loss)
    when the moments are computed here, or passed as differentiable functions of ``weight``
    (``weight.T @ weight``, ``weight.sum(0)``); precomputed detached moments pass it through the
    target rows :math:`w_c` only.

    Constant rows: when :math:`\sigma^2` evaluates to 0 or less (e.g. ``hidden`` = 0, or all rows of
    ``weight`` equal in exact arithmetic), :math:`z_c = 0` with a zero gradient, as in
    :func:`spherical_z_loss`. Unlike the dense function, which detects equal logits exactly, this one
    sees only the moments: a row that is constant up to rounding gets a :math:`z_c` made of rounding
    errors, bounded like any standardized score by :math:`|z_c| \le \sqrt{D - 1}` (it is clamped there).

    Args:
        hidden: ``(B, d)`` the last hidden layer :math:`h` (floating; float16/bfloat16 are computed in
            float32 and the loss is returned in hidden's dtype).
        weight: ``(D, d)`` the output weights (``nn.Linear(d, D).weight``; no bias: append a constant
            1 to ``hidden`` and the bias as a column of ``weight``).
        labels: ``(B,)`` integer classes in ``[0, D)``.
        gram: ``(d, d)`` :math:`W^\top W`, or ``None`` to compute it.
        weight_sum: ``(d,)`` :math:`W^\top \mathbf 1` (``weight.sum(0)``), or ``None`` to compute it.
        a, b: the slope :math:`a > 0` and offset :math:`b` of :func:`spherical_z_loss`.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises ``ValueError`` naming the argument for a wrong shape or dtype, non-finite ``hidden``,
    moments or target rows, a label outside ``[0, D)``, an unknown ``reduction``, or ``a``/``b`` out of
    range (as :func:`spherical_z_loss`).
    """
    check_tensor("hidden", hidden, ndim=2, floating=True)
    check_tensor("weight", weight, ndim=2, floating=True)
    if weight.shape[0] < 1 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"weight must have shape (D >= 1, d) with d = hidden's second dimension: hidden has shape "
            f"{tuple(hidden.shape)}, weight {tuple(weight.shape)}"
        )
    labels = as_labels("labels", labels, ndim=1)
    if labels.shape[0] != hidden.shape[0]:
        raise ValueError(f"labels must have {hidden.shape[0]} entries (rows of hidden), got {labels.shape[0]}")
    classes, dim = weight.shape
    check_range("labels", labels, 0, classes)
    check_reduction(reduction)
    a = check_number("a", a, low=0, low_open=True)
    b = check_number("b", b)
    h = upcast_half(check_finite("hidden", hidden))
    dtype = h.dtype
    target_rows = check_finite("weight[labels]", weight[labels]).to(dtype)  # the only rows read
    if weight_sum is None:
        mean_row = weight.to(dtype).mean(0)
    else:
        mean_row = _check_moment("weight_sum", weight_sum, (dim,), dtype) / classes
    if gram is None:
        centred = weight.to(dtype) - mean_row
        centred_gram = centred.T @ centred
    else:
        centred_gram = _check_moment("gram", gram, (dim, dim), dtype) - classes * torch.outer(mean_row, mean_row)
    deviation = ((target_rows - mean_row) * h).sum(1)  # o_c - mu
    variance = ((h @ centred_gram) * h).sum(1) / classes
    constant = variance <= 0
    # where before sqrt and division: a constant row's unselected branch must not reach the gradient
    scores = deviation / torch.where(constant, 1.0, variance).sqrt()
    bound = math.sqrt(classes - 1)
    scores = torch.where(constant, 0.0, scores.clamp(-bound, bound))
    return _z_loss_of_scores(scores, a, b, reduction, hidden.dtype)
