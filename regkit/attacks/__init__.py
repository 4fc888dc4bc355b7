"""Adversarial attacks on a model's inputs: the robustness metric and the inner maximization of
adversarial training objectives."""

from regkit.attacks.pgd import pgd_attack, smoothness_attack, trades_attack

__all__ = ["pgd_attack", "smoothness_attack", "trades_attack"]
