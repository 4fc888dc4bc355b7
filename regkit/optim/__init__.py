"""Optimizers and optimizer wrappers."""

from regkit.optim.lion import Lion
from regkit.optim.orthograd import OrthoGrad, orthogonalize_

__all__ = ["Lion", "OrthoGrad", "orthogonalize_"]
