"""Test-time adaptation: online adaptation of a source classifier on unlabelled test batches.

- :mod:`~regkit.tta.adaptation`: the adaptation interface (:class:`TTAMethod`, after the online TTA benchmark
  ``mariodoebler/test-time-adaptation``) and the methods :class:`SourceOnly`, :class:`BNAdapt`, :class:`Tent`,
  :class:`EATA` (both with an optional wisdom-of-crowds filter, ``filter="woc"``) and :class:`SFDA`, with EATA's
  :func:`fisher_diagonal`;
- :mod:`~regkit.tta.mean_teacher`: the mean-teacher methods :class:`CoTTA` and :class:`RMT`, with the EMA update
  :func:`ema_update_`, CoTTA's :func:`stochastic_restore_` and the default augmentation :func:`cotta_augment`;
- :mod:`~regkit.tta.losses`: prediction entropy, TENT's loss, EATA's reliable / non-redundant selection, sample
  weights, probability moving average and Fisher penalty, the wisdom-of-crowds filter (:func:`woc_mask`,
  :func:`woc_confidence_gain`; score it with ``sklearn.metrics.roc_auc_score``) and SFDA's entropy + class-ratio
  prior loss (:func:`sfda_loss`, :func:`class_ratio`, :func:`class_ratio_kl`), and the mean teachers'
  :func:`symmetric_cross_entropy`.

Each module's docstring gives the papers, the formulas and the official code they were checked against.
"""

from regkit.tta.adaptation import EATA, SFDA, BNAdapt, SourceOnly, Tent, TTAMethod, fisher_diagonal
from regkit.tta.losses import (
    class_ratio,
    class_ratio_kl,
    eata_non_redundant,
    eata_reliable,
    eata_weights,
    fisher_penalty,
    prediction_entropy,
    sfda_loss,
    symmetric_cross_entropy,
    tent_loss,
    update_probability_average,
    woc_confidence_gain,
    woc_mask,
)
from regkit.tta.mean_teacher import RMT, CoTTA, cotta_augment, ema_update_, stochastic_restore_

__all__ = [
    "EATA",
    "SFDA",
    "RMT",
    "BNAdapt",
    "CoTTA",
    "SourceOnly",
    "TTAMethod",
    "Tent",
    "class_ratio",
    "class_ratio_kl",
    "cotta_augment",
    "eata_non_redundant",
    "eata_reliable",
    "eata_weights",
    "ema_update_",
    "fisher_diagonal",
    "fisher_penalty",
    "prediction_entropy",
    "sfda_loss",
    "stochastic_restore_",
    "symmetric_cross_entropy",
    "tent_loss",
    "update_probability_average",
    "woc_confidence_gain",
    "woc_mask",
]
