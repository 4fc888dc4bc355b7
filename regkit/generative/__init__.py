"""Generative and score models: unnormalized models trained by compositional optimisation or NCE,
learned proximal networks, the score learned by regularized auto-encoders, Noise2Score's Tweedie
denoisers and (variational) sparse autoencoders.

One module per method; each module's docstring gives the paper, the objective and the notebook
that replicates it.
"""

from regkit.generative.noise2score import (
    annealed_sigma,
    ardae_score_loss,
    gamma_tweedie,
    gaussian_tweedie,
    poisson_tweedie,
)

__all__: list[str] = [
    "annealed_sigma",
    "ardae_score_loss",
    "gamma_tweedie",
    "gaussian_tweedie",
    "poisson_tweedie",
]
