"""Regularizers that act on inputs and targets: mixing augmentations, self-distillation."""

from regkit.regularizers.mixing import (
    cutmix,
    cutout,
    maybe_cutmix,
    mixup,
    one_hot_targets,
)
from regkit.regularizers.self_distillation import PSKD, soft_cross_entropy

__all__ = ["PSKD", "cutmix", "cutout", "maybe_cutmix", "mixup", "one_hot_targets", "soft_cross_entropy"]
