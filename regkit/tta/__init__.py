"""Test-time adaptation: online adaptation of a source classifier on unlabelled test batches.

- :mod:`~regkit.tta.adaptation`: the adaptation interface (:class:`TTAMethod`, after the online TTA benchmark
  ``mariodoebler/test-time-adaptation``) and the methods :class:`SourceOnly`, :class:`BNAdapt`, :class:`Tent`,
  :class:`EATA`, with EATA's :func:`fisher_diagonal`;
- :mod:`~regkit.tta.losses`: prediction entropy, TENT's loss, EATA's reliable / non-redundant selection, sample
  weights, probability moving average and Fisher penalty.

Each module's docstring gives the papers, the formulas and the official code they were checked against.
"""

from regkit.tta.adaptation import EATA, BNAdapt, SourceOnly, Tent, TTAMethod, fisher_diagonal
from regkit.tta.losses import (
    eata_non_redundant,
    eata_reliable,
    eata_weights,
    fisher_penalty,
    prediction_entropy,
    tent_loss,
    update_probability_average,
)

__all__ = [
    "EATA",
    "BNAdapt",
    "SourceOnly",
    "TTAMethod",
    "Tent",
    "eata_non_redundant",
    "eata_reliable",
    "eata_weights",
    "fisher_diagonal",
    "fisher_penalty",
    "prediction_entropy",
    "tent_loss",
    "update_probability_average",
]
