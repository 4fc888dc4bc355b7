r"""f-divergences between categorical distributions.

For a convex generator :math:`f` with :math:`f(1) = 0`,

.. math:: D_f(p \,\|\, q) = \sum_i q_i\, f\!\left(\frac{p_i}{q_i}\right).

With :math:`p` the model (policy) and :math:`q` the reference, the generators follow Table 1
of Wang et al., "Beyond Reverse KL" (arXiv:2309.16240), whose derivatives :math:`f'` are the
f-DPO link functions:

================  ======================================================  =====================================
name              :math:`f(u)`                                            :math:`f'(u)`
================  ======================================================  =====================================
``reverse_kl``    :math:`u \log u` — :math:`\mathrm{KL}(p\|q)`            :math:`\log u + 1`
``forward_kl``    :math:`-\log u` — :math:`\mathrm{KL}(q\|p)`             :math:`-1/u`
``js``            :math:`u\log u - (1+u)\log\frac{1+u}{2}` — 2·JS         :math:`\log\frac{2u}{1+u}`
``alpha``         :math:`\frac{u^{1-\alpha} - (1-\alpha)u - \alpha}{\alpha(\alpha-1)}`  :math:`(1 - u^{-\alpha})/\alpha`
``total_variation``  :math:`\tfrac12 \lvert u - 1\rvert`                  (not differentiable at 1)
``chi2``          :math:`(u - 1)^2` — Pearson :math:`\chi^2`              :math:`2(u - 1)`
================  ======================================================  =====================================

Note the JS generator is the paper's, twice the usual Jensen–Shannon divergence (base e).
The α-divergence interpolates: α → 0 gives reverse KL, α → 1 forward KL.

Everything is evaluated in log space from log-probabilities (``log_softmax`` of logits), so
tiny probabilities neither underflow nor divide by zero.

Zero-probability entries (a probability 0, a log-probability or logit −inf: a masked
entry) take part with their limits :math:`0 \log 0 = 0`, :math:`0^{1-\alpha} = 0`,
:math:`(0 - 0)^2 / 0 = 0`: where :math:`p_i = q_i = 0` the term is 0 and its gradient is 0, so
values and gradients equal those of the problem without the entry; :math:`p_i > 0 = q_i` gives
the divergence's true value (``inf`` for KL and χ², finite for JS, α and TV). Every input is
selected with ``torch.where`` before any arithmetic, so no ``0·∞`` reaches a gradient. The
α-divergence is evaluated as :math:`\frac{p\,\operatorname{expm1}(\alpha \log(q/p))/\alpha + p - q}{\alpha - 1}`
(and its mirror image for α > 1/2), which tends to reverse KL as α → 0 and forward KL as α → 1
without cancellation. float16/bfloat16 inputs are computed in float32 and the result cast back.

Replicated in ``notebooks/f_dpo.ipynb`` (slug registry: ``regkit.workbook.registry``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from regkit._checks import check_choice, check_number, check_tensor, upcast_half

__all__ = ["DIVERGENCES", "Generator", "f_divergence", "generator"]

DIVERGENCES = ("reverse_kl", "forward_kl", "js", "alpha", "total_variation", "chi2")
INPUTS = ("probs", "log_probs", "logits")


@dataclass(frozen=True)
class Generator:
    """A generator ``f`` and, where it exists, ``f'`` as a function of ``log u``."""

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    f_prime_log: Callable[[torch.Tensor], torch.Tensor] | None

    def f_prime(self, u: torch.Tensor) -> torch.Tensor:
        """The derivative :math:`f'(u)` at ratios ``u > 0`` (any shape, same shape returned),
        evaluated as ``f_prime_log(log u)`` (the form f-DPO uses, Wang et al. 2023, arXiv:2309.16240, Table 1).

        Raises:
            ValueError: the generator has no derivative usable by f-DPO.
        """
        if self.f_prime_log is None:
            raise ValueError(f"the {self.name} generator has no derivative usable by f-DPO")
        return self.f_prime_log(torch.log(u))


def _check_name(divergence: str, valid=DIVERGENCES) -> None:
    check_choice("divergence", divergence, valid)


def _check_alpha(alpha: float) -> float:
    return check_number("alpha", alpha, low=0, high=1, low_open=True, high_open=True)


def _alpha_f(u: torch.Tensor, a: float) -> torch.Tensor:
    """:math:`(u^{1-a} - (1-a)u - a) / (a(a-1))` without cancellation as a → 0 or 1 (u ≥ 0)."""
    positive = u > 0
    log_u = torch.log(torch.where(positive, u, 1.0))
    if a <= 0.5:
        inner = (u * torch.expm1(-a * log_u) / a + u - 1) / (a - 1)
    else:
        b = 1 - a
        inner = -(torch.expm1(b * log_u) / b + 1 - u) / a
    return torch.where(positive, inner, 1 / (1 - a))


def generator(divergence: str, *, alpha: float = 0.5) -> Generator:
    """The generator :math:`f` of ``divergence`` and its derivative in terms of :math:`\\log u`."""
    _check_name(divergence)
    if divergence == "reverse_kl":
        return Generator(divergence, lambda u: torch.xlogy(u, u), lambda log_u: log_u + 1)
    if divergence == "forward_kl":
        return Generator(divergence, lambda u: -torch.log(u), lambda log_u: -torch.exp(-log_u))
    if divergence == "js":
        return Generator(
            divergence,
            lambda u: torch.xlogy(u, u) - (1 + u) * (torch.log1p(u) - math.log(2)),
            lambda log_u: math.log(2) + F.logsigmoid(log_u),
        )
    if divergence == "alpha":
        a = _check_alpha(alpha)
        return Generator(
            divergence,
            lambda u: _alpha_f(u, a),
            lambda log_u: -torch.expm1(-a * log_u) / a,
        )
    if divergence == "total_variation":
        return Generator(divergence, lambda u: 0.5 * (u - 1).abs(), None)
    return Generator(divergence, lambda u: (u - 1) ** 2, lambda log_u: 2 * torch.expm1(log_u))


