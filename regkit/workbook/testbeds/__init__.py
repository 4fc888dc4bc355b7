"""Experiment testbeds shared by the notebooks (data, label noise, models, fixtures), kept apart from
the workbook's plumbing (session, ledger, runner, report):

- :mod:`~regkit.workbook.testbeds.classification`: the noisy-label / augmentation classification testbed
  (digits and MNIST-1D, label noise, MLP and small CNNs, metrics) of ``cutmix``, ``elr``, ``ldr_losses``, ``ps_kd``;
- :mod:`~regkit.workbook.testbeds.linear_ce`: the cross-entropy variants of ``cut_cross_entropy`` and ``make bench``;
- :mod:`~regkit.workbook.testbeds.models`: small reference models (:func:`mlp`).
"""

from regkit.workbook.testbeds.models import mlp

__all__ = ["mlp"]
