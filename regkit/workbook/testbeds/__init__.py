"""Experiment testbeds shared by the notebooks (data, label noise, models, fixtures), kept apart from
the workbook's plumbing (session, ledger, runner, report):

- :mod:`~regkit.workbook.testbeds.classification`: the noisy-label / augmentation classification testbed
  (digits and MNIST-1D, label noise, MLP and small CNNs, metrics) of ``cutmix``, ``elr``, ``ldr_losses``, ``ps_kd``,
  and its long-tailed subsample and metrics for ``balanced_softmax_mse``;
- :mod:`~regkit.workbook.testbeds.imbalanced_regression`: the imbalanced regression task with a balanced test set of
  ``balanced_softmax_mse``;
- :mod:`~regkit.workbook.testbeds.imbalanced_binary`: imbalanced binary tasks (digits 9 vs rest, a 5 % synthetic task,
  breast cancer at 10 % malignant) split train / validation / test, metrics at a threshold and a tuned threshold, of
  ``anyloss_metric_losses``;
- :mod:`~regkit.workbook.testbeds.linear_ce`: the cross-entropy variants of ``cut_cross_entropy`` and ``make bench``;
- :mod:`~regkit.workbook.testbeds.models`: small reference models (:func:`mlp`, :func:`gru_classifier`);
- :mod:`~regkit.workbook.testbeds.digits_c`: Digits-C, the corrupted 16×16 digit streams (continual, gradual) and the
  cached BatchNorm CNN source model of the test-time adaptation notebooks (``eata_tta`` and its family);
- :mod:`~regkit.workbook.testbeds.ce_study`: the measurements of ``cut_cross_entropy`` (agreement, memory sweep,
  TinyLM);
- :mod:`~regkit.workbook.testbeds.box_lsq`: the box-constrained least-squares problem of ``lion_constrained``;
- :mod:`~regkit.workbook.testbeds.ambiguous_clusters`: the ambiguous-cluster classification task of ``pass_at_n_loss``;
- :mod:`~regkit.workbook.testbeds.ot_problems`: Gaussian transport problems with a closed-form map, point clouds and
  the routing toy of ``monge_gap``, ``sinkhorn_newton_sparse`` and ``sparsity_constrained_ot``;
- :mod:`~regkit.workbook.testbeds.rl_tasks`: the digit-sum task and autoregressive policy of ``aepo_entropy_control``;
- :mod:`~regkit.workbook.testbeds.preference_tasks`: the preference task of ``f_dpo``;
- :mod:`~regkit.workbook.testbeds.denoising`: digit images, Gaussian / Poisson / Gamma noise, the tiny CNN, the
  blind-spot loss, classical filters and PSNR of ``noise2score_tweedie``;
- :mod:`~regkit.workbook.testbeds.tagging`: the synthetic NER-like tagging task and BiGRU tagger of
  ``dice_loss_imbalanced``.
"""

from regkit.workbook.testbeds.models import gru_classifier, mlp

__all__ = ["gru_classifier", "mlp"]
