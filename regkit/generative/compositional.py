"""Unnormalized models trained by compositional optimisation of the NLL (MECO), and NCE as the baseline.

Jiang, Qin, Wu, Chen, Yang, Zhang, *Learning Unnormalized Statistical Models via Compositional Optimization*,
ICML 2023, arXiv:2306.07485. Replicated in ``notebooks/compositional_unnormalized_models.ipynb``.

The model is :math:`p_\\theta(x) = \\exp(-E_\\theta(x)) / Z_\\theta` for any energy :math:`E_\\theta` (an
``nn.Module`` or a callable; the losses take its values). With a noise density :math:`q` that can be sampled
and evaluated, the partition function is an expectation under :math:`q`,

.. math::
    Z_\\theta = \\mathbb{E}_{x' \\sim q}\\big[g_\\theta(x')\\big], \\qquad
    g_\\theta(x') = \\exp\\big(-E_\\theta(x') - \\log q(x')\\big),

so the negative log-likelihood is a *compositional* (log-of-expectation) objective

.. math::
    \\mathrm{NLL}(\\theta) = \\frac1n \\sum_i E_\\theta(x_i) + \\log \\mathbb{E}_{x'\\sim q}[g_\\theta(x')].

A minibatch plug-in :math:`\\log \\hat g_t` is biased; the compositional estimator (MECO; the moving-average
inner estimate of SOX/SogCLR-type optimisers) tracks the inner expectation with

.. math::
    u_t = (1-\\gamma)\\, u_{t-1} + \\gamma\\, \\hat g_t, \\qquad
    \\hat g_t = \\frac1m \\sum_j g_\\theta(x'_j),\\ x'_j \\sim q,

(:math:`u_1 = \\hat g_1`, as LibAUC initialises its ``u``) and uses the gradient estimate

.. math::
    \\hat\\nabla_t = \\frac1n \\sum_i \\nabla E_\\theta(x_i) + \\frac{\\nabla \\hat g_t}{u_t}
    = \\frac1n \\sum_i \\nabla E_\\theta(x_i) - \\frac{1}{m\\, u_t} \\sum_j g_\\theta(x'_j)\\,\\nabla E_\\theta(x'_j).

(The catalogue writes this as ":math:`\\nabla E(\\text{data}) - \\nabla\\hat g_t / u_t`" with :math:`\\hat g` the
weighted energy; the sign above is for :math:`\\hat g` the importance-weight mean itself.) When :math:`u_t`
equals :math:`Z_\\theta` exactly, the estimate is unbiased for :math:`\\nabla \\mathrm{NLL}(\\theta)`.

**Log domain.** With mismatched noise, :math:`-E - \\log q` can be in the hundreds, where :math:`\\exp`
overflows (float32 at 88, float64 at 709). :class:`CompositionalNLL` therefore stores :math:`\\log u_t`, never
:math:`u_t`: :math:`\\log \\hat g_t = \\operatorname{logsumexp}_j(-E(x'_j) - \\log q(x'_j)) - \\log m` and
:math:`\\log u_t = \\operatorname{logaddexp}(\\log(1-\\gamma) + \\log u_{t-1},\\ \\log\\gamma + \\log\\hat g_t)`. The
surrogate loss is

.. math::
    L_t = \\frac1n \\sum_i E_\\theta(x_i) + \\log u_t + \\big(r_t - \\operatorname{sg}(r_t)\\big), \\qquad
    r_t = \\exp\\big(\\log \\hat g_t - \\operatorname{sg}(\\log u_t)\\big),

(sg: stop-gradient): its value is the running NLL estimate :math:`\\frac1n\\sum_i E + \\log u_t`, its gradient is
:math:`\\hat\\nabla_t` above, and only the ratio :math:`r_t = \\hat g_t / u_t \\le 1/\\gamma` is ever exponentiated.
Before the state is updated, the batch is validated (shapes, dtypes, finite values): a NaN or infinite energy
raises ``ValueError`` and leaves :math:`\\log u` and the step count as they were.

**NCE** (Gutmann & Hyvärinen, AISTATS 2010 / JMLR 2012, eq. 8 of the JMLR paper) fits
:math:`\\log p_m(x) = -E_\\theta(x) - c` with the log-normaliser :math:`c` a free parameter, by logistic
regression of data against :math:`\\nu = m/n` times as many noise samples, with logit
:math:`G(x) = \\log p_m(x) - \\log q(x) - \\log \\nu`:

.. math::
    J(\\theta, c) = -\\frac1n \\sum_i \\log\\sigma(G(x_i)) - \\frac{\\nu}{m} \\sum_j \\log\\sigma(-G(x'_j)),

computed with ``F.logsigmoid`` (no overflow).

**Checked against.** The paper's abstract and introduction (arXiv:2306.07485, ar5iv; the body of the paper,
its algorithm box and its equation numbers could not be read here, and no official code was found): the
objective and the moving-average estimator follow the catalogue entry and the SOX pattern as LibAUC implements
it (``libauc/losses/contrastive.py``, ``GCLoss_v1``: ``u = (1-gamma) u + gamma * mean(exp(logits))``, ``u``
initialised from the first batch, the gradient through ``exp(logits).detach() / u`` times the logits;
``GCLoss_v2``: a running max ``b`` subtracted before ``exp`` against overflow). Differences: here the state is
``log u`` itself (an exact log-domain recursion instead of LibAUC's max shift), a single global ``u`` (one
inner function, the partition function, instead of one ``u`` per anchor), and no clamp of ``u`` (``log u`` is
finite whenever the batch is). NCE against Gutmann & Hyvärinen's objective and the log-sum-exp form of
``lifeitech/nce`` (``util.py``, ``value``), which is the ``ν = 1`` case.

Shapes: energies and noise log-densities are 1-D, ``(n,)`` for the data batch and ``(m,)`` for the noise batch,
any floating dtype; the losses are scalars of that dtype on that device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from regkit._checks import check_finite, check_number, check_tensor

__all__ = ["CompositionalNLL", "log_mean_exp", "nce_loss"]


def _check_vector(name: str, value) -> torch.Tensor:
    check_tensor(name, value, ndim=1, floating=True)
    if value.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one value, got shape {tuple(value.shape)}")
    return check_finite(name, value)


def _check_same_length(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    if value.shape != other.shape:
        raise ValueError(f"{name} must have the shape of {other_name} {tuple(other.shape)}, got {tuple(value.shape)}")


def log_mean_exp(values: torch.Tensor) -> torch.Tensor:
    """``log(mean(exp(values)))`` along the last dimension, by log-sum-exp (no overflow).

    Args:
        values: floating tensor ``(..., m)``, ``m >= 1``.

    Returns:
        ``(...)`` tensor of the same dtype; differentiable.

    Raises:
        ValueError: ``values`` is not a floating tensor or its last dimension is empty.
    """
    check_tensor("values", values, floating=True)
    if values.ndim == 0 or values.shape[-1] == 0:
        raise ValueError(f"values must have a non-empty last dimension, got shape {tuple(values.shape)}")
    return torch.logsumexp(values, dim=-1) - math.log(values.shape[-1])


class CompositionalNLL(nn.Module):
    """The compositional NLL loss of an unnormalized model with a moving-average partition function (MECO).

    Each call takes a data batch's energies and a noise batch's energies and log-densities, updates the running
    estimate :math:`\\log u_t` of :math:`\\log Z_\\theta` (a buffer, in the log domain; see the module docstring)
    and returns the surrogate loss whose value is the running NLL estimate
    :math:`\\frac1n\\sum_i E_\\theta(x_i) + \\log u_t` and whose gradient is the compositional estimate
    :math:`\\frac1n\\sum_i\\nabla E_\\theta(x_i) + \\nabla\\hat g_t / u_t`.

    Args:
        gamma: the moving-average weight :math:`\\gamma \\in (0, 1]` of the newest batch (1: the biased
            minibatch estimate :math:`\\nabla\\log\\hat g_t`).

    Buffers:
        ``log_u``: the running :math:`\\log u_t` (0-d; NaN before the first update; it takes the dtype and
        device of the first batch). ``steps``: the number of updates (0-d int64).

    Raises:
        ValueError: ``gamma`` outside (0, 1].

    Source: Jiang et al., arXiv:2306.07485 (MECO); the moving average as in SOX / LibAUC ``GCLoss``.
    """

    log_u: torch.Tensor
    steps: torch.Tensor

    def __init__(self, gamma: float = 0.1):
        super().__init__()
        self.gamma = check_number("gamma", gamma, low=0.0, high=1.0, low_open=True)
        self.register_buffer("log_u", torch.tensor(math.nan, dtype=torch.float64))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.int64))

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"

    def reset(self) -> None:
        """Forget the running estimate (the next call starts from :math:`u_1 = \\hat g_1`)."""
        self.log_u = torch.full_like(self.log_u, math.nan)
        self.steps.zero_()

    def forward(
        self, energy_data: torch.Tensor, energy_noise: torch.Tensor, log_noise_density: torch.Tensor
    ) -> torch.Tensor:
        """Update :math:`\\log u` with this noise batch and return the surrogate loss.

        Args:
            energy_data: ``(n,)`` energies :math:`E_\\theta(x_i)` of the data batch (differentiable).
            energy_noise: ``(m,)`` energies :math:`E_\\theta(x'_j)` of noise samples :math:`x'_j \\sim q`
                (differentiable).
            log_noise_density: ``(m,)`` :math:`\\log q(x'_j)` (no gradient is taken through it).

        Returns:
            A 0-d tensor of the energies' dtype: value :math:`\\frac1n\\sum_i E_\\theta(x_i) + \\log u_t`,
            gradient the compositional estimate.

        Raises:
            ValueError: a non-floating, non-1-D or empty input, ``log_noise_density`` not of the shape of
                ``energy_noise``, or a NaN/infinite entry; the state is left unchanged.
        """
        _check_vector("energy_data", energy_data)
        _check_vector("energy_noise", energy_noise)
        _check_vector("log_noise_density", log_noise_density)
        _check_same_length("log_noise_density", log_noise_density, "energy_noise", energy_noise)
        log_g = log_mean_exp(-energy_noise - log_noise_density.detach().to(energy_noise.dtype))
        log_u = self._update(log_g.detach())
        ratio = torch.exp(log_g - log_u)
        return energy_data.mean() + log_u + (ratio - ratio.detach())

    @torch.no_grad()
    def _update(self, log_g: torch.Tensor) -> torch.Tensor:
        if int(self.steps) == 0 or self.gamma == 1.0:
            log_u = log_g.clone()
        else:
            previous = self.log_u.to(log_g)
            log_u = torch.logaddexp(previous + math.log1p(-self.gamma), log_g + math.log(self.gamma))
        self.log_u = log_u
        self.steps += 1
        return log_u


def nce_loss(
    energy_data: torch.Tensor,
    energy_noise: torch.Tensor,
    log_noise_density_data: torch.Tensor,
    log_noise_density_noise: torch.Tensor,
    log_normalizer: torch.Tensor,
) -> torch.Tensor:
    """Noise-contrastive estimation loss with a learnable log-normaliser (Gutmann & Hyvärinen).

    The model log-density is :math:`-E_\\theta(x) - c` (``c = log_normalizer``, a parameter trained with
    :math:`\\theta`); with :math:`\\nu = m/n` and :math:`G(x) = -E_\\theta(x) - c - \\log q(x) - \\log\\nu`,

    .. math::
        J = -\\frac1n \\sum_i \\log\\sigma(G(x_i)) - \\frac{\\nu}{m} \\sum_j \\log\\sigma(-G(x'_j)),

    which is :math:`(n+m)/n` times the mean binary cross-entropy of the logits :math:`G` with label 1 for the
    data and 0 for the noise.

    Args:
        energy_data: ``(n,)`` energies of the data batch.
        energy_noise: ``(m,)`` energies of noise samples :math:`x'_j \\sim q`.
        log_noise_density_data: ``(n,)`` :math:`\\log q(x_i)` at the data points.
        log_noise_density_noise: ``(m,)`` :math:`\\log q(x'_j)` at the noise samples.
        log_normalizer: 0-d (or one-element) tensor :math:`c`, the model's estimate of :math:`\\log Z_\\theta`.

    Returns:
        The 0-d loss :math:`J` in the dtype of the energies.

    Raises:
        ValueError: non-floating, non-1-D, empty or non-finite inputs, mismatched lengths, or a
            ``log_normalizer`` with more than one element.

    Source: Gutmann & Hyvärinen, *Noise-contrastive estimation of unnormalized statistical models*, JMLR 13
    (2012), eq. (8); AISTATS 2010.
    """
    for name, value in (
        ("energy_data", energy_data),
        ("energy_noise", energy_noise),
        ("log_noise_density_data", log_noise_density_data),
        ("log_noise_density_noise", log_noise_density_noise),
    ):
        _check_vector(name, value)
    _check_same_length("log_noise_density_data", log_noise_density_data, "energy_data", energy_data)
    _check_same_length("log_noise_density_noise", log_noise_density_noise, "energy_noise", energy_noise)
    check_tensor("log_normalizer", log_normalizer, floating=True)
    if log_normalizer.numel() != 1:
        raise ValueError(f"log_normalizer must have one element, got shape {tuple(log_normalizer.shape)}")
    check_finite("log_normalizer", log_normalizer)
    n, m = energy_data.shape[0], energy_noise.shape[0]
    offset = log_normalizer.reshape(()) + math.log(m / n)
    logit_data = -energy_data - log_noise_density_data - offset
    logit_noise = -energy_noise - log_noise_density_noise - offset
    return -(F.logsigmoid(logit_data).mean() + (m / n) * F.logsigmoid(-logit_noise).mean())
