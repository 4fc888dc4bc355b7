"""TopK sparse autoencoders and the variational TopK SAE (vSAE), with the standard SAE metrics.

Baker, Li, *Analysis of Variational Sparse Autoencoders*, arXiv:2509.22994 (2025). Replicated in
``notebooks/vsae_variational_sae.ipynb``.

**TopK SAE** (Gao et al. 2024; the conventions of EleutherAI ``sparsify`` and ``sae-lens``). For
:math:`x \\in \\mathbb{R}^d` and a dictionary of ``width`` latents,

.. math::
    z = \\mathrm{TopK}_k\\big(\\mathrm{ReLU}(W_e (x - b_d) + b_e)\\big), \\qquad
    \\hat x = W_d^\\top z + b_d, \\qquad
    \\mathcal{L}_{\\text{SAE}} = \\lVert x - \\hat x \\rVert_2^2,

with the decoder rows :math:`W_d[i] \\in \\mathbb{R}^d` kept at unit norm (:func:`sae_step` removes the
gradient component parallel to each row before the optimizer step and renormalises the rows after it).

**vSAE** (the paper's Sec. 3): the encoder gives a Gaussian posterior per latent, mean
:math:`\\mu = W_e(x - b_d) + b_e` and log-variance :math:`\\log\\sigma^2 = W_v(x - b_d) + b_v`; a sample
:math:`\\tilde z = \\mu + \\sigma \\odot \\varepsilon`, :math:`\\varepsilon \\sim \\mathcal N(0, I)` (drawn from an
explicit ``torch.Generator``), is gated as above, :math:`z = \\mathrm{TopK}_k(\\mathrm{ReLU}(\\tilde z))`, and

.. math::
    \\mathcal{L}_{\\text{vSAE}} = \\lVert x - \\hat x \\rVert_2^2 + \\beta\\,
    \\sum_{i} \\mathrm{KL}\\big(\\mathcal N(\\mu_i, \\sigma_i^2)\\,\\Vert\\,\\mathcal N(0, 1)\\big),
    \\qquad \\mathrm{KL} = \\tfrac12\\big(\\mu_i^2 + \\sigma_i^2 - 1 - \\log\\sigma_i^2\\big),

the sum over all ``width`` latents (``kl_latents="all"``, the paper's KL toward a standard-normal prior over
the latent vector) or over the k selected ones only (``kl_latents="active"``). Without a generator
(evaluation) :math:`\\tilde z = \\mu`. With :math:`\\beta = 0` and :math:`\\sigma \\to 0` the vSAE is the TopK SAE.

**Metrics.** Fraction of variance unexplained
:math:`\\mathrm{FVU} = \\sum_{n,j}(x_{nj} - \\hat x_{nj})^2 / \\sum_{n,j}(x_{nj} - \\bar x_j)^2`, which equals
``1 − sklearn.metrics.r2_score(x, x_hat, multioutput="variance_weighted")`` (the variance summed over
features), as ``sparsify`` computes it; the dead-latent fraction (latents never non-zero over a sample); the
mean pairwise :math:`|\\cos|` of the decoder rows (overlap; lower is more independent); feature recovery, the
mean over true features of the largest cosine with a decoder row (mean max cosine similarity). The synthetic
superposition generator (:func:`random_unit_features`, :func:`sparse_superposition`) draws ground-truth
unit directions and sparse non-negative coefficients.

**Checked against.** EleutherAI ``sparsify`` (``sparsify/sparse_coder.py``: zero encoder bias, decoder
initialised as a copy of the encoder weight (tied init) and its rows normalised to unit norm, ``b_dec``
zeros and subtracted before encoding, ``set_decoder_norm_to_unit_norm``,
``remove_gradient_parallel_to_decoder_directions``, ``fvu = Σ e² / Σ (y − ȳ)²``). The vSAE against the
paper's abstract and the authors' write-up (LessWrong, "Analysis of Variational Sparse Autoencoders": the
posterior, the reparameterisation, the KL toward :math:`\\mathcal N(0, I)`) and the public
``dictionary_learning``-style ``VSAETopK`` trainers it was built from (``mu = encoder(x − b)``, a separate
``var_encoder`` for the log-variance, ``z = mu + eps·std``, ReLU then TopK on the sample, KL
``0.5·(μ² + σ² − 1 − log σ²)`` summed over latents, one later variant masking it to the top-k). Differences:
no AuxK dead-latent loss and no KL warm-up (the paper's claim is about what the KL term does to living
latents, so neither arm gets a revival mechanism); no clamping of the log-variance (the caller's learning
rate keeps it finite); the encoder weight is drawn as ``nn.Linear`` does, from ``generator``.

Shapes: inputs ``x`` are ``(batch, d)`` floating tensors; latents ``(batch, width)``; decoder rows
``(width, d)``. Device and dtype follow the model's parameters (created with ``device``/``dtype``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from regkit._checks import check_choice, check_finite, check_number, check_tensor

__all__ = [
    "SAEOutput",
    "TopKSAE",
    "VariationalTopKSAE",
    "dead_latent_fraction",
    "fraction_variance_unexplained",
    "feature_recovery",
    "fit_sae",
    "gaussian_kl",
    "mean_pairwise_cosine",
    "random_unit_features",
    "sae_step",
    "sparse_superposition",
    "topk_relu",
]

KL_LATENTS = ("all", "active")


def _device(generator: torch.Generator | None, like: torch.Tensor) -> torch.device:
    """Where random numbers are drawn: the generator's device, else that of ``like``."""
    return generator.device if generator is not None else like.device


