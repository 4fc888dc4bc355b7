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

__all__ = ["contractive_loss", "denoising_loss", "jacobian_frobenius_sq", "langevin_chain", "score_estimate"]
