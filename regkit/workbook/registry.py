"""The slug registry: from a method's slug to its paper, code, tests and notebook.

The slug (from the catalogue) is the index of the workbook: ``notebooks/<slug>.ipynb`` replicates
the paper, ``outputs/<slug>/`` holds its reference run, and :data:`METHODS` names the paper (title,
year, arXiv id, the seed pages it comes from), the regkit modules that implement it and the test
files that check them. :func:`regkit.workbook.start` reads the paper from here, the report links
the code and tests, and ``tests/workbook/test_registry.py`` checks that every path exists and that every
notebook is registered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    """A paper: ``title``, ``year``, ``arxiv`` id and the ``seeds`` pages (``shared/seeds/``) citing it."""

    title: str
    year: int
    arxiv: str
    seeds: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"title": self.title, "year": self.year, "arxiv": self.arxiv, "seeds": list(self.seeds)}


@dataclass(frozen=True)
class Method:
    """One registered method: its slug, paper, regkit modules (paths) and test files (paths)."""

    slug: str
    paper: Paper
    modules: tuple[str, ...]
    tests: tuple[str, ...]

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.slug}.ipynb"


_S0, _S1, _S2, _S3, _S4 = (
    "000_531fb528a2436209.txt",
    "001_d450349a26c98d76.txt",
    "002_6c54ef77202fd494.txt",
    "003_99a5c1fe3555050d.txt",
    "004_50bad62b33b90585.txt",
)


def _method(slug, title, year, arxiv, seeds, modules, tests) -> Method:
    return Method(slug, Paper(title, year, arxiv, tuple(seeds)), tuple(modules), tuple(tests))


METHODS: dict[str, Method] = {
    m.slug: m
    for m in (
        _method(
            "aepo_entropy_control",
            "Arbitrary Entropy Policy Optimization: Entropy Is Controllable in Reinforcement Fine-tuning",
            2025, "2510.08141", [_S0], ["regkit/rl/aepo.py", "regkit/rl/grpo.py", "regkit/rl/sequence.py"],
            ["tests/rl/test_aepo.py", "tests/rl/test_grpo.py", "tests/rl/test_sequence.py"],
        ),
        # cnn_svm_head also covers the catalogue's gru_svm_head (Agarap 2017, arXiv:1709.03082, seeds _S1 and _S2):
        # the same L2-SVM head on a GRU, in the same notebook
        _method(
            "cnn_svm_head",
            "An Architecture Combining Convolutional Neural Network (CNN) and Support Vector Machine (SVM) for Image "
            "Classification",
            2017, "1712.03541", [_S2], ["regkit/losses/svm.py"], ["tests/losses/test_svm.py"],
        ),
        _method(
            "anyloss_metric_losses", "AnyLoss: Transforming Classification Metrics into Loss Functions", 2024,
            "2405.14745", [_S1], ["regkit/losses/anyloss.py"], ["tests/losses/test_anyloss.py"],
        ),
        _method(
            "balanced_softmax_mse",
            "Transferable Parasitic Estimation via Graph Contrastive Learning and Label Rebalancing in AMS Circuits",
            2025, "2507.06535", [_S2], ["regkit/losses/balanced.py"], ["tests/losses/test_balanced.py"],
        ),
        _method(
            "block_coordinate_descent_greedy",
            "Let's Make Block Coordinate Descent Converge Faster: Faster Greedy Rules, Message-Passing, "
            "Active-Set Complexity, and Superlinear Convergence",
            2022, "1712.08859", [_S4], ["regkit/solvers/block_coordinate_descent.py"],
            ["tests/solvers/test_block_coordinate_descent.py"],
        ),
        _method(
            "comp_sum_losses", "Cross-Entropy Loss Functions: Theoretical Analysis and Applications", 2023,
            "2304.07288", [_S1, _S2],
            ["regkit/losses/comp_sum.py", "regkit/attacks/pgd.py", "regkit/losses/trades.py"],
            ["tests/losses/test_comp_sum.py", "tests/attacks/test_pgd.py", "tests/losses/test_trades.py"],
        ),
        _method(
            "compositional_unnormalized_models",
            "Learning Unnormalized Statistical Models via Compositional Optimization",
            2023, "2306.07485", [_S1], ["regkit/generative/compositional.py"],
            ["tests/generative/test_compositional.py"],
        ),
        _method(
            "cut_cross_entropy", "Cut Your Losses in Large-Vocabulary Language Models", 2025, "2411.09009",
            [_S0, _S2], ["regkit/losses/linear_cross_entropy.py"], ["tests/losses/test_linear_cross_entropy.py"],
        ),
        _method(
            "cutmix",
            "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features",
            2019, "1905.04899", [_S4], ["regkit/regularizers/mixing.py"], ["tests/regularizers/test_mixing.py"],
        ),
        _method(
            "dice_loss_imbalanced", "Dice Loss for Data-imbalanced NLP Tasks", 2020, "1911.02855", [_S2],
            ["regkit/losses/dice.py"], ["tests/losses/test_dice.py"],
        ),
        _method(
            "eata_tta", "Efficient Test-Time Model Adaptation without Forgetting", 2022, "2204.02610", [_S3],
            ["regkit/tta/adaptation.py", "regkit/tta/losses.py"],
            ["tests/tta/test_adaptation.py", "tests/tta/test_losses.py"],
        ),
        _method(
            "elr", "Early-Learning Regularization Prevents Memorization of Noisy Labels", 2020, "2007.00151",
            [_S0, _S3, _S4], ["regkit/losses/elr.py"], ["tests/losses/test_elr.py"],
        ),
        _method(
            "equiangular_basis_vectors", "Equiangular Basis Vectors", 2023, "2303.11637", [_S2],
            ["regkit/heads/equiangular.py"], ["tests/heads/test_equiangular.py"],
        ),
        _method(
            "f_dpo",
            "Beyond Reverse KL: Generalizing Direct Preference Optimization with Diverse Divergence Constraints",
            2024, "2309.16240", [_S1], ["regkit/divergences/f_divergence.py", "regkit/divergences/f_dpo.py"],
            ["tests/divergences/test_f_divergence.py", "tests/divergences/test_f_dpo.py"],
        ),
        _method(
            "gradient_regularized_newton", "Gradient-Normalized Smoothness for Optimization with Approximate Hessians",
            2025, "2506.13710", [_S1], ["regkit/solvers/newton.py"], ["tests/solvers/test_newton.py"],
        ),
        _method(
            "implicit_differentiation", "Efficient and Modular Implicit Differentiation", 2022, "2105.15183", [_S1],
            ["regkit/solvers/implicit.py"], ["tests/solvers/test_implicit.py"],
        ),
        _method(
            "ldr_losses",
            "Label Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness and "
            "Adaptivity",
            2023, "2112.14869", [_S1, _S2], ["regkit/losses/ldr.py", "regkit/losses/robust.py"],
            ["tests/losses/test_ldr.py", "tests/losses/test_robust.py"],
        ),
        _method(
            "lion_constrained", "Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts", 2024,
            "2310.05898", [_S1, _S4], ["regkit/optim/lion.py"], ["tests/optim/test_lion.py"],
        ),
        _method(
            "lpn_learned_proximal_networks", "What's in a Prior? Learned Proximal Networks for Inverse Problems", 2024,
            "2310.14344", [_S3], ["regkit/generative/proximal.py"], ["tests/generative/test_proximal.py"],
        ),
        _method(
            "maid_bilevel",
            "An adaptively inexact first-order method for bilevel optimization with application to hyperparameter "
            "learning",
            2023, "2308.10098", [_S0, _S4], ["regkit/solvers/maid.py"], ["tests/solvers/test_maid.py"],
        ),
        _method(
            "monge_gap", "The Monge Gap: A Regularizer to Learn All Transport Maps", 2023, "2302.04953",
            [_S0, _S1, _S3], ["regkit/ot/monge_gap.py", "regkit/ot/exact.py", "regkit/ot/metrics.py"],
            ["tests/ot/test_monge_gap.py", "tests/ot/test_exact.py", "tests/ot/test_metrics.py",
             "tests/ot/test_results.py"],
        ),
        _method(
            "noise2score_tweedie",
            "Noise2Score: Tweedie's Approach to Self-Supervised Image Denoising without Clean Images", 2021,
            "2106.07009", [_S3], ["regkit/generative/noise2score.py"], ["tests/generative/test_noise2score.py"],
        ),
        _method(
            "pass_at_n_loss",
            "Rethinking Fine-Tuning when Scaling Test-Time Compute: Limiting Confidence Improves Mathematical "
            "Reasoning",
            2025, "2502.07154", [_S2], ["regkit/losses/pass_at_n.py"], ["tests/losses/test_pass_at_n.py"],
        ),
        _method(
            "ps_kd", "Self-Knowledge Distillation with Progressive Refinement of Targets", 2021, "2006.12000",
            [_S0, _S3, _S4], ["regkit/regularizers/self_distillation.py"],
            ["tests/regularizers/test_self_distillation.py"],
        ),
        _method(
            "regularized_ae_score", "What Regularized Auto-Encoders Learn from the Data Generating Distribution",
            2014, "1211.4246", [_S1, _S3], ["regkit/generative/autoencoder_score.py"],
            ["tests/generative/test_autoencoder_score.py"],
        ),
        _method(
            "sinkhorn_newton_sparse", "Accelerating Sinkhorn Algorithm with Sparse Newton Iterations", 2024,
            "2401.12253", [_S3], ["regkit/ot/newton.py", "regkit/ot/sinkhorn.py"],
            ["tests/ot/test_newton.py", "tests/ot/test_sinkhorn.py"],
        ),
        _method(
            "sparsity_constrained_ot", "Sparsity-Constrained Optimal Transport", 2023, "2209.15466",
            [_S0, _S3, _S4], ["regkit/ot/sparse.py"], ["tests/ot/test_sparse.py"],
        ),
        _method(
            "sso_target_surrogates", "Target-based Surrogates for Stochastic Optimization", 2023, "2302.02607",
            [_S1], ["regkit/solvers/sso.py"], ["tests/solvers/test_sso.py"],
        ),
        _method(
            "stablemax_grokking", "Grokking at the Edge of Numerical Stability", 2025, "2501.04697", [_S4],
            ["regkit/losses/stablemax.py", "regkit/optim/orthograd.py"],
            ["tests/losses/test_stablemax.py", "tests/optim/test_orthograd.py"],
        ),
        _method(
            "vsae_variational_sae", "Analysis of Variational Sparse Autoencoders", 2025, "2509.22994", [_S0],
            ["regkit/generative/sparse_autoencoder.py"], ["tests/generative/test_sparse_autoencoder.py"],
        ),
        _method(
            "z_loss_spherical",
            "The Z-loss: a shift and scale invariant classification loss belonging to the Spherical Family", 2016,
            "1604.08859", [_S1, _S2], ["regkit/losses/spherical.py"], ["tests/losses/test_spherical.py"],
        ),
    )
}  # fmt: skip


def method(slug: str) -> Method:
    """The registered method ``slug``; ``ValueError`` listing the registered slugs otherwise."""
    if slug not in METHODS:
        raise ValueError(f"slug {slug!r} is not registered in regkit.workbook.registry; known: {sorted(METHODS)}")
    return METHODS[slug]


__all__ = ["METHODS", "Method", "Paper", "method"]
