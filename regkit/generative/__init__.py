"""Generative and score models: unnormalized models trained by compositional optimisation or NCE,
learned proximal networks, the score learned by regularized auto-encoders, Noise2Score's Tweedie
denoisers and (variational) sparse autoencoders.

One module per method; each module's docstring gives the paper, the objective and the notebook
that replicates it.
"""

from regkit.generative.autoencoder_score import (
    contractive_loss,
    denoising_loss,
    jacobian_frobenius_sq,
    langevin_chain,
    score_estimate,
)
from regkit.generative.compositional import (
    CompositionalNLL,
    log_mean_exp,
    nce_loss,
)
from regkit.generative.noise2score import (
    annealed_sigma,
    ardae_score_loss,
    gamma_tweedie,
    gaussian_tweedie,
    poisson_tweedie,
)
from regkit.generative.proximal import (
    InverseResult,
    LearnedProximalNetwork,
    invert_prox,
    prox_regularizer,
    proximal_matching_gamma,
    proximal_matching_loss,
)
from regkit.generative.sparse_autoencoder import (
    SAEOutput,
    TopKSAE,
    VariationalTopKSAE,
    dead_latent_fraction,
    feature_recovery,
    fit_sae,
    fraction_variance_unexplained,
    gaussian_kl,
    mean_pairwise_cosine,
    random_unit_features,
    sae_step,
    sparse_superposition,
    topk_relu,
)

__all__ = [
    "CompositionalNLL",
    "InverseResult",
    "LearnedProximalNetwork",
    "SAEOutput",
    "TopKSAE",
    "VariationalTopKSAE",
    "annealed_sigma",
    "ardae_score_loss",
    "contractive_loss",
    "dead_latent_fraction",
    "denoising_loss",
    "feature_recovery",
    "fit_sae",
    "fraction_variance_unexplained",
    "gamma_tweedie",
    "gaussian_kl",
    "gaussian_tweedie",
    "invert_prox",
    "jacobian_frobenius_sq",
    "langevin_chain",
    "log_mean_exp",
    "mean_pairwise_cosine",
    "nce_loss",
    "poisson_tweedie",
    "prox_regularizer",
    "proximal_matching_gamma",
    "proximal_matching_loss",
    "random_unit_features",
    "sae_step",
    "score_estimate",
    "sparse_superposition",
    "topk_relu",
]