def _as_log_probs(name: str, value: torch.Tensor, input: str, dim: int) -> torch.Tensor:
    check_tensor(name, value, floating=True)
    if bool((value.isnan() | (value == torch.inf)).any()):
        raise ValueError(f"{name} has NaN or +inf entries")
    tolerance = 1e-5 if value.dtype in (torch.float32, torch.float64) else 1e-2
    value = upcast_half(value)
    if input == "logits":
        if bool((value == -torch.inf).all(dim).any()):
            raise ValueError(f"{name} has a slice along dim {dim} whose logits are all -inf (everything masked)")
        return value.log_softmax(dim)
    if input == "log_probs":
        if bool((value > 1e-6).any()):
            raise ValueError(f"{name} must be log-probabilities (≤ 0), found {float(value.max()):.3g}")
        probs = value.exp()
    else:
        if bool((value < 0).any()):
            raise ValueError(f"{name} must be non-negative probabilities, found {float(value.min()):.3g}")
        probs = value
    total = probs.sum(dim)
    if not torch.allclose(total, torch.ones_like(total), atol=tolerance, rtol=0):
        worst = float((total - 1).abs().max())
        raise ValueError(f"{name} must sum to one along dim {dim} (off by up to {worst:.3g})")
    if input == "log_probs":
        return value
    # log of a probability; a zero entry gets -inf and a zero (not 0·∞ = NaN) gradient
    positive = value > 0
    return torch.where(positive, torch.log(torch.where(positive, value, 1.0)), -torch.inf)


def f_divergence(
    p: torch.Tensor,
    q: torch.Tensor,
    divergence: str = "reverse_kl",
    *,
    input: str = "probs",
    alpha: float = 0.5,
    dim: int = -1,
) -> torch.Tensor:
    r""":math:`D_f(p\|q) = \sum_i q_i f(p_i / q_i)` along ``dim``.

    Args:
        p, q: distributions of the same shape and a floating dtype, given as ``input``:
            ``"probs"`` (checked to be non-negative and sum to one), ``"log_probs"`` (≤ 0,
            −inf for a zero entry) or ``"logits"`` (−inf masks an entry).
        divergence: one of :data:`DIVERGENCES`.
        alpha: the α of ``"alpha"``, in (0, 1).
        dim: the category dimension; the result has it reduced.

    Returns:
        ``D_f`` with ``dim`` reduced, in ``p``'s dtype (half precision computed in float32).

    Raises:
        ValueError: naming the argument: unknown ``divergence`` or ``input``, ``alpha``
            outside (0, 1), shapes that differ, NaN/+inf entries, probabilities that are
            negative or do not sum to one, positive log-probabilities, or an all −inf slice
            of logits.
    """
    _check_name(divergence)
    check_choice("input", input, INPUTS)
    a = _check_alpha(alpha) if divergence == "alpha" else None
    for name, value in (("p", p), ("q", q)):
        check_tensor(name, value, floating=True)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -p.ndim <= dim < max(p.ndim, 1):
        raise ValueError(f"dim must be an integer in [{-p.ndim}, {p.ndim}), got {dim!r}")
    log_p, log_q = _as_log_probs("p", p, input, dim), _as_log_probs("q", q, input, dim)
    p_zero, q_zero = log_p == -torch.inf, log_q == -torch.inf
    p_, q_ = log_p.exp(), log_q.exp()  # exp(-inf) = 0 with gradient 0
    # inputs replaced before any arithmetic wherever a term is defined by its limit
    lp = torch.where(p_zero, 0.0, log_p)
    lq = torch.where(q_zero, 0.0, log_q)
    if divergence == "reverse_kl":  # sum_{p>0} p log(p/q): +inf where q = 0 < p
        terms = torch.where(p_zero, 0.0, p_ * (lp - torch.where(p_zero, 0.0, log_q)))
    elif divergence == "forward_kl":
        terms = torch.where(q_zero, 0.0, q_ * (lq - torch.where(q_zero, 0.0, log_p)))
    elif divergence == "js":
        both = p_zero & q_zero
        log_m = torch.logaddexp(torch.where(both, 0.0, log_p), torch.where(both, 0.0, log_q)) - math.log(2)
        terms = torch.where(p_zero, 0.0, p_ * (lp - log_m)) + torch.where(q_zero, 0.0, q_ * (lq - log_m))
    elif divergence == "alpha":
        both = ~p_zero & ~q_zero
        if a <= 0.5:  # (p expm1(a log(q/p)) / a + p - q) / (a - 1)
            inner = (p_ * torch.expm1(a * (lq - lp)) / a + p_ - q_) / (a - 1)
        else:  # the mirror form in b = 1 - a
            b = 1 - a
            inner = -(q_ * torch.expm1(b * (lp - lq)) / b + q_ - p_) / a
        # one of p, q zero: p^(1-a) q^a = 0, the term is ((a-1) p - a q) / (a (a-1)) = p/a + q/(1-a)
        terms = torch.where(both, inner, p_ / a + q_ / (1 - a))
    elif divergence == "total_variation":
        terms = 0.5 * (p_ - q_).abs()
    else:  # chi2: (p - q)^2 / q, 0 where p = q = 0, +inf where q = 0 < p
        safe_q = torch.where(q_zero, 1.0, q_)
        terms = torch.where(q_zero, torch.where(p_zero, 0.0, torch.inf), (p_ - q_) ** 2 / safe_q)
    return terms.sum(dim).to(p.dtype)
