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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from regkit._checks import check_tensor

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
        if self.f_prime_log is None:
            raise ValueError(f"the {self.name} generator has no derivative usable by f-DPO")
        return self.f_prime_log(torch.log(u))


def _check_name(divergence: str, valid=DIVERGENCES) -> None:
    if divergence not in valid:
        raise ValueError(f"unknown divergence {divergence!r}; valid: {', '.join(valid)}")


def _check_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(alpha)


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
            lambda u: torch.xlogy(u, u) - (1 + u) * torch.log((1 + u) / 2),
            lambda log_u: math.log(2) + log_u - F.softplus(log_u),
        )
    if divergence == "alpha":
        a = _check_alpha(alpha)
        return Generator(
            divergence,
            lambda u: (u ** (1 - a) - (1 - a) * u - a) / (a * (a - 1)),
            lambda log_u: -torch.expm1(-a * log_u) / a,
        )
    if divergence == "total_variation":
        return Generator(divergence, lambda u: 0.5 * (u - 1).abs(), None)
    return Generator(divergence, lambda u: (u - 1) ** 2, lambda log_u: 2 * torch.expm1(log_u))


def _as_log_probs(name: str, value: torch.Tensor, input: str, dim: int) -> torch.Tensor:
    check_tensor(name, value, floating=True)
    if input == "logits":
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
    tolerance = 1e-5 if value.dtype in (torch.float32, torch.float64) else 1e-2
    if not torch.allclose(total, torch.ones_like(total), atol=tolerance, rtol=0):
        worst = float((total - 1).abs().max())
        raise ValueError(f"{name} must sum to one along dim {dim} (off by up to {worst:.3g})")
    return value if input == "log_probs" else torch.log(value)


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
        p, q: distributions of the same shape, given as ``input``: ``"probs"`` (checked to
            be non-negative and sum to one), ``"log_probs"`` or ``"logits"``.
        divergence: one of :data:`DIVERGENCES`.
        alpha: the α of ``"alpha"``, in (0, 1).
        dim: the category dimension; the result has it reduced.
    """
    _check_name(divergence)
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
    if isinstance(p, torch.Tensor) and isinstance(q, torch.Tensor) and p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    log_p, log_q = _as_log_probs("p", p, input, dim), _as_log_probs("q", q, input, dim)
    p_, q_ = log_p.exp(), log_q.exp()
    if divergence == "reverse_kl":
        terms = p_ * (log_p - log_q)
        terms = torch.where(p_ > 0, terms, 0.0)
    elif divergence == "forward_kl":
        terms = torch.where(q_ > 0, q_ * (log_q - log_p), 0.0)
    elif divergence == "js":
        log_m = torch.logaddexp(log_p, log_q) - math.log(2)
        terms = torch.where(p_ > 0, p_ * (log_p - log_m), 0.0) + torch.where(q_ > 0, q_ * (log_q - log_m), 0.0)
    elif divergence == "alpha":
        a = _check_alpha(alpha)
        terms = (torch.exp((1 - a) * log_p + a * log_q) - (1 - a) * p_ - a * q_) / (a * (a - 1))
    elif divergence == "total_variation":
        terms = 0.5 * (p_ - q_).abs()
    else:
        terms = (p_ - q_) ** 2 / q_
    return terms.sum(dim)
