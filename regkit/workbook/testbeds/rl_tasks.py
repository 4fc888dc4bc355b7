"""A verifiable-reward toy for RL fine-tuning, small enough to evaluate exactly.

A prompt is a target ``t ∈ {0, …, M − 1}``; a response is ``L`` tokens from a vocabulary of ``V > M``
(tokens ``≥ M`` are invalid); the reward is 1 iff every token is valid and their sum is ``t mod M``
(:func:`digit_sum_reward`). The policy is an autoregressive MLP (:class:`AutoregressivePolicy`), and
the success probability of every prompt is computed by enumerating all ``V^L`` responses
(:func:`exact_success`), so pass@k is exact (:func:`pass_at_k_exact`).

Used by the notebook ``aepo_entropy_control`` (M = 8, V = 12, L = 4).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from regkit.rl import sequence_logps

__all__ = ["AutoregressivePolicy", "all_responses", "digit_sum_reward", "exact_success", "pass_at_k_exact"]


def digit_sum_reward(prompts: Tensor, responses: Tensor, modulus: int = 8) -> Tensor:
    """Reward (B,) float64 of responses (B, L) to prompts (B,): 1 iff every token is ``< modulus`` and
    the tokens sum to the prompt modulo ``modulus``, else 0."""
    valid = (responses < modulus).all(1)
    return (valid & (responses.sum(1) % modulus == prompts)).double()


class AutoregressivePolicy(nn.Module):
    """Policy over responses of ``length`` tokens: (one-hot prompt, one-hot previous token or BOS, one-hot
    position) → ``width`` tanh units → ``vocab`` logits. The BOS token is id ``vocab``."""

    def __init__(self, prompts: int = 8, vocab: int = 12, length: int = 4, width: int = 64):
        super().__init__()
        self.prompts, self.vocab, self.length = prompts, vocab, length
        self.net = nn.Sequential(nn.Linear(prompts + vocab + 1 + length, width), nn.Tanh(), nn.Linear(width, vocab))

    def forward(self, prompts: Tensor, previous: Tensor, positions: Tensor) -> Tensor:
        """Next-token logits (..., V) from prompt ids, previous-token ids and positions (all (...,))."""
        features = torch.cat(
            [F.one_hot(prompts, self.prompts), F.one_hot(previous, self.vocab + 1), F.one_hot(positions, self.length)],
            -1,
        )
        return self.net(features.float())

    def sequence_logits(self, prompts: Tensor, responses: Tensor) -> Tensor:
        """Teacher-forced logits (B, L, V) of whole responses (B, L) to prompts (B,)."""
        b, length = responses.shape[0], self.length
        previous = torch.cat([torch.full((b, 1), self.vocab, device=responses.device), responses[:, :-1]], 1)
        positions = torch.arange(length, device=responses.device).expand(b, length)
        return self(prompts[:, None].expand(b, length), previous, positions)

    @torch.no_grad()
    def sample(self, prompts: Tensor, temperature: float, generator: torch.Generator) -> Tensor:
        """Responses (B, L) sampled token by token from softmax(logits / temperature); the draws are made on
        the CPU with ``generator`` (one multinomial call per position), so they do not depend on the device."""
        previous = torch.full_like(prompts, self.vocab)
        tokens = []
        for position in range(self.length):
            logits = self(prompts, previous, torch.full_like(prompts, position)) / temperature
            previous = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator)[:, 0].to(prompts.device)
            tokens.append(previous)
        return torch.stack(tokens, 1)


def all_responses(vocab: int = 12, length: int = 4) -> Tensor:
    """Every response, (vocab^length, length), in lexicographic order."""
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)))


@torch.no_grad()
def exact_success(policy: AutoregressivePolicy, device: torch.device | str = "cpu") -> np.ndarray:
    """P(reward = 1 | t) for every prompt t, (M,), by enumerating all responses (``policy`` on ``device``)."""
    responses = all_responses(policy.vocab, policy.length)
    on_device = responses.to(device)
    out = []
    for t in range(policy.prompts):
        prompts = torch.full((len(responses),), t)
        seq = sequence_logps(policy.sequence_logits(prompts.to(device), on_device), on_device)
        out.append(float((seq.exp().cpu() * digit_sum_reward(prompts, responses, policy.prompts)).sum()))
    return np.array(out)


def pass_at_k_exact(success: np.ndarray, k: int) -> float:
    """Mean over prompts of P(at least one of k independent responses is correct) = 1 − (1 − p)^k."""
    return float(np.mean(1 - (1 - success) ** k))