def topk_relu(pre_activations: torch.Tensor, k: int) -> torch.Tensor:
    """TopK gating: ``ReLU`` then keep the ``k`` largest entries of each row, zero the rest.

    ``pre_activations`` ``(..., width)`` floating; returns a tensor of the same shape and dtype with exactly
    ``k`` kept positions per row (at most ``k`` non-zero: a kept entry may be a ReLU zero). Gradients flow to
    the kept entries. Raises ``ValueError`` unless ``1 <= k <= width``.
    """
    check_tensor("pre_activations", pre_activations, floating=True)
    width = pre_activations.shape[-1]
    k = check_number("k", k, low=1, high=width, integer=True)
    values, indices = torch.relu(pre_activations).topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre_activations).scatter(-1, indices, values)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Elementwise :math:`\\mathrm{KL}(\\mathcal N(\\mu, \\sigma^2) \\Vert \\mathcal N(0, 1)) =
    \\tfrac12(\\mu^2 + e^{\\log\\sigma^2} - 1 - \\log\\sigma^2)`.

    ``mean`` and ``log_var`` floating tensors of the same shape; returns that shape (non-negative).
    Raises ``ValueError`` on a shape mismatch.
    """
    check_tensor("mean", mean, floating=True)
    check_tensor("log_var", log_var, floating=True)
    if mean.shape != log_var.shape:
        raise ValueError(
            f"mean and log_var must have the same shape, got {tuple(mean.shape)} and {tuple(log_var.shape)}"
        )
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)


@dataclass(frozen=True)
class SAEOutput:
    """One forward pass: ``reconstruction`` ``(batch, d)``; ``latents`` the gated code ``(batch, width)``;
    ``reconstruction_loss`` ``‖x − x̂‖²`` per example ``(batch,)``; ``kl`` the KL term per example
    ``(batch,)`` (zeros for the TopK SAE); ``mean`` and ``log_var`` the posterior ``(batch, width)``
    (``log_var`` ``None`` for the TopK SAE, whose ``mean`` is its pre-activation)."""

    reconstruction: torch.Tensor
    latents: torch.Tensor
    reconstruction_loss: torch.Tensor
    kl: torch.Tensor
    mean: torch.Tensor
    log_var: torch.Tensor | None


class TopKSAE(nn.Module):
    """TopK sparse autoencoder :math:`z = \\mathrm{TopK}(\\mathrm{ReLU}(W_e(x - b_d) + b_e))`,
    :math:`\\hat x = W_d^\\top z + b_d` (module docstring; the ``sparsify`` conventions).

    Args:
        d_in: input dimension d.
        width: number of latents (dictionary size), ``>= k``.
        k: active latents per example.
        generator: the ``torch.Generator`` the encoder weight is drawn from (``U(±1/√d)``, as
            ``nn.Linear``); the decoder is its copy with unit-norm rows, both biases are zero.
        device, dtype: of the parameters.

    Raises ``ValueError`` for ``d_in, width, k < 1`` or ``k > width``.
    """

    kl_weight: float = 0.0  # β; the TopK SAE has no KL term

    def __init__(
        self,
        d_in: int,
        width: int,
        k: int,
        *,
        generator: torch.Generator | None = None,
        device=None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.d_in = check_number("d_in", d_in, low=1, integer=True)
        self.width = check_number("width", width, low=1, integer=True)
        self.k = check_number("k", k, low=1, high=self.width, integer=True)
        factory = {"device": device, "dtype": dtype}
        bound = 1.0 / math.sqrt(self.d_in)
        weight = torch.empty(self.width, self.d_in, **factory)
        weight.uniform_(-bound, bound, generator=generator)
        self.encoder_weight = nn.Parameter(weight)
        self.encoder_bias = nn.Parameter(torch.zeros(self.width, **factory))
        self.decoder_weight = nn.Parameter(weight.clone())
        self.decoder_bias = nn.Parameter(torch.zeros(self.d_in, **factory))
        self.normalize_decoder_()

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=2, floating=True)
        if x.shape[1] != self.d_in:
            raise ValueError(f"x must have shape (batch, {self.d_in}), got {tuple(x.shape)}")
        return x

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`W_e(x - b_d) + b_e`, ``(batch, width)``, for ``x`` ``(batch, d_in)``."""
        return (self._check_input(x) - self.decoder_bias) @ self.encoder_weight.T + self.encoder_bias

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """:math:`W_d^\\top z + b_d`: ``(batch, d_in)`` from latents ``(batch, width)``."""
        return latents @ self.decoder_weight + self.decoder_bias

    def _output(self, x, latents, mean, log_var, kl) -> SAEOutput:
        reconstruction = self.decode(latents)
        loss = (x - reconstruction).square().sum(-1)
        return SAEOutput(reconstruction, latents, loss, kl, mean, log_var)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> SAEOutput:
        """Encode, gate and decode ``x`` ``(batch, d_in)``; ``generator`` is unused (deterministic)."""
        pre = self.pre_activations(x)
        return self._output(x, topk_relu(pre, self.k), pre, None, torch.zeros_like(pre[:, 0]))

    def loss(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training objective, averaged over the batch (a scalar): ``‖x − x̂‖²`` (+ β·KL for the vSAE)."""
        out = self(x, generator=generator)
        return (out.reconstruction_loss + self.kl_weight * out.kl).mean()

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale every decoder row to unit Euclidean norm (in place)."""
        norms = self.decoder_weight.norm(dim=1, keepdim=True)
        self.decoder_weight.div_(norms + torch.finfo(norms.dtype).eps)

    @torch.no_grad()
    def project_decoder_gradient_(self) -> None:
        """Remove from each decoder row's gradient its component along the (unit) row, in place."""
        grad, rows = self.decoder_weight.grad, self.decoder_weight
        if grad is not None:
            grad.sub_((grad * rows).sum(1, keepdim=True) * rows)


class VariationalTopKSAE(TopKSAE):
    """The vSAE: Gaussian posterior per latent, reparameterised sample, TopK gating, ``‖x − x̂‖² + β·KL``.

    Same arguments as :class:`TopKSAE` plus ``beta`` (KL weight, ``>= 0``), ``kl_latents`` (``"all"``:
    KL summed over every latent; ``"active"``: over the k selected ones) and ``log_var_init`` (initial
    value of the log-variance bias :math:`b_v`; the log-variance weight :math:`W_v` starts at zero, so
    σ² = exp(``log_var_init``) everywhere at first). The encoder mean and the decoder are drawn from
    ``generator`` exactly as in :class:`TopKSAE` (same generator state ⇒ same shared weights).

    Raises ``ValueError`` for ``beta < 0``, an unknown ``kl_latents`` or a non-finite ``log_var_init``.
    """

    def __init__(
        self,
        d_in: int,
        width: int,
        k: int,
        *,
        beta: float = 1.0,
        kl_latents: str = "all",
        log_var_init: float = -2.0,
        generator: torch.Generator | None = None,
        device=None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__(d_in, width, k, generator=generator, device=device, dtype=dtype)
        self.kl_weight = check_number("beta", beta, low=0.0, high=math.inf)
        self.kl_latents = check_choice("kl_latents", kl_latents, KL_LATENTS)
        log_var_init = check_number("log_var_init", log_var_init)
        factory = {"device": device, "dtype": dtype}
        self.log_var_weight = nn.Parameter(torch.zeros(self.width, self.d_in, **factory))
        self.log_var_bias = nn.Parameter(torch.full((self.width,), log_var_init, **factory))

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> SAEOutput:
        """Posterior ``mean``/``log_var`` of ``x`` ``(batch, d_in)``; with ``generator`` the sample
        :math:`\\mu + \\sigma\\odot\\varepsilon` (ε drawn from it) is gated, without it the mean is."""
        mean = self.pre_activations(x)
        log_var = (x - self.decoder_bias) @ self.log_var_weight.T + self.log_var_bias
        sample = mean
        if generator is not None:
            noise = torch.randn(mean.shape, generator=generator, device=generator.device, dtype=mean.dtype)
            noise = noise.to(mean.device)
            sample = mean + (0.5 * log_var).exp() * noise
        latents = topk_relu(sample, self.k)
        kl = gaussian_kl(mean, log_var)
        if self.kl_latents == "active":
            selected = torch.zeros_like(kl, dtype=torch.bool)
            selected.scatter_(-1, torch.relu(sample).topk(self.k, dim=-1, sorted=False).indices, True)
            kl = kl * selected
        return self._output(x, latents, mean, log_var, kl.sum(-1))


def sae_step(
    model: TopKSAE, optimizer: torch.optim.Optimizer, x: torch.Tensor, *, generator: torch.Generator | None = None
) -> float:
    """One training step of a (v)SAE on the batch ``x`` ``(batch, d_in)``: the loss and its gradient,
    the decoder-parallel gradient removed, the optimizer step, the decoder rows renormalised to unit norm.
    ``generator`` draws the vSAE's ε (``None``: no sampling). Returns the loss (a float)."""
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(x, generator=generator)
    loss.backward()
    model.project_decoder_gradient_()
    optimizer.step()
    model.normalize_decoder_()
    return float(loss.detach())


def fit_sae(
    model: TopKSAE,
    data: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` with Adam for ``steps`` minibatches drawn uniformly (with replacement) from ``data``
    ``(n, d_in)`` using ``generator`` (which also draws the vSAE's ε). ``callback(step, loss)`` after each
    step (progress). Returns the per-step losses. Raises ``ValueError`` for bad sizes or a non-finite loss."""
    model._check_input(data)
    steps = check_number("steps", steps, low=1, integer=True)
    batch_size = check_number("batch_size", batch_size, low=1, integer=True)
    lr = check_number("lr", lr, low=0.0, low_open=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        index = torch.randint(len(data), (batch_size,), generator=generator, device=_device(generator, data))
        losses.append(sae_step(model, optimizer, data[index], generator=generator))
        if not math.isfinite(losses[-1]):
            raise ValueError(f"the loss became non-finite at step {step}; lower lr (got {lr})")
        if callback is not None:
            callback(step, losses[-1])
    return losses


def fraction_variance_unexplained(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """FVU :math:`= \\sum (x - \\hat x)^2 / \\sum (x - \\bar x)^2` over all examples and features
    (``x``, ``reconstruction`` ``(n, d)``, ``n >= 2``); ``= 1 − r2_score(..., multioutput="variance_weighted")``.
    Returns a 0-d tensor. Raises ``ValueError`` on shapes or constant ``x``."""
    check_tensor("x", x, ndim=2, floating=True)
    check_tensor("reconstruction", reconstruction, ndim=2, floating=True)
    if x.shape != reconstruction.shape or x.shape[0] < 2:
        raise ValueError(
            f"x and reconstruction must have the same shape (n >= 2, d), got {tuple(x.shape)} and "
            f"{tuple(reconstruction.shape)}"
        )
    total = (x - x.mean(0)).square().sum()
    if float(total) == 0.0:
        raise ValueError("x has zero variance: the FVU is undefined")
    return (x - reconstruction).square().sum() / total


def dead_latent_fraction(latents: torch.Tensor) -> float:
    """Fraction of latents (columns of ``latents`` ``(n, width)``) that are zero on every one of the n
    examples. Raises ``ValueError`` unless ``latents`` is 2-D with ``n >= 1``."""
    check_tensor("latents", latents, ndim=2)
    if latents.shape[0] < 1:
        raise ValueError(f"latents must have at least one row, got shape {tuple(latents.shape)}")
    return float((latents != 0).any(0).logical_not().float().mean())


def _unit_rows(name: str, rows: torch.Tensor) -> torch.Tensor:
    check_tensor(name, rows, ndim=2, floating=True)
    check_finite(name, rows)
    norms = rows.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"{name} has {int((norms == 0).sum())} zero rows: their cosine is undefined")
    return rows / norms


def mean_pairwise_cosine(rows: torch.Tensor) -> torch.Tensor:
    """Mean of :math:`|\\cos(w_i, w_j)|` over the pairs ``i < j`` of the rows of ``rows`` ``(m, d)``, ``m >= 2``
    (the decoder overlap). Returns a 0-d tensor. Raises ``ValueError`` for fewer than 2 rows or a zero row."""
    unit = _unit_rows("rows", rows)
    m = unit.shape[0]
    if m < 2:
        raise ValueError(f"rows must hold at least 2 rows, got shape {tuple(rows.shape)}")
    cosines = (unit @ unit.T).abs()
    return (cosines.sum() - cosines.diagonal().sum()) / (m * (m - 1))


def feature_recovery(true_features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean over the true features ``(f, d)`` of the largest cosine with a row of ``rows`` ``(m, d)``
    (mean max cosine similarity; 1 when every feature has an exact decoder row). Returns a 0-d tensor.
    Raises ``ValueError`` on a dimension mismatch or a zero row."""
    features, unit = _unit_rows("true_features", true_features), _unit_rows("rows", rows)
    if features.shape[1] != unit.shape[1]:
        raise ValueError(
            f"true_features and rows must have the same number of columns, got {tuple(true_features.shape)} and "
            f"{tuple(rows.shape)}"
        )
    return (features @ unit.T).max(1).values.mean()


def random_unit_features(
    n_features: int, dim: int, *, generator: torch.Generator | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``n_features`` random unit directions in :math:`\\mathbb{R}^{dim}` (normalised Gaussians),
    ``(n_features, dim)``, drawn from ``generator``."""
    n_features = check_number("n_features", n_features, low=1, integer=True)
    dim = check_number("dim", dim, low=1, integer=True)
    directions = torch.randn(n_features, dim, generator=generator, dtype=dtype)
    return directions / directions.norm(dim=1, keepdim=True)


def sparse_superposition(
    features: torch.Tensor,
    n_samples: int,
    *,
    activation_prob: float = 0.02,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic superposition data :math:`x = \\sum_i c_i f_i`: each feature ``features[i]`` (rows of
    ``(n_features, d)``) is active independently with probability ``activation_prob``, with magnitude
    :math:`c_i \\sim U(0, 1)`. Returns ``(x (n_samples, d), coefficients (n_samples, n_features))`` on the
    features' device and dtype. Raises ``ValueError`` for a bad probability or size."""
    check_tensor("features", features, ndim=2, floating=True)
    n_samples = check_number("n_samples", n_samples, low=1, integer=True)
    activation_prob = check_number("activation_prob", activation_prob, low=0.0, high=1.0)
    shape, device = (n_samples, features.shape[0]), _device(generator, features)
    active = torch.rand(shape, generator=generator, device=device, dtype=features.dtype) < activation_prob
    magnitudes = torch.rand(shape, generator=generator, device=device, dtype=features.dtype)
    coefficients = (active * magnitudes).to(features.device)
    return coefficients @ features, coefficients
