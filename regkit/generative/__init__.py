"""Generative and score models: unnormalized models trained by compositional optimisation or NCE,
learned proximal networks, the score learned by regularized auto-encoders, Noise2Score's Tweedie
denoisers and (variational) sparse autoencoders.

One module per method; each module's docstring gives the paper, the objective and the notebook
that replicates it.
"""

from regkit.generative.proximal import (
    InverseResult,
    LearnedProximalNetwork,
    invert_prox,
    prox_regularizer,
    proximal_matching_gamma,
    proximal_matching_loss,
)

__all__ = [
    "InverseResult",
    "LearnedProximalNetwork",
    "invert_prox",
    "prox_regularizer",
    "proximal_matching_gamma",
    "proximal_matching_loss",
]
